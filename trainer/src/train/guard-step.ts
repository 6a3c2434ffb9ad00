// The guard-and-calibration step, run at export (and by `zerovar guard` on a bundle made before it existed):
// fit the out-of-distribution guard on the training split's pooled activations, set its threshold on the
// validation split, calibrate the deployed classifier's probabilities on the validation split, and measure both
// on the test split and on every out-of-distribution set given (real ones such as lateral views or CT slices,
// and the synthetic ones made here). Nothing is tuned on test or on the out-of-distribution sets: they are only
// measured, so the report's figures are honest estimates.
import type { GreyImage } from '../image/pixels.js';
import { syntheticSets } from '../image/synthetic.js';
import type { BundleModel } from '../model/inference.js';
import type { CalibrationInfo, OodInfo } from '../model/manifest.js';
import { encodeOodGuard, fitOodGuard, oodGuardHeader, oodScore, type OodGuard } from '../model/ood.js';
import {
  applyCalibration,
  chooseCalibration,
  expectedCalibrationError,
  reliabilityBins,
  type ReliabilityBin,
} from '../stats/calibration.js';
import { rocAuc } from '../stats/metrics.js';

export const OOD_GUARD_PATH = 'ood/guard.bin';

/** Images of one split: what the guard sees (as given, unmasked) and what the classifier is scored on. */
export interface GuardSplit {
  images: GreyImage[];
  labels: number[];
  /** The same images lung-masked, for a masked bundle whose metrics were measured on premasked images. */
  premasked?: GreyImage[];
}

