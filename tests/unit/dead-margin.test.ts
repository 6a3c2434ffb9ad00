import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import { deadReluUnits, preActivationStats } from '../../trainer/src/train/dead-margin.js';
import { measureUnitStats } from '../../trainer/src/train/variance.js';
import { planZeroVariancePruning } from '../../trainer/src/model/surgery.js';

// Inputs in [0, 1]^2. Hidden pre-activations: h0 = x0 - 10 (dead, far below 0), h1 = x1 - 1.05 (dead, but only
// just), h2 = x0 + x1 (alive).
function model(): tf.LayersModel {
  const input = tf.input({ shape: [2] });
  const hidden = tf.layers.dense({ units: 3, activation: 'relu', name: 'fc1' }).apply(input) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 2, name: 'logits' }).apply(hidden) as tf.SymbolicTensor;
  const m = tf.model({ inputs: input, outputs: out });
  m.getLayer('fc1').setWeights([tf.tensor2d([[1, 0, 1], [0, 1, 1]]), tf.tensor1d([-10, -1.05, 0])]);
  m.getLayer('logits').setWeights([tf.tensor2d([[1, 2], [3, 4], [5, 6]]), tf.tensor1d([0, 0])]);
  return m;
}

function* batches(seed: number, n = 4): Generator<tf.Tensor2D> {
  for (let i = 0; i < n; i++) yield tf.randomUniform([16, 2], 0, 1, 'float32', seed + i) as tf.Tensor2D;
}

test('dead Dense ReLU neurons: the plan names both, the margin tells the robust one from the fragile one', async () => {
  await initBackend();
  const m = model();
  const stats = await measureUnitStats(m, batches(1) as Iterable<tf.Tensor4D>, undefined, { disposeBatches: true });
  const plan = planZeroVariancePruning(m, stats);
  const dead = deadReluUnits(m, plan.units);
  assert.deepEqual(dead.map((d) => `${d.layer}:${d.unit}`).sort(), ['fc1:0', 'fc1:1']);
  const margins = preActivationStats(m, batches(1), dead);
  const far = margins.get('fc1:0')!;
  const near = margins.get('fc1:1')!;
  // h0 = x0 - 10 on x0 ~ U(0, 1): max close to -9, sd close to 1/sqrt(12).
  assert.ok(far.max < -9 && far.max > -9.1, `max ${far.max}`);
  assert.ok(Math.abs(far.sd - 1 / Math.sqrt(12)) < 0.05, `sd ${far.sd}`);
  assert.ok(far.margin > 30);
  assert.ok(near.max < 0 && near.max > -0.1, `max ${near.max}`);
  assert.ok(near.margin < 1, `margin ${near.margin}`);
});

test('dead units after a conv + ReLU6: the margin is measured on the ReLU input over samples x height x width', async () => {
  await initBackend();
  // conv 1x1 with two filters: c0 = x - 10 (dead by far), c1 = x - 1.02 (dead only just), x in [0, 1].
  const input = tf.input({ shape: [4, 4, 1] });
  const conv = tf.layers.conv2d({ filters: 3, kernelSize: 1, name: 'conv' }).apply(input) as tf.SymbolicTensor;
  const act = tf.layers.reLU({ maxValue: 6, name: 'relu' }).apply(conv) as tf.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(act) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 2, name: 'logits' }).apply(pooled) as tf.SymbolicTensor;
  const m = tf.model({ inputs: input, outputs: out });
  m.getLayer('conv').setWeights([tf.tensor4d([1, 1, 1], [1, 1, 1, 3]), tf.tensor1d([-10, -1.02, 0])]);
  const images = () =>
    (function* () {
      for (let i = 0; i < 3; i++) yield tf.randomUniform([8, 4, 4, 1], 0, 1, 'float32', 10 + i) as tf.Tensor4D;
    })();
  const stats = await measureUnitStats(m, images(), undefined, { disposeBatches: true });
  const plan = planZeroVariancePruning(m, stats);
  const dead = deadReluUnits(m, plan.units);
  assert.deepEqual(dead.map((d) => `${d.layer}:${d.unit}`).sort(), ['relu:0', 'relu:1']);
  const margins = preActivationStats(m, images(), dead);
  assert.ok(margins.get('relu:0')!.margin > 30);
  assert.ok(margins.get('relu:1')!.margin < 1, `margin ${margins.get('relu:1')!.margin}`);
  assert.ok(margins.get('relu:1')!.max > -0.1 && margins.get('relu:1')!.max < 0);
});
