// The export step's check of the bundle it wrote: read back through the reader the viewer uses (quantized weights
// and binary classifier arrays decoded), the bundle must give the trainer's own test answers. With float32
// weights that is exact to float rounding; quantized weights move the probabilities a little, so the check
// reports how far (max |bundle - trainer|) and the test accuracy through the bundle beside the trainer's.
import type { BundleModel } from '../model/inference.js';
import type { WeightsDtype } from '../model/quantize.js';
import { argmax } from '../stats/metrics.js';
import { classifySet, type ImageSet } from './images.js';
import type { WeightsDecision } from './weights-choice.js';

export interface ExportCheck {
  weightsDtype: WeightsDtype;
  /** max |bundle - trainer| over every test probability (before calibration, which is added afterwards). */
  maxAbsDiff: number;
  /** Test accuracy of the bundle's own answers, and of the trainer's. */
  accuracy: number;
  trainerAccuracy: number;
  /** Test images whose predicted class differs between the bundle and the trainer. */
  changed: number;
  /** With --weights-dtype auto: the validation comparison that chose the encoding. */
  weightsChoice?: WeightsDecision['measured'];
}

/** Classifies the (already masked, for a masked run) test images through `bm` and compares with `expected`. */
export function checkExportedBundle(bm: BundleModel, test: ImageSet, expected: number[][], weightsDtype: WeightsDtype): ExportCheck {
  let maxAbsDiff = 0;
  let right = 0;
  let trainerRight = 0;
  let changed = 0;
  classifySet(bm, test, { premasked: true }).forEach((p, i) => {
    const want = expected[i];
    p.probabilities.forEach((v, c) => (maxAbsDiff = Math.max(maxAbsDiff, Math.abs(v - want[c]))));
    const label = test.labels[i];
    if (p.classIndex === label) right++;
    if (argmax(want) === label) trainerRight++;
    if (p.classIndex !== argmax(want)) changed++;
  });
  const n = Math.max(test.size, 1);
  return { weightsDtype, maxAbsDiff, accuracy: right / n, trainerAccuracy: trainerRight / n, changed };
}

export function exportCheckLine(c: ExportCheck): string {
  return `weights ${c.weightsDtype}: the bundle reproduces the test probabilities to ${c.maxAbsDiff.toExponential(2)}, ` +
    `test accuracy ${c.accuracy.toFixed(4)} through the bundle (trainer ${c.trainerAccuracy.toFixed(4)}, ${c.changed} answer(s) differ)` +
    (c.weightsChoice
      ? `; chosen on validation: ${c.weightsChoice.candidate} ${c.weightsChoice.validation.accuracyCandidate.toFixed(4)} against ` +
        `${c.weightsChoice.fallback} ${c.weightsChoice.validation.accuracyFallback.toFixed(4)} (${c.weightsChoice.validation.changed} of ${c.weightsChoice.validation.n} answers differ)`
      : '');
}