export interface GuardStepInput {
  train: GuardSplit;
  val: GuardSplit;
  test: GuardSplit;
  /** Out-of-distribution sets to measure on, by name (e.g. lateral, ct). Synthetic sets are added. */
  outOfDistribution?: Record<string, GreyImage[]>;
  /** Principal directions of the guard (default 32) and the validation fraction it accepts (default 0.95). */
  components?: number;
  acceptance?: number;
  /** Synthetic images per kind (default 10; 0: none). */
  synthetic?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface GuardStepResult {
  ood: OodInfo;
  guardBytes: Uint8Array;
  calibration: CalibrationInfo;
  /** Guard scores per set (validation, test and every out-of-distribution set), for the report's histograms. */
  scores: Record<string, number[]>;
  reliability: { before: ReliabilityBin[]; after: ReliabilityBin[] };
}

const BATCH = 32;

function inBatches<T>(items: GreyImage[], run: (batch: GreyImage[]) => T[], tick: (n: number) => void): T[] {
  const out: T[] = [];
  for (let i = 0; i < items.length; i += BATCH) {
    const batch = items.slice(i, i + BATCH);
    out.push(...run(batch));
    tick(batch.length);
  }
  return out;
}

/** Flags the fraction of `scores` above the threshold. */
function flaggedFraction(scores: number[], threshold: number): number {
  return scores.length ? scores.filter((s) => !(s <= threshold)).length / scores.length : NaN;
}

export function guardStep(bm: BundleModel, input: GuardStepInput): GuardStepResult {
  const size = bm.spec.size;
  const sets: Record<string, GreyImage[]> = { ...(input.outOfDistribution ?? {}), ...syntheticSets(size, input.synthetic ?? 10) };
  const total =
    input.train.images.length + input.val.images.length + input.test.images.length + Object.values(sets).reduce((n, s) => n + s.length, 0);
  let done = 0;
  const tick = (n: number) => input.onProgress?.((done += n), total);
  const pooled = (images: GreyImage[]) => inBatches(images, (b) => bm.pooledFeatures(b), tick);

  /**
   * A split's guard view (the images as given) and the classifier's probabilities before calibration, on the
   * classifier's own inputs (premasked where the metrics were measured so). A raw bundle reads both from one
   * network pass; a masked one needs a pass on the unmasked and one on the masked images.
   */
  const scored = (split: GuardSplit): { pooled: Float32Array[]; probs: number[][] } => {
    const out = { pooled: [] as Float32Array[], probs: [] as number[][] };
    for (let i = 0; i < split.images.length; i += BATCH) {
      const batch = split.images.slice(i, i + BATCH);
      if (!bm.masked && !split.premasked) {
        const r = bm.featuresAndPooled(batch);
        out.pooled.push(...r.pooled);
        out.probs.push(...bm.uncalibrated(r.features));
      } else {
        out.pooled.push(...bm.pooledFeatures(batch));
        const inputs = split.premasked ? split.premasked.slice(i, i + BATCH) : batch.map((img) => bm.prepare(img));
        out.probs.push(...bm.uncalibrated(bm.features(inputs)));
      }
      tick(batch.length);
    }
    return out;
  };

  const layer = bm.manifest.model.gradcamLayer;
  const trainPooled = pooled(input.train.images);
  const val = scored(input.val);
  const test = scored(input.test);
  const guard: OodGuard = fitOodGuard(layer, trainPooled, input.train.labels, val.pooled, {
    components: input.components,
    acceptance: input.acceptance,
  });
  const scores: Record<string, number[]> = {
    validation: val.pooled.map((x) => oodScore(guard, x)),
    test: test.pooled.map((x) => oodScore(guard, x)),
  };
  for (const [name, images] of Object.entries(sets)) scores[name] = pooled(images).map((x) => oodScore(guard, x));

  const valProbs = val.probs;
  const testProbs = test.probs;
  const choice = chooseCalibration(valProbs, input.val.labels);
  const calibratedTest = testProbs.map((p) => applyCalibration(choice.calibration, p));

  const setNames = Object.keys(sets);
  const ood: OodInfo = {
    method: 'mahalanobis-ppca',
    path: OOD_GUARD_PATH,
    input: 'unmasked',
    ...oodGuardHeader(guard),
    flagged: {
      validation: flaggedFraction(scores.validation, guard.threshold),
      test: flaggedFraction(scores.test, guard.threshold),
      sets: Object.fromEntries(setNames.map((n) => [n, flaggedFraction(scores[n], guard.threshold)])),
    },
    auroc: Object.fromEntries(
      setNames.map((n) => {
        const s = [...scores.test, ...scores[n]];
        const y = [...scores.test.map(() => 0), ...scores[n].map(() => 1)];
        return [n, rocAuc(y, s)];
      }),
    ),
  };
  return {
    ood,
    guardBytes: encodeOodGuard(guard),
    calibration: {
      calibration: choice.calibration,
      cvEce: choice.cvEce,
      testEce: { before: expectedCalibrationError(testProbs, input.test.labels), after: expectedCalibrationError(calibratedTest, input.test.labels) },
    },
    scores,
    reliability: { before: reliabilityBins(testProbs, input.test.labels), after: reliabilityBins(calibratedTest, input.test.labels) },
  };
}

/** The step's figures as log lines: threshold and flagged fractions, then the calibration. */
export function guardSummaryLines(r: Pick<GuardStepResult, 'ood' | 'calibration'>): string[] {
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  const c = r.calibration;
  return [
    `out-of-distribution guard: threshold ${r.ood.threshold.toFixed(1)} (accepts ${pct(r.ood.acceptance)} of validation); ` +
      `flagged: validation ${pct(r.ood.flagged.validation)}, test ${pct(r.ood.flagged.test)}`,
    ...Object.entries(r.ood.flagged.sets ?? {}).map(
      ([k, v]) => `  ${k.padEnd(20)} flagged ${pct(v)}  AUROC vs test ${(r.ood.auroc?.[k] ?? NaN).toFixed(3)}`,
    ),
    `calibration: ${c.calibration.method === 'temperature' ? `temperature ${c.calibration.temperature.toFixed(3)}` : 'none'} ` +
      `(cross-validated ECE on validation: ${Object.entries(c.cvEce).map(([k, v]) => `${k} ${(v ?? NaN).toFixed(4)}`).join(', ')}); ` +
      `test ECE ${c.testEce.before.toFixed(4)} -> ${c.testEce.after.toFixed(4)}`,
  ];
}
