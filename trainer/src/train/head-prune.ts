// Stage two of `--variance-threshold auto`: the dense head. fc1 and fc2 hold 69 % of a MobileNetV2 0.35 network
// with a 512-wide head, and their units tolerate far looser thresholds than the convolutions': a near-constant
// fc unit's spread reaches only the next dense layer, while a conv channel's is carried through every later block.
// Removing them by the same variance rule (mean folded into the consumers) moves the softmax head more than the
// features it computes, so each candidate head threshold is refitted by least squares (train/head-refit.ts,
// unless --head-refit off) and then followed by a short recovery fine-tune of the head
// alone (the backbone frozen, its activations cached: seconds per epoch), as pruning toolkits do after an
// approximate removal, and scored on validation like stage one. Thresholds are tried in increasing order; the
// first one whose recovered validation accuracy falls more than the tolerance below the unpruned network's ends
// the search. Threshold 0 (the paper's exact rule) never reaches this stage.
import type * as tf from '@tensorflow/tfjs';
import { HEAD_LAYERS } from '../model/backbones.js';
import type { HeadPointStats } from '../model/manifest.js';
import type { PruningPlan, UnitStatsLike } from '../model/surgery.js';
import type { PreActivationStats } from './dead-margin.js';
import type { RefitLayer } from './head-refit.js';
import type { ImageSet } from './images.js';
import { DEFAULTS } from './options.js';
import { applyPlan, headOutputs, logitAccuracy, planAt, type AppliedPruning, type CheckedLayers, type PlanAt } from './prune-step.js';

/** Head thresholds tried (relative, as stage one's): a unit of fc1 or fc2 goes when its training variance is at
 * most this multiple of its layer's mean unit variance. Why the grid stops at 1: train/options.ts. */
export const HEAD_THRESHOLD_GRID: readonly number[] = DEFAULTS.headThresholds;

/** The head layers stage two loosens. */
export const HEAD_PRUNED_LAYERS: readonly string[] = [HEAD_LAYERS.first, HEAD_LAYERS.features];

/** One head threshold tried, as the manifest records it (validation accuracy before and after the recovery). */
export type HeadPoint = HeadPointStats;

/** Refits the pruned model's dense head in place from its plan (train/head-refit.ts), before the recovery. */
export type Refit = (pruned: tf.LayersModel, plan: PruningPlan) => RefitLayer[];

/** Trains the pruned model's head in place (recovery fine-tune); returns its validation accuracy afterwards. */
export type Recover = (pruned: tf.LayersModel) => Promise<{ valAccuracy: number; epochs: number }>;

export interface HeadSearch {
  /** The largest head threshold that held, or null when none did (the stage-one pruning stands). */
  threshold: number | null;
  points: HeadPoint[];
  /** The chosen pruning, its model already recovered; undefined when none held. */
  chosen?: PlanAt & { applied: AppliedPruning; point: HeadPoint; refit?: RefitLayer[] };
  recoveryEpochs?: number;
}

export const layerThresholdsFor = (threshold: number): Record<string, number> =>
  Object.fromEntries(HEAD_PRUNED_LAYERS.map((l) => [l, threshold]));

export async function searchHeadThreshold(
  model: tf.LayersModel,
  stats: { train: UnitStatsLike; val: UnitStatsLike },
  val: ImageSet,
  base: { threshold: number; baselineValAccuracy: number },
  opts: {
    protect: string[];
    deadMargin: number;
    margins: (plan: PruningPlan) => Map<string, PreActivationStats>;
    head: CheckedLayers;
    recover: Recover;
    refit?: Refit;
    grid?: readonly number[];
    tolerance: number;
    log: (line: string) => void;
  },
): Promise<HeadSearch> {
  const grid = [...(opts.grid ?? HEAD_THRESHOLD_GRID)].filter((t) => t > base.threshold).sort((a, b) => a - b);
  const floor = base.baselineValAccuracy - opts.tolerance - 1e-9;
  const points: HeadPoint[] = [];
  let chosen: HeadSearch['chosen'];
  let recoveryEpochs: number | undefined;
  opts.log(`head threshold search (fc1, fc2) over ${grid.join(', ')}, backbone at ${base.threshold}, each followed by a head-only recovery fine-tune`);
  for (const threshold of grid) {
    const at = planAt(model, stats, base.threshold, { ...opts, layerThresholds: layerThresholdsFor(threshold) });
    const applied = applyPlan(model, at.plan, opts.head.features);
    const refit = opts.refit?.(applied.pruned, at.plan);
    if (refit) opts.log(`  head threshold ${threshold}: least-squares refit ${refit.map((r) => `${r.layer} ${r.ridge === null ? 'kept folded' : `ridge ${r.ridge}`} (validation error ${r.valErrorFolded.toExponential(2)} -> ${r.valError.toExponential(2)})`).join(', ')}`);
    const before = logitAccuracy(headOutputs(applied.pruned, val, opts.head).logits, val.labels);
    const recovered = await opts.recover(applied.pruned);
    const { summary } = applied;
    const point: HeadPoint = {
      threshold,
      unitsRemoved: summary.unitsBefore - summary.unitsAfter,
      paramsRemoved: summary.paramsBefore - summary.paramsAfter,
      paramsAfter: summary.paramsAfter,
      valAccuracyBefore: before,
      valAccuracy: recovered.valAccuracy,
    };
    points.push(point);
    opts.log(
      `  head threshold ${threshold}: ${point.unitsRemoved} units, ${point.paramsRemoved} parameters ` +
        `(${((100 * point.paramsRemoved) / summary.paramsBefore).toFixed(1)} %) removed; validation accuracy ${before.toFixed(4)}, ` +
        `${recovered.valAccuracy.toFixed(4)} after recovery`,
    );
    if (recovered.valAccuracy < floor) {
      applied.pruned.dispose();
      break;
    }
    chosen?.applied.pruned.dispose();
    chosen = { ...at, applied, point, refit };
    recoveryEpochs = recovered.epochs;
  }
  return { threshold: chosen?.point.threshold ?? null, points, chosen, recoveryEpochs };
}
