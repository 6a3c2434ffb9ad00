// The compression rules beyond the exact one, on tiny planted models: the relative variance threshold picks the
// planted low-variance units whatever the layer's scale, the removed unit's mean is folded (exact for a constant
// unit, a measured and bounded error for a near-constant one), 'auto' takes the largest threshold within 0.5 pt,
// the compact k rule the smallest k within 0.5 pt, and units with no outgoing weight left go after selection.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import {
  applyPruning,
  countUnits,
  planUnreferencedUnits,
  planZeroVariancePruning,
  pruneOutputUnits,
  removeUnreferencedUnits,
} from '../../trainer/src/model/surgery.js';
import { compactK } from '../../trainer/src/train/kselect.js';
import { chooseThreshold, measureSet, stageOneAllowance, outputDifference, pruneStep, type ThresholdPoint } from '../../trainer/src/train/prune-step.js';
import { selectStep } from '../../trainer/src/train/select-step.js';
import { imageSet } from './step-models.js';

before(async () => {
  await initBackend('cpu');
});

/**
 * 4x4 px images -> Flatten -> Dense 'fc1' (linear, 4 units; x_i = pixel_i / 127.5 - 1 reads flat input 3 i):
 * unit 0 = 2 (exactly constant), unit 1 = 1e-3 x_0 + 1 (near-constant), unit 2 = 0.3 x_1 (the label's pixel),
 * unit 3 = x_2, all times `scale` -> Dense 'fc2' = relu(fc1 + 5) unit by unit -> 'logits' = +-(3 x_1 + fc2 unit 1 - 6):
 * the class is the sign of x_1, as imageSet draws the labels, and the near-constant unit reaches the logits.
 */
function planted(scale = 1): tf.LayersModel {
  const input = tf.input({ shape: [4, 4, 3], name: 'input' });
  const flat = tf.layers.flatten({ name: 'flatten' }).apply(input) as tf.SymbolicTensor;
  const fc1 = tf.layers.dense({ units: 4, name: 'fc1' }).apply(flat) as tf.SymbolicTensor;
  const fc2 = tf.layers.dense({ units: 4, activation: 'relu', name: 'fc2' }).apply(fc1) as tf.SymbolicTensor;
  const logits = tf.layers.dense({ units: 2, name: 'logits' }).apply(fc2) as tf.SymbolicTensor;
  const out = tf.layers.activation({ activation: 'softmax', name: 'predictions' }).apply(logits) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  const k1 = new Float32Array(48 * 4);
  k1[0 * 4 + 1] = 1e-3 * scale;
  k1[3 * 4 + 2] = 0.3 * scale;
  k1[6 * 4 + 3] = scale;
  model.getLayer('fc1').setWeights([tf.tensor2d(k1, [48, 4]), tf.tensor1d([2 * scale, scale, 0, 0])]);
  const eye = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
  model.getLayer('fc2').setWeights([tf.tensor2d(eye), tf.tensor1d([5, 5, 5, 5])]);
  model.getLayer('logits').setWeights([tf.tensor2d([[0, 0], [1, -1], [-10, 10], [0, 0]]), tf.tensor1d([44, -44])]);
  return model;
}

const removedIn = (plan: { removedChannels: Record<string, number[]> }, t: string) => plan.removedChannels[t] ?? [];

test('a relative threshold picks the planted low-variance units, whatever the layer scale; 0 only the constant one', async () => {
  const set = imageSet(60, 1);
  for (const scale of [1, 100]) {
    const model = planted(scale);
    const stats = await measureSet(model, set, { protect: [] });
    assert.deepEqual(removedIn(planZeroVariancePruning(model, stats, { threshold: 0, scale: 'relative' }), 'fc1'), [0]);
    // Unit 1's variance is ~1e-6 of its layer's mean, unit 2's ~0.3, unit 3's ~3.7.
    assert.deepEqual(removedIn(planZeroVariancePruning(model, stats, { threshold: 1e-4, scale: 'relative' }), 'fc1'), [0, 1], `scale ${scale}`);
    assert.deepEqual(removedIn(planZeroVariancePruning(model, stats, { threshold: 0.5, scale: 'relative' }), 'fc1'), [0, 1, 2], `scale ${scale}`);
    // The same number as an absolute variance means something else once the layer is 100x larger.
    const absolute = removedIn(planZeroVariancePruning(model, stats, { threshold: 1e-4 }), 'fc1');
    assert.deepEqual(absolute, scale === 1 ? [0, 1] : [0]);
    model.dispose();
  }
});

