// What every wasm kernel here shares: the slice of the wasm backend's interface they use, views and frees of
// tensor data on its heap, the backend's own matmul and transpose, heap addresses for the SIMD routines, and the
// backend kernels that ours replace and fall back to.
import * as tf from '@tensorflow/tfjs';
import { useNativeTasks, type NativeTasks } from './parallel.js';

export type Info = tf.TensorInfo;
export type ConvInfo = ReturnType<typeof tf.backend_util.computeConv2DInfo>;
export type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
export type Rounding = 'floor' | 'round' | 'ceil' | undefined;

/** The slice of the wasm backend's interface these kernels use. */
export interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): Info;
  typedArrayFromHeap(info: Info): tf.TypedArray;
  disposeData(dataId: object, force?: boolean): boolean;
  incRef(dataId: object): void;
}

export type KernelArgs = { inputs: Record<string, Info>; backend: unknown; attrs?: Record<string, unknown> };
export type Kernel = (args: KernelArgs) => Info;

export const BACKEND = 'wasm';

/**
 * A kernel config of this folder. `wrapsBuiltin`: the kernel hands the cases it does not cover to the backend's
 * own kernel of the same name (see builtinKernel), so it is registered only where the backend has one.
 */
export interface WasmKernelConfig extends tf.KernelConfig {
  wrapsBuiltin?: boolean;
}

/** A kernel config for the wasm backend from a kernel function typed with this folder's argument types. */
export function wasmKernel(kernelName: string, kernelFunc: Kernel, opts: { wrapsBuiltin?: boolean } = {}): WasmKernelConfig {
  return { kernelName, backendName: BACKEND, kernelFunc: kernelFunc as unknown as tf.KernelFunc, ...opts };
}

/** The backend's kernel functions that ours replaced, by kernel name (filled in at registration). */
const builtins = new Map<string, Kernel>();

export function rememberBuiltin(kernelName: string, kernel: Kernel): void {
  builtins.set(kernelName, kernel);
}

/** The backend's own kernel that ours replaced, for the cases ours does not cover. */
export function builtinKernel(kernelName: string): Kernel {
  const k = builtins.get(kernelName);
  if (!k) throw new Error(`the wasm backend's own ${kernelName} kernel was not recorded at registration`);
  return k;
}

export function kernelOf(name: string): Kernel {
  const k = tf.getKernel(name, BACKEND);
  if (!k) throw new Error(`the wasm backend has no ${name} kernel`);
  return k.kernelFunc as unknown as Kernel;
}

/** Same data, another shape (no copy, no reference count: never dispose a view). */
export function view(info: Info, shape: number[]): Info {
  return { dataId: info.dataId, shape, dtype: info.dtype };
}

export function free(b: WasmBackend, ...infos: Info[]): void {
  for (const i of infos) b.disposeData(i.dataId);
}

/**
 * C[M, N] = op(A) op(B) on row-major matrices at float offsets of the wasm heap (a Float32Array over it): the
 * native addon's signature (runtime/native-kernels.ts). op(A) is [M, K], stored [K, M] when transposed; op(B) is
 * [K, N], stored [N, K] when transposed.
 */
export interface NativeGemm {
  sgemm(heap: Float32Array, a: number, b: number, c: number, m: number, n: number, k: number, transA: boolean, transB: boolean): void;
}

let native: NativeGemm | null = null;

/** The matrix products of `gemm` from now on: the addon's, or (null) XNNPACK's. Node only sets one. */
export function useNativeGemm(g: NativeGemm | null): void {
  native = g;
}

/**
 * The native addon's products and tasks from now on, on `threads` threads (null: XNNPACK's products and the wasm
 * routines, as in the browser).
 */
export function useNativeKernels(k: (NativeGemm & NativeTasks & { threads(n: number): void }) | null, threads = 1): void {
  k?.threads(threads);
  useNativeGemm(k);
  useNativeTasks(k, threads);
}

export function nativeGemmInUse(): boolean {
  return native !== null;
}

/**
 * op(A) [M, K] x op(B) [K, N] as a new [M, N] tensor: the native products where they are in use (no transpose
 * copies: the flags say how each operand is stored), else transposes and the backend's XNNPACK matmul.
 */
export function gemm(b: WasmBackend, a: Info, bm: Info, m: number, k: number, n: number, t: { transA?: boolean; transB?: boolean } = {}): Info {
  if (native) {
    const out = b.makeOutput([m, n], 'float32');
    // The heap's buffer is taken after the allocation, which may have grown (and so replaced) it.
    const o = b.typedArrayFromHeap(out) as Float32Array;
    const heap = new Float32Array(o.buffer);
    const at = (i: Info) => (b.typedArrayFromHeap(i) as Float32Array).byteOffset / 4;
    native.sgemm(heap, at(a), at(bm), o.byteOffset / 4, m, n, k, !!t.transA, !!t.transB);
    return out;
  }
  const aa = t.transA ? transpose2d(b, a, k, m) : a;
  const bb = t.transB ? transpose2d(b, bm, n, k) : bm;
  const out = matmul(b, aa, bb, m, k, n);
  if (aa !== a) free(b, aa);
  if (bb !== bm) free(b, bb);
  return out;
}

/** [M, K] x [K, N] on the backend's XNNPACK path. */
export function matmul(b: WasmBackend, a: Info, bm: Info, m: number, k: number, n: number): Info {
  return kernelOf('BatchMatMul')({
    inputs: { a: view(a, [1, m, k]), b: view(bm, [1, k, n]) },
    backend: b,
    attrs: { transposeA: false, transposeB: false },
  });
}

export function transpose2d(b: WasmBackend, x: Info, rows: number, cols: number): Info {
  return kernelOf('Transpose')({ inputs: { x: view(x, [rows, cols]) }, backend: b, attrs: { perm: [1, 0] } });
}

/** Byte address of a tensor's data on the wasm heap. */
export function addressOf(b: WasmBackend, info: Info): number {
  const arr = b.typedArrayFromHeap(info);
  return arr.byteOffset;
}

