// The kernel pool (runtime/wasm-pool.ts) on the threaded wasm build: each of the project's sliced kernels gives the
// same bits with the pool as on the calling thread alone, and so does a training step of a small MobileNetV2 (its
// loss and every gradient); the step on the threaded build with the pool gives the same bits as on the
// single-threaded build. The pool's own kernels are checked on the wasm routines and XNNPACK's matrix products (the
// native addon would take their tasks). The same kernels and step then run on the addon (its OpenBLAS products and
// compiled tasks) on its 1 thread and its 2, which must give the same bits, on both builds; every compiled task must
// have been sliced across its threads. Each side runs in a fresh child process (the build is chosen once per
// process), which prints its results as JSON and must exit by itself (neither pool's workers may keep it alive).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend, wasmKernelThreads } from '../../trainer/src/runtime/backend.js';
import { useKernelPool } from '../../trainer/src/runtime/wasm-pool.js';
import { wasmThreadCount } from '../../trainer/src/runtime/wasm-threads.js';
import { columnSums } from '../../trainer/src/runtime/wasm/ColumnDot.js';
import { scaleChannels } from '../../trainer/src/runtime/wasm/ScaleChannels.js';
import { CLIP_GRAD } from '../../trainer/src/runtime/wasm/ClipByValueGrad.js';
import { batchNormRelu } from '../../trainer/src/runtime/wasm/BatchNormRelu.js';
import { BATCH_NORM_RELU_GRAD } from '../../trainer/src/runtime/wasm/BatchNormReluGrad.js';
import { runTask, slicedTaskRuns } from '../../trainer/src/runtime/wasm/parallel.js';
import { TASK_NAMES } from '../../trainer/src/runtime/wasm/tasks.js';
import { ADAM } from '../../trainer/src/runtime/wasm/Adam.js';
import { heapMemory, simdHeap } from '../../trainer/src/runtime/wasm/simd.js';
import { useNativeKernels, type WasmBackend } from '../../trainer/src/runtime/wasm/shared.js';
import { nativeKernels } from '../../trainer/src/runtime/native-kernels.js';
import { mobileNetV2 } from '../../trainer/src/model/mobilenet-v2.js';
import { runGraphFrom } from '../../trainer/src/model/graph-run.js';
import { values } from '../helpers/values.js';

const CHILD = 'ZEROVAR_KERNEL_POOL_CHILD';

/** sha256 of a tensor's float32 bytes: equal hashes, equal bits. */
function digest(t: tf.Tensor): string {
  const v = t.dataSync() as Float32Array;
  return createHash('sha256').update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)).digest('hex');
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const tensor = (shape: number[], seed: number) => tf.tensor(values(size(shape), seed), shape);
const run = (name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown> = {}) =>
  tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;

/** Per-channel BatchNorm statistics and parameters (variance > 0). */
const bnParams = (c: number) => ({
  mean: tensor([c], 33) as tf.Tensor1D,
  variance: tf.abs(tensor([c], 34)).add(0.5) as tf.Tensor1D,
  scale: tensor([c], 35).add(1) as tf.Tensor1D,
  offset: tensor([c], 36) as tf.Tensor1D,
  varianceEpsilon: 1e-3,
});

