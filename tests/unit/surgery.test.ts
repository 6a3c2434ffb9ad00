import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import { buildDependencyGraph } from '../../trainer/src/model/dependency.js';
import {
  applyPruning,
  countUnits,
  planZeroVariancePruning,
  pruneOutputUnits,
  restrictPlan,
  type PruningPlan,
} from '../../trainer/src/model/surgery.js';
import { measureUnitStats } from '../../trainer/src/train/variance.js';
import {
  chunks,
  maxAbsDiff,
  setChannel,
} from '../helpers/surgery-models.js';

before(async () => {
  await initBackend();
});

const removed = (plan: PruningPlan, tensor: string) => plan.removedChannels[tensor] ?? [];

test('pruneOutputUnits keeps exactly the selected fc2 columns, in order, and drops the layers after fc2', () => {
  const input = tf.input({ shape: [8, 8, 3], name: 'img' });
  let h = tf.layers.conv2d({ filters: 6, kernelSize: 3, activation: 'relu', name: 'conv' }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(h) as tf.SymbolicTensor;
  const fc2 = tf.layers.dense({ units: 10, activation: 'relu', name: 'fc2', biasInitializer: 'ones' }).apply(h) as tf.SymbolicTensor;
  const logits = tf.layers.dense({ units: 3, name: 'logits' }).apply(fc2) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: [fc2, logits] });
  const keep = [7, 2, 9, 4];
  const cut = pruneOutputUnits(model, 'fc2', keep);
  assert.equal(cut.outputs.length, 1);
  assert.deepEqual(cut.outputs[0].shape, [null, 4]);
  assert.ok(!cut.layers.some((l) => l.name === 'logits'));
  const x = tf.randomNormal([5, 8, 8, 3], 0, 1, 'float32', 2);
  const full = (model.predict(x) as tf.Tensor[])[0].arraySync() as number[][];
  const got = (cut.predict(x) as tf.Tensor).arraySync() as number[][];
  const want = full.map((row) => keep.map((k) => row[k]));
  assert.ok(maxAbsDiff(want, got) <= 1e-6, `max |diff| ${maxAbsDiff(want, got)}`);
  assert.ok(maxAbsDiff(want, full.map((row) => [0, 1, 2, 3].map((k) => row[k]))) > 1e-3, 'selection matters');
  assert.throws(() => pruneOutputUnits(model, 'fc2', [10]), /unit 10 is not in 0\.\.9/);
  assert.throws(() => pruneOutputUnits(model, 'conv', [0]), /not a Dense layer/);
  x.dispose();
});

test('the planner refuses layers it cannot reason about, naming them', () => {
  const input = tf.input({ shape: [8, 8, 3] });
  let h = tf.layers.conv2d({ filters: 4, kernelSize: 1, name: 'c1' }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.separableConv2d({ filters: 4, kernelSize: 3, name: 'sep' }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.flatten().apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 2 }).apply(h) as tf.SymbolicTensor });
  assert.throws(() => buildDependencyGraph(model), /layer 'sep' \(SeparableConv2D\)/);
  assert.throws(() => planZeroVariancePruning(model, { tensors: {} }), /layer 'sep' \(SeparableConv2D\)/);
  assert.throws(() => applyPruning(model, { removedChannels: {}, folds: {} } as unknown as PruningPlan), /layer 'sep'/);
  const dm = tf.sequential({
    layers: [tf.layers.depthwiseConv2d({ inputShape: [8, 8, 2], kernelSize: 3, depthMultiplier: 2, name: 'dw2' })],
  });
  assert.throws(() => buildDependencyGraph(dm), /layer 'dw2' \(DepthwiseConv2D\): depth multiplier 2/);
});

