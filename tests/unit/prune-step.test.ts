// The prune step's rules on a tiny classifier (step-models.ts): what the plan removes, what validation and the
// dead-margin check put back, and the verification that catches a pruned model whose outputs moved.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import { planZeroVariancePruning, type PlannedUnit } from '../../trainer/src/model/surgery.js';
import {
  applyPlan,
  clearsDeadMargin,
  confirmOnValidation,
  holdsOn,
  keptIndices,
  measureDeadMargins,
  measureSet,
  pruneStep,
  removedPerLayer,
  restrictToDeadMargin,
  verifyPruning,
} from '../../trainer/src/train/prune-step.js';
import { searchHeadThreshold } from '../../trainer/src/train/head-prune.js';
import { imageSet, tinyClassifier } from './step-models.js';

before(async () => {
  await initBackend('cpu');
});

const fc2Units = (plan: { units: PlannedUnit[] }) =>
  plan.units.flatMap((u) => u.members.filter((m) => m.tensor === 'fc2').map((m) => m.channel)).sort();

function unit(constants: PlannedUnit['constants']): PlannedUnit {
  return { unitGroup: 0, groupSet: 0, producers: ['fc2'], members: [{ tensor: 'fc2', channel: 0 }] as PlannedUnit['members'], constants, folds: [] };
}

test('holdsOn: a removal holds only where every folded constant is still constant, with the same value', () => {
  const stats = (mean: number, m2: number) => ({ tensors: { t: { count: 4, mean: [mean], m2: [m2] } } });
  const zero = unit([{ tensor: 't', channel: 0, value: 0 }]);
  assert.equal(holdsOn(stats(0, 0), 0)(zero), true);
  assert.equal(holdsOn(stats(0.5, 0), 0)(zero), false, 'constant, but another value');
  assert.equal(holdsOn(stats(0, 0.4), 0)(zero), false, 'variance 0.1 over a threshold of 0');
  assert.equal(holdsOn(stats(0, 0.4), 0.2)(zero), true, 'variance 0.1 within a threshold of 0.2');
  const big = unit([{ tensor: 't', channel: 0, value: 1e6 }]);
  assert.equal(holdsOn(stats(1e6 + 0.5, 0), 0)(big), true, 'values compare to 1e-6 relative');
  assert.equal(holdsOn(stats(1e6 + 5, 0), 0)(big), false);
});

test('units dead on the training split but not constant on validation are kept', async () => {
  const model = tinyClassifier();
  const protect: string[] = [];
  const train = await measureSet(model, imageSet(40, 1, 127), { protect });
  const planned = planZeroVariancePruning(model, train, { threshold: 0, protect });
  assert.deepEqual(fc2Units(planned), [0, 1], 'units 0 and 1 never fire while pixel 0 stays <= 127');
  const names = Object.keys(train.tensors);
  const sameRange = await measureSet(model, imageSet(20, 2, 127), { names, protect });
  assert.equal(confirmOnValidation(planned, sameRange, 0).unconfirmed, 0);
  const wider = await measureSet(model, imageSet(20, 2), { names, protect });
  const { plan, unconfirmed } = confirmOnValidation(planned, wider, 0);
  assert.equal(unconfirmed, 1);
  assert.deepEqual(fc2Units(plan), [0], 'unit 1 fires on validation images: kept');
  model.dispose();
});

test('dead-margin filtering: a dead unit whose pre-activation came close to 0 is kept; margin 0 keeps the plan', async () => {
  const model = tinyClassifier();
  const set = imageSet(40, 1, 127);
  const stats = await measureSet(model, set, { protect: [] });
  const plan = planZeroVariancePruning(model, stats, { threshold: 0, protect: [] });
  const margins = measureDeadMargins(model, plan, set.batches(32));
  // Unit 0's pre-activation is the constant -100 (sd 0: infinitely far), unit 1's largest is just below 0.
  assert.equal(margins.get('fc2:0')?.margin, Infinity);
  const thin = margins.get('fc2:1')?.margin ?? NaN;
  assert.ok(thin >= 0 && thin < 0.1, `margin ${thin}`);
  const kept = restrictToDeadMargin(model, plan, margins, 1);
  assert.equal(kept.thinMargin, 1);
  assert.deepEqual(fc2Units(kept.plan), [0]);
  const plain = restrictToDeadMargin(model, plan, new Map(), 0);
  assert.equal(plain.thinMargin, 0);
  assert.deepEqual(fc2Units(plain.plan), [0, 1]);
  // A unit without a measured margin is not held back.
  assert.ok(plan.units.every(clearsDeadMargin(model, new Map(), 1)));
  model.dispose();
});

