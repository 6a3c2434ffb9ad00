// Trainer benchmark: forward and full fine-tune training-step cost of MobileNetV2 (alpha 0.35 and 1.0, random
// init, 2 classes) on the tfjs backends (wasm with 1 and 2 threads of the native addon, and one thread of the wasm
// kernels alone as the baseline; the pure-JS cpu backend; WebGPU where an adapter exists), against PyTorch on the
// CPU with the same architecture, input and batch, with each row's ratio to PyTorch and the issue's goals. Each
// figure is the median of several steps after a warm-up, on both sides. Every case runs in a fresh process
// (trainer-case.ts), so peak memory is per case and an out-of-memory case cannot take the others down. The load
// average is printed at the start and the end, and each row says how much CPU other processes took while it ran:
// figures measured beside another job are marked and warned about, as they are not comparable with a quiet
// machine's.
//
// After the table, the matrix-multiply ceiling: one-thread GEMM throughput of tfjs wasm against PyTorch on the
// shapes MobileNetV2's pointwise convolutions take (gemm-case.ts, torch_gemm.py); then the fine-tune's Adam update
// against tfjs's (adam-case.ts).
//
//   npm run bench -- trainer [--quick] [--no-torch] [--profile]
//   --quick: 128 px, batch 8 only; --no-torch: skip the PyTorch baseline; --profile: where a batch-8 training
//   step's time goes, kernel by kernel (call counts and shares), on 1 and 2 threads.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { mayHaveGpu } from '../../trainer/src/runtime/webgpu.js';
import { matrixProductsLine, nativeKernels } from '../../trainer/src/runtime/native-kernels.js';
import type { Case, Result } from './trainer-case.js';
import type { GemmResult } from './gemm-case.js';
import type { AdamResult } from './adam-case.js';
import { BUSY_PER_CORE, cores, cpuSnapshot, loadAverage, loadBusy, loadLine, othersBusy, othersCores } from './machine-load.js';

const here = dirname(fileURLToPath(import.meta.url));

interface Measured {
  result: Result;
  /** Cores' worth of CPU other processes used meanwhile (null where /proc is not readable). */
  others: number | null;
}

function spawnJson(cmd: string, args: string[], timeoutMs: number): Measured {
  const before = cpuSnapshot();
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 1 << 24 });
  const after = cpuSnapshot();
  const others = before && after ? othersCores(before, after) : null;
  const line = (r.stdout ?? '').split('\n').reverse().find((l) => l.startsWith('{'));
  if (line) return { result: JSON.parse(line) as Result, others };
  const why = r.error ? String(r.error.message) : (r.stderr ?? '').trim().split('\n').filter(Boolean).slice(-2).join(' | ');
  const oom = /out of memory|Aborted|allocation failed|RangeError: WebAssembly/i.test(why) || r.signal === 'SIGKILL';
  return { result: { ok: false, error: oom ? `out of memory (${why.slice(0, 120)})` : r.signal === 'SIGTERM' ? 'timed out' : why.slice(0, 200) }, others };
}

function python(): string | null {
  for (const cmd of [process.env.ZEROVAR_PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean) as string[]) {
    const r = spawnSync(cmd, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
    if (r.status === 0) return cmd;
  }
  return null;
}

/**
 * The training goal against PyTorch (2 threads) for a configuration: within 1.5x at batch 8, at or below it at
 * the trainer's default (0.35, 224 px, batch 32); none elsewhere. train/fwd <= 4 holds everywhere.
 */
function trainGoal(c: Case): number | null {
  if (c.batch === 8) return 1.5;
  if (c.alpha === 0.35 && c.size === 224 && c.batch === 32) return 1;
  return null;
}
const TRAIN_OVER_FORWARD_GOAL = 4;

const fmt = (v: number | undefined, digits = 1) => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits));
const pad = (s: string, n: number) => s.padStart(n);
const ratio = (a?: number, b?: number) => (a && b ? a / b : undefined);