test('Concatenate offsets, Add ties, channel-preserving Reshape, Dense on 3-D, several outputs; saved and reloaded', async () => {
  const dense = (units: number, name: string, activation: 'relu' | 'linear' = 'relu') =>
    tf.layers.dense({ units, name, activation, kernelInitializer: tf.initializers.glorotUniform({ seed: name.length }) });
  const conv = (filters: number, k: number, name: string, activation: 'relu' | 'linear') =>
    tf.layers.conv2d({ filters, kernelSize: k, padding: 'same', name, activation, kernelInitializer: tf.initializers.heNormal({ seed: filters }) });
  const input = tf.input({ shape: [8, 8, 3], name: 'img' });
  const a = conv(4, 1, 'a', 'relu').apply(input) as tf.SymbolicTensor;
  const b = conv(5, 3, 'b', 'relu').apply(input) as tf.SymbolicTensor;
  const cat = tf.layers.concatenate({ name: 'cat' }).apply([a, b]) as tf.SymbolicTensor;
  const d = conv(9, 1, 'd', 'linear').apply(input) as tf.SymbolicTensor;
  let h = tf.layers.add({ name: 'sum' }).apply([cat, d]) as tf.SymbolicTensor;
  h = tf.layers.reLU({ name: 'r' }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.reshape({ targetShape: [16, 9], name: 'rs' }).apply(h) as tf.SymbolicTensor;
  h = dense(7, 'e').apply(h) as tf.SymbolicTensor;
  h = tf.layers.flatten({ name: 'flat' }).apply(h) as tf.SymbolicTensor;
  const fc2 = dense(6, 'fc2').apply(h) as tf.SymbolicTensor;
  const logits = dense(3, 'logits', 'linear').apply(fc2) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: [fc2, logits] });
  // cat channel 1 (a:1) + d:1 and cat channel 6 (b:2) + d:6 are constant sums after the Add.
  setChannel(model, 'a', 0, 1, 0);
  setChannel(model, 'a', 1, 1, -100);
  setChannel(model, 'd', 0, 1, 0);
  setChannel(model, 'd', 1, 1, 0.2);
  setChannel(model, 'b', 0, 2, 0);
  setChannel(model, 'b', 1, 2, 0.4);
  setChannel(model, 'd', 0, 6, 0);
  setChannel(model, 'd', 1, 6, 0.1);
  setChannel(model, 'e', 0, 3, 0);
  setChannel(model, 'e', 1, 3, -100);
  setChannel(model, 'fc2', 0, 0, 0);
  setChannel(model, 'fc2', 1, 0, 0.3); // constant, but a model output: never removed

  const dep = buildDependencyGraph(model);
  assert.equal(dep.groupOf('cat', 6), dep.groupOf('b', 2));
  assert.equal(dep.groupOf('cat', 6), dep.groupOf('d', 6));
  assert.equal(dep.groupOf('flat', 2 * 7 + 3), dep.groupOf('e', 3));
  assert.ok(dep.unitGroups[dep.groupOf('fc2', 0)].lockedBy.some((w) => /model output/.test(w)));

  const x = tf.randomNormal([24, 8, 8, 3], 0, 1, 'float32', 11) as tf.Tensor4D;
  const [train, other] = [x.slice([0], [16]) as tf.Tensor4D, x.slice([16], [8]) as tf.Tensor4D];
  const stats = await measureUnitStats(model, chunks(train, 8), undefined, { disposeBatches: true });
  const plan = planZeroVariancePruning(dep, stats);
  assert.ok(removed(plan, 'a').includes(1) && removed(plan, 'd').includes(1) && removed(plan, 'cat').includes(1));
  assert.ok(removed(plan, 'b').includes(2) && removed(plan, 'd').includes(6) && removed(plan, 'cat').includes(6));
  assert.ok(Math.abs(plan.folds['e'].find((f) => f.channel === 6)!.value - 0.5) < 1e-6);
  assert.deepEqual(removed(plan, 'flat').filter((i) => i % 7 === 3), Array.from({ length: 16 }, (_, p) => p * 7 + 3));
  assert.equal(removed(plan, 'fc2').length, 0);

  const planted = new Set([dep.groupOf('a', 1), dep.groupOf('b', 2), dep.groupOf('e', 3)]);
  const plantedPlan = restrictPlan(plan, (u) => planted.has(u.unitGroup));
  assert.equal(plantedPlan.units.length, 3);
  for (const [p, data] of [[plan, train], [plantedPlan, other]] as const) {
    const pruned = applyPruning(model, p);
    assert.equal(pruned.outputs.length, 2);
    assert.equal(pruned.getLayer('rs').outputShape[2], 9 - removed(p, 'rs').length);
    // Round trip through the serialised form, as a bundle would store it.
    let saved: tf.io.ModelArtifacts | undefined;
    await pruned.save(tf.io.withSaveHandler(async (art) => {
      saved = art;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    const reloaded = await tf.loadLayersModel(tf.io.fromMemory(saved!));
    const want = (model.predict(data) as tf.Tensor[]).map((t) => t.arraySync() as number[][]);
    const got = (reloaded.predict(data) as tf.Tensor[]).map((t) => t.arraySync() as number[][]);
    assert.ok(maxAbsDiff(want[0], got[0]) <= 1e-5 && maxAbsDiff(want[1], got[1]) <= 1e-5);
    [pruned, reloaded].forEach((m) => m.dispose());
  }
  tf.dispose([x, train, other]);
});

test('Sequential models are pruned into an equivalent functional model', async () => {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [6, 6, 2], filters: 4, kernelSize: 3, activation: 'relu', name: 'c', kernelInitializer: tf.initializers.heNormal({ seed: 1 }) }),
      tf.layers.flatten({ name: 'f' }),
      tf.layers.dense({ units: 5, activation: 'relu', name: 'fc2', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
      tf.layers.dense({ units: 2, name: 'logits', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
    ],
  });
  setChannel(model, 'c', 0, 2, 0);
  setChannel(model, 'c', 1, 2, 0.25);
  const x = tf.randomNormal([12, 6, 6, 2], 0, 1, 'float32', 4) as tf.Tensor4D;
  const stats = await measureUnitStats(model, [x]);
  const plan = restrictPlan(planZeroVariancePruning(model, stats), (u) => u.producers.includes('c'));
  assert.deepEqual(removed(plan, 'c'), [2]);
  assert.equal(plan.folds['fc2'].length, 16); // 4 x 4 positions of channel 2
  const pruned = applyPruning(model, plan);
  assert.equal(pruned.getLayer('c').outputShape[3], 3);
  const diff = maxAbsDiff((model.predict(x) as tf.Tensor).arraySync() as number[][], (pruned.predict(x) as tf.Tensor).arraySync() as number[][]);
  assert.ok(diff <= 1e-5, `max |diff| ${diff}`);
  x.dispose();
});

test('a layer keeps its last unit even when every unit is constant; a threshold admits near-constant units', async () => {
  const input = tf.input({ shape: [4] });
  const h = tf.layers.dense({ units: 3, activation: 'relu', name: 'h', kernelInitializer: 'zeros', biasInitializer: tf.initializers.constant({ value: 0.5 }) }).apply(input) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 2, name: 'out', kernelInitializer: tf.initializers.glorotUniform({ seed: 9 }) }).apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  const x = tf.randomNormal([10, 4], 0, 1, 'float32', 3);
  const stats = { samples: 10, tensors: { h: { count: 10, mean: new Float64Array([0.5, 0.5, 0.5]), m2: new Float64Array([0, 0, 1e-9]) } } };
  const strict = planZeroVariancePruning(model, stats);
  assert.deepEqual(removed(strict, 'h'), [0, 1]);
  assert.equal(strict.keptLastUnit, 0);
  // With the threshold all three units count as constant; the last one stays.
  const loose = planZeroVariancePruning(model, stats, { threshold: 1e-9 });
  assert.deepEqual(removed(loose, 'h'), [0, 1]);
  assert.equal(loose.keptLastUnit, 1);
  assert.ok(loose.kept.some((k) => k.reason === 'last-unit' && k.producers[0] === 'h'));
  const pruned = applyPruning(model, loose);
  assert.equal(countUnits(pruned), countUnits(model) - 2);
  const diff = maxAbsDiff((model.predict(x) as tf.Tensor).arraySync() as number[][], (pruned.predict(x) as tf.Tensor).arraySync() as number[][]);
  assert.ok(diff <= 1e-5, `max |diff| ${diff}`);
  // Statistics the planner needs must be there.
  assert.throws(() => planZeroVariancePruning(model, { tensors: {} }), /no statistics for tensor 'h'/);
  x.dispose();
});
