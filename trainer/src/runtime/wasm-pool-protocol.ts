// The control block the kernel pool's calling thread and each of its workers share (wasm-pool.ts,
// wasm-pool-worker.ts): a few Int32 words for the handshake by Atomics, the task's numbers as Float64 (heap
// addresses may pass 2^31), and room for a worker's error message.
import { MAX_TASK_PARAMS } from './wasm/tasks.js';

/** Int32 words: requests posted, requests done (the worker's answer to request n is DONE = n), task, status. */
export const REQ = 0;
export const DONE = 1;
export const TASK = 2;
/** 0: the task ran; 1: it threw (the message is in the error bytes). */
export const STATUS = 3;
export const ERROR_LENGTH = 4;
const WORDS = 8;

/** Float64 slots: lo, hi, the heap's size when posted, then the task's parameters. */
export const LO = 0;
export const HI = 1;
export const HEAP_BYTES = 2;
export const FIRST_PARAM = 3;
const SLOTS = FIRST_PARAM + MAX_TASK_PARAMS;

const ERROR_BYTES = 1024;
const SLOTS_AT = 4 * WORDS;
const ERROR_AT = SLOTS_AT + 8 * SLOTS;
export const CONTROL_BYTES = ERROR_AT + ERROR_BYTES;

export interface Control {
  words: Int32Array;
  slots: Float64Array;
  error: Uint8Array;
}

export function controlViews(sab: SharedArrayBuffer): Control {
  return { words: new Int32Array(sab, 0, WORDS), slots: new Float64Array(sab, SLOTS_AT, SLOTS), error: new Uint8Array(sab, ERROR_AT, ERROR_BYTES) };
}

/** What a worker is started with. */
export interface PoolWorkerData {
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
}

export function writeError(c: Control, message: string): void {
  const bytes = new TextEncoder().encode(message).subarray(0, c.error.length);
  c.error.set(bytes);
  c.words[ERROR_LENGTH] = bytes.length;
}

export function readError(c: Control): string {
  return new TextDecoder().decode(c.error.slice(0, c.words[ERROR_LENGTH]));
}