function buildCases(quick: boolean, profile: boolean): { cases: Case[]; gpuNote: string | null } {
  const sizes = quick ? [128] : [128, 224];
  const batches = quick ? [8] : [8, 32];
  const cases: Case[] = [];
  for (const alpha of [0.35, 1.0]) {
    for (const size of sizes) {
      for (const batch of batches) {
        // Batch 32 at 224 px goes through 8-image micro-batches (same update, bounded wasm heap).
        const micro = size >= 224 && batch > 8 ? 8 : batch;
        // One thread, then two: the native addon's where it is built, else the single-threaded and threaded builds.
        for (const threads of [1, 2]) cases.push({ backend: 'wasm', threads, alpha, size, batch, micro, iters: batch >= 32 ? 5 : 15, profile: profile && batch === 8 });
        // The baseline where the addon is built: one thread of the wasm kernels and XNNPACK's products (the browser's
        // kernels, and the trainer's before the addon).
        if (nativeKernels().addon) cases.push({ backend: 'wasm', threads: 1, alpha, size, batch, micro, iters: batch >= 32 ? 5 : 15, kernels: 'wasm' });
      }
    }
  }
  // The old baseline: the pure-JS cpu backend (where training used to fall back), one small case only.
  cases.push({ backend: 'cpu', alpha: 0.35, size: 128, batch: 8, micro: 8, iters: 1 });
  // WebGPU: every one-thread wasm case on a GPU; with only a software adapter (ZEROVAR_WEBGPU_SOFTWARE=1) the
  // smallest case, which exercises the path (shaders run on the CPU: slower than wasm).
  const software = process.env.ZEROVAR_WEBGPU_SOFTWARE === '1';
  const gpuNote = mayHaveGpu()
    ? null
    : `webgpu: no GPU device here${software ? '; the software adapter runs the smallest case' : ' (ZEROVAR_WEBGPU_SOFTWARE=1 runs the smallest case on a software adapter)'}`;
  if (!gpuNote) {
    cases.push(...cases.filter((c) => c.backend === 'wasm' && c.threads === 1).map((c) => ({ ...c, backend: 'webgpu' as const, threads: undefined, profile: false })));
  } else if (software) {
    cases.push({ backend: 'webgpu', alpha: 0.35, size: 128, batch: 8, micro: 8, iters: 1 });
  }
  return { cases, gpuNote };
}

function label(c: Case): string {
  const batch = c.micro < c.batch ? `${c.batch}=${c.batch / c.micro}x${c.micro}` : String(c.batch);
  const kernels = c.backend !== 'wasm' ? '' : c.kernels === 'wasm' || !nativeKernels().addon ? 'wasm' : 'nat';
  return `${c.backend.padEnd(7)} ${pad(c.threads ? String(c.threads) : '', 3)} ${pad(kernels, 4)} ${pad(String(c.alpha), 5)} ${pad(String(c.size), 4)} ${pad(batch, 6)}`;
}

/** The goal column of a wasm row: the training ratio against its target, and train/fwd against 4. */
function goalText(c: Case, r: Result, t: Result | undefined): string {
  if (c.backend !== 'wasm') return '';
  const parts: string[] = [];
  const target = trainGoal(c);
  const vsTorch = t?.ok ? ratio(r.trainMsPerImg, t.trainMsPerImg) : undefined;
  if (target !== null && vsTorch !== undefined) parts.push(vsTorch <= target ? `ok <=${target}` : `MISS >${target}`);
  const tf = ratio(r.trainMsPerImg, r.forwardMsPerImg);
  if (tf !== undefined && tf > TRAIN_OVER_FORWARD_GOAL) parts.push(`t/f>${TRAIN_OVER_FORWARD_GOAL}`);
  return parts.join(' ');
}

function printProfile(c: Case, r: Result): void {
  const p = r.profile;
  if (!p) return;
  const sliced = Object.entries(p.sliced).map(([t, n]) => `${t} ${n}`).join(', ') || 'none';
  console.log(`\nprofile: ${label(c).replace(/\s+/g, ' ').trim()}: ${(100 * p.outside).toFixed(0)}% of the step outside kernels; tasks sliced across the kernel pool: ${sliced}`);
  console.log(`  ${'kernel'.padEnd(40)} ${pad('calls', 6)} ${pad('share', 7)}`);
  for (const k of p.kernels.filter((k) => k.share >= 0.005)) console.log(`  ${k.name.padEnd(40)} ${pad(String(k.count), 6)} ${pad(`${(100 * k.share).toFixed(1)}%`, 7)}`);
}

/** The fine-tune's optimizer update against tfjs's Adam (adam-case.ts): the trainer's step beyond the SGD above. */
function printOptimizerUpdate(): void {
  const r = spawnJson(process.execPath, ['--import', 'tsx', join(here, 'adam-case.ts')], 300_000).result as unknown as AdamResult;
  if (!r.ok) {
    console.log(`\noptimizer update: ${r.error}`);
    return;
  }
  console.log(`\noptimizer update, Adam over MobileNetV2 0.35's ${r.variables} variables (${r.values} values), wasm, 1 thread, median of 9:`);
  console.log(`  tfjs's AdamOptimizer (the baseline, 14 kernel calls per variable): ${fmt(r.tfjsMs)} ms;`);
  console.log(`  the fine-tune's fused Adam (1 call per variable): ${r.fusedMs === undefined ? 'no addon here' : `${fmt(r.fusedMs)} ms on the native addon`}, ${fmt(r.fusedJsMs)} ms in JS (${fmt(ratio(r.tfjsMs, r.fusedMs ?? r.fusedJsMs), 1)}x faster).`);
  console.log('  The rows above train with plain SGD on both sides; the trainer fine-tunes with Adam, and the difference comes off each of its steps.');
}