/** Each sliced kernel on shapes large enough to be sliced, named after what it covers. */
const KERNELS: Record<string, () => tf.Tensor> = {
  'conv filter 1x1, narrow input': () =>
    run('Conv2DBackpropFilter', { x: tensor([4, 32, 32, 8], 1), dy: tensor([4, 32, 32, 48], 2) }, { strides: 1, pad: 'same', filterShape: [1, 1, 8, 48] }),
  'conv filter 1x1, narrow output': () =>
    run('Conv2DBackpropFilter', { x: tensor([4, 32, 32, 48], 3), dy: tensor([4, 32, 32, 12], 4) }, { strides: 1, pad: 'valid', filterShape: [1, 1, 48, 12] }),
  'conv filter 3x3 stem': () =>
    run('Conv2DBackpropFilter', { x: tensor([4, 33, 33, 3], 5), dy: tensor([4, 16, 16, 16], 6) }, { strides: 2, pad: 'valid', filterShape: [3, 3, 3, 16] }),
  'depthwise filter, channels in fours': () =>
    run('DepthwiseConv2dNativeBackpropFilter', { x: tensor([4, 24, 24, 32], 7), dy: tensor([4, 24, 24, 32], 8) }, { strides: 1, pad: 'same', filterShape: [3, 3, 32, 1] }),
  'depthwise filter, odd channels, stride 2': () =>
    run('DepthwiseConv2dNativeBackpropFilter', { x: tensor([5, 25, 25, 21], 9), dy: tensor([5, 13, 13, 21], 10) }, { strides: 2, pad: 'same', filterShape: [3, 3, 21, 1] }),
  'depthwise conv, stride 2': () => tf.depthwiseConv2d(tensor([4, 25, 25, 32], 37) as tf.Tensor4D, tensor([3, 3, 32, 1], 38) as tf.Tensor4D, 2, 'same'),
  'depthwise input, stride 1': () =>
    run('DepthwiseConv2dNativeBackpropInput', { dy: tensor([4, 24, 24, 32], 11), filter: tensor([3, 3, 32, 1], 12) }, { strides: 1, pad: 'same', inputShape: [4, 24, 24, 32] }),
  'depthwise input, stride 2, odd rows': () =>
    run('DepthwiseConv2dNativeBackpropInput', { dy: tensor([3, 13, 12, 36], 13), filter: tensor([3, 3, 36, 1], 14) }, { strides: 2, pad: 'same', inputShape: [3, 25, 23, 36] }),
  'column sums': () => columnSums(tensor([4, 32, 32, 40], 15), 40),
  'column dot': () => columnSums(tensor([4, 32, 32, 24], 16), 24, tensor([4, 32, 32, 24], 17)),
  'batch norm': () =>
    tf.batchNorm(tensor([4, 32, 32, 24], 18), tensor([24], 19), tf.abs(tensor([24], 20)).add(0.5), tensor([24], 21), tensor([24], 22), 1e-3),
  'scale channels': () => scaleChannels(tensor([4, 32, 32, 24], 23), tensor([24], 24) as tf.Tensor1D),
  'zero padding, worth slicing': () => tf.pad(tensor([4, 65, 63, 24], 28), [[0, 0], [0, 1], [1, 1], [0, 0]]),
  'padding with a constant, channels too': () => tf.pad(tensor([3, 20, 21, 30], 29), [[1, 0], [2, 1], [0, 1], [1, 1]], 0.5),
  'batch norm + relu6': () => batchNormRelu(tensor([4, 32, 32, 24], 30).mul(4), bnParams(24), 6)!,
  'batch norm + relu6 gradient, several row blocks': () => {
    const p = bnParams(24);
    const inputs = { dy: tensor([4, 32, 32, 24], 31), x: tensor([4, 32, 32, 24], 32).mul(4), mean: p.mean, variance: p.variance, scale: p.scale, offset: p.offset };
    const outs = tf.engine().runKernel(BATCH_NORM_RELU_GRAD, inputs, { varianceEpsilon: p.varianceEpsilon, max: 6 }) as tf.Tensor[];
    return tf.concat(outs.map((t) => t.flatten()));
  },
  'adam update, several blocks': () => {
    const [value, m, v, g] = [40, 41, 42, 43].map((seed) => tensor([3, 100, 130], seed));
    const attrs = { beta1: 0.9, beta2: 0.999, epsilon: 1e-7, learningRate: 1e-2, oneMinusAccBeta1: Math.fround(1 - 0.9 ** 3), oneMinusAccBeta2: Math.fround(1 - 0.999 ** 3) };
    const outs = tf.engine().runKernel(ADAM, { value, m: tf.mul(m, 0.1), v: tf.abs(v), g }, attrs) as tf.Tensor[];
    return tf.concat(outs.map((t) => t.flatten()));
  },
  'clip mask, with a tail': () =>
    run(CLIP_GRAD, { x: tensor([3, 37, 41, 13], 25).mul(8), dy: tensor([3, 37, 41, 13], 26) }, { clipValueMin: 0, clipValueMax: 6 }),
};

