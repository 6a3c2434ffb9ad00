// One side of the --threads auto probe (threads-probe.ts), in a process of its own (the wasm build is chosen once
// per process): the wasm backend with the given threads, then warm-up and timed full fine-tune steps of MobileNetV2
// on random inputs (softmax cross-entropy, plain SGD, the trainer's training forward). Prints one JSON line:
// { ok, threads, wasmThreads, stepMs } (threads: the training kernels'; stepMs: each timed step), or { ok: false, error }.
import * as tf from '@tensorflow/tfjs';
import { initBackend, wasmKernelThreads } from '../runtime/backend.js';
import { wasmThreadCount } from '../runtime/wasm-threads.js';
import { runGraphFrom } from '../model/graph-run.js';
import { mobileNetV2 } from '../model/mobilenet-v2.js';

export interface ProbeCase {
  threads: number;
  alpha: number;
  size: number;
  batch: number;
  steps: number;
}

async function probe(c: ProbeCase): Promise<{ threads: number; wasmThreads: number; stepMs: number[] }> {
  if ((await initBackend('wasm', { threads: c.threads })) !== 'wasm') throw new Error('the wasm backend is unavailable');
  const model = mobileNetV2(c.alpha, c.size);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const x = tf.randomUniform([c.batch, c.size, c.size, 3], -1, 1, 'float32', 1);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: c.batch }, (_, i) => i % 2), 'int32'), 2).toFloat();
  const optimizer = tf.train.sgd(1e-3);
  const step = () => {
    const cost = optimizer.minimize(() => {
      const [probs] = runGraphFrom([model.outputs[0]], new Map([[model.inputs[0].id, x]]), true);
      return tf.losses.softmaxCrossEntropy(labels, tf.log(tf.clipByValue(probs!, 1e-7, 1))) as tf.Scalar;
    }, true, vars)!;
    cost.dataSync();
    cost.dispose();
  };
  // Warm-up: operators created, code compiled, the heap grown. The first timed steps after one warm-up step were
  // still up to twice the later ones' on two threads, enough to pick the wrong count.
  step();
  step();
  const stepMs: number[] = [];
  for (let i = 0; i < c.steps; i++) {
    const t0 = performance.now();
    step();
    stepMs.push(performance.now() - t0);
  }
  // The threads the training kernels ran on: the native addon's, else the wasm build's.
  return { threads: wasmKernelThreads().threads, wasmThreads: wasmThreadCount(), stepMs };
}

try {
  console.log(JSON.stringify({ ok: true, ...(await probe(JSON.parse(process.argv[2]) as ProbeCase)) }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String((e as Error).message ?? e).split('\n')[0] }));
}