/** A square product and MobileNetV2 1.0's pointwise convs at 224 px, batch 8 (rows = images x height x width). */
const GEMM_SHAPES: [number, number, number][] = [[1024, 1024, 1024], [25088, 24, 144], [25088, 144, 24], [6272, 192, 32], [1568, 64, 384], [392, 960, 160]];

/** One-thread GEMM throughput, tfjs wasm against PyTorch: the ceiling of what kernel work can reach. */
function printGemmCeiling(py: string | null): void {
  const arg = JSON.stringify(GEMM_SHAPES);
  const ours = spawnJson(process.execPath, ['--import', 'tsx', join(here, 'gemm-case.ts'), arg], 300_000).result as unknown as { ok: boolean; error?: string; results?: GemmResult[] };
  const theirs = py ? (spawnJson(py, [join(here, 'torch_gemm.py'), arg], 300_000).result as unknown as { ok: boolean; error?: string; results?: GemmResult[] }) : null;
  console.log('\nmatrix-multiply ceiling, 1 thread, float32 (m x k times k x n; the 1x1 convs of MobileNetV2 1.0 at 224 px, batch 8):');
  if (!ours.ok) {
    console.log(`  tfjs wasm: ${ours.error}`);
    return;
  }
  console.log(
    `  ${'m x k x n'.padEnd(18)} ${pad('XNNPACK GFLOP/s', 16)} ${pad('OpenBLAS', 9)} ${pad('on 2 thr', 9)} ${pad('PyTorch', 8)} ${pad('PyTorch / XNNPACK', 18)} ${pad('/ OpenBLAS', 11)}`,
  );
  for (const [i, r] of (ours.results ?? []).entries()) {
    const t = theirs?.ok ? theirs.results?.[i] : undefined;
    console.log(
      `  ${`${r.m} x ${r.k} x ${r.n}`.padEnd(18)} ${pad(fmt(r.gflops), 16)} ${pad(fmt(r.blasGflops), 9)} ${pad(fmt(r.blas2Gflops), 9)} ${pad(fmt(t?.gflops), 8)} ` +
        `${pad(fmt(ratio(t?.gflops, r.gflops), 2), 18)} ${pad(fmt(ratio(t?.gflops, r.blasGflops), 2), 11)}`,
    );
  }
  console.log("  OpenBLAS: the trainer's products where its addon is built (npm run build:native), on 1 thread and on 2.");
  if (!theirs) console.log('  (no PyTorch: no ratios)');
  else if (!theirs.ok) console.log(`  PyTorch: ${theirs.error}`);
  console.log("  Such products (the 1x1 convs' forward, input and filter gradients) are most of a wasm training step; where");
  console.log("  PyTorch multiplies k times faster per core, that part of the step stays k times slower however the project's");
  console.log('  other kernels are threaded.');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const { cases, gpuNote } = buildCases(args.includes('--quick'), args.includes('--profile'));
  const py = args.includes('--no-torch') ? null : python();
  const busyAtStart = loadBusy();
  console.log(`start: ${loadLine()}${busyAtStart ? `  WARNING: busy (above ${BUSY_PER_CORE} per core): the figures will not be comparable` : ''}`);
  if (!py) {
    console.log(
      args.includes('--no-torch')
        ? 'PyTorch baseline off (--no-torch): no ratios, goals unchecked'
        : 'PyTorch baseline absent: no python3 with torch + torchvision (Debian: apt-get install python3-torch python3-torchvision); no ratios, goals unchecked',
    );
  }
  console.log(`trainer benchmark: MobileNetV2, random init, 2 classes; training step = full fine-tune, plain SGD, BN frozen; ${py ? 'PyTorch CPU baseline with 2 threads' : 'no PyTorch baseline'}`);
  if (gpuNote) console.log(gpuNote);
  const head =
    'backend thr kern alpha   px  batch | fwd ms/img train ms/img train/fwd RSS MB heap MB |' +
    ' torch fwd torch train torch t/f torch RSS | fwd ratio train ratio goal         | load1 others';
  console.log(head);
  console.log('-'.repeat(head.length));
  const caseScript = join(here, 'trainer-case.ts');
  const torchCache = new Map<string, Measured>();
  const adapters = new Set<string>();
  const poolErrors = new Set<string>();
  const profiled: [Case, Result][] = [];
  let busyRows = 0;
  for (const c of cases) {
    const { result: r, others } = spawnJson(process.execPath, ['--import', 'tsx', caseScript, JSON.stringify(c)], 300_000);
    const key = `${c.alpha}/${c.size}/${c.batch}`;
    let torch = torchCache.get(key);
    if (py && !torch) {
      const torchArgs = ['--alpha', String(c.alpha), '--size', String(c.size), '--batch', String(c.batch), '--iters', String(c.iters), '--threads', '2'];
      torch = spawnJson(py, [join(here, 'torch_baseline.py'), ...torchArgs], 300_000);
      torchCache.set(key, torch);
    }
    const t = torch?.result;
    const busy = (others !== null && othersBusy(others)) || (torch?.others != null && othersBusy(torch.others));
    if (busy) busyRows++;
    const load = `${pad(loadAverage()[0].toFixed(2), 5)} ${pad(others === null ? '?' : others.toFixed(2), 6)}${busy ? ' BUSY' : ''}`;
    if (!r.ok) {
      console.log(`${label(c)} | ${r.error} | ${load}`);
      continue;
    }
    if (r.adapter) adapters.add(r.adapter);
    if (r.kernelPoolError) poolErrors.add(r.kernelPoolError);
    if (r.profile) profiled.push([c, r]);
    const torchCols = t?.ok
      ? `${pad(fmt(t.forwardMsPerImg), 9)} ${pad(fmt(t.trainMsPerImg), 11)} ${pad(fmt(ratio(t.trainMsPerImg, t.forwardMsPerImg), 2), 9)} ${pad(fmt(t.rssMB, 0), 9)}`
      : pad(t ? `(${t.error})` : 'no torch', 41);
    console.log(
      `${label(c)} | ${pad(fmt(r.forwardMsPerImg), 10)} ${pad(fmt(r.trainMsPerImg), 12)} ${pad(fmt(ratio(r.trainMsPerImg, r.forwardMsPerImg), 2), 9)} ` +
        `${pad(fmt(r.rssMB, 0), 6)} ${pad(fmt(r.heapMB, 0), 7)} | ${torchCols} | ` +
        `${pad(fmt(t?.ok ? ratio(r.forwardMsPerImg, t.forwardMsPerImg) : undefined, 2), 9)} ${pad(fmt(t?.ok ? ratio(r.trainMsPerImg, t.trainMsPerImg) : undefined, 2), 11)} ` +
        `${goalText(c, r, t).padEnd(12)} | ${load}`,
    );
  }
  for (const a of adapters) console.log(`webgpu adapter: ${a}`);
  for (const e of poolErrors) console.log(`kernel pool did not start (the project's kernels ran on one thread): ${e}`);
  console.log('ms/img: wall time per image of a batch, the median of 15 steps (5 at batch 32) after a warm-up, PyTorch timed the same. train/fwd: training step over forward pass (goal <= 4). ratio: tfjs over PyTorch.');
  console.log("thr: the training kernels' threads (nat: the addon's, the wasm build single-threaded; wasm: the wasm build's, 2 being the threaded build with the kernel pool).");
  console.log(`kern: nat, the native addon (${nativeKernels().addon ? matrixProductsLine(1).replace(/ on 1 thread$/, '') : 'not built here'} products, the kernels' tasks compiled); wasm, XNNPACK's products and the wasm kernels (the baseline).`);
  console.log('goal: training ratio within 1.5x of PyTorch at batch 8, at most 1x at 0.35 / 224 px / batch 32; t/f>4 where train/fwd exceeds 4.');
  console.log('RSS: whole process peak; heap: the wasm heap (never shrinks: the high-water mark of a step, at most one micro-batch of activations).');
  console.log(`load1: 1-minute load average after the row (counts the benchmark's own threads); others: cores' worth of CPU other processes took during it (BUSY above ${BUSY_PER_CORE} per core).`);
  for (const [c, r] of profiled) printProfile(c, r);
  printGemmCeiling(py);
  printOptimizerUpdate();
  const busyAtEnd = loadBusy();
  console.log(`\nend: ${loadLine()}`);
  if (busyAtStart || busyRows > 0) {
    const why = [busyAtStart ? 'busy at the start' : '', busyRows ? `${busyRows} of ${cases.length} rows measured beside other work` : ''].filter(Boolean).join('; ');
    console.log(`WARNING: the machine was busy (${why}; threshold ${BUSY_PER_CORE} per core of ${cores()}): these figures are not comparable with a quiet machine's. Rerun when nothing else runs.`);
  } else if (busyAtEnd) {
    console.log(`note: the load average is above ${BUSY_PER_CORE} per core at the end, but no row saw other processes take CPU: the benchmark's own cases raise it.`);
  }
}

await main();
