// Chooses the tfjs backends for Node: wasm (SIMD, fastest on CPU here), else the pure-JS cpu backend, for all the
// work; WebGPU on a real GPU (through Dawn) for fine-tuning, where a GPU exists or --backend webgpu asks for it.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerTrainingKernels } from './wasm/register.js';
import { heapMemory } from './wasm/simd.js';
import { nativeGemmInUse, useNativeKernels, type WasmBackend } from './wasm/shared.js';
import { matrixProductsLine, nativeKernels } from './native-kernels.js';
import { startKernelPool } from './wasm-pool.js';
import { prepareWasmThreads, wasmThreadCount } from './wasm-threads.js';
import { initWebGPUBackend, mayHaveGpu, softwareFromEnv, webgpuProblems, type WebGPUInfo } from './webgpu.js';

export type BackendName = 'auto' | 'wasm' | 'cpu' | 'webgpu';

export interface BackendInfo {
  name: string;
  /** The WebGPU adapter, when the backend is webgpu. */
  adapter?: string;
  software?: boolean;
}

let info: BackendInfo | null = null;
let kernelThreads = 1;
let kernelPoolError: string | undefined;

/**
 * Threads the project's own kernels use, the calling one included: the native addon's where it is built, else the
 * kernel pool's (1 without a pool); and why there is no pool where the threaded build has more than one thread.
 */
export function wasmKernelThreads(): { threads: number; error?: string } {
  return kernelPoolError ? { threads: kernelThreads, error: kernelPoolError } : { threads: kernelThreads };
}

/**
 * For the log: with the native addon, '2 threads (native kernels: OpenBLAS 0.3.21 (Haswell) products and compiled
 * tasks; the wasm build single-threaded)'; without it, the wasm build's threads and the kernel pool's.
 */
export function wasmThreadsLine(): string {
  const plural = (n: number) => `${n} thread${n > 1 ? 's' : ''}`;
  if (nativeGemmInUse()) {
    return `${plural(kernelThreads)} (native kernels: ${matrixProductsLine(kernelThreads).replace(/ on \d+ threads?$/, '')} products and compiled tasks; the wasm build single-threaded)`;
  }
  const n = wasmThreadCount();
  const products = `matrix products: ${matrixProductsLine(kernelThreads)}`;
  if (n <= 1) return `${plural(n)}, ${products}`;
  return `${plural(n)} (the project's kernels on ${kernelPoolError ? `one: ${kernelPoolError}` : kernelThreads}), ${products}`;
}

/** Starts the kernel pool on the threaded build's heap; a pool that cannot start leaves the kernels on one thread. */
async function startPool(): Promise<void> {
  if (wasmThreadCount() <= 1) return;
  try {
    kernelThreads = await startKernelPool(heapMemory(tf.backend() as unknown as WasmBackend), wasmThreadCount());
    kernelPoolError = undefined;
  } catch (e) {
    kernelPoolError = (e as Error).message;
  }
}

/** What initBackend chose (before it ran: just tfjs's current backend); the report records it. */
export function backendInfo(): BackendInfo {
  return info && info.name === tf.getBackend() ? { ...info } : { name: tf.getBackend() };
}

function chose(name: string, gpu?: WebGPUInfo): string {
  info = gpu ? { name, adapter: gpu.adapter, software: gpu.software } : { name };
  return name;
}

async function initCpuBackend(b: 'wasm' | 'cpu', threads: number, native: boolean): Promise<boolean> {
  try {
    // With the native addon, its threads take the products and the project's kernels, and the wasm build stays
    // single-threaded: the threaded build's XNNPACK workers and engine costs only competed with them for the same
    // cores (npm run bench -- trainer measured both). Without it, the threaded build and the kernel pool.
    const addon = b === 'wasm' && native ? nativeKernels().addon : null;
    if (b === 'wasm') await prepareWasmThreads(addon ? 1 : threads);
    if (!(await tf.setBackend(b))) return false;
    await tf.ready();
    if (b !== 'wasm') return tf.getBackend() === b;
    registerTrainingKernels(); // training through convs stays on wasm
    if (addon) {
      kernelThreads = threads;
      useNativeKernels(addon, threads);
    } else {
      // An earlier initBackend in this process may have installed the addon: the wasm kernels alone from here.
      useNativeKernels(null);
      kernelThreads = 1;
      // The project's own kernels on every thread of the threaded build (XNNPACK's pool serves only its own ops).
      await startPool();
    }
    return tf.getBackend() === b;
  } catch {
    return false;
  }
}

function noWebGPU(): Error {
  const hint = softwareFromEnv() ? '' : '; set ZEROVAR_WEBGPU_SOFTWARE=1 to accept a software adapter (slow, for testing)';
  return new Error(`--backend webgpu: no WebGPU adapter: ${webgpuProblems().join('; ')}${hint}`);
}

/**
 * Makes the backend current that everything but fine-tuning runs on, and returns its name.
 * - 'auto': wasm, else cpu. Statistics, surgery, Grad-CAM and export read tensors synchronously, which WebGPU in
 *   Node cannot do; fine-tuning alone moves to a GPU (see trainingBackend).
 * - `threads` > 1: the native addon's kernels on that many threads where it is built; else the threaded wasm build
 *   (an XNNPACK pool and the kernel pool; decided when the wasm backend is first created).
 * - `native: false`: leave the addon out (the wasm kernels and, with `threads` > 1, the threaded build), as tests
 *   of those paths need.
 * - 'webgpu': WebGPU or an error naming what is missing (for code that reads only with data()). A hardware
 *   adapter; a software one (llvmpipe, SwiftShader) only with ZEROVAR_WEBGPU_SOFTWARE=1, for testing the path.
 */
export async function initBackend(name: BackendName = 'auto', opts: { threads?: number; native?: boolean } = {}): Promise<string> {
  if (name === 'webgpu') {
    const gpu = await initWebGPUBackend();
    if (!gpu) throw noWebGPU();
    return chose('webgpu', gpu);
  }
  const order: ('wasm' | 'cpu')[] = name === 'auto' ? ['wasm', 'cpu'] : [name];
  for (const b of order) if (await initCpuBackend(b, opts.threads ?? 1, opts.native ?? true)) return chose(b);
  throw new Error(`no tfjs backend could be initialised (tried ${order.join(', ')})`);
}

/**
 * The backend fine-tuning should run on for `--backend name`, leaving the current backend current:
 * - 'webgpu': WebGPU (an error naming what is missing when there is none);
 * - 'auto': WebGPU on a hardware adapter, the fastest trainer where one exists; else the current backend. A
 *   software adapter is never chosen: it runs the shaders on the CPU, slower than wasm (measured ~20x).
 * - 'wasm' / 'cpu': the current backend.
 */
export async function trainingBackend(name: BackendName): Promise<{ name: string; adapter?: string; software?: boolean }> {
  const current = tf.getBackend();
  if (name !== 'webgpu' && !(name === 'auto' && mayHaveGpu())) return { name: current };
  // Dawn is only loaded where a GPU device may exist, so CPU-only machines never pay for (or hear from) it.
  const gpu = name === 'webgpu' ? await initWebGPUBackend() : await initWebGPUBackend({ allowSoftware: false }).catch(() => null);
  if (current && tf.getBackend() !== current) await tf.setBackend(current);
  if (gpu) return { name: 'webgpu', adapter: gpu.adapter, software: gpu.software };
  if (name === 'webgpu') throw noWebGPU();
  return { name: current };
}