test('the mean is folded: exact for a constant unit, a measured error bounded by the spread of a near-constant one', async () => {
  const model = planted();
  const train = imageSet(60, 1);
  const test = imageSet(30, 3);
  const stats = await measureSet(model, train, { protect: [] });
  const exact = planZeroVariancePruning(model, stats, { threshold: 0, scale: 'relative' });
  const approx = planZeroVariancePruning(model, stats, { threshold: 1e-4, scale: 'relative' });
  const kept = (plan: typeof exact) => [0, 1, 2, 3].filter((j) => !removedIn(plan, 'fc2').includes(j));
  const e = applyPruning(model, exact);
  const a = applyPruning(model, approx);
  const dExact = outputDifference(model, e, kept(exact), test);
  assert.ok(Math.max(dExact.features, dExact.logits) < 1e-5, JSON.stringify(dExact));
  // Unit 1 = 1e-3 x_0 + 1 with |x_0 - mean| <= 2 reaches the logits with weight 1: they move by at most 2e-3.
  const dApprox = outputDifference(model, a, kept(approx), test);
  const moved = Math.max(dApprox.features, dApprox.logits);
  assert.ok(moved > 1e-5 && moved <= 2e-3 + 1e-6, JSON.stringify(dApprox));
  [model, e, a].forEach((m) => m.dispose());

  // pruneStep reports the same error on validation and test for the threshold it applied.
  const m2 = planted();
  const r = await pruneStep(m2, { train, val: imageSet(30, 2), test }, { varianceThreshold: 1e-4, deadMargin: 0, protect: [] });
  assert.equal(r.result.varianceThreshold, 1e-4);
  assert.equal(r.result.thresholdRule, 'fixed');
  assert.ok(r.result.maxAbsDiffVal! > 1e-5 && r.result.maxAbsDiffVal! <= 2e-3 + 1e-6, `val ${r.result.maxAbsDiffVal}`);
  assert.ok(r.result.maxAbsDiff > 1e-5 && r.result.maxAbsDiff <= 2e-3 + 1e-6, `test ${r.result.maxAbsDiff}`);
  [m2, r.pruned].forEach((m) => m.dispose());
});

test('chooseThreshold: the largest threshold up to which accuracy stays within 0.5 pt of the unpruned, 0 when none', () => {
  const p = (threshold: number, valAccuracy: number): ThresholdPoint => ({ threshold, valAccuracy, unitsRemoved: 0, paramsRemoved: 0, paramsAfter: 0, maxAbsDiff: 0 });
  const points = [p(0.1, 0.9), p(0, 0.9), p(0.01, 0.9), p(0.02, 0.895), p(0.05, 0.88), p(0.2, 0.7)];
  assert.equal(chooseThreshold(points, 0.9), 0.02, 'exactly 0.5 pt below counts; the dip at 0.05 ends the search, 0.1 recovering or not');
  assert.equal(chooseThreshold(points, 0.9, 0.001), 0.01);
  assert.equal(chooseThreshold(points, 0.9, 0.5), 0.2);
  assert.equal(chooseThreshold([p(0, 0.9), p(0.01, 0.5)], 0.9), 0);
  assert.equal(chooseThreshold([], 0.9), 0);
  // With the head search after it, stage one may spend only half of the 0.5 pt: 0.895 is then too far below 0.9.
  assert.equal(stageOneAllowance(0.005, false), 0.005);
  assert.equal(stageOneAllowance(0.005, true), 0.0025);
  assert.equal(chooseThreshold(points, 0.9, stageOneAllowance(0.005, true)), 0.01);
});

test("pruneStep 'auto' sweeps once-measured statistics and keeps the largest threshold that costs no accuracy", async () => {
  const model = planted();
  const lines: string[] = [];
  const sets = { train: imageSet(60, 1), val: imageSet(40, 2), test: imageSet(30, 3) };
  const { pruned, result } = await pruneStep(model, sets, {
    varianceThreshold: 'auto',
    thresholds: [0, 1e-4, 0.5],
    deadMargin: 0,
    protect: [],
    log: (l) => lines.push(l),
  });
  const sweep = result.thresholdSweep!;
  assert.deepEqual(sweep.map((s) => s.threshold), [0, 1e-4, 0.5]);
  assert.equal(result.baselineValAccuracy, 1);
  assert.deepEqual(sweep.map((s) => s.valAccuracy).slice(0, 2), [1, 1]);
  assert.ok(sweep[2].valAccuracy < 0.9, 'folding the label unit to its mean loses the class');
  assert.ok(sweep[0].maxAbsDiff < 1e-5 && sweep[1].maxAbsDiff > 1e-5, JSON.stringify(sweep));
  assert.ok(sweep[0].paramsRemoved < sweep[1].paramsRemoved && sweep[1].paramsRemoved < sweep[2].paramsRemoved);
  assert.equal(result.varianceThreshold, 1e-4);
  assert.equal(result.thresholdRule, 'auto');
  assert.equal(result.paramsBefore - result.paramsAfter, sweep[1].paramsRemoved);
  assert.equal(result.valAccuracy, 1);
  assert.equal(result.testAccuracy, 1);
  assert.ok(lines.some((l) => /^variance threshold 0.0001 \(relative\)/.test(l)), lines.join('\n'));
  [model, pruned].forEach((m) => m.dispose());
});

