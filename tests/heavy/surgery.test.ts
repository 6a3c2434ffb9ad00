// Zero-variance surgery on full-size topologies: MobileNetV2 0.35 with ImageNet weights (../shared) and VGG16.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import { buildDependencyGraph, statTensorNames } from '../../trainer/src/model/dependency.js';
import {
  applyPruning,
  countUnits,
  planZeroVariancePruning,
  pruningSummary,
  restrictPlan,
  type PruningPlan,
} from '../../trainer/src/model/surgery.js';
import { channelVariance, measureUnitStats } from '../../trainer/src/train/variance.js';
import {
  BN,
  chunks,
  layerOutputs,
  maxAbsDiff,
  mobilenetV2Backbone,
  setChannel,
  vgg16Backbone,
  withHead,
  xrayBatch,
} from '../helpers/surgery-models.js';

before(async () => {
  await initBackend();
});

const removed = (plan: PruningPlan, tensor: string) => plan.removedChannels[tensor] ?? [];

/** Kept fc2 features and logits of the original and the pruned model agree on `x`. */
function assertSameFunction(original: tf.LayersModel, pruned: tf.LayersModel, plan: PruningPlan, x: tf.Tensor4D): number {
  const [logitsA, fc2A] = layerOutputs(original, ['logits', 'fc2'], x);
  const [logitsB, fc2B] = layerOutputs(pruned, ['logits', 'fc2'], x);
  const gone = new Set(removed(plan, 'fc2'));
  const keptFc2A = fc2A!.map((row) => row.filter((_, j) => !gone.has(j)));
  assert.equal(fc2B![0].length, keptFc2A[0].length);
  const diff = Math.max(maxAbsDiff(logitsA!, logitsB!), maxAbsDiff(keptFc2A, fc2B!));
  assert.ok(diff <= 1e-4, `pruned model differs from the original by ${diff}`);
  // Not a vacuous comparison: the outputs vary across images.
  assert.ok(maxAbsDiff([logitsA![0]], [logitsA![1]]) > 1e-6);
  return diff;
}

/** Units of `plan` constant on `x` as well (same constant): those measured on other data may vary here. */
async function unitsConstantOn(model: tf.LayersModel, plan: PruningPlan, x: tf.Tensor4D): Promise<number> {
  const tensors = [...new Set(plan.units.flatMap((u) => u.constants.map((c) => c.tensor)))];
  const stats = await measureUnitStats(model, [x], tensors);
  return plan.units.filter((u) =>
    u.constants.every((c) => stats.tensors[c.tensor].m2[c.channel] === 0 && stats.tensors[c.tensor].mean[c.channel] === c.value),
  ).length;
}