test('applyPlan: kept features and removals per layer', async () => {
  assert.deepEqual(keptIndices(5, [1, 3]), [0, 2, 4]);
  assert.deepEqual(keptIndices(3), [0, 1, 2]);
  const layers = [
    { name: 'a', type: 'Dense', unitsBefore: 4, unitsAfter: 4 },
    { name: 'b', type: 'Dense', unitsBefore: 4, unitsAfter: 1 },
  ];
  assert.deepEqual(removedPerLayer({ unitsBefore: 8, unitsAfter: 5, paramsBefore: 0, paramsAfter: 0, keptForPadding: 0, keptProtected: 0, keptLastUnit: 0, layers }), { b: 3 });
  const model = tinyClassifier();
  const set = imageSet(40, 1, 127);
  const plan = planZeroVariancePruning(model, await measureSet(model, set, { protect: [] }), { threshold: 0, protect: [] });
  const applied = applyPlan(model, plan, 'fc2');
  assert.deepEqual(applied.keptFeatures, [2, 3]);
  assert.deepEqual(applied.removedPerLayer, { fc2: 2 });
  assert.equal((applied.pruned.getLayer('fc2').outputShape as number[])[1], 2);
  [model, applied.pruned].forEach((m) => m.dispose());
});

test('verifyPruning: exact where the plan holds, and it fails when the pruned outputs differ', async () => {
  const model = tinyClassifier();
  const train = imageSet(40, 1, 127);
  const test = imageSet(20, 3);
  const plan = planZeroVariancePruning(model, await measureSet(model, train, { protect: [] }), { threshold: 0, protect: [] });
  // Removing unit 1 holds on the training images only: on test images it fires, and the logits move.
  const { pruned, keptFeatures } = applyPlan(model, plan, 'fc2');
  const v = verifyPruning(model, pruned, keptFeatures, { train, test });
  assert.ok(Math.max(v.train.features, v.train.logits) < 1e-5, `train ${JSON.stringify(v.train)}`);
  assert.ok(v.test.features < 1e-5, 'the kept features themselves are untouched');
  assert.ok(v.test.logits > 0.1, `test logits moved by ${v.test.logits}`);
  assert.equal(v.withinTolerance, false);
  // Without unit 1 in the plan the pruned model is exact on test too; perturbing one kept feature is caught.
  const testStats = await measureSet(model, test, { names: ['fc2'], protect: [] });
  const exact = applyPlan(model, confirmOnValidation(plan, testStats, 0).plan, 'fc2');
  assert.deepEqual(exact.keptFeatures, [1, 2, 3]);
  const ok = verifyPruning(model, exact.pruned, exact.keptFeatures, { train, test });
  assert.equal(ok.withinTolerance, true, JSON.stringify(ok.test));
  const [k, b] = exact.pruned.getLayer('fc2').getWeights();
  exact.pruned.getLayer('fc2').setWeights([k, tf.add(b, tf.tensor1d([0, 0.01, 0]))]);
  const moved = verifyPruning(model, exact.pruned, exact.keptFeatures, { train, test });
  assert.ok(Math.abs(moved.test.features - 0.01) < 1e-5, `features moved by ${moved.test.features}`);
  assert.equal(moved.withinTolerance, false);
  [model, pruned, exact.pruned].forEach((m) => m.dispose());
});

test('pruneStep: measure -> plan -> restrict -> apply -> verify, with the counts the report shows', async () => {
  const model = tinyClassifier();
  const lines: string[] = [];
  const progress: Record<string, number[]> = {};
  const sets = { train: imageSet(40, 1, 127), val: imageSet(20, 2), test: imageSet(20, 3) };
  const { pruned, result } = await pruneStep(model, sets, {
    varianceThreshold: 0,
    deadMargin: 1,
    protect: [],
    log: (l) => lines.push(l),
    progress: (label) => ((done) => (progress[label] ??= []).push(done)),
  });
  assert.equal(result.unconfirmedOnValidation, 1);
  assert.equal(result.keptThinMargin, 0, 'unit 1 is already back; unit 0 is dead by far');
  assert.deepEqual(result.keptFeatures, [1, 2, 3]);
  assert.deepEqual(result.removedPerLayer, { fc2: 1 });
  assert.equal(result.unitsBefore - result.unitsAfter, 1);
  assert.ok(result.maxAbsDiff < 1e-4 && result.maxAbsDiffTrain < 1e-4, `diff ${result.maxAbsDiff}`);
  assert.equal(result.maxAbsDiff, Math.max(result.maxAbsDiffFeatures, result.maxAbsDiffLogits));
  assert.deepEqual(progress['unit statistics (train)'], [32, 40]);
  assert.deepEqual(progress['unit statistics (validation)'], [20]);
  assert.match(lines[0], /zero-variance unit groups: 2 on the training split; kept 1 not constant on the validation split and 0 dead ReLU units .* removing 1/);
  assert.ok(!lines.some((l) => l.startsWith('warning')));
  [model, pruned].forEach((m) => m.dispose());

  // The same with validation images like the training ones and no margin: unit 1 goes, and the check warns.
  const m2 = tinyClassifier();
  const r2 = await pruneStep(m2, { ...sets, val: imageSet(20, 2, 127) }, { varianceThreshold: 0, deadMargin: 0, protect: [], log: (l) => lines.push(l) });
  assert.deepEqual(r2.result.keptFeatures, [2, 3]);
  assert.ok(r2.result.maxAbsDiff > 1e-4 && r2.result.maxAbsDiffTrain < 1e-5);
  assert.ok(lines.some((l) => l.startsWith('warning: pruning changed the outputs')));
  [m2, r2.pruned].forEach((m) => m.dispose());
});

