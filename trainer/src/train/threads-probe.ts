// --threads auto: how many wasm threads this run trains fastest with, measured at the start. Each candidate (1,
// then 2, 4, ... up to the cores, at most 8) times a few full fine-tune steps of MobileNetV2 at the run's input
// size and micro-batch in a process of its own (threads-probe-child.ts; the wasm build is chosen once per
// process), one after the other so they do not compete. A count is kept only if its fastest step beats the best
// so far by PROBE_MARGIN: a tie goes to fewer threads, which leave more room to other work on the machine.
import { execFile } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { RuntimeProvenance, ThreadsProbe } from '../model/manifest.js';
import { wasmKernelThreads } from '../runtime/backend.js';
import { matrixProductsLine } from '../runtime/native-kernels.js';
import { wasmThreadCount } from '../runtime/wasm-threads.js';
import { nativeGemmInUse } from '../runtime/wasm/shared.js';
import type { ProbeCase } from './threads-probe-child.js';

export type { RuntimeProvenance, ThreadsProbe };

/** A thread count must be this much faster than the best so far to be kept. */
export const PROBE_MARGIN = 0.05;
const MAX_THREADS = 8;
const PROBE_TIMEOUT_MS = 300_000;

interface ChildAnswer {
  ok: boolean;
  error?: string;
  threads?: number;
  stepMs?: number[];
}

function runChild(c: ProbeCase): Promise<ChildAnswer> {
  const child = fileURLToPath(new URL('./threads-probe-child.ts', import.meta.url));
  // tsx by absolute URL: the CLI may run from any folder, where a bare 'tsx' would not resolve.
  const args = ['--import', import.meta.resolve('tsx'), child, JSON.stringify(c)];
  return new Promise((resolve) => {
    execFile(process.execPath, args, { encoding: 'utf8', timeout: PROBE_TIMEOUT_MS, maxBuffer: 1 << 20 }, (err, stdout) => {
      const line = stdout.split('\n').reverse().find((l) => l.startsWith('{'));
      resolve(line ? (JSON.parse(line) as ChildAnswer) : { ok: false, error: err ? err.message.split('\n')[0] : 'no answer' });
    });
  });
}

/** The thread counts to try on a machine with `cores` cores: 1, 2, 4, ... while within the cores (and 8). */
export function candidateThreads(cores: number): number[] {
  const out = [1];
  for (let n = 2; n <= Math.min(cores, MAX_THREADS); n *= 2) out.push(n);
  return out;
}

/**
 * The index of the count to keep: the first, then each later one only while it beats the best so far by the
 * margin (null: that count could not run; the search stops there).
 */
export function fastestIndex(counts: number[], fastestMs: (number | null)[]): number {
  let best = 0;
  for (let i = 1; i < counts.length; i++) {
    const ms = fastestMs[i];
    if (ms === null || !(ms < (1 - PROBE_MARGIN) * fastestMs[best]!)) break;
    best = i;
  }
  return best;
}

/**
 * Times candidate thread counts and returns the fastest. `alpha`, `size`, `batch`: the MobileNetV2 width, input
 * size and micro-batch timed; `log` hears each measurement. A machine with one core: 1, nothing timed.
 */
export async function probeThreads(o: { alpha: number; size: number; batch: number; steps?: number; cores?: number; log?: (line: string) => void }): Promise<ThreadsProbe> {
  const model = `MobileNetV2 ${o.alpha} at ${o.size} px, ${o.batch} images, full fine-tune steps`;
  const counts = candidateThreads(o.cores ?? os.availableParallelism?.() ?? os.cpus().length);
  const fastest: (number | null)[] = [];
  const stepMs: Record<string, number> = {};
  for (const threads of counts) {
    const r = await runChild({ threads, alpha: o.alpha, size: o.size, batch: o.batch, steps: o.steps ?? 5 });
    const ms = r.ok && r.threads === threads && r.stepMs?.length ? Math.min(...r.stepMs) : null;
    o.log?.(`threads probe: ${threads} thread${threads > 1 ? 's' : ''}: ${ms === null ? `unavailable (${r.error ?? `got ${r.threads} threads`})` : `${ms.toFixed(0)} ms per step`}`);
    fastest.push(ms);
    if (ms !== null) stepMs[threads] = ms;
    if (threads > 1 && fastestIndex(counts.slice(0, fastest.length), fastest) !== fastest.length - 1) break;
  }
  if (fastest[0] === null) return { model, stepMs, chosen: 1 };
  return { model, stepMs, chosen: counts[fastestIndex(counts.slice(0, fastest.length), fastest)] };
}

/** '1 thread 180 ms, 2 threads 120 ms per step of MobileNetV2 ...', for the log and the report. */
export function probeSummary(p: ThreadsProbe): string {
  const steps = Object.entries(p.stepMs).map(([n, ms]) => `${n} thread${n === '1' ? '' : 's'} ${ms.toFixed(0)} ms`);
  return `${steps.join(', ')} per step of ${p.model}`;
}

/**
 * The wasm threads a run uses for `--threads` (a count, or 'auto'), before its backend `backend` starts: a count
 * as given (1 by default); 'auto' on the cpu backend, 1; else `recorded` (an earlier measurement of this run)
 * or a new probe, which is returned too. The probe times MobileNetV2 0.35 at the run's input size and
 * micro-batch: the trainer's default backbone, and for the others a stand-in of the same input.
 */
export async function chooseThreads(
  threads: number | 'auto' | undefined,
  backend: string,
  o: { recorded?: ThreadsProbe; size: number; batch: number; log: (line: string) => void },
): Promise<{ threads: number; probe?: ThreadsProbe }> {
  if (threads !== 'auto') return { threads: threads ?? 1 };
  if (backend === 'cpu') return { threads: 1 };
  if (o.recorded) {
    o.log(`--threads auto: ${o.recorded.chosen}, as measured for training (${probeSummary(o.recorded)})`);
    return { threads: o.recorded.chosen };
  }
  const probe = await probeThreads({ alpha: 0.35, size: o.size, batch: o.batch, log: o.log });
  o.log(`--threads auto: ${probe.chosen} (${probeSummary(probe)})`);
  return { threads: probe.chosen, probe };
}

/** The backend and threads fine-tuning ran with (and what --threads auto measured), for the record. */
export function trainingRuntime(trainBackend: string, probe: ThreadsProbe | undefined): RuntimeProvenance {
  const wasm = trainBackend === 'wasm';
  return {
    backend: trainBackend,
    threads: wasm ? wasmThreadCount() : 1,
    kernelThreads: wasm ? wasmKernelThreads().threads : 1,
    ...(wasm && { nativeKernels: nativeGemmInUse(), matrixProducts: matrixProductsLine(wasmKernelThreads().threads) }),
    ...(probe ? { threadsProbe: probe } : {}),
  };
}