test('compactK: the smallest k whose score is within 0.5 pt of the best', () => {
  const sweep = [{ k: 40, score: 0.925 }, { k: 20, score: 0.93 }, { k: 10, score: 0.9249 }, { k: 30, score: 0.928 }, { k: 5, score: 0.8 }];
  assert.equal(compactK(sweep), 20, 'k 40 is within too, but larger');
  assert.equal(compactK([...sweep, { k: 12, score: 0.9251 }]), 12);
  assert.equal(compactK(sweep, 0.006), 10);
  assert.equal(compactK(sweep, 0), 20);
  assert.throws(() => compactK([]), /empty/);
});

test('selectStep --k-rule compact deploys the compact k and reports both', async () => {
  const model = planted();
  const sets = { train: imageSet(60, 1), val: imageSet(40, 2), test: imageSet(30, 3) };
  const pr = await pruneStep(model, sets, { varianceThreshold: 0, deadMargin: 0, protect: [] });
  const opts = { protocol: 'validation' as const, classifier: 'logistic' as const, classes: ['A', 'B'], positiveClass: 'B', seed: 1 };
  const best = selectStep(pr.pruned, sets, { kept: pr.result.keptFeatures, total: 4 }, { ...opts, kRule: 'best' });
  const compact = selectStep(pr.pruned, sets, { kept: pr.result.keptFeatures, total: 4 }, { ...opts, kRule: 'compact' });
  assert.equal(best.result.k, best.result.kBest);
  assert.equal(compact.result.k, compact.result.kCompact);
  assert.equal(compact.result.kCompact, compactK(compact.result.sweep));
  assert.ok(compact.result.kCompact! <= compact.result.kBest!);
  assert.equal(compact.result.kRule, 'compact');
  assert.equal(compact.result.compressedUnits, countUnits(compact.compressed));
  [model, pr.pruned, best.compressed, compact.compressed].forEach((m) => m.dispose());
});

/**
 * input -> Flatten -> 'fc0' (3 units) -> 'fc1' (3) -> 'fc2' (2), dense, linear. fc1 unit 1 has no outgoing
 * weight at all; fc1 unit 2 feeds only fc2 unit 1, and fc0 unit 2 feeds only fc1 unit 2.
 */
function chain(): tf.LayersModel {
  const input = tf.input({ shape: [2, 2, 1], name: 'input' });
  let x = tf.layers.flatten({ name: 'flatten' }).apply(input) as tf.SymbolicTensor;
  for (const [name, units] of [['fc0', 3], ['fc1', 3], ['fc2', 2]] as const) x = tf.layers.dense({ units, name }).apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: x });
  model.getLayer('fc0').setWeights([tf.tensor2d([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1]]), tf.tensor1d([0.1, 0.2, 0.3])]);
  model.getLayer('fc1').setWeights([tf.tensor2d([[1, 2, 0], [3, 4, 0], [0, 0, 5]]), tf.tensor1d([0, 0, 1])]);
  model.getLayer('fc2').setWeights([tf.tensor2d([[1, 0], [0, 0], [0, 2]]), tf.tensor1d([0.5, -0.5])]);
  return model;
}

test('units left with no outgoing weight are removed, exactly, and the removal cascades after the cut', () => {
  const model = chain();
  const x = tf.randomUniform([5, 2, 2, 1], -1, 1, 'float32', 7);
  const plan = planUnreferencedUnits(model);
  assert.deepEqual(plan.removedChannels, { fc1: [1] });
  const lean = applyPruning(model, plan);
  const maxDiff = (a: tf.LayersModel, b: tf.LayersModel) => tf.max(tf.abs(tf.sub(a.predict(x) as tf.Tensor, b.predict(x) as tf.Tensor))).dataSync()[0];
  assert.ok(maxDiff(model, lean) < 1e-6);
  // Keep only fc2 unit 0: fc1 unit 2 then feeds nothing, and with it fc0 unit 2.
  const cut = pruneOutputUnits(model, 'fc2', [0]);
  const { model: compact, removed } = removeUnreferencedUnits(cut);
  assert.equal(removed, 3, 'fc1 units 1 and 2, then fc0 unit 2');
  assert.deepEqual((compact.getLayer('fc1').outputShape as number[])[1], 1);
  assert.deepEqual((compact.getLayer('fc0').outputShape as number[])[1], 2);
  assert.ok(maxDiff(cut, compact) < 1e-6);
  // Nothing left to remove: the model itself comes back.
  assert.equal(removeUnreferencedUnits(compact).model, compact);
  [model, lean, cut, compact, x].forEach((t) => t.dispose());
});
