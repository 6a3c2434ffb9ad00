// The prune step as stages with plain data between them, in the spirit of Torch-Pruning's measure -> plan ->
// prune -> check loop: measure unit statistics, plan the zero-variance removals, restrict the plan to the
// removals that hold up (constant on the validation split too, dead ReLU units clearly dead), apply it (the
// surgery in model/surgery.ts rebuilds the smaller model), and verify the pruned model against the original.
// pruneStep runs them in that order; each stage is exported so a program can run or replace one of them.
import * as tf from '@tensorflow/tfjs';
import { HEAD_LAYERS } from '../model/backbones.js';
import {
  applyPruning,
  planZeroVariancePruning,
  pruningSummary,
  restrictPlan,
  type PlannedUnit,
  type PruningPlan,
  type PruningSummary,
  type UnitStatsLike,
} from '../model/surgery.js';
import { deadReluUnits, preActivationStats, type PreActivationStats } from './dead-margin.js';
import { predictRows, type ImageSet } from './images.js';
import { measureUnitStats, type UnitStats } from './variance.js';

export interface PruneResult extends PruningSummary {
  /** max |pruned - unpruned| over the kept penultimate features and the logits, on the test split. */
  maxAbsDiff: number;
  /** The same on (up to 256) training images, where the statistics were measured: the surgery's own error. */
  maxAbsDiffTrain: number;
  maxAbsDiffFeatures: number;
  maxAbsDiffLogits: number;
  /** Unit groups constant on the training split but not on the validation split, hence kept. */
  unconfirmedOnValidation: number;
  /** Dead ReLU units kept because their training pre-activation came within `deadMargin` sd of 0. */
  keptThinMargin: number;
  deadMargin: number;
  /** Indices (in the fine-tuned features layer) of the penultimate units that survived. */
  keptFeatures: number[];
  removedPerLayer: Record<string, number>;
}

/** The two head layers the surgery check compares: the penultimate features and the logits. */
export interface CheckedLayers {
  features: string;
  logits: string;
}

export interface PruneOptions {
  /** Largest training variance that still counts as constant. */
  varianceThreshold: number;
  /** Dead ReLU units go only if their largest training pre-activation is this many sd below 0 (0: no check). */
  deadMargin: number;
  /** Layers whose channels go only when exactly 0 (the Grad-CAM layer). */
  protect: string[];
  /** Default: the classifier head's (HEAD_LAYERS). */
  head?: CheckedLayers;
  log?: (line: string) => void;
  /** A progress callback per measuring pass: called with the count of images done. */
  progress?: (label: string, total: number) => (done: number) => void;
}

/** Outputs that moved by more than this (1e-4) after pruning are flagged (the surgery itself is exact to ~1e-6). */
export const PRUNE_TOLERANCE = 1e-4;

// ---------------------------------------------------------------------------------------------------------
// measure

/** Per-channel moments of the named tensors (default: those the planner reads) over a set, batch by batch. */
export async function measureSet(
  model: tf.LayersModel,
  set: ImageSet,
  opts: { names?: string[]; protect: string[]; onProgress?: (done: number) => void },
): Promise<UnitStats> {
  let seen = 0;
  const batches = (function* (): Generator<tf.Tensor4D> {
    for (const b of set.batches(32)) {
      seen += b.shape[0];
      opts.onProgress?.(seen);
      yield b;
    }
  })();
  return measureUnitStats(model, batches, opts.names, { disposeBatches: true, protect: opts.protect });
}

// ---------------------------------------------------------------------------------------------------------
// restrict

/**
 * Whether a planned removal holds on other statistics (the validation split's): every constant it folds is
 * still constant there (variance within the threshold) and has the same value, to 1e-6 relative.
 */
export function holdsOn(stats: UnitStatsLike, threshold: number): (u: PlannedUnit) => boolean {
  return (u) =>
    u.constants.every((c) => {
      const m = stats.tensors[c.tensor];
      const variance = m.m2[c.channel] / m.count;
      return variance <= threshold && Math.abs(m.mean[c.channel] - c.value) <= 1e-6 * Math.max(1, Math.abs(c.value));
    });
}

/**
 * A ReLU unit that never fired on the training images may still fire on new ones (seen in the dense head): a
 * removal stays in the plan only if it also holds on the validation split. The test split is never consulted.
 */
