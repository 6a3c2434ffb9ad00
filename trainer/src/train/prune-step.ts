// The prune step as stages with plain data between them, in the spirit of Torch-Pruning's measure -> plan ->
// prune -> check loop: measure unit statistics, plan the zero-variance removals, restrict the plan to the
// removals that hold up (constant on the validation split too, dead ReLU units clearly dead), apply it (the
// surgery in model/surgery.ts rebuilds the smaller model), and verify the pruned model against the original.
// pruneStep runs them in that order; each stage is exported so a program can run or replace one of them.
// The threshold is relative to each layer's scale (surgery.ts says why); with 'auto' the statistics are
// measured once and each threshold of a grid only re-plans, rebuilds and scores the validation split.
import * as tf from '@tensorflow/tfjs';
import { HEAD_LAYERS } from '../model/backbones.js';
import {
  applyPruning,
  meanChannelVariance,
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
import { searchHeadThreshold, type HeadPoint, type Recover, type Refit } from './head-prune.js';
import type { RefitLayer } from './head-refit.js';

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
  /** The relative variance threshold applied (a fraction of each layer's mean channel variance). */
  varianceThreshold?: number;
  /** 'auto': chosen by the validation sweep; 'fixed': as given. */
  thresholdRule?: 'auto' | 'fixed';
  /** Each threshold tried: parameters removed, validation accuracy (softmax head) and max |pruned - unpruned|. */
  thresholdSweep?: ThresholdPoint[];
  /** The unpruned network's validation accuracy (softmax head), what the auto rule compares with. */
  baselineValAccuracy?: number;
  /** The chosen pruning's validation accuracy and max |pruned - unpruned| on validation. */
  valAccuracy?: number;
  /** The pruned network's test accuracy (softmax head), beside the fine-tuned one's. */
  testAccuracy?: number;
  maxAbsDiffVal?: number;
  /** Stage two of 'auto' (train/head-prune.ts): the looser threshold of fc1 and fc2, and each one tried. */
  headThreshold?: number;
  headSweep?: HeadPoint[];
  /** Epochs of the head's recovery fine-tune after the chosen head pruning. */
  recoveryEpochs?: number;
  recoveryFit?: 'distill' | 'labels';
  /** The chosen head pruning's least-squares refit per dense layer, when it was refitted. */
  headRefit?: RefitLayer[];
}

/** The two head layers the surgery check compares: the penultimate features and the logits. */
export interface CheckedLayers {
  features: string;
  logits: string;
}

