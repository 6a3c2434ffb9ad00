// Probability calibration of a fitted classifier, fitted on the validation split and applied at prediction time
// by trainer and viewer alike (browser-safe, plain numbers). A classifier that says 99.9 % for an ordinary image
// misleads a radiologist more than one that says 90 %: the calibrated probability should match how often the
// model is right at that confidence (measured by the expected calibration error, ECE).
//
// Methods, all monotone in the class scores (so the predicted class and every ROC curve stay as they are):
// - temperature scaling (Guo et al. 2017) on log-probabilities: p_c ∝ p_c^(1/T), one parameter, any class count;
// - Platt scaling (binary): sigmoid(a·logit(p) + b) for the positive class, two parameters.
// The choice between them (and none) is made by cross-validated ECE on the validation split, never on test.
import { mulberry32, shuffled } from '../data/rng.js';

export type Calibration =
  | { method: 'none' }
  | { method: 'temperature'; temperature: number }
  | { method: 'platt'; a: number; b: number; positiveIndex: number };

export type CalibrationMethod = Calibration['method'];

const EPS = 1e-12;

function logit(p: number): number {
  const q = Math.min(1 - EPS, Math.max(EPS, p));
  return Math.log(q / (1 - q));
}

function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

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
    case 'platt': {
      if (probs.length !== 2) throw new Error(`Platt calibration is binary; got ${probs.length} classes`);
      const pos = sigmoid(c.a * logit(probs[c.positiveIndex]) + c.b);
      return c.positiveIndex === 0 ? [pos, 1 - pos] : [1 - pos, pos];
    }
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

/**
 * Platt scaling of the positive class's log-odds by Newton's method on the logistic log-likelihood, with Platt's
 * smoothed targets ((N+ + 1)/(N+ + 2) and 1/(N- + 2)) so that a separable validation set gives a finite slope.
 */
export function fitPlatt(probs: ArrayLike<number>[], y: ArrayLike<number>, positiveIndex: number): { a: number; b: number } {
  const z = probs.map((p) => logit(p[positiveIndex]));
  const isPos = Array.from(y, (c) => c === positiveIndex);
  const nPos = isPos.filter(Boolean).length;
  const nNeg = isPos.length - nPos;
  const tPos = (nPos + 1) / (nPos + 2);
  const tNeg = 1 / (nNeg + 2);
  const target = isPos.map((pos) => (pos ? tPos : tNeg));
  const nll = (a: number, b: number) => {
    let s = 0;
    for (let i = 0; i < z.length; i++) {
      const f = a * z[i] + b;
      // log(1 + e^f) - t f, written to stay finite for large |f|
      s += (f > 0 ? f + Math.log1p(Math.exp(-f)) : Math.log1p(Math.exp(f))) - target[i] * f;
    }
    return s;
  };
  let a = 1;
  let b = 0;
  let loss = nll(a, b);
  for (let it = 0; it < 100; it++) {
    // gradient and Hessian of the negative log-likelihood in (a, b)
    let ga = 0, gb = 0, haa = 1e-9, hab = 0, hbb = 1e-9;
    for (let i = 0; i < z.length; i++) {
      const p = sigmoid(a * z[i] + b);
      const d = p - target[i];
      const w = p * (1 - p);
      ga += d * z[i];
      gb += d;
      haa += w * z[i] * z[i];
      hab += w * z[i];
      hbb += w;
    }
    const det = haa * hbb - hab * hab;
    if (!(Math.abs(det) > 1e-18)) break;
    const da = (hbb * ga - hab * gb) / det;
    const db = (haa * gb - hab * ga) / det;
    // Backtracking: a full Newton step overshoots when the scores are nearly separable.
    let step = 1;
    let next = nll(a - da, b - db);
    while (!(next <= loss) && step > 1e-8) {
      step /= 2;
      next = nll(a - step * da, b - step * db);
    }
    if (!(next <= loss)) break;
    a -= step * da;
    b -= step * db;
    const gain = loss - next;
    loss = next;
    if (gain < 1e-12 * Math.max(1, loss)) break;
  }
  return { a, b };
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

export function fitCalibration(method: CalibrationMethod, probs: ArrayLike<number>[], y: ArrayLike<number>, positiveIndex = 0): Calibration {
  switch (method) {
    case 'none':
      return { method: 'none' };
    case 'temperature':
      return { method: 'temperature', temperature: fitTemperature(probs, y) };
    case 'platt':
      return { method: 'platt', positiveIndex, ...fitPlatt(probs, y, positiveIndex) };
  }
}

export interface CalibrationChoice {
  calibration: Calibration;
  /** Cross-validated ECE of each method tried, on the data it was chosen on. */
  cvEce: Partial<Record<CalibrationMethod, number>>;
}

/**
 * Chooses the method with the lowest cross-validated ECE (folds over the given — validation — predictions, so
 * a two-parameter method does not win by fitting the very points it is scored on), then fits it on all of them.
 */
export function chooseCalibration(
  probs: ArrayLike<number>[],
  y: ArrayLike<number>,
  opts: { positiveIndex?: number; folds?: number; seed?: number; bins?: number } = {},
): CalibrationChoice {
  const positiveIndex = opts.positiveIndex ?? 0;
  const folds = Math.max(2, Math.min(opts.folds ?? 5, probs.length));
  const binary = (probs[0]?.length ?? 0) === 2;
  const methods: CalibrationMethod[] = binary ? ['none', 'temperature', 'platt'] : ['none', 'temperature'];
  const order = shuffled(Array.from({ length: probs.length }, (_, i) => i), mulberry32(opts.seed ?? 42));
  const cvEce: Partial<Record<CalibrationMethod, number>> = {};
  for (const m of methods) {
    const calibrated: number[][] = new Array(probs.length);
    for (let f = 0; f < folds; f++) {
      const held = order.filter((_, j) => j % folds === f);
      const fit = order.filter((_, j) => j % folds !== f);
      const c = fitCalibration(m, fit.map((i) => probs[i]), fit.map((i) => y[i]), positiveIndex);
      for (const i of held) calibrated[i] = applyCalibration(c, probs[i]);
    }
    cvEce[m] = expectedCalibrationError(calibrated, y, opts.bins);
  }
  // Ties go to the simpler method (the order above).
  let best: CalibrationMethod = 'none';
  for (const m of methods) if ((cvEce[m] ?? Infinity) < (cvEce[best] ?? Infinity) - 1e-9) best = m;
  return { calibration: fitCalibration(best, probs, y, positiveIndex), cvEce };
}
