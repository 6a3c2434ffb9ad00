// Lets tfjs's wasm backend use its threaded-SIMD build (emscripten pthreads on worker_threads, XNNPACK thread
// pool) under Node. tfjs ships the build but never picks it in Node, and its loader is written for browsers:
//   - the flag WASM_HAS_MULTITHREAD_SUPPORT is hard-wired to false when IS_NODE;
//   - each pthread worker is started from a blob: URL, which Node's Worker cannot open, and is then told to
//     import its main script from a Blob, which the worker's Node path can only read from a file;
//   - the thread count is capped at (logical cores / 2), so a 2-core machine would get 1 thread.
// prepareWasmThreads() works around each of these, before the backend is created:
//   - sets the flag and the requested thread count;
//   - installs a Worker class that starts the package's own worker script (wasm-out/…worker.js, as eval'd code)
//     and points its 'load' message at the package's own glue file (wasm-out/…threaded-simd.js, the same build
//     as the .wasm the backend loads) instead of the Blob;
//   - makes os.cpus() report twice the requested threads, once, for the backend's core count.
// The workers stay unref'd (the backend's XNNPACK pool calls are synchronous on the main thread), so a process
// that used threads still exits by itself when its work is done.
import * as tf from '@tensorflow/tfjs';
import { getThreadsCount, setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { Worker as NodeWorker, type TransferListItem, type WorkerOptions } from 'node:worker_threads';

const FLAG = 'WASM_HAS_MULTITHREAD_SUPPORT';
/** The backend's own cap (it pre-creates this many pthread workers). */
const MAX_THREADS = 8;

let requested = 0;
let workersStarted = 0;

interface BuildFiles {
  /** The emscripten glue of the threaded-SIMD build; a pthread worker evaluates it at load. */
  glue: string;
  /** The pthread worker's script, as text. */
  workerScript: string;
}

/** The threaded build's files inside the installed tfjs-backend-wasm, or null when this version lacks them. */
function buildFiles(): BuildFiles | null {
  const require = createRequire(import.meta.url);
  let dir: string;
  try {
    dir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  } catch {
    return null;
  }
  const glue = join(dir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.js');
  const worker = join(dir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.worker.js');
  if (!existsSync(glue) || !existsSync(worker) || !existsSync(join(dir, 'dist', 'tfjs-backend-wasm-threaded-simd.wasm'))) {
    return null;
  }
  const text = (require(worker) as { wasmWorkerContents?: unknown }).wasmWorkerContents;
  if (typeof text !== 'string') return null;
  // The script is kept as a JS string with real newlines inside its string literals; escape them as tfjs does.
  return { glue, workerScript: text.replace(/\n/g, '\\n') };
}

/** Shared wasm memory and atomics: what the threaded build needs from the engine. */
function engineHasWasmThreads(): boolean {
  try {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return memory.buffer instanceof SharedArrayBuffer && typeof Atomics.wait === 'function';
  } catch {
    return false;
  }
}

function installWorkerClass(files: BuildFiles): void {
  class PthreadWorker extends NodeWorker {
    constructor(_url: unknown, _options?: WorkerOptions) {
      super(files.workerScript, { eval: true, execArgv: [] });
      workersStarted++; // ref'd until loaded (emscripten unrefs it then), so startup keeps the process alive
    }

    override postMessage(message: unknown, transfer?: readonly TransferListItem[]): void {
      const m = message as { cmd?: string; urlOrBlob?: unknown } | null;
      if (m && m.cmd === 'load' && typeof m.urlOrBlob !== 'string') message = { ...m, urlOrBlob: files.glue };
      if (m && m.cmd === 'run') restoreCpus(); // the pool is being created: the core count has been read
      super.postMessage(message, transfer);
    }

    // emscripten refs a worker while its pthread runs; the pool's threads never end, which would keep the
    // process alive forever. The main thread waits for them synchronously, so they need no ref of their own.
    override ref(): void {}
  }
  // emscripten assigns the global Worker to worker_threads' class when it starts, then constructs pthread
  // workers through it: keep ours in place.
  Object.defineProperty(globalThis, 'Worker', {
    configurable: true,
    get: () => PthreadWorker,
    set: () => {},
  });
}

const realCpus = os.cpus;

function restoreCpus(): void {
  os.cpus = realCpus;
}

/**
 * os.cpus() padded to `count` entries for its next call only (the backend reads it once, at startup, and takes
 * half); restored at the latest when the backend starts its first pthread.
 */
function reportCoresOnce(count: number): void {
  os.cpus = function cpus(): os.CpuInfo[] {
    restoreCpus();
    const list = realCpus();
    while (list.length > 0 && list.length < count) list.push(list[list.length - 1]);
    return list;
  };
}

/** Whether tfjs has already created its wasm backend (too late to choose the build then). */
function wasmBackendCreated(): boolean {
  try {
    return tf.engine().registry.wasm != null;
  } catch {
    return false;
  }
}

/**
 * Call before `tf.setBackend('wasm')`. Prepares the threaded-SIMD build with `threads` threads (the calling
 * thread included; at most 8) and returns whether it will be used. threads <= 1, an engine without shared wasm
 * memory or SIMD, or a backend package without the threaded build: false, and the single-threaded build loads.
 * Once the wasm backend exists nothing changes: the answer is whether it was created threaded.
 */
export async function prepareWasmThreads(threads: number): Promise<boolean> {
  if (wasmBackendCreated()) return requested > 1 && workersStarted > 0;
  const n = Math.min(MAX_THREADS, Math.floor(threads));
  const files = n > 1 && engineHasWasmThreads() && (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) ? buildFiles() : null;
  if (!files) {
    tf.env().set(FLAG, false);
    requested = 1;
    return false;
  }
  if (requested <= 1) installWorkerClass(files);
  requested = n;
  tf.env().set(FLAG, true);
  setThreadsCount(n);
  reportCoresOnce(2 * n);
  return true;
}

/** Threads in the backend's XNNPACK pool (1 for the single-threaded build). Throws before the backend exists. */
export function wasmThreadCount(): number {
  return getThreadsCount();
}