export function confirmOnValidation(plan: PruningPlan, valStats: UnitStatsLike, threshold: number): { plan: PruningPlan; unconfirmed: number } {
  const confirmed = restrictPlan(plan, holdsOn(valStats, threshold));
  return { plan: confirmed, unconfirmed: plan.units.length - confirmed.units.length };
}

/** Pre-activation statistics of the plan's dead ReLU units over `batches` (the training images). */
export function measureDeadMargins(model: tf.LayersModel, plan: PruningPlan, batches: Iterable<tf.Tensor>): Map<string, PreActivationStats> {
  return preActivationStats(model, batches, deadReluUnits(model, plan.units));
}

/** Whether every dead ReLU unit of a removal stays at least `minMargin` sd below 0 (units not measured pass). */
export function clearsDeadMargin(model: tf.LayersModel, margins: Map<string, PreActivationStats>, minMargin: number): (u: PlannedUnit) => boolean {
  return (u) => deadReluUnits(model, [u]).every(({ layer, unit }) => (margins.get(`${layer}:${unit}`)?.margin ?? Infinity) >= minMargin);
}

/** Dead ReLU units go only when their pre-activation stays clearly below 0; minMargin 0 keeps the plan as is. */
export function restrictToDeadMargin(
  model: tf.LayersModel,
  plan: PruningPlan,
  margins: Map<string, PreActivationStats>,
  minMargin: number,
): { plan: PruningPlan; thinMargin: number } {
  const kept = minMargin > 0 ? restrictPlan(plan, clearsDeadMargin(model, margins, minMargin)) : plan;
  return { plan: kept, thinMargin: plan.units.length - kept.units.length };
}

// ---------------------------------------------------------------------------------------------------------
// apply

/** Indices 0..total-1 that are not in `removed`, ascending. */
export function keptIndices(total: number, removed: readonly number[] = []): number[] {
  const drop = new Set(removed);
  return [...Array(total).keys()].filter((i) => !drop.has(i));
}

/** Units removed per layer, for the layers that lost any. */
export function removedPerLayer(summary: PruningSummary): Record<string, number> {
  return Object.fromEntries(summary.layers.filter((l) => l.unitsAfter < l.unitsBefore).map((l) => [l.name, l.unitsBefore - l.unitsAfter]));
}

export interface AppliedPruning {
  pruned: tf.LayersModel;
  summary: PruningSummary;
  /** Indices (in the original features layer) of the features that survived. */
  keptFeatures: number[];
  removedPerLayer: Record<string, number>;
}

/** Rebuilds the model without the plan's units and says what went. */
export function applyPlan(model: tf.LayersModel, plan: PruningPlan, featuresLayer: string): AppliedPruning {
  const pruned = applyPruning(model, plan);
  const summary = pruningSummary(model, pruned, plan);
  const units = (model.getLayer(featuresLayer).outputShape as number[])[1];
  const keptFeatures = keptIndices(units, plan.removedChannels[featuresLayer]);
  return { pruned, summary, keptFeatures, removedPerLayer: removedPerLayer(summary) };
}

// ---------------------------------------------------------------------------------------------------------
// verify

export interface OutputDifference {
  /** max |pruned - original| over the kept features. */
  features: number;
  /** max |pruned - original| over the logits. */
  logits: number;
}

/** How far the pruned model's kept features and logits are from the original's on a set. */
export function outputDifference(
  original: tf.LayersModel,
  pruned: tf.LayersModel,
  keptFeatures: number[],
  set: ImageSet,
  head: CheckedLayers = HEAD_LAYERS,
): OutputDifference {
  const view = (m: tf.LayersModel) =>
    tf.model({ inputs: m.inputs, outputs: [m.getLayer(head.features).output as tf.SymbolicTensor, m.getLayer(head.logits).output as tf.SymbolicTensor] });
  const [fa, la] = predictRows(view(original), set);
  const [fb, lb] = predictRows(view(pruned), set);
  let features = 0;
  let logits = 0;
  for (let i = 0; i < set.size; i++) {
    keptFeatures.forEach((orig, j) => (features = Math.max(features, Math.abs(fa[i][orig] - fb[i][j]))));
    la[i].forEach((v, c) => (logits = Math.max(logits, Math.abs(v - lb[i][c]))));
  }
  return { features, logits };
}