/** Loss and gradients of one training step (the trainer's training forward, softmax cross-entropy). */
function trainingStep(): { loss: string; grads: string[] } {
  const model = mobileNetV2(0.35, 64);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const x = tensor([4, 64, 64, 3], 27);
  const labels = tf.oneHot(tf.tensor1d([0, 1, 1, 0], 'int32'), 2).toFloat();
  const { value, grads } = tf.variableGrads(() => {
    const [probs] = runGraphFrom([model.outputs[0]], new Map([[model.inputs[0].id, x]]), true);
    return tf.losses.softmaxCrossEntropy(labels, tf.log(tf.clipByValue(probs!, 1e-7, 1))) as tf.Scalar;
  }, vars);
  const out = { loss: digest(value), grads: vars.map((v) => digest(grads[v.name])) };
  tf.dispose([value, ...Object.values(grads), x, labels]);
  model.dispose();
  return out;
}

type Step = { loss: string; grads: string[] };

interface ChildResult {
  threads: number;
  kernelThreads: number;
  /** The heap's size when the pool started and at the end: the workers must follow its growth. */
  heapBytes: [number, number];
  /** What runTask threw for a slice that only a worker ran out of the heap (null: nothing thrown). */
  workerError: string | null;
  /** Kernel name -> [hash with the pool, hash without]. */
  kernels: Record<string, [string, string]>;
  step: { pool: { loss: string; grads: string[] }; alone: { loss: string; grads: string[] } };
  /** The native addon (null: not built): kernel name -> [hash on its 1 thread, on its 2], and the step on 1 and 2. */
  native: { kernels: Record<string, [string, string]>; step: [Step, Step]; sliced: Record<string, number>; tasks: string[] } | null;
  /** Runs sliced across the kernel pool (before the addon ran anything). */
  sliced: Record<string, number>;
}

/** A mask task whose second slice (a worker's, with 2 threads) lies past the end of the heap. */
function sliceOutOfTheHeap(): string | null {
  const heap = simdHeap(tf.backend() as unknown as WasmBackend)!;
  const quads = 8192;
  const at = heap.memory.buffer.byteLength - 16 * quads; // the first slice ends exactly at the heap's end
  try {
    runTask(heap, 'clipMaskQuads', [at, at, at, 0, 6], 2 * quads, 24 * quads);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

async function child(threads: number): Promise<ChildResult> {
  assert.equal(await initBackend('wasm', { threads, native: false }), 'wasm');
  const memory = heapMemory(tf.backend() as unknown as WasmBackend)!;
  const heapAtStart = memory.buffer.byteLength;
  const { addon } = nativeKernels();
  // The pool's own kernels run on the wasm routines and XNNPACK's products (the addon would take their tasks).
  useNativeKernels(null);
  const kernels: Record<string, [string, string]> = {};
  for (const [name, f] of Object.entries(KERNELS)) {
    const withPool = tf.tidy(() => digest(f()));
    useKernelPool(false);
    const alone = tf.tidy(() => digest(f()));
    useKernelPool(true);
    kernels[name] = [withPool, alone];
  }
  const pool = trainingStep();
  useKernelPool(false);
  const alone = trainingStep();
  useKernelPool(true);
  const heapBytes: [number, number] = [heapAtStart, memory.buffer.byteLength];
  const sliced = slicedTaskRuns();
  // The same kernels and step on the addon, on its 1 thread and its 2.
  let native: ChildResult['native'] = null;
  if (addon) {
    const onAddon = <T>(threads: number, f: () => T): T => {
      useNativeKernels(addon, threads);
      try {
        return f();
      } finally {
        useNativeKernels(null);
      }
    };
    const nativeKernelsHashes: Record<string, [string, string]> = {};
    for (const [name, f] of Object.entries(KERNELS)) nativeKernelsHashes[name] = [onAddon(1, () => tf.tidy(() => digest(f()))), onAddon(2, () => tf.tidy(() => digest(f())))];
    const step: [Step, Step] = [onAddon(1, trainingStep), onAddon(2, trainingStep)];
    const after = slicedTaskRuns();
    const nativeSliced = Object.fromEntries(Object.entries(after).map(([t, n]) => [t, n - (sliced[t] ?? 0)]).filter(([, n]) => (n as number) > 0));
    native = { kernels: nativeKernelsHashes, step, sliced: nativeSliced, tasks: addon.tasks() };
  }
  // Last: the slice past the heap may write over the heap's top.
  const workerError = threads > 1 ? sliceOutOfTheHeap() : null;
  return { threads: wasmThreadCount(), kernelThreads: wasmKernelThreads().threads, heapBytes, workerError, kernels, step: { pool, alone }, native, sliced };
}

function spawnChild(threads: number): ChildResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
    env: { ...process.env, [CHILD]: String(threads) },
    encoding: 'utf8',
    timeout: 240_000,
  });
  assert.equal(r.signal, null, `child with ${threads} threads did not exit by itself (${r.signal}): ${r.stderr}`);
  assert.equal(r.status, 0, `child with ${threads} threads failed: ${r.stderr}`);
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line, `child with ${threads} threads printed no result: ${r.stdout} ${r.stderr}`);
  return JSON.parse(line) as ChildResult;
}

