// `--weights-dtype auto`: the export writes the bundle twice, with float16 weights (which give the float32
// network's answers to rounding) and with 'mixed' ones (uint8 dense kernels), classifies the validation split
// through both as the viewer would, and keeps 'mixed' only when it costs at most the 0.5 pt of validation accuracy
// the pruning and k rules allow. The choice is made on validation, never on test; test is only reported.
import type * as tf from '@tensorflow/tfjs';
import { writeBundle, fsFetcher, type BundleManifestDraft } from '../io/bundle-fs.js';
import { BundleModel } from '../model/inference.js';
import type { WeightsDtype } from '../model/quantize.js';
import { argmax } from '../stats/metrics.js';
import { classifySet, type ImageSet } from './images.js';
import { ACCURACY_TOLERANCE } from './prune-step.js';

export type WeightsChoice = WeightsDtype | 'auto';

export interface WeightsDecision {
  chosen: WeightsDtype;
  /** What was measured when the choice was 'auto'. */
  measured?: {
    candidate: WeightsDtype;
    fallback: WeightsDtype;
    validation: { n: number; accuracyFallback: number; accuracyCandidate: number; changed: number; maxAbsDiff: number };
  };
}

const answers = (bm: BundleModel, set: ImageSet): number[][] => classifySet(bm, set, { premasked: true }).map((p) => p.probabilities);

/** Compares two sets of answers on labelled images: accuracy of each, answers that differ, max |difference|. */
export function compareAnswers(fallback: number[][], candidate: number[][], labels: ArrayLike<number>) {
  let a = 0;
  let b = 0;
  let changed = 0;
  let maxAbsDiff = 0;
  for (let i = 0; i < labels.length; i++) {
    const f = argmax(fallback[i]);
    const c = argmax(candidate[i]);
    if (f === labels[i]) a++;
    if (c === labels[i]) b++;
    if (f !== c) changed++;
    fallback[i].forEach((v, j) => (maxAbsDiff = Math.max(maxAbsDiff, Math.abs(v - candidate[i][j]))));
  }
  const n = Math.max(labels.length, 1);
  return { n: labels.length, accuracyFallback: a / n, accuracyCandidate: b / n, changed, maxAbsDiff };
}

/** The rule: the candidate may lose at most `tolerance` of validation accuracy against the fallback. */
export function acceptCandidate(v: { accuracyFallback: number; accuracyCandidate: number }, tolerance = ACCURACY_TOLERANCE): boolean {
  return v.accuracyCandidate >= v.accuracyFallback - tolerance - 1e-9;
}

/**
 * Writes the bundle at `dir` with the weights `choice` asks for; for 'auto', measures on `val` as described above
 * and leaves the bundle written with the chosen encoding.
 */
export async function writeBundleWithWeights(
  dir: string,
  draft: BundleManifestDraft,
  model: tf.LayersModel,
  extraFiles: Record<string, Uint8Array>,
  choice: WeightsChoice,
  val: ImageSet,
  log: (line: string) => void,
): Promise<WeightsDecision> {
  if (choice !== 'auto') {
    await writeBundle(dir, draft, model, extraFiles, { weightsDtype: choice });
    return { chosen: choice };
  }
  const fallback: WeightsDtype = 'float16';
  const candidate: WeightsDtype = 'mixed';
  const measure = async (dtype: WeightsDtype) => {
    await writeBundle(dir, draft, model, extraFiles, { weightsDtype: dtype });
    const bm = await BundleModel.load(fsFetcher(dir));
    try {
      return answers(bm, val);
    } finally {
      bm.dispose();
    }
  };
  const ref = await measure(fallback);
  const cand = await measure(candidate);
  const validation = compareAnswers(ref, cand, val.labels);
  const ok = acceptCandidate(validation);
  log(
    `weights: ${candidate} (uint8 dense kernels) gives validation accuracy ${validation.accuracyCandidate.toFixed(4)} against ` +
      `${validation.accuracyFallback.toFixed(4)} with ${fallback}, ${validation.changed} answer(s) differ: ${ok ? `keeping ${candidate}` : `back to ${fallback}`}`,
  );
  if (!ok) await writeBundle(dir, draft, model, extraFiles, { weightsDtype: fallback });
  return { chosen: ok ? candidate : fallback, measured: { candidate, fallback, validation } };
}