export interface Verification {
  /** On (up to 256) training images, where the statistics were measured: the surgery's own error. */
  train: OutputDifference;
  /** On the test split, which the statistics never saw. */
  test: OutputDifference;
  /** Whether the test split's difference stays within PRUNE_TOLERANCE. */
  withinTolerance: boolean;
}

/**
 * Exactness where the statistics were measured (a slice of the training split: the surgery itself), and on the
 * test split, which the statistics never saw (a unit constant on training images may still move there).
 */
export function verifyPruning(
  original: tf.LayersModel,
  pruned: tf.LayersModel,
  keptFeatures: number[],
  sets: { train: ImageSet; test: ImageSet },
  head: CheckedLayers = HEAD_LAYERS,
): Verification {
  const train = outputDifference(original, pruned, keptFeatures, sets.train.subset([...Array(Math.min(sets.train.size, 256)).keys()]), head);
  const test = outputDifference(original, pruned, keptFeatures, sets.test, head);
  return { train, test, withinTolerance: Math.max(test.features, test.logits) <= PRUNE_TOLERANCE };
}

// ---------------------------------------------------------------------------------------------------------
// the whole step

/** measure -> plan -> restrict -> apply -> verify on the fine-tuned model; the caller saves and disposes. */
export async function pruneStep(
  model: tf.LayersModel,
  sets: { train: ImageSet; val: ImageSet; test: ImageSet },
  opts: PruneOptions,
): Promise<{ pruned: tf.LayersModel; result: PruneResult }> {
  const { train, val, test } = sets;
  const head = opts.head ?? HEAD_LAYERS;
  const log = opts.log ?? (() => {});
  const { protect, varianceThreshold: threshold, deadMargin: minMargin } = opts;
  const onProgress = (label: string, set: ImageSet) => opts.progress?.(label, set.size);

  const stats = await measureSet(model, train, { protect, onProgress: onProgress('unit statistics (train)', train) });
  const planned = planZeroVariancePruning(model, stats, { threshold, protect });
  const valStats = await measureSet(model, val, { names: Object.keys(stats.tensors), protect, onProgress: onProgress('unit statistics (validation)', val) });
  const { plan: confirmed, unconfirmed } = confirmOnValidation(planned, valStats, threshold);
  const margins = minMargin > 0 ? measureDeadMargins(model, confirmed, train.batches(32)) : new Map<string, PreActivationStats>();
  const { plan, thinMargin } = restrictToDeadMargin(model, confirmed, margins, minMargin);
  log(
    `zero-variance unit groups: ${planned.units.length} on the training split; kept ${unconfirmed} not constant on the validation split ` +
      `and ${thinMargin} dead ReLU units whose pre-activation came within ${minMargin} sd of 0; removing ${plan.units.length}`,
  );

  const applied = applyPlan(model, plan, head.features);
  const { summary, keptFeatures, pruned } = applied;
  const check = verifyPruning(model, pruned, keptFeatures, { train, test }, head);
  const onTrain = Math.max(check.train.features, check.train.logits);
  const { features: dFeat, logits: dLogit } = check.test;
  log(`surgery check on ${Math.min(train.size, 256)} training images: max |pruned - unpruned| ${onTrain.toExponential(2)}`);
  log(
    `pruning: units ${summary.unitsBefore} -> ${summary.unitsAfter}, parameters ${summary.paramsBefore} -> ${summary.paramsAfter}, ` +
      `max |pruned - unpruned| ${Math.max(dFeat, dLogit).toExponential(2)} (features ${dFeat.toExponential(2)}, logits ${dLogit.toExponential(2)}); ` +
      `kept for padding ${summary.keptForPadding}, protected ${summary.keptProtected}`,
  );
  if (!check.withinTolerance) log('warning: pruning changed the outputs by more than 1e-4; the report flags it');
  return {
    pruned,
    result: {
      ...summary,
      maxAbsDiff: Math.max(dFeat, dLogit),
      maxAbsDiffFeatures: dFeat,
      maxAbsDiffLogits: dLogit,
      maxAbsDiffTrain: onTrain,
      keptFeatures,
      removedPerLayer: applied.removedPerLayer,
      unconfirmedOnValidation: unconfirmed,
      keptThinMargin: thinMargin,
      deadMargin: minMargin,
    },
  };
}
