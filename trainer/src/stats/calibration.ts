// Probability calibration of a fitted classifier, fitted on the validation split and applied at prediction time
// by trainer and viewer alike (browser-safe, plain numbers). A classifier that says 99.9 % for an ordinary image
// misleads a radiologist more than one that says 90 %: the calibrated probability should match how often the
// model is right at that confidence (measured by the expected calibration error, ECE).
//
// Temperature scaling (Guo et al. 2017) on log-probabilities, p_c ∝ p_c^(1/T): one parameter, any class count,
// and it keeps the order of the classes' scores, so the predicted class, the accuracy and every ROC curve stay
// exactly as they are (Platt scaling's offset would move the decision threshold, and isotonic maps tie scores).
// Whether to scale at all is decided by cross-validated ECE on the validation split, never on test.
import { mulberry32, shuffled } from '../data/rng.js';

export type Calibration = { method: 'none' } | { method: 'temperature'; temperature: number };

export type CalibrationMethod = Calibration['method'];

const EPS = 1e-12;



/** Softmax of log-probabilities divided by T: the tempered distribution. */
function tempered(probs: ArrayLike<number>, temperature: number): number[] {
  const z = Array.from(probs, (p) => Math.log(Math.max(EPS, p)) / temperature);
  const max = Math.max(...z);
  const e = z.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/** Calibrated probabilities of one prediction. */
export function applyCalibration(c: Calibration, probs: ArrayLike<number>): number[] {
  switch (c.method) {
    case 'none':
      return Array.from(probs);
    case 'temperature':
      return tempered(probs, c.temperature);
  }
}

/** Mean negative log-likelihood of the true classes. */
export function logLoss(probs: ArrayLike<number>[], y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < probs.length; i++) s -= Math.log(Math.max(EPS, probs[i][y[i]]));
  return s / Math.max(1, probs.length);
}

/** The temperature minimising validation log-loss (golden-section search on log T in [1/20, 20]). */
export function fitTemperature(probs: ArrayLike<number>[], y: ArrayLike<number>): number {
  const loss = (logT: number) => logLoss(probs.map((p) => tempered(p, Math.exp(logT))), y);
  let lo = Math.log(0.05);
  let hi = Math.log(20);
  const g = (Math.sqrt(5) - 1) / 2;
  let x1 = hi - g * (hi - lo);
  let x2 = lo + g * (hi - lo);
  let f1 = loss(x1);
  let f2 = loss(x2);
  for (let it = 0; it < 60 && hi - lo > 1e-5; it++) {
    if (f1 <= f2) {
      hi = x2;
      x2 = x1;
      f2 = f1;
      x1 = hi - g * (hi - lo);
      f1 = loss(x1);
    } else {
      lo = x1;
      x1 = x2;
      f1 = f2;
      x2 = lo + g * (hi - lo);
      f2 = loss(x2);
    }
  }
  return Math.exp((lo + hi) / 2);
}


export interface ReliabilityBin {
  /** Confidence range [lo, hi). */
  lo: number;
  hi: number;
  count: number;
  /** Mean top-class confidence and accuracy of the predictions in the bin (NaN when empty). */
  confidence: number;
  accuracy: number;
}

/** Top-label reliability diagram: predictions binned by their highest probability into equal-width bins. */
export function reliabilityBins(probs: ArrayLike<number>[], y: ArrayLike<number>, bins = 15): ReliabilityBin[] {
  const out: ReliabilityBin[] = Array.from({ length: bins }, (_, b) => ({ lo: b / bins, hi: (b + 1) / bins, count: 0, confidence: 0, accuracy: 0 }));
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i];
    let best = 0;
    for (let c = 1; c < p.length; c++) if (p[c] > p[best]) best = c;
    const conf = p[best];
    const bin = out[Math.min(bins - 1, Math.floor(conf * bins))];
    bin.count++;
    bin.confidence += conf;
    bin.accuracy += best === y[i] ? 1 : 0;
  }
  for (const b of out) {
    b.confidence = b.count ? b.confidence / b.count : NaN;
    b.accuracy = b.count ? b.accuracy / b.count : NaN;
  }
  return out;
}

/** Expected calibration error (top-label, equal-width bins, weighted by bin size), as in Guo et al. 2017. */
export function expectedCalibrationError(probs: ArrayLike<number>[], y: ArrayLike<number>, bins = 15): number {
  if (probs.length === 0) return NaN;
  let e = 0;
  for (const b of reliabilityBins(probs, y, bins)) if (b.count) e += (b.count / probs.length) * Math.abs(b.accuracy - b.confidence);
  return e;
}

export function fitCalibration(method: CalibrationMethod, probs: ArrayLike<number>[], y: ArrayLike<number>): Calibration {
  switch (method) {
    case 'none':
      return { method: 'none' };
    case 'temperature':
      return { method: 'temperature', temperature: fitTemperature(probs, y) };
  }
}

export interface CalibrationChoice {
  calibration: Calibration;
  /** Cross-validated ECE of each method tried, on the data it was chosen on. */
  cvEce: Partial<Record<CalibrationMethod, number>>;
}

/**
 * Chooses between no scaling and temperature scaling by cross-validated ECE (folds over the given — validation —
 * predictions, so the temperature is never scored on the points it was fitted to), then fits it on all of them.
 */
export function chooseCalibration(
  probs: ArrayLike<number>[],
  y: ArrayLike<number>,
  opts: { folds?: number; seed?: number; bins?: number } = {},
): CalibrationChoice {
  const folds = Math.max(2, Math.min(opts.folds ?? 5, probs.length));
  const methods: CalibrationMethod[] = ['none', 'temperature'];
  const order = shuffled(Array.from({ length: probs.length }, (_, i) => i), mulberry32(opts.seed ?? 42));
  const cvEce: Partial<Record<CalibrationMethod, number>> = {};
  for (const m of methods) {
    const calibrated: number[][] = new Array(probs.length);
    for (let f = 0; f < folds; f++) {
      const held = order.filter((_, j) => j % folds === f);
      const fit = order.filter((_, j) => j % folds !== f);
      const c = fitCalibration(m, fit.map((i) => probs[i]), fit.map((i) => y[i]));
      for (const i of held) calibrated[i] = applyCalibration(c, probs[i]);
    }
    cvEce[m] = expectedCalibrationError(calibrated, y, opts.bins);
  }
  // A tie keeps the probabilities as they are.
  let best: CalibrationMethod = 'none';
  for (const m of methods) if ((cvEce[m] ?? Infinity) < (cvEce[best] ?? Infinity) - 1e-9) best = m;
  return { calibration: fitCalibration(best, probs, y), cvEce };
}
