// Trainer benchmark: forward and full fine-tune training-step cost of MobileNetV2 (alpha 0.35 and 1.0, random
// init, 2 classes) on the tfjs backends (wasm with 1 and 2 threads, the pure-JS cpu backend, WebGPU where an adapter
// exists), against PyTorch on the CPU with the same architecture, input and batch. Every case runs in a fresh process, so peak memory is per case and an out-of-memory case cannot take
// the others down.
//
//   node --import tsx tests/bench/trainer.bench.ts [--quick] [--no-torch]
//
// Training step: softmax cross-entropy, plain SGD, every layer trainable, through the trainer's own training
// forward (runGraphFrom: BatchNormalization in inference mode, frozen statistics, as the trainer fine-tunes), no
// dropout; PyTorch runs the same (model.eval() with grads).
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { backendInfo, initBackend, type BackendName } from '../../trainer/src/runtime/backend.js';
import { mayHaveGpu } from '../../trainer/src/runtime/webgpu.js';
import { wasmThreadCount } from '../../trainer/src/runtime/wasm-threads.js';
import { accumulatedGradients, applyAccumulated, microBatchRanges } from '../../trainer/src/train/accumulate.js';
import { runGraphFrom } from '../../trainer/src/model/graph-run.js';
import { mobileNetV2 } from '../../trainer/src/model/mobilenet-v2.js';

const here = dirname(fileURLToPath(import.meta.url));

interface Case {
  backend: 'wasm' | 'cpu' | 'webgpu';
  /** wasm threads (1: the single-threaded build). */
  threads?: number;
  alpha: number;
  size: number;
  batch: number;
  /** Micro-batch size for gradient accumulation (equal to batch: one pass). */
  micro: number;
  iters: number;
}

interface Result {
  ok: boolean;
  error?: string;
  forwardMsPerImg?: number;
  trainMsPerImg?: number;
  rssMB?: number;
  heapMB?: number;
  /** The WebGPU adapter the case ran on. */
  adapter?: string;
}

// ---------------------------------------------------------------------------------------------------------------
// One case, in a child process

function wasmHeapBytes(): number {
  const wasm = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm;
  return wasm?.HEAPU8?.buffer.byteLength ?? 0;
}