test('MobileNetV2 0.35 + head: planted zero-variance units are removed exactly', async () => {
  const size = 96;
  const model = withHead(await mobilenetV2Backbone(size), { pooling: 'gap', fc1: 16, fc2: 8, classes: 2, seed: 3 });
  // Expansion channels with gamma 0 and beta < 0: relu6(beta) = 0, constant zero through the depthwise conv.
  for (const k of [3, 7]) {
    setChannel(model, 'block_2_expand_BN', BN.gamma, k, 0);
    setChannel(model, 'block_2_expand_BN', BN.beta, k, -1);
  }
  // A constant 2 before the 'same' 3x3 depthwise conv: not constant at the borders afterwards -> kept.
  setChannel(model, 'block_2_expand_BN', BN.gamma, 11, 0);
  setChannel(model, 'block_2_expand_BN', BN.beta, 11, 2);
  // Dead after ReLU6: a very negative depthwise BN beta.
  setChannel(model, 'block_5_depthwise_BN', BN.beta, 10, -1000);
  // Residual channel 2 constant in every producer of the block_3..block_5 Add group (non-zero constants).
  for (const b of ['block_3_project_BN', 'block_4_project_BN', 'block_5_project_BN']) setChannel(model, b, BN.gamma, 2, 0);
  // The Grad-CAM layer out_relu: channel 5 constant 3 (kept when protected), channel 9 constant 0.
  setChannel(model, 'Conv_1_bn', BN.gamma, 5, 0);
  setChannel(model, 'Conv_1_bn', BN.beta, 5, 3);
  setChannel(model, 'Conv_1_bn', BN.gamma, 9, 0);
  setChannel(model, 'Conv_1_bn', BN.beta, 9, -5);
  // A dead fc1 neuron, a constant non-zero fc2 neuron.
  setChannel(model, 'fc1', 1, 4, -1e4);
  setChannel(model, 'fc2', 0, 6, 0);
  setChannel(model, 'fc2', 1, 6, 0.7);

  const dep = buildDependencyGraph(model);
  const addGroup = dep.groupOf('block_5_add', 2);
  for (const t of ['block_3_project', 'block_4_project', 'block_5_project', 'block_4_add']) assert.equal(dep.groupOf(t, 2), addGroup);
  assert.deepEqual(dep.unitGroups[addGroup].producers, ['block_3_project', 'block_4_project', 'block_5_project']);

  const protect = ['out_relu'];
  const images = xrayBatch(0, 40, size);
  const [train, other] = [images.slice([0], [32]) as tf.Tensor4D, images.slice([32], [8]) as tf.Tensor4D];
  const batches = chunks(train, 8);
  const stats = await measureUnitStats(model, batches, statTensorNames(dep, protect));
  tf.dispose(batches);
  assert.equal(stats.samples, 32);
  assert.equal(stats.tensors['block_5_add'].count, 32 * 12 * 12);
  assert.equal(channelVariance(stats.tensors['block_5_add'])[2], 0);
  assert.ok(channelVariance(stats.tensors['block_5_add'])[0] > 0);

  const plan = planZeroVariancePruning(dep, stats, { protect });
  for (const k of [3, 7, 10]) assert.ok(removed(plan, k === 10 ? 'block_5_expand' : 'block_2_expand').includes(k), `expand channel ${k}`);
  assert.ok(removed(plan, 'block_5_depthwise').includes(10));
  for (const t of ['block_3_project', 'block_4_project', 'block_5_project', 'block_4_add', 'block_5_add']) {
    assert.ok(removed(plan, t).includes(2), `${t} channel 2`);
  }
  assert.ok(plan.units.some((u) => u.unitGroup === addGroup));
  // The folded constants of the Add group are non-zero (beta of the project BNs), so this is a real fold.
  assert.ok(plan.folds['block_6_expand'].some((f) => f.channel === 2 && Math.abs(f.value) > 1e-3));
  assert.ok(removed(plan, 'fc1').includes(4));
  assert.ok(removed(plan, 'fc2').includes(6));
  assert.ok(Math.abs(plan.folds['logits'].find((f) => f.channel === 6)!.value - 0.7) < 1e-6);
  assert.ok(!removed(plan, 'block_2_expand').includes(11));
  assert.ok(plan.kept.some((k) => k.unitGroup === dep.groupOf('block_2_expand', 11) && k.reason === 'padding'));
  assert.ok(plan.keptForPadding >= 1);
  // Protected Grad-CAM layer: the constant 3 stays, the constant 0 goes; unprotected, both would go.
  assert.ok(!removed(plan, 'Conv_1').includes(5) && removed(plan, 'Conv_1').includes(9));
  assert.ok(plan.kept.some((k) => k.unitGroup === dep.groupOf('Conv_1', 5) && k.reason === 'protected'));
  const unprotected = planZeroVariancePruning(dep, stats);
  assert.ok(removed(unprotected, 'Conv_1').includes(5));
  // Model outputs never lose units.
  assert.equal(removed(plan, 'predictions').length + removed(plan, 'logits').length, 0);

  const pruned = applyPruning(model, plan);
  const summary = pruningSummary(model, pruned, plan);
  assert.ok(summary.paramsAfter < summary.paramsBefore);
  assert.equal(summary.unitsAfter, countUnits(pruned));
  assert.equal(summary.unitsBefore - summary.unitsAfter, plan.units.reduce((s, u) => s + u.members.filter((m) => summary.layers.some((l) => l.name === m.tensor)).length, 0));
  assert.equal(pruned.getLayer('block_2_expand').outputShape[3], 48 - removed(plan, 'block_2_expand').length);
  assert.ok(pruned.getLayer('block_4_expand').getWeights().length === 2, 'bias created for the fold');
  // Exact on the data it was measured on (every removed unit is constant there) ...
  const diffTrain = assertSameFunction(model, pruned, plan, train);
  // ... and, for the units constant by construction, on any other data.
  const planted = new Set([
    ...[3, 7].map((k) => dep.groupOf('block_2_expand', k)), dep.groupOf('block_5_expand', 10), addGroup,
    dep.groupOf('Conv_1', 9), dep.groupOf('fc1', 4), dep.groupOf('fc2', 6),
  ]);
  const plantedPlan = restrictPlan(plan, (u) => planted.has(u.unitGroup));
  assert.equal(plantedPlan.units.length, planted.size);
  const prunedPlanted = applyPruning(model, plantedPlan);
  const diffOther = assertSameFunction(model, prunedPlanted, plantedPlan, other);
  const stillConstant = await unitsConstantOn(model, plan, other);
  console.log(`mobilenet_v2_0.35@${size}: ${plan.units.length} unit groups removed (${stillConstant} also constant on 8 other images), ` +
    `units ${summary.unitsBefore} -> ${summary.unitsAfter}, params ${summary.paramsBefore} -> ${summary.paramsAfter}, ` +
    `kept for padding ${plan.keptForPadding}, max |diff| ${diffTrain.toExponential(2)} (measured images), ` +
    `${diffOther.toExponential(2)} (planted units, other images)`);
  prunedPlanted.dispose();
  // The original is untouched.
  assert.equal(model.getLayer('block_2_expand').outputShape[3], 48);
  tf.dispose([images, train, other]);
  pruned.dispose();
  model.dispose();
});

