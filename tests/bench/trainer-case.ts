// One case of the trainer benchmark (trainer.bench.ts), in a process of its own: forward and training-step cost of
// MobileNetV2 on one backend, thread count, input size and batch; with `profile`, where the time of one training
// step goes, kernel by kernel (tf.profile). Prints one JSON line.
//
//   node --import tsx tests/bench/trainer-case.ts '<Case as JSON>'
//
// Training step: softmax cross-entropy, plain SGD, every layer trainable, through the trainer's own training
// forward (runGraphFrom: BatchNormalization in inference mode, frozen statistics, as the trainer fine-tunes), no
// dropout; PyTorch runs the same (torch_baseline.py: model.eval() with grads).
import * as tf from '@tensorflow/tfjs';
import { fileURLToPath } from 'node:url';
import { backendInfo, initBackend, wasmKernelThreads, type BackendName } from '../../trainer/src/runtime/backend.js';
import { wasmThreadCount } from '../../trainer/src/runtime/wasm-threads.js';
import { slicedTaskRuns } from '../../trainer/src/runtime/wasm/parallel.js';
import { accumulatedGradients, applyAccumulated, microBatchRanges } from '../../trainer/src/train/accumulate.js';
import { runGraphFrom } from '../../trainer/src/model/graph-run.js';
import { mobileNetV2 } from '../../trainer/src/model/mobilenet-v2.js';
import { matrixProductsLine } from '../../trainer/src/runtime/native-kernels.js';
import { nativeGemmInUse } from '../../trainer/src/runtime/wasm/shared.js';

export interface Case {
  backend: 'wasm' | 'cpu' | 'webgpu';
  /** wasm: the training kernels' threads (the native addon's where it is built, else the wasm build's). */
  threads?: number;
  alpha: number;
  size: number;
  batch: number;
  /** Micro-batch size for gradient accumulation (equal to batch: one pass). */
  micro: number;
  iters: number;
  /** Also profile one training step kernel by kernel. */
  profile?: boolean;
  /** wasm: 'wasm' leaves the native addon out where it is built (XNNPACK's products, the wasm kernels: the baseline). */
  kernels?: 'wasm';
}

export interface KernelShare {
  name: string;
  /** Calls in one training step. */
  count: number;
  /** Share of the step's time inside kernels. */
  share: number;
}

export interface Profile {
  /** The kernels, costliest first. */
  kernels: KernelShare[];
  /** Share of the (unprofiled) step's wall time spent outside kernels: the engine's bookkeeping, JS glue. */
  outside: number;
  /** Runs of the project's kernel tasks sliced across the kernel pool or the addon's threads during the profiled step. */
  sliced: Record<string, number>;
}

export interface Result {
  ok: boolean;
  error?: string;
  forwardMsPerImg?: number;
  trainMsPerImg?: number;
  rssMB?: number;
  heapMB?: number;
  /** The WebGPU adapter the case ran on. */
  adapter?: string;
  /** wasm: threads of XNNPACK's pool and of the project's kernel pool, and why the latter did not start. */
  threads?: number;
  kernelThreads?: number;
  kernelPoolError?: string;
  /** wasm: what computed the 1x1 convs' products (matrixProductsLine), 'XNNPACK's' without the addon. */
  products?: string;
  profile?: Profile;
}

function wasmHeapBytes(): number {
  const wasm = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm;
  return wasm?.HEAPU8?.buffer.byteLength ?? 0;
}

/** Kernel calls and their share of the time inside kernels, over one run of `f`. */
async function profileKernels(f: () => Promise<void>, stepMs: number): Promise<Profile> {
  const before = slicedTaskRuns();
  const info = await tf.profile(f);
  const byName = new Map<string, { count: number; ms: number }>();
  let total = 0;
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const e = byName.get(k.name) ?? { count: 0, ms: 0 };
    e.count++;
    e.ms += ms;
    byName.set(k.name, e);
    total += ms;
  }
  const kernels = [...byName].map(([name, e]) => ({ name, count: e.count, share: total > 0 ? e.ms / total : 0 })).sort((a, b) => b.share - a.share);
  const after = slicedTaskRuns();
  const sliced = Object.fromEntries(Object.entries(after).map(([t, n]) => [t, n - (before[t] ?? 0)]).filter(([, n]) => (n as number) > 0));
  return { kernels, outside: Math.max(0, 1 - total / stepMs), sliced };
}

/** The median of `values` (the mean of the middle two for an even count), as Python's statistics.median. */
export function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export async function runCase(c: Case): Promise<Result> {
  const backend = await initBackend(c.backend as BackendName, { threads: c.threads, native: c.kernels !== 'wasm' });
  if (backend !== c.backend) throw new Error(`backend ${c.backend} unavailable (got ${backend})`);
  if (backend === 'wasm' && (c.threads ?? 1) > 1 && wasmKernelThreads().threads !== c.threads) {
    throw new Error(`${c.threads} training threads unavailable (got ${wasmKernelThreads().threads})`);
  }
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
  // The median of n timed calls after a warm-up (operator creation, JIT, shader compilation), as
  // torch_baseline.py times PyTorch: one call slowed by the machine's neighbours moves a mean, not a median.
  const time = async (f: () => Promise<void>, n: number): Promise<number> => {
    await f();
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await f();
      times.push(performance.now() - t0);
    }
    return median(times) / c.batch;
  };
  const forwardMsPerImg = await time(forward, c.iters + 1);
  const trainMsPerImg = await time(trainStep, c.iters);
  const pool = backend === 'wasm' ? wasmKernelThreads() : null;
  return {
    ok: true,
    forwardMsPerImg,
    trainMsPerImg,
    rssMB: rss / 2 ** 20,
    heapMB: wasmHeapBytes() / 2 ** 20,
    adapter: backendInfo().adapter,
    ...(pool ? { threads: wasmThreadCount(), kernelThreads: pool.threads, kernelPoolError: pool.error } : {}),
    ...(pool ? { products: nativeGemmInUse() ? matrixProductsLine(pool.threads) : "XNNPACK's" } : {}),
    ...(c.profile ? { profile: await profileKernels(trainStep, trainMsPerImg * c.batch) } : {}),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    console.log(JSON.stringify(await runCase(JSON.parse(process.argv[2]) as Case)));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: String((e as Error).message ?? e).split('\n')[0] }));
  }
}