async function runCase(c: Case): Promise<Result> {
  const backend = await initBackend(c.backend as BackendName, { threads: c.threads });
  if (backend !== c.backend) throw new Error(`backend ${c.backend} unavailable (got ${backend})`);
  if ((c.threads ?? 1) > 1 && wasmThreadCount() !== c.threads) throw new Error(`${c.threads} wasm threads unavailable (got ${wasmThreadCount()})`);
  const model = mobileNetV2(c.alpha, c.size);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const x = tf.randomUniform([c.batch, c.size, c.size, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: c.batch }, (_, i) => i % 2), 'int32'), 2).toFloat() as tf.Tensor2D;
  const optimizer = tf.train.sgd(1e-3);
  let rss = 0;
  const sample = () => {
    rss = Math.max(rss, process.memoryUsage().rss);
  };
  const micro = microBatchRanges(c.batch, c.micro).map(([s, e]) => ({
    size: e - s,
    x: c.micro === c.batch ? x : (tf.slice(x, s, e - s) as tf.Tensor4D),
    y: c.micro === c.batch ? labels : (tf.slice(labels, s, e - s) as tf.Tensor2D),
  }));
  const loss = (b: { x: tf.Tensor4D; y: tf.Tensor2D }) => {
    // The trainer's own forward for training (fineTune's): plain convs, BatchNorm in inference mode.
    const [probs] = runGraphFrom([model.outputs[0]], new Map([[model.inputs[0].id, b.x as tf.Tensor]]), true);
    const l = tf.losses.softmaxCrossEntropy(b.y, tf.log(tf.clipByValue(probs!, 1e-7, 1))) as tf.Scalar;
    sample(); // every activation kept for the backward pass is alive here
    return l;
  };
  // Reads go through data(): WebGPU in Node cannot read synchronously (on wasm and cpu it is the same).
  const trainStep = async () => {
    if (micro.length === 1) {
      const cost = optimizer.minimize(() => loss(micro[0]), true, vars)!;
      await cost.data();
      cost.dispose();
    } else {
      const { grads } = await accumulatedGradients(loss, vars, micro);
      applyAccumulated(optimizer, vars, grads);
    }
    await vars[0].data(); // wait for the update
    sample();
  };
  const forward = async () => {
    const y = model.predict(x, { batchSize: c.micro }) as tf.Tensor;
    await y.data();
    sample();
    y.dispose();
  };
  const time = async (f: () => Promise<void>, n: number): Promise<number> => {
    await f(); // warm-up: operator creation, JIT, shader compilation
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await f();
    return (performance.now() - t0) / n / c.batch;
  };
  const forwardMsPerImg = await time(forward, c.iters + 1);
  const trainMsPerImg = await time(trainStep, c.iters);
  return {
    ok: true,
    forwardMsPerImg,
    trainMsPerImg,
    rssMB: rss / 2 ** 20,
    heapMB: wasmHeapBytes() / 2 ** 20,
    adapter: backendInfo().adapter,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Driver

function spawnJson(cmd: string, args: string[], timeoutMs: number): Result {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 1 << 24 });
  const line = (r.stdout ?? '').split('\n').reverse().find((l) => l.startsWith('{'));
  if (line) return JSON.parse(line) as Result;
  const why = r.error ? String(r.error.message) : (r.stderr ?? '').trim().split('\n').filter(Boolean).slice(-2).join(' | ');
  const oom = /out of memory|Aborted|allocation failed|RangeError: WebAssembly/i.test(why) || r.signal === 'SIGKILL';
  return { ok: false, error: oom ? `out of memory (${why.slice(0, 120)})` : r.signal === 'SIGTERM' ? 'timed out' : why.slice(0, 200) };
}

