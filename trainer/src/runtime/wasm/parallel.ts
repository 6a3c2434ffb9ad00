// Runs a kernel's task (tasks.ts) over its range of pieces: on the calling thread alone, sliced across the kernel
// pool where one is installed on the same heap (the trainer's Node worker threads on the threaded build's shared
// memory, runtime/wasm-pool.ts), or by the native addon's compiled copy of the task on its own threads (Node, where
// the addon is built: runtime/native-kernels.ts). The viewer never installs either: the kernels then run exactly as
// before, the whole range on the calling thread. Slices are contiguous and every task gives each output value to
// one piece, so the results are the same bits however the range is sliced.
import type { Heap } from './simd.js';
import { TASKS, type Params, type TaskName } from './tasks.js';

/** Threads that share one heap and run task slices on request. */
export interface KernelPool {
  /** The heap the pool's threads have bound the SIMD module to. */
  readonly memory: WebAssembly.Memory;
  /** Threads a kernel may use, the calling one included. */
  readonly threads: number;
  /** Hands slices[i] to worker i (at most threads - 1 slices) and returns at once. */
  post(task: TaskName, params: Params, slices: readonly (readonly [number, number])[]): void;
  /** Waits until every posted slice is done; throws what a worker threw. */
  wait(): void;
}

/**
 * The native addon's tasks: run(heap, index, params, total, parts) computes pieces [0, total) of task tasks()[index]
 * on the wasm heap in `parts` slices across the addon's threads, or throws before writing anything.
 */
export interface NativeTasks {
  tasks(): string[];
  run(heap: Float32Array, task: number, params: Float64Array, total: number, parts: number): void;
}

let pool: KernelPool | null = null;
let native: { run: NativeTasks['run']; index: Map<string, number>; threads: number } | null = null;
/** Runs of each task that were sliced across the pool or the addon's threads (for tests and profiles: did they take part?). */
const sliced = new Map<string, number>();

/** How many runs of each task were sliced across the pool or the addon's threads so far. */
export function slicedTaskRuns(): Record<string, number> {
  return Object.fromEntries(sliced);
}

/** Installs (or, with null, removes) the pool the kernels slice their tasks across. */
export function setKernelPool(p: KernelPool | null): void {
  pool = p;
}

/**
 * Hands the tasks the addon has to it from now on (null: none), on `threads` threads. Tasks it lacks keep their
 * wasm routines (and the kernel pool, where there is one).
 */
export function useNativeTasks(n: NativeTasks | null, threads = 1): void {
  native = n ? { run: n.run.bind(n), index: new Map(n.tasks().map((t, i) => [t, i])), threads } : null;
}

/** Whether the addon runs task `name` now (some, like depthwiseForwardRows, exist only there). */
export function hasNativeTask(name: string): boolean {
  return native?.index.has(name) ?? false;
}

/**
 * Runs pieces [0, total) of task `name` on the addon's threads, if it has the task (else returns false, having
 * done nothing): sliced where the work (values touched) is worth a thread.
 */
export function runNativeTask(memory: WebAssembly.Memory, name: string, params: Params, total: number, work: number): boolean {
  const compiled = native?.index.get(name);
  if (!native || compiled === undefined) return false;
  const parts = Math.max(1, Math.min(native.threads, total, Math.floor(work / MIN_NATIVE_SLICE_WORK)));
  if (parts > 1) sliced.set(name, (sliced.get(name) ?? 0) + 1);
  native.run(new Float32Array(memory.buffer), compiled, Float64Array.from(params), total, parts);
  return true;
}

/** Threads the kernels on `memory` use (1 without a pool on that heap). */
export function kernelThreads(memory: WebAssembly.Memory | null): number {
  return pool && pool.memory === memory ? pool.threads : 1;
}

/**
 * Work (values touched) below which a slice is not worth a worker: waking one and waiting for it costs some
 * tens of microseconds.
 */
export const MIN_SLICE_WORK = 1 << 16;

/** The same for the addon's threads, which spin a little between jobs and so wake in about a microsecond. */
export const MIN_NATIVE_SLICE_WORK = 1 << 14;

/** [lo, hi) of `total` pieces in `parts` contiguous slices, as even as whole pieces allow. */
export function splitRange(total: number, parts: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < parts; i++) {
    const lo = Math.floor((i * total) / parts);
    const hi = Math.floor(((i + 1) * total) / parts);
    if (hi > lo) out.push([lo, hi]);
  }
  return out;
}

/**
 * Runs `task` over pieces [0, total) of a kernel touching about `work` values in all: sliced across the pool
 * when there is one on this heap and the work is worth it (the calling thread takes the first slice), else
 * whole, here.
 */
export function runTask(heap: Heap, task: TaskName, params: Params, total: number, work: number): void {
  if (runNativeTask(heap.memory, task, params, total, work)) return;
  const threads = kernelThreads(heap.memory);
  const parts = Math.min(threads, total, Math.floor(work / MIN_SLICE_WORK));
  if (parts <= 1 || !pool) {
    TASKS[task](heap, params, 0, total);
    return;
  }
  const [mine, ...theirs] = splitRange(total, parts);
  sliced.set(task, (sliced.get(task) ?? 0) + 1);
  pool.post(task, params, theirs);
  try {
    TASKS[task](heap, params, mine[0], mine[1]);
  } finally {
    pool.wait(); // the workers write into the heap: never leave before they are done, even on an error here
  }
}
