// The kernel pool for Node: worker threads that bind the project's SIMD module to the threaded wasm build's shared
// heap, so that the project's own kernels (filter and depthwise gradients, BatchNorm, masks) use every thread the
// backend was given, not only XNNPACK's matmuls and convs. The calling thread posts a slice to each worker through
// its control block (wasm-pool-protocol.ts), runs the first slice itself, then waits with Atomics.wait (allowed on
// Node's main thread). Started only on a shared heap (the threaded build); the single-threaded build and the
// viewer never have one, and the kernels then run on the calling thread as before. The workers are unref'd and
// sleep in Atomics.wait between slices, so a process still exits by itself when its work is done.
import { Worker } from 'node:worker_threads';
import { setKernelPool, type KernelPool } from './wasm/parallel.js';
import { isSharedMemory } from './wasm/simd.js';
import { TASK_NAMES, type Params, type TaskName } from './wasm/tasks.js';
import {
  CONTROL_BYTES,
  controlViews,
  DONE,
  FIRST_PARAM,
  HEAP_BYTES,
  HI,
  LO,
  readError,
  REQ,
  STATUS,
  TASK,
  type Control,
  type PoolWorkerData,
} from './wasm-pool-protocol.js';

/** A slice that runs this long means a worker is gone (a slice of the largest kernel takes well under a second). */
const SLICE_TIMEOUT_MS = 120_000;
const START_TIMEOUT_MS = 60_000;

interface PoolWorker {
  worker: Worker;
  control: Control;
  /** The request number whose answer is awaited (0: none). */
  awaited: number;
}

class NodeKernelPool implements KernelPool {
  readonly threads: number;
  private posted: PoolWorker[] = [];

  constructor(
    readonly memory: WebAssembly.Memory,
    private readonly workers: PoolWorker[],
  ) {
    this.threads = workers.length + 1;
  }

  post(task: TaskName, params: Params, slices: readonly (readonly [number, number])[]): void {
    if (this.posted.length) throw new Error('kernel pool: slices posted before the previous ones were waited for');
    if (slices.length > this.workers.length) throw new Error(`kernel pool: ${slices.length} slices for ${this.workers.length} workers`);
    const index = TASK_NAMES.indexOf(task);
    slices.forEach(([lo, hi], i) => {
      const w = this.workers[i];
      const { words, slots } = w.control;
      slots[LO] = lo;
      slots[HI] = hi;
      slots[HEAP_BYTES] = this.memory.buffer.byteLength;
      slots.set(params, FIRST_PARAM);
      words[TASK] = index;
      w.awaited = Atomics.add(words, REQ, 1) + 1;
      Atomics.notify(words, REQ);
      this.posted.push(w);
    });
  }

  wait(): void {
    const posted = this.posted;
    this.posted = [];
    const failures: string[] = [];
    for (const w of posted) {
      const { words } = w.control;
      const deadline = performance.now() + SLICE_TIMEOUT_MS;
      for (;;) {
        const done = Atomics.load(words, DONE);
        if (done === w.awaited) break;
        if (performance.now() > deadline) throw new Error(`kernel pool: worker ${w.worker.threadId} did not finish its slice in ${SLICE_TIMEOUT_MS / 1000} s`);
        Atomics.wait(words, DONE, done, 1000);
      }
      if (words[STATUS] !== 0) failures.push(readError(w.control));
    }
    if (failures.length) throw new Error(`kernel pool: ${failures.join('; ')}`);
  }
}

let started: { memory: WebAssembly.Memory; pool: NodeKernelPool } | null = null;

function startWorker(memory: WebAssembly.Memory): Promise<PoolWorker> {
  const control = new SharedArrayBuffer(CONTROL_BYTES);
  const data: PoolWorkerData = { memory, control };
  // execArgv: [] keeps the parent's flags (a test runner's, --import hooks) out of the worker: its entry loads tsx.
  const worker = new Worker(new URL('./wasm-pool-worker.mjs', import.meta.url), { workerData: data, execArgv: [] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`no answer in ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    const fail = (e: Error) => {
      clearTimeout(timer);
      void worker.terminate();
      reject(e);
    };
    worker.once('error', fail);
    worker.once('exit', (code) => fail(new Error(`exited with code ${code} while starting`)));
    worker.once('message', (m: { ok: boolean; error?: string }) => {
      clearTimeout(timer);
      worker.removeAllListeners('exit');
      if (!m.ok) return fail(new Error(m.error ?? 'refused to start'));
      worker.unref();
      resolve({ worker, control: controlViews(control), awaited: 0 });
    });
  });
}

/**
 * Starts a pool of `threads` threads (the calling one included, so threads - 1 workers) on `memory`, the
 * threaded build's shared heap, and installs it for the kernels; resolves to the threads the kernels now use.
 * threads <= 1 or a heap that is not shared: no pool, 1. Once a pool runs on this heap, the same one (a later
 * call cannot resize it). A worker that fails to start: an error, and no pool is installed.
 */
export async function startKernelPool(memory: WebAssembly.Memory | null, threads: number): Promise<number> {
  if (started && started.memory === memory) return started.pool.threads;
  if (!memory || threads <= 1 || !isSharedMemory(memory)) return 1;
  const workers = await Promise.allSettled(Array.from({ length: threads - 1 }, () => startWorker(memory)));
  const failed = workers.find((w): w is PromiseRejectedResult => w.status === 'rejected');
  if (failed) {
    for (const w of workers) if (w.status === 'fulfilled') void w.value.worker.terminate();
    throw new Error(`kernel pool: a worker did not start: ${(failed.reason as Error).message}`);
  }
  const pool = new NodeKernelPool(memory, workers.map((w) => (w as PromiseFulfilledResult<PoolWorker>).value));
  started = { memory, pool };
  setKernelPool(pool);
  return pool.threads;
}

/** Stops using the pool (its workers stay asleep; the kernels run on the calling thread), or uses it again. */
export function useKernelPool(on: boolean): void {
  setKernelPool(on && started ? started.pool : null);
}
