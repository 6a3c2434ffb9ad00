// Binds the SIMD module (simd_module.ts) to a wasm heap, once per memory, so the kernels can call its routines on
// tensor data in place; null where the engine has no wasm SIMD or the memory is out of reach, and the kernels' JS
// loops stand in. Free of tfjs: the kernel pool's workers bind the same module to the same (shared) heap.
import type { WasmBackend } from './shared.js';
import { simdModuleBytes } from './simd_module.js';

// Signatures of the routines (pointers, steps and strides in bytes); what each computes: simd_module.ts.
export type Fma = (out: number, outStep: number, a: number, aStep: number, b: number, bStep: number, rows: number, c: number) => void;
export type ClipMask = (out: number, x: number, dy: number, bytes: number, lo: number, hi: number) => void;
export type ScaleShift = (out: number, x: number, a: number, b: number, rows: number, c: number) => void;
export type OuterAcc = (out: number, x: number, xStride: number, y: number, yStride: number, rows: number, p: number, q: number) => void;
export type DiagAcc = (out: number, x: number, xStride: number, y: number, yStride: number, rows: number, c: number) => void;
export type ScaleShiftClip = (out: number, x: number, a: number, b: number, rows: number, c: number, lo: number, hi: number) => void;
export type ScaleShiftClipBack = (dx: number, dz: number, x: number, a: number, b: number, sums: number, rows: number, c: number, lo: number, hi: number) => void;
export interface Simd {
  diagAcc: DiagAcc;
  outerAcc: OuterAcc;
  scaleShift: ScaleShift;
  fma: Fma;
  clipMask: ClipMask;
  scaleShiftClip: ScaleShiftClip;
  scaleShiftClipBack: ScaleShiftClipBack;
}

const simdByMemory = new WeakMap<WebAssembly.Memory, Simd | null>();

/** Whether `memory` is shared between threads (the threaded build's heap). */
export function isSharedMemory(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
}

/** The SIMD routines bound to `memory` (cached per memory), or null where the engine has no wasm SIMD. */
export function bindSimd(memory: WebAssembly.Memory): Simd | null {
  if (!simdByMemory.has(memory)) {
    let fns: Simd | null = null;
    try {
      const mod = new WebAssembly.Module(simdModuleBytes(isSharedMemory(memory)));
      const exports = new WebAssembly.Instance(mod, { env: { memory } }).exports;
      fns = {
        fma: exports.fma as Fma,
        clipMask: exports.clipMask as ClipMask,
        scaleShift: exports.scaleShift as ScaleShift,
        outerAcc: exports.outerAcc as OuterAcc,
        diagAcc: exports.diagAcc as DiagAcc,
        scaleShiftClip: exports.scaleShiftClip as ScaleShiftClip,
        scaleShiftClipBack: exports.scaleShiftClipBack as ScaleShiftClipBack,
      };
    } catch {
      fns = null; // an engine without wasm SIMD: the kernels' JS loops still work
    }
    simdByMemory.set(memory, fns);
  }
  return simdByMemory.get(memory)!;
}

/** The wasm backend's heap: the single-threaded build exports its memory, the threaded build imports a shared one. */
export function heapMemory(b: WasmBackend): WebAssembly.Memory | null {
  const wasm = (b as unknown as { wasm?: { asm?: { memory?: unknown }; wasmMemory?: unknown } }).wasm;
  const memory = wasm?.asm?.memory ?? wasm?.wasmMemory;
  return memory instanceof WebAssembly.Memory ? memory : null;
}

/** The SIMD routines bound to the backend's heap, or null where they cannot be (no SIMD, memory not reachable). */
export function simd(b: WasmBackend): Simd | null {
  const memory = heapMemory(b);
  return memory ? bindSimd(memory) : null;
}

/** The SIMD routines and the heap they are bound to: what a kernel task runs on (tasks.ts). */
export interface Heap {
  simd: Simd;
  memory: WebAssembly.Memory;
}

/** The backend's heap with the SIMD routines bound to it, or null where they cannot be. */
export function simdHeap(b: WasmBackend): Heap | null {
  const memory = heapMemory(b);
  const fns = memory ? bindSimd(memory) : null;
  return memory && fns ? { simd: fns, memory } : null;
}

export function simdFma(b: WasmBackend): Fma | null {
  return simd(b)?.fma ?? null;
}