test('head threshold search: the largest head threshold whose recovered validation accuracy holds, searched upwards', async () => {
  const model = tinyClassifier();
  const protect: string[] = [];
  const sets = { train: imageSet(40, 1), val: imageSet(20, 2) };
  const train = await measureSet(model, sets.train, { protect });
  const val = await measureSet(model, sets.val, { names: Object.keys(train.tensors), protect });
  const margins = () => new Map();
  // Scripted recoveries: the first candidate holds, the second does not, the third is never tried.
  const answers = [0.9, 0.7, 0.95];
  const seen: { units: number; disposedLater: tf.LayersModel }[] = [];
  const recover = async (m: tf.LayersModel) => {
    seen.push({ units: (m.getLayer('fc2').outputShape as number[])[1], disposedLater: m });
    return { valAccuracy: answers[seen.length - 1], epochs: 3 };
  };
  const lines: string[] = [];
  const r = await searchHeadThreshold(model, { train, val }, sets.val, { threshold: 0, baselineValAccuracy: 0.9 }, {
    protect, deadMargin: 0, margins, head: { features: 'fc2', logits: 'logits' }, recover, grid: [100, 0.5, 1e-9], tolerance: 0.005, log: (l) => lines.push(l),
  });
  assert.equal(seen.length, 2, 'the search stops at the first threshold that fails');
  assert.deepEqual(r.points.map((p) => p.threshold), [1e-9, 0.5], 'thresholds are tried in increasing order');
  assert.equal(r.threshold, 1e-9);
  assert.equal(r.recoveryEpochs, 3);
  assert.ok(r.points[1].unitsRemoved >= r.points[0].unitsRemoved, 'a looser threshold removes at least as much');
  assert.equal(r.chosen?.applied.pruned, seen[0].disposedLater, 'the chosen candidate is the recovered model itself');
  assert.equal(r.chosen?.applied.pruned.layers.length, model.layers.length);
  assert.match(lines[0], /head threshold search \(fc1, fc2\) over 1e-9, 0.5, 100/);
  // Nothing holds: no choice, the stage-one pruning stands.
  const none = await searchHeadThreshold(model, { train, val }, sets.val, { threshold: 0, baselineValAccuracy: 1 }, {
    protect, deadMargin: 0, margins, head: { features: 'fc2', logits: 'logits' }, recover: async () => ({ valAccuracy: 0.5, epochs: 1 }), grid: [0.5], tolerance: 0.005, log: () => {},
  });
  assert.equal(none.threshold, null);
  assert.equal(none.chosen, undefined);
  // A refit runs on each candidate before its recovery, and the chosen one's is kept with it.
  const order: string[] = [];
  const refitted = await searchHeadThreshold(model, { train, val }, sets.val, { threshold: 0, baselineValAccuracy: 0.9 }, {
    protect, deadMargin: 0, margins, head: { features: 'fc2', logits: 'logits' }, grid: [0.5],
    refit: (m, plan) => {
      order.push(`refit ${plan.removedChannels.fc2?.length ?? 0}`);
      return [{ layer: 'fc2', ridge: 0.1, valErrorFolded: 0.2, valError: 0.1 }];
    },
    recover: async () => (order.push('recover'), { valAccuracy: 0.9, epochs: 1 }),
    tolerance: 0.005, log: () => {},
  });
  assert.deepEqual(order.map((o) => o.split(' ')[0]), ['refit', 'recover']);
  assert.deepEqual(refitted.chosen?.refit, [{ layer: 'fc2', ridge: 0.1, valErrorFolded: 0.2, valError: 0.1 }]);
  refitted.chosen?.applied.pruned.dispose();
  r.chosen?.applied.pruned.dispose();
  model.dispose();
});
