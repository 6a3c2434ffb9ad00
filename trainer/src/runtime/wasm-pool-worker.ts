// A kernel pool worker (wasm-pool.ts): binds the SIMD module to the threaded build's shared heap, says so, then
// waits on its control block for task slices and runs each (tasks.ts) until the process ends. It never returns to
// its event loop after that, so it needs no messages: the handshake is Atomics on the control block.
import { parentPort } from 'node:worker_threads';
import { bindSimd } from './wasm/simd.js';
import { TASKS, TASK_NAMES } from './wasm/tasks.js';
import { controlViews, DONE, FIRST_PARAM, HEAP_BYTES, HI, LO, REQ, STATUS, TASK, writeError, type PoolWorkerData } from './wasm-pool-protocol.js';

export function serve({ memory, control }: PoolWorkerData): void {
  const c = controlViews(control);
  const fns = bindSimd(memory);
  if (!fns) {
    parentPort!.postMessage({ ok: false, error: 'the SIMD module does not bind to the shared heap in a worker' });
    return;
  }
  // Read before saying ready: the caller may post its first slice the moment it hears, and a request counted
  // before this read would then be taken as already seen, leaving both threads waiting on each other.
  let seen = Atomics.load(c.words, REQ);
  parentPort!.postMessage({ ok: true });
  const heap = { simd: fns, memory };
  const params = c.slots.subarray(FIRST_PARAM);
  for (;;) {
    Atomics.wait(c.words, REQ, seen);
    const req = Atomics.load(c.words, REQ);
    if (req === seen) continue;
    seen = req;
    try {
      // The heap may have grown since this thread last looked; a view shorter than the caller's would drop writes.
      if (memory.buffer.byteLength < c.slots[HEAP_BYTES]) throw new Error(`the heap is ${memory.buffer.byteLength} bytes here, ${c.slots[HEAP_BYTES]} on the calling thread`);
      TASKS[TASK_NAMES[c.words[TASK]]](heap, params, c.slots[LO], c.slots[HI]);
      c.words[STATUS] = 0;
    } catch (e) {
      writeError(c, `${TASK_NAMES[c.words[TASK]] ?? `task ${c.words[TASK]}`}: ${(e as Error).message ?? String(e)}`);
      c.words[STATUS] = 1;
    }
    Atomics.store(c.words, DONE, req);
    Atomics.notify(c.words, DONE);
  }
}
