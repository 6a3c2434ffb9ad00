// Calibration: ECE as Guo et al. define it, temperature scaling recovering the distortion it models,
// and the cross-validated choice preferring no calibration when the probabilities are honest already.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyCalibration,
  chooseCalibration,
  expectedCalibrationError,
  fitTemperature,
  reliabilityBins,
} from '../../trainer/src/stats/calibration.js';
import { mulberry32 } from '../../trainer/src/data/rng.js';

/** Binary predictions whose true COVID probability is `q`; the model reports `report(q)`. */
function sample(n: number, report: (q: number) => number, seed = 1): { probs: number[][]; y: number[] } {
  const r = mulberry32(seed);
  const probs: number[][] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const q = r();
    const p = report(q);
    probs.push([p, 1 - p]);
    y.push(r() < q ? 0 : 1);
  }
  return { probs, y };
}

/** Over-confidence as a temperature below 1 would produce: q^(1/T) renormalised. */
function sharpen(q: number, t: number): number {
  const a = q ** (1 / t);
  const b = (1 - q) ** (1 / t);
  return a / (a + b);
}

describe('expected calibration error', () => {
  test('is the bin-weighted gap between accuracy and confidence', () => {
    // Two bins used: 0.95 (4 predictions, 3 right) and 0.55 (2 predictions, 1 right).
    const probs = [[0.95, 0.05], [0.95, 0.05], [0.05, 0.95], [0.95, 0.05], [0.55, 0.45], [0.45, 0.55]];
    const y = [0, 0, 1, 1, 0, 0];
    const expected = (4 / 6) * Math.abs(0.75 - 0.95) + (2 / 6) * Math.abs(0.5 - 0.55);
    assert.ok(Math.abs(expectedCalibrationError(probs, y, 10) - expected) < 1e-12);
    const bins = reliabilityBins(probs, y, 10);
    assert.equal(bins[9].count, 4);
    assert.equal(bins[5].count, 2);
    assert.ok(Number.isNaN(bins[0].accuracy), 'an empty bin has no accuracy');
  });
  test('is near zero for honest probabilities and large for over-confident ones', () => {
    const honest = sample(20000, (q) => q);
    assert.ok(expectedCalibrationError(honest.probs, honest.y) < 0.02);
    const over = sample(20000, (q) => sharpen(q, 0.25));
    assert.ok(expectedCalibrationError(over.probs, over.y) > 0.1);
  });
});

describe('temperature scaling', () => {
  test('temperature scaling recovers the temperature that sharpened honest probabilities', () => {
    const { probs, y } = sample(20000, (q) => sharpen(q, 0.25), 2);
    const t = fitTemperature(probs, y);
    assert.ok(Math.abs(t - 4) < 0.4, `fitted T=${t}, expected ~4`);
    const calibrated = probs.map((p) => applyCalibration({ method: 'temperature', temperature: t }, p));
    assert.ok(expectedCalibrationError(calibrated, y) < 0.02);
    // monotone: the predicted class never changes
    for (let i = 0; i < probs.length; i++) assert.equal(calibrated[i][0] > calibrated[i][1], probs[i][0] > probs[i][1]);
  });
});

describe('choosing a calibration', () => {
  test('keeps honest probabilities as they are and fixes over-confident ones', () => {
    const honest = sample(3000, (q) => q, 4);
    assert.equal(chooseCalibration(honest.probs, honest.y).calibration.method, 'none');
    const over = sample(3000, (q) => sharpen(q, 0.2), 5);
    const choice = chooseCalibration(over.probs, over.y);
    assert.notEqual(choice.calibration.method, 'none');
    assert.ok((choice.cvEce.none ?? 0) > 0.1 && (choice.cvEce.temperature ?? 1) < 0.03, JSON.stringify(choice.cvEce));
  });
});