test('VGG16 topology: dead and constant channels, padded consumers, Flatten -> fc1 fold', async () => {
  const size = 32;
  const model = withHead(vgg16Backbone(size), { pooling: 'flatten', fc1: 32, fc2: 16, classes: 2, dropout: 0.5, seed: 7 });
  // Dead filter (kernel 0, bias -1 -> ReLU 0) feeding a padded conv: removable, nothing to fold.
  setChannel(model, 'block1_conv2', 0, 5, 0);
  setChannel(model, 'block1_conv2', 1, 5, -1);
  // Constant 0.5 feeding the padded 3x3 block2_conv2: kept and counted.
  setChannel(model, 'block2_conv1', 0, 7, 0);
  setChannel(model, 'block2_conv1', 1, 7, 0.5);
  // Constant 0.3 through the last pool and Flatten into fc1: removed with a fold.
  setChannel(model, 'block5_conv3', 0, 9, 0);
  setChannel(model, 'block5_conv3', 1, 9, 0.3);
  setChannel(model, 'block5_conv3', 0, 11, 0);
  setChannel(model, 'block5_conv3', 1, 11, -2);
  setChannel(model, 'fc1', 1, 0, -1e4);

  const x = tf.randomUniform([24, size, size, 3], -1, 1, 'float32', 5) as tf.Tensor4D;
  const batches = chunks(x.slice([0], [16]) as tf.Tensor4D, 8);
  const stats = await measureUnitStats(model, batches);
  const plan = planZeroVariancePruning(model, stats);
  assert.ok(removed(plan, 'block1_conv2').includes(5));
  assert.ok(!removed(plan, 'block2_conv1').includes(7));
  const dep = buildDependencyGraph(model);
  assert.ok(plan.kept.some((k) => k.unitGroup === dep.groupOf('block2_conv1', 7) && k.reason === 'padding'));
  assert.ok(removed(plan, 'block5_conv3').includes(9) && removed(plan, 'block5_conv3').includes(11));
  assert.ok(removed(plan, 'flatten').includes(9));
  assert.ok(Math.abs(plan.folds['fc1'].find((f) => f.channel === 9)!.value - 0.3) < 1e-6);
  assert.ok(removed(plan, 'fc1').includes(0) && removed(plan, 'dropout').includes(0));

  const pruned = applyPruning(model, plan);
  assert.ok(pruned.countParams() < model.countParams());
  assert.equal(pruned.getLayer('block5_conv3').outputShape[3], 512 - removed(plan, 'block5_conv3').length);
  const train = x.slice([0], [16]) as tf.Tensor4D;
  const other = x.slice([16], [8]) as tf.Tensor4D;
  const diffTrain = assertSameFunction(model, pruned, plan, train);
  const planted = new Set([
    dep.groupOf('block1_conv2', 5), dep.groupOf('block5_conv3', 9), dep.groupOf('block5_conv3', 11), dep.groupOf('fc1', 0),
  ]);
  const plantedPlan = restrictPlan(plan, (u) => planted.has(u.unitGroup));
  assert.equal(plantedPlan.units.length, planted.size);
  const prunedPlanted = applyPruning(model, plantedPlan);
  const diffOther = assertSameFunction(model, prunedPlanted, plantedPlan, other);
  const stillConstant = await unitsConstantOn(model, plan, other);
  console.log(`vgg16@${size}: ${plan.units.length} unit groups removed (${stillConstant} also constant on 8 other inputs), ` +
    `params ${model.countParams()} -> ${pruned.countParams()}, kept for padding ${plan.keptForPadding}, ` +
    `max |diff| ${diffTrain.toExponential(2)} (measured inputs), ${diffOther.toExponential(2)} (planted units, other inputs)`);
  // A planted constant that is not folded would show: the check above can fail.
  const unfolded = { ...plantedPlan, folds: { ...plantedPlan.folds, fc1: [] } };
  const wrong = applyPruning(model, unfolded);
  const [a] = layerOutputs(model, ['logits'], other);
  const [b] = layerOutputs(wrong, ['logits'], other);
  assert.ok(maxAbsDiff(a!, b!) > 1e-3, 'dropping the fold should change the logits');
  tf.dispose([x, train, other, ...batches]);
  [pruned, prunedPlanted, wrong, model].forEach((m) => m.dispose());
});

