import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import { accumulatedGradients, applyAccumulated, microBatchRanges } from '../../trainer/src/train/accumulate.js';

before(async () => {
  await initBackend();
});

/** A small conv net with BatchNorm (inference mode) and an L2 term, as the fine-tuning trains it. */
function smallNet(): tf.LayersModel {
  const input = tf.input({ shape: [9, 9, 3] });
  let h = tf.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization({}).apply(h) as tf.SymbolicTensor;
  h = tf.layers.reLU({ maxValue: 6 }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', depthwiseInitializer: tf.initializers.glorotUniform({ seed: 2 }) }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }), kernelRegularizer: tf.regularizers.l2({ l2: 0.01 }) }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

interface Batch {
  size: number;
  x: tf.Tensor4D;
  y: tf.Tensor2D;
}

function meanLoss(model: tf.LayersModel, b: Batch): tf.Scalar {
  const probs = model.apply(b.x, { training: false }) as tf.Tensor;
  const ce = tf.losses.softmaxCrossEntropy(b.y, tf.log(tf.clipByValue(probs, 1e-7, 1)));
  const reg = model.layers.flatMap((l) => l.calculateLosses());
  assert.equal(reg.length, 1, 'the dense layer contributes an L2 term');
  return tf.add(ce, tf.addN(reg)) as tf.Scalar;
}

function maxRelDiff(a: Float32Array | Int32Array | Uint8Array, b: typeof a): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / Math.max(m, 1e-12);
}

test('micro-batch ranges cover every sample once', () => {
  assert.deepEqual(microBatchRanges(12, 5), [[0, 5], [5, 10], [10, 12]]);
  assert.deepEqual(microBatchRanges(8, 8), [[0, 8]]);
  assert.throws(() => microBatchRanges(8, 0), /micro-batch size/);
});

test('accumulated micro-batch gradients equal the full-batch gradient, and so does the update', async () => {
  const model = smallNet();
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const n = 12;
  const x = tf.randomUniform([n, 9, 9, 3], -1, 1, 'float32', 7) as tf.Tensor4D;
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: n }, (_, i) => i % 3), 'int32'), 3).toFloat() as tf.Tensor2D;
  const full = tf.variableGrads(() => meanLoss(model, { size: n, x, y }), vars);
  const micro: Batch[] = microBatchRanges(n, 5).map(([s, e]) => ({ size: e - s, x: x.slice(s, e - s), y: y.slice(s, e - s) }));
  const acc = await accumulatedGradients((b) => meanLoss(model, b), vars, micro);

  assert.equal(acc.grads.length, vars.length);
  assert.ok(Math.abs(acc.loss - full.value.dataSync()[0]) <= 1e-5 * Math.abs(acc.loss), `loss ${acc.loss} vs ${full.value.dataSync()[0]}`);
  let anyNonZero = false;
  vars.forEach((v, i) => {
    const want = full.grads[v.name].dataSync();
    const got = acc.grads[i].dataSync();
    assert.deepEqual(acc.grads[i].shape, v.shape);
    anyNonZero ||= want.some((g) => g !== 0);
    assert.ok(maxRelDiff(got, want) <= 1e-4, `${v.name}: relative difference ${maxRelDiff(got, want)}`);
  });
  assert.ok(anyNonZero, 'the reference gradient is not trivially zero');
  // Unequal micro-batches weighted equally would differ: the weighting is what makes them agree.
  const unweighted = vars.map((v) => v.name).map((name) => tf.tidy(() =>
    tf.div(tf.addN(micro.map((b) => tf.variableGrads(() => meanLoss(model, b), vars).grads[name])), micro.length)));
  const lastConv = vars.findIndex((v) => v.shape.length === 4);
  assert.ok(maxRelDiff(unweighted[lastConv].dataSync(), full.grads[vars[lastConv].name].dataSync()) > 1e-3);
  tf.dispose(unweighted);

  // One SGD update from the accumulated gradients equals one from the full batch.
  const before = vars.map((v) => v.clone());
  const sgd = tf.train.sgd(0.1);
  sgd.applyGradients(full.grads);
  const afterFull = vars.map((v) => v.dataSync().slice());
  vars.forEach((v, i) => v.assign(before[i]));
  applyAccumulated(tf.train.sgd(0.1), vars, acc.grads);
  vars.forEach((v, i) => assert.ok(maxRelDiff(v.dataSync(), afterFull[i]) <= 1e-5, `${v.name} after the update`));
  tf.dispose([x, y, full.value, ...Object.values(full.grads), ...before, ...micro.flatMap((b) => [b.x, b.y])]);
  model.dispose();
});

test('accumulation keeps memory flat: no tensors left behind but the returned gradients', async () => {
  const model = smallNet();
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const batches: Batch[] = [4, 4, 4].map((size, k) => ({
    size,
    x: tf.randomUniform([size, 9, 9, 3], -1, 1, 'float32', k) as tf.Tensor4D,
    y: tf.oneHot(tf.tensor1d([0, 1, 2, 0], 'int32'), 3).toFloat() as tf.Tensor2D,
  }));
  const before = tf.memory().numTensors;
  const { grads } = await accumulatedGradients((b) => meanLoss(model, b), vars, batches);
  assert.equal(tf.memory().numTensors - before, vars.length);
  tf.dispose([...grads, ...batches.flatMap((b) => [b.x, b.y])]);
  await assert.rejects(accumulatedGradients((b) => meanLoss(model, b), vars, []), /no micro-batches/);
  model.dispose();
});