export interface PruneOptions {
  /**
   * Largest training variance that still counts as constant, relative to the mean channel variance of the unit's
   * layer (0: exactly constant, the paper's rule); 'auto': the largest of `thresholds` whose validation accuracy
   * stays within `tolerance` of the unpruned network's.
   */
  varianceThreshold: number | 'auto';
  /** The auto sweep's grid (default THRESHOLD_GRID). */
  thresholds?: number[];
  /** The auto rule's allowed validation accuracy loss (default 0.005: 0.5 pt). */
  tolerance?: number;
  /** Dead ReLU units go only if their largest training pre-activation is this many sd below 0 (0: no check). */
  deadMargin: number;
  /** Layers whose channels go only when exactly 0 (the Grad-CAM layer). */
  protect: string[];
  /** Default: the classifier head's (HEAD_LAYERS). */
  head?: CheckedLayers;
  log?: (line: string) => void;
  /** A progress callback per measuring pass: called with the count of images done. */
  progress?: (label: string, total: number) => (done: number) => void;
  /** With 'auto': fine-tunes a pruned model's head in place, which enables the head threshold search. */
  recover?: Recover;
  /** What `recover` fits (recorded with the result). */
  recoveryFit?: 'distill' | 'labels';
  /** With 'auto': refits each head candidate's dense layers by least squares before its recovery. */
  refit?: Refit;
  /** The head search's grid (default HEAD_THRESHOLD_GRID). */
  headThresholds?: readonly number[];
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
 * still constant there (variance within the threshold, times the layer's mean variance there when relative)
 * and has the same value, to 1e-6 relative, or, with a threshold above 0, to within sqrt(threshold x scale):
 * about one allowed standard deviation, as a near-constant unit's mean can move that much.
 */
export function holdsOn(
  stats: UnitStatsLike,
  threshold: number,
  scale: 'absolute' | 'relative' = 'absolute',
  layerThresholds: Record<string, number> = {},
): (u: PlannedUnit) => boolean {
  const layerScale = new Map<string, number>();
  const scaleOf = (t: string) => {
    if (scale === 'absolute') return 1;
    let v = layerScale.get(t);
    if (v === undefined) layerScale.set(t, (v = meanChannelVariance(stats.tensors[t])));
    return v;
  };
  return (u) =>
    u.constants.every((c) => {
      const m = stats.tensors[c.tensor];
      const variance = m.m2[c.channel] / m.count;
      const allowed = (layerThresholds[c.tensor] ?? threshold) * scaleOf(c.tensor);
      const drift = Math.max(1e-6 * Math.max(1, Math.abs(c.value)), Math.sqrt(allowed));
      return variance <= allowed && Math.abs(m.mean[c.channel] - c.value) <= drift;
    });
}

/**
 * A ReLU unit that never fired on the training images may still fire on new ones (seen in the dense head): a
 * removal stays in the plan only if it also holds on the validation split. The test split is never consulted.
 */
export function confirmOnValidation(plan: PruningPlan, valStats: UnitStatsLike, threshold: number): { plan: PruningPlan; unconfirmed: number } {
  const confirmed = restrictPlan(plan, holdsOn(valStats, threshold, plan.scale, plan.layerThresholds));
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

/** Dead-margin statistics measured on demand: a training pass only for dead units not measured before. */
export function marginCache(model: tf.LayersModel, batches: () => Iterable<tf.Tensor>): (plan: PruningPlan) => Map<string, PreActivationStats> {
  const cache = new Map<string, PreActivationStats>();
  return (plan) => {
    const missing = deadReluUnits(model, plan.units).filter((d) => !cache.has(`${d.layer}:${d.unit}`));
    if (missing.length > 0) for (const [k, v] of preActivationStats(model, batches(), missing)) cache.set(k, v);
    return cache;
  };
}

export interface PlanAt {
  planned: PruningPlan;
  plan: PruningPlan;
  unconfirmed: number;
  thinMargin: number;
}

/** plan -> confirm on validation -> dead margin, at one relative threshold, from statistics measured once. */
export function planAt(
  model: tf.LayersModel,
  stats: { train: UnitStatsLike; val: UnitStatsLike },
  threshold: number,
  opts: { protect: string[]; deadMargin: number; margins: (plan: PruningPlan) => Map<string, PreActivationStats>; layerThresholds?: Record<string, number> },
): PlanAt {
  const planned = planZeroVariancePruning(model, stats.train, { threshold, protect: opts.protect, scale: 'relative', layerThresholds: opts.layerThresholds });
  const { plan: confirmed, unconfirmed } = confirmOnValidation(planned, stats.val, threshold);
  const margins = opts.deadMargin > 0 ? opts.margins(confirmed) : new Map<string, PreActivationStats>();
  const { plan, thinMargin } = restrictToDeadMargin(model, confirmed, margins, opts.deadMargin);
  return { planned, plan, unconfirmed, thinMargin };
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

/** The checked head layers' outputs (features, logits) of a model on a set, one row per image. */
export function headOutputs(model: tf.LayersModel, set: ImageSet, head: CheckedLayers = HEAD_LAYERS): { features: Float32Array[]; logits: Float32Array[] } {
  const view = tf.model({ inputs: model.inputs, outputs: [model.getLayer(head.features).output as tf.SymbolicTensor, model.getLayer(head.logits).output as tf.SymbolicTensor] });
  const [features, logits] = predictRows(view, set);
  return { features, logits };
}

/** max |b - a| over the kept features (b's column j is a's keptFeatures[j]) and over the logits. */
export function differenceOf(
  a: { features: Float32Array[]; logits: Float32Array[] },
  b: { features: Float32Array[]; logits: Float32Array[] },
  keptFeatures: number[],
): OutputDifference {
  let features = 0;
  let logits = 0;
  for (let i = 0; i < a.features.length; i++) {
    keptFeatures.forEach((orig, j) => (features = Math.max(features, Math.abs(a.features[i][orig] - b.features[i][j]))));
    a.logits[i].forEach((v, c) => (logits = Math.max(logits, Math.abs(v - b.logits[i][c]))));
  }
  return { features, logits };
}

/** Accuracy of the arg-max of logit rows (the softmax head's prediction). */
export function logitAccuracy(logits: ArrayLike<number>[], labels: number[]): number {
  let right = 0;
  logits.forEach((row, i) => {
    let best = 0;
    for (let c = 1; c < row.length; c++) if (row[c] > row[best]) best = c;
    if (best === labels[i]) right++;
  });
  return labels.length > 0 ? right / labels.length : 0;
}

/** How far the pruned model's kept features and logits are from the original's on a set. */
export function outputDifference(
  original: tf.LayersModel,
  pruned: tf.LayersModel,
  keptFeatures: number[],
  set: ImageSet,
  head: CheckedLayers = HEAD_LAYERS,
): OutputDifference {
  return differenceOf(headOutputs(original, set, head), headOutputs(pruned, set, head), keptFeatures);
}

export interface Verification {
  /** On (up to 256) training images, where the statistics were measured: the surgery's own error. */
  train: OutputDifference;
  /** On the test split, which the statistics never saw. */
  test: OutputDifference;
  /** Whether the test split's difference stays within PRUNE_TOLERANCE. */
  withinTolerance: boolean;
  /** Test accuracy of the pruned network's own softmax head (reported, never used to choose anything). */
  testAccuracy: number;
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
  const after = headOutputs(pruned, sets.test, head);
  const test = differenceOf(headOutputs(original, sets.test, head), after, keptFeatures);
  const testAccuracy = logitAccuracy(after.logits, sets.test.labels);
  return { train, test, withinTolerance: Math.max(test.features, test.logits) <= PRUNE_TOLERANCE, testAccuracy };
}

// ---------------------------------------------------------------------------------------------------------
// sweep

/**
 * Relative thresholds the auto sweep tries: 0 (the exact rule), then fractions of a layer's mean channel
 * variance, roughly log-spaced, up to units with half their layer's mean variance. An easy task (2 classes)
 * tolerates far more folding than a hard one, so the grid reaches well past where the 4-class task stops (0.1).
 */
export const THRESHOLD_GRID: readonly number[] = [0, 1e-4, 1e-3, 3e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5];

/** The auto rule's allowance: validation accuracy at most 0.5 pt below the unpruned network's. */
export const ACCURACY_TOLERANCE = 0.005;

/**
 * Stage one's share of the allowance when the head search follows: half. Its loss is never recovered (the
 * backbone is not fine-tuned after pruning), the head search then spends against the same unpruned baseline, and
 * the F-test selection and the classifier come after both; with the whole allowance at stage one the released raw
 * network ended 1.0 pt below the unpruned one on validation itself (0.9604 -> 0.9563 at stage one, 0.9500 after
 * selection).
 */
export function stageOneAllowance(tolerance: number, headSearchFollows: boolean): number {
  return headSearchFollows ? tolerance / 2 : tolerance;
}

export interface ThresholdPoint {
  threshold: number;
  unitsRemoved: number;
  paramsRemoved: number;
  paramsAfter: number;
  /** Validation accuracy of the pruned network's own softmax head. */
  valAccuracy: number;
  /** max |pruned - unpruned| over the kept features and the logits, on validation. */
  maxAbsDiff: number;
}

/**
 * The largest threshold up to which validation accuracy stays within `tolerance` of `baseline`: thresholds are
 * taken in increasing order and the first one that falls short ends the search. A recovery after such a dip is
 * more likely the noise of a small validation split than a real one, and a larger threshold always folds more.
 */
export function chooseThreshold(points: ThresholdPoint[], baseline: number, tolerance = ACCURACY_TOLERANCE): number {
  let chosen = 0;
  for (const p of [...points].sort((a, b) => a.threshold - b.threshold)) {
    // 1e-9 absorbs float noise in baseline - tolerance (accuracies are counts over n).
    if (p.valAccuracy < baseline - tolerance - 1e-9) break;
    chosen = p.threshold;
  }
  return chosen;
}

/**
 * Scores each threshold on validation: re-plan from the statistics measured once, rebuild, run the validation
 * split. The pruned network's softmax head is the score, not the deployed classifier: that one is fitted after
 * the k sweep on the pruned features, which per threshold would cost the whole select step; the max difference
 * over the kept features is what either head sees move.
 */
export function sweepThresholds(
  model: tf.LayersModel,
  stats: { train: UnitStatsLike; val: UnitStatsLike },
  val: ImageSet,
  thresholds: readonly number[],
  opts: { protect: string[]; deadMargin: number; margins: (plan: PruningPlan) => Map<string, PreActivationStats>; head: CheckedLayers; log: (line: string) => void },
): { baseline: number; points: ThresholdPoint[] } {
  const reference = headOutputs(model, val, opts.head);
  const baseline = logitAccuracy(reference.logits, val.labels);
  opts.log(`threshold sweep on ${val.size} validation images; unpruned validation accuracy ${baseline.toFixed(4)}`);
  const points: ThresholdPoint[] = [];
  for (const threshold of thresholds) {
    const { plan } = planAt(model, stats, threshold, opts);
    const applied = applyPlan(model, plan, opts.head.features);
    const out = headOutputs(applied.pruned, val, opts.head);
    const d = differenceOf(reference, out, applied.keptFeatures);
    const { summary } = applied;
    points.push({
      threshold,
      unitsRemoved: summary.unitsBefore - summary.unitsAfter,
      paramsRemoved: summary.paramsBefore - summary.paramsAfter,
      paramsAfter: summary.paramsAfter,
      valAccuracy: logitAccuracy(out.logits, val.labels),
      maxAbsDiff: Math.max(d.features, d.logits),
    });
    applied.pruned.dispose();
    const p = points[points.length - 1];
    opts.log(
      `  threshold ${threshold}: ${p.unitsRemoved} units, ${p.paramsRemoved} parameters (${((100 * p.paramsRemoved) / summary.paramsBefore).toFixed(1)} %) removed; ` +
        `validation accuracy ${p.valAccuracy.toFixed(4)}, max |pruned - unpruned| ${p.maxAbsDiff.toExponential(2)}`,
    );
  }
  return { baseline, points };
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
  const { protect, deadMargin: minMargin } = opts;
  const onProgress = (label: string, set: ImageSet) => opts.progress?.(label, set.size);

  const trainStats = await measureSet(model, train, { protect, onProgress: onProgress('unit statistics (train)', train) });
  const valStats = await measureSet(model, val, { names: Object.keys(trainStats.tensors), protect, onProgress: onProgress('unit statistics (validation)', val) });
  const stats = { train: trainStats, val: valStats };
  const margins = marginCache(model, () => train.batches(32));
  const planOpts = { protect, deadMargin: minMargin, margins };
  const auto = opts.varianceThreshold === 'auto';
  const grid = auto ? (opts.thresholds ?? THRESHOLD_GRID) : [opts.varianceThreshold as number];
  const sweep = sweepThresholds(model, stats, val, grid, { ...planOpts, head, log: auto ? log : () => {} });
  const tolerance = opts.tolerance ?? ACCURACY_TOLERANCE;
  const stageOneTolerance = stageOneAllowance(tolerance, auto && opts.recover !== undefined);
  const threshold = auto ? chooseThreshold(sweep.points, sweep.baseline, stageOneTolerance) : (opts.varianceThreshold as number);
  if (auto) log(`variance threshold ${threshold} (relative): the largest up to which validation accuracy stays within ${(100 * stageOneTolerance).toFixed(2)} pt of the unpruned validation accuracy`);
  const headSearch = auto && threshold > 0 && opts.recover
    ? await searchHeadThreshold(model, stats, val, { threshold, baselineValAccuracy: sweep.baseline }, { ...planOpts, head, recover: opts.recover, refit: opts.refit, grid: opts.headThresholds, tolerance, log })
    : undefined;
  if (headSearch) log(headSearch.chosen ? `head threshold ${headSearch.threshold} (fc1, fc2), recovered in ${headSearch.recoveryEpochs} epoch(s)` : 'head threshold: none held; the backbone threshold applies to the head too');
  const { planned, plan, unconfirmed, thinMargin } = headSearch?.chosen ?? planAt(model, stats, threshold, planOpts);
  log(
    `zero-variance unit groups: ${planned.units.length} on the training split; kept ${unconfirmed} not constant on the validation split ` +
      `and ${thinMargin} dead ReLU units whose pre-activation came within ${minMargin} sd of 0; removing ${plan.units.length}`,
  );

  const applied = headSearch?.chosen?.applied ?? applyPlan(model, plan, head.features);
  const { summary, keptFeatures, pruned } = applied;
  const check = verifyPruning(model, pruned, keptFeatures, { train, test }, head);
  const onTrain = Math.max(check.train.features, check.train.logits);
  const { features: dFeat, logits: dLogit } = check.test;
  const stageOne = sweep.points.find((p) => p.threshold === threshold);
  const headPoint = headSearch?.chosen?.point;
  const chosen = headPoint ? { valAccuracy: headPoint.valAccuracy, maxAbsDiff: undefined } : stageOne;
  log(`surgery check on ${Math.min(train.size, 256)} training images: max |pruned - unpruned| ${onTrain.toExponential(2)}`);
  log(
    `pruning: units ${summary.unitsBefore} -> ${summary.unitsAfter}, parameters ${summary.paramsBefore} -> ${summary.paramsAfter}, ` +
      `max |pruned - unpruned| ${Math.max(dFeat, dLogit).toExponential(2)} (features ${dFeat.toExponential(2)}, logits ${dLogit.toExponential(2)}); ` +
      `kept for padding ${summary.keptForPadding}, protected ${summary.keptProtected}; pruned softmax head: ` +
      `validation accuracy ${chosen ? chosen.valAccuracy.toFixed(4) : '-'}, test accuracy ${check.testAccuracy.toFixed(4)}`,
  );
  // Above threshold 0 the mean fold is an approximation: the difference is measured and reported, not a fault.
  if (!check.withinTolerance && threshold === 0) log('warning: pruning changed the outputs by more than 1e-4; the report flags it');
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
      varianceThreshold: threshold,
      thresholdRule: auto ? 'auto' : 'fixed',
      thresholdSweep: sweep.points,
      baselineValAccuracy: sweep.baseline,
      valAccuracy: chosen?.valAccuracy,
      testAccuracy: check.testAccuracy,
      maxAbsDiffVal: chosen?.maxAbsDiff,
      ...(headSearch && { headSweep: headSearch.points }),
      ...(headSearch?.chosen && { headThreshold: headSearch.threshold ?? undefined, recoveryEpochs: headSearch.recoveryEpochs, recoveryFit: opts.recoveryFit }),
      ...(headSearch?.chosen?.refit && { headRefit: headSearch.chosen.refit }),
    },
  };
}