const childThreads = Number(process.env[CHILD] ?? 0);
if (childThreads > 0) {
  console.log(JSON.stringify(await child(childThreads)));
} else {
  test('kernel pool: every sliced kernel and a training step give the same bits with 2 threads as with 1', () => {
    const two = spawnChild(2);
    assert.equal(two.threads, 2);
    assert.equal(two.kernelThreads, 2, 'the kernel pool did not start on the threaded build');
    assert.ok(two.heapBytes[1] > two.heapBytes[0], `the heap did not grow after the pool started (${two.heapBytes})`);
    assert.match(two.workerError ?? 'nothing thrown', /^kernel pool: clipMaskQuads: .*out of bounds/, "a worker's failure reaches the caller");
    for (const task of TASK_NAMES) {
      assert.ok((two.sliced[task] ?? 0) > 0, `${task} was never sliced across the pool (${JSON.stringify(two.sliced)})`);
    }
    for (const [name, [withPool, alone]] of Object.entries(two.kernels)) assert.equal(withPool, alone, `${name}: the pool changed the result`);
    assert.deepEqual(two.step.pool, two.step.alone, 'a training step with the pool differs from one on the calling thread alone');

    const one = spawnChild(1);
    assert.equal(one.threads, 1);
    assert.equal(one.kernelThreads, 1);
    assert.deepEqual(one.sliced, {}, 'the single-threaded build sliced a kernel');
    assert.deepEqual(one.step.pool, one.step.alone);
    for (const [name, [got]] of Object.entries(two.kernels)) assert.equal(got, one.kernels[name][0], `${name}: the threaded build differs from the single-threaded one`);
    assert.equal(two.step.pool.loss, one.step.pool.loss, 'the loss differs between 2 threads and 1');
    two.step.pool.grads.forEach((g, i) => assert.equal(g, one.step.pool.grads[i], `gradient ${i} differs between 2 threads and 1`));
    assert.ok(two.native && one.native, 'the native addon is not built: npm run build:native (it needs g++ and libopenblas-dev, which .ci/run installs)');
    for (const r of [one, two]) {
      for (const [name, [t1, t2]] of Object.entries(r.native!.kernels)) assert.equal(t2, t1, `${name}: the addon's 2 threads changed the result (${r.threads}-thread build)`);
      for (const task of r.native!.tasks) assert.ok((r.native!.sliced[task] ?? 0) > 0, `${task} was never sliced across the addon's threads (${JSON.stringify(r.native!.sliced)})`);
      assert.deepEqual(r.native!.step[1], r.native!.step[0], `on the addon, the step differs between its 2 threads and 1 (${r.threads}-thread build)`);
    }
    for (const [name, [got]] of Object.entries(two.native!.kernels)) assert.equal(got, one.native!.kernels[name][0], `${name}: on the addon, the threaded build differs from the single-threaded one`);
    assert.deepEqual(two.native!.step[0], one.native!.step[0], 'on the addon, the step differs between the two builds');
    assert.notDeepEqual(two.native!.step[0], two.step.pool, 'the step on the addon ran on the wasm kernels');
  });
}
