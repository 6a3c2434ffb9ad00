// Binds the SIMD module (simd_module.ts) to the wasm backend's heap, once per memory, so the kernels can call its
// routines on tensor data in place; null where the engine has no wasm SIMD or the memory is out of reach, and the
// kernels' JS loops stand in.
import * as tf from '@tensorflow/tfjs';
import { BACKEND, type WasmBackend } from './shared.js';
import { simdModuleBytes } from './simd_module.js';

// Signatures of the routines (pointers, steps and strides in bytes); what each computes: simd_module.ts.
export type Fma = (out: number, outStep: number, a: number, aStep: number, b: number, bStep: number, rows: number, c: number) => void;
export type ClipMask = (out: number, x: number, dy: number, bytes: number, lo: number, hi: number) => void;
export type ScaleShift = (out: number, x: number, a: number, b: number, rows: number, c: number) => void;
export type OuterAcc = (out: number, x: number, xStride: number, y: number, yStride: number, rows: number, p: number, q: number) => void;
export type DiagAcc = (out: number, x: number, xStride: number, y: number, yStride: number, rows: number, c: number) => void;
export interface Simd {
  diagAcc: DiagAcc;
  outerAcc: OuterAcc;
  scaleShift: ScaleShift;
  fma: Fma;
  clipMask: ClipMask;
}

const simdByMemory = new WeakMap<WebAssembly.Memory, Simd | null>();

/** The SIMD routines bound to the backend's heap, or null where they cannot be (no SIMD, memory not reachable). */
export function simd(b: WasmBackend): Simd | null {
  // The single-threaded build exports its memory; the threaded build imports a shared one (Module.wasmMemory).
  const wasm = (b as unknown as { wasm?: { asm?: { memory?: unknown }; wasmMemory?: unknown } }).wasm;
  const memory = wasm?.asm?.memory ?? wasm?.wasmMemory;
  if (!(memory instanceof WebAssembly.Memory)) return null;
  if (!simdByMemory.has(memory)) {
    let fns: Simd | null = null;
    try {
      const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
      const mod = new WebAssembly.Module(simdModuleBytes(shared));
      const exports = new WebAssembly.Instance(mod, { env: { memory } }).exports;
      fns = {
        fma: exports.fma as Fma,
        clipMask: exports.clipMask as ClipMask,
        scaleShift: exports.scaleShift as ScaleShift,
        outerAcc: exports.outerAcc as OuterAcc,
        diagAcc: exports.diagAcc as DiagAcc,
      };
    } catch {
      fns = null; // an engine without wasm SIMD: the kernels' JS loops still work
    }
    simdByMemory.set(memory, fns);
  }
  return simdByMemory.get(memory)!;
}

/** Whether the hand-assembled SIMD routines run on the current wasm backend's heap (else JS loops stand in). */
export function wasmSimdKernelsBound(): boolean {
  return tf.getBackend() === BACKEND && simd(tf.backend() as unknown as WasmBackend) !== null;
}

export function simdFma(b: WasmBackend): Fma | null {
  return simd(b)?.fma ?? null;
}