function python(): string | null {
  for (const cmd of [process.env.ZEROVAR_PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean) as string[]) {
    const r = spawnSync(cmd, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
    if (r.status === 0) return cmd;
  }
  return null;
}

const fmt = (v: number | undefined, digits = 1) => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits));
const pad = (s: string, n: number) => s.padStart(n);

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const caseArg = args.indexOf('--case');
  if (caseArg >= 0) {
    const c = JSON.parse(args[caseArg + 1]) as Case;
    try {
      console.log(JSON.stringify(await runCase(c)));
    } catch (e) {
      console.log(JSON.stringify({ ok: false, error: String((e as Error).message ?? e).split('\n')[0] }));
    }
    return;
  }
  const quick = args.includes('--quick');
  const alphas = [0.35, 1.0];
  const sizes = quick ? [128] : [128, 224];
  const batches = quick ? [8] : [8, 32];
  const cases: Case[] = [];
  for (const alpha of alphas) {
    for (const size of sizes) {
      for (const batch of batches) {
        // Batch 32 at 224 px goes through 8-image micro-batches (same update, bounded wasm heap).
        const micro = size >= 224 && batch > 8 ? 8 : batch;
        cases.push({ backend: 'wasm', alpha, size, batch, micro, iters: batch >= 32 ? 1 : 2 });
      }
    }
  }
  // The threaded wasm build (XNNPACK pool over both cores), batch 8.
  cases.push(...cases.filter((c) => c.batch === 8).map((c) => ({ ...c, threads: 2 })));
  // The old baseline: the pure-JS cpu backend (where training used to fall back), one small case only.
  cases.push({ backend: 'cpu', alpha: 0.35, size: 128, batch: 8, micro: 8, iters: 1 });
  // WebGPU: every wasm case on a GPU; with only a software adapter (ZEROVAR_WEBGPU_SOFTWARE=1) the smallest case,
  // which exercises the path (shaders run on the CPU: slower than wasm).
  const software = process.env.ZEROVAR_WEBGPU_SOFTWARE === '1';
  const gpuNote = mayHaveGpu()
    ? null
    : `webgpu: no GPU device here${software ? '; the software adapter runs the smallest case' : ' (ZEROVAR_WEBGPU_SOFTWARE=1 runs the smallest case on a software adapter)'}`;
  if (!gpuNote) cases.push(...cases.filter((c) => c.backend === 'wasm' && !c.threads).map((c) => ({ ...c, backend: 'webgpu' as const })));
  else if (software) cases.push({ backend: 'webgpu', alpha: 0.35, size: 128, batch: 8, micro: 8, iters: 1 });

  const py = args.includes('--no-torch') ? null : python();
  if (!py && !args.includes('--no-torch')) {
    console.log('PyTorch baseline skipped: no python3 with torch + torchvision (Debian: apt-get install python3-torch python3-torchvision)');
  }
  console.log(`trainer benchmark: MobileNetV2, random init, 2 classes; training step = full fine-tune, plain SGD, BN frozen; ${py ? 'PyTorch CPU baseline with 2 threads' : 'no PyTorch baseline'}`);
  const head =
    'backend  alpha  px  batch  | fwd ms/img  train ms/img  train/fwd  peak RSS MB  wasm heap MB |' +
    ' torch fwd  torch train  torch t/f  torch RSS MB | tfjs/torch fwd  tfjs/torch train';
  if (gpuNote) console.log(gpuNote);
  console.log(head);
  console.log('-'.repeat(head.length));
  const self = fileURLToPath(import.meta.url);
  const torchCache = new Map<string, Result>();
  const adapters = new Set<string>();
  for (const c of cases) {
    const r = spawnJson(process.execPath, ['--import', 'tsx', self, '--case', JSON.stringify(c)], 300_000);
    const key = `${c.alpha}/${c.size}/${c.batch}`;
    let t: Result | undefined = torchCache.get(key);
    if (py && !t) {
      t = spawnJson(py, [join(here, 'torch_baseline.py'), '--alpha', String(c.alpha), '--size', String(c.size), '--batch', String(c.batch), '--iters', String(c.iters), '--threads', '2'], 300_000);
      torchCache.set(key, t);
    }
    const label = `${(c.threads && c.threads > 1 ? `${c.backend}x${c.threads}` : c.backend).padEnd(7)} ${pad(String(c.alpha), 5)} ${pad(String(c.size), 4)} ${pad(c.micro < c.batch ? `${c.batch}=${c.batch / c.micro}x${c.micro}` : String(c.batch), 6)}`;
    if (!r.ok) {
      console.log(`${label}  | ${r.error}`);
      continue;
    }
    if (r.adapter) adapters.add(r.adapter);
    const ratio = (a?: number, b?: number) => (a && b ? fmt(a / b, 2) : '-');
    console.log(
      `${label}  | ${pad(fmt(r.forwardMsPerImg), 10)} ${pad(fmt(r.trainMsPerImg), 13)} ${pad(ratio(r.trainMsPerImg, r.forwardMsPerImg), 10)} ` +
        `${pad(fmt(r.rssMB, 0), 12)} ${pad(fmt(r.heapMB, 0), 13)} | ` +
        (t?.ok
          ? `${pad(fmt(t.forwardMsPerImg), 9)} ${pad(fmt(t.trainMsPerImg), 12)} ${pad(ratio(t.trainMsPerImg, t.forwardMsPerImg), 10)} ${pad(fmt(t.rssMB, 0), 13)} | ` +
            `${pad(ratio(r.forwardMsPerImg, t.forwardMsPerImg), 14)} ${pad(ratio(r.trainMsPerImg, t.trainMsPerImg), 17)}`
          : `${pad(t ? `(${t.error})` : '-', 9)}`),
    );
  }
  for (const a of adapters) console.log(`webgpu adapter: ${a}`);
  console.log('ms/img: wall time per image of a batch. train/fwd: training step over forward pass (goal <= 4).');
  console.log('peak RSS: whole process; wasm heap: the backend heap (never shrinks, so its high-water mark: the activations a step keeps for its backward pass, at most one micro-batch of them).');
}

// Run only as a script.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
