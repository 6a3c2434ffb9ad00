// The paper's sweep over k, the number of top F-score features kept: a coarse pass (every `step` features,
// the full set included), then every k in the best coarse window; the best score wins, ties to the smaller k.
// compactK reads the same sweep for the smallest k whose score is within a tolerance of the best.
import { selectKBest } from '../stats/ftest.js';
import { classifierFromJSON, standardize, type ScalerJSON } from '../model/classifiers.js';
import { fitScaler, fitSvm } from './classifiers.js';

const identity = (d: number): ScalerJSON => ({ mean: new Array<number>(d).fill(0), scale: new Array<number>(d).fill(1) });

export interface SweepOptions {
  /** Coarse step (default 100, the paper's; nFeatures/10 rounded when there are fewer than 1000 features). */
  coarse?: number;
  /** Refine around the best coarse k (default true). */
  fine?: boolean;
  /**
   * Step of the fine pass. 1 is the paper's exhaustive pass (every k in the best coarse window). 'auto'
   * (default) keeps the sweep's cost bounded: the window is searched with a step chosen so that at most twice
   * the coarse pass's number of fits are made, then the window around the best of those with the next step,
   * down to step 1. Deterministic (it depends only on the scores), at most a few points off the exhaustive
   * optimum when the score curve is not unimodal.
   */
  fineStep?: number | 'auto';
  /** Called after each evaluated k (progress reporting). */
  onStep?: (k: number, score: number) => void;
}

export interface SweepResult {
  k: number;
  /** Every evaluated k with its score, in evaluation order. */
  sweep: { k: number; score: number }[];
}

/** Default coarse step for n features. */
export function coarseStep(nFeatures: number): number {
  return nFeatures < 1000 ? Math.max(1, Math.round(nFeatures / 10)) : 100;
}

/**
 * Sweeps k over the top-k features by F score. `fit(cols)` gets the selected column indices (ascending) and
 * returns a score on the evaluation set (higher is better). Which set that is is the caller's choice:
 * validation (unbiased) or test (the paper's protocol, optimistic). Best score wins; ties go to the smaller k.
 */
export function sweepK(F: ArrayLike<number>, fit: (cols: number[]) => number, opts: SweepOptions = {}): SweepResult {
  const n = F.length;
  if (n === 0) throw new Error('sweepK: no features');
  const step = opts.coarse ?? coarseStep(n);
  if (!Number.isInteger(step) || step < 1) throw new Error(`sweepK: coarse step must be a positive integer, got ${step}`);
  const fineStep = opts.fineStep ?? 'auto';
  if (fineStep !== 'auto' && (!Number.isInteger(fineStep) || fineStep < 1)) {
    throw new Error(`sweepK: fineStep must be a positive integer or 'auto', got ${fineStep}`);
  }
  const scores = new Map<number, number>();
  const sweep: { k: number; score: number }[] = [];
  const evaluate = (k: number) => {
    if (scores.has(k)) return;
    const score = fit(selectKBest(F, k));
    scores.set(k, score);
    sweep.push({ k, score });
    opts.onStep?.(k, score);
  };
  const best = () => {
    let bk = -1;
    let bs = -Infinity;
    for (const [k, s] of scores) if (s > bs || (s === bs && k < bk)) [bk, bs] = [k, s];
    return bk;
  };
  for (let k = step; k < n; k += step) evaluate(k);
  evaluate(n);
  if (opts.fine ?? true) {
    const budget = 2 * scores.size;
    let width = step; // the best k is known to within +-(width - 1)
    while (width > 1) {
      const lo = Math.max(1, best() - width + 1);
      const hi = Math.min(n, best() + width - 1);
      const s = fineStep === 'auto' ? Math.max(1, Math.ceil((hi - lo + 1) / budget)) : fineStep;
      const centre = best();
      // Walk outwards from the centre so the grid contains it.
      for (let k = centre; k >= lo; k -= s) evaluate(k);
      for (let k = centre + s; k <= hi; k += s) evaluate(k);
      if (fineStep !== 'auto') break;
      width = s;
    }
  }
  return { k: best(), sweep };
}

/** The compact rule's allowance: 0.5 pt of accuracy below the best score. */
export const K_TOLERANCE = 0.005;

/** The smallest evaluated k whose score is within `tolerance` of the best score of the sweep. */
export function compactK(sweep: { k: number; score: number }[], tolerance = K_TOLERANCE): number {
  if (sweep.length === 0) throw new Error('compactK: empty sweep');
  const best = Math.max(...sweep.map((s) => s.score));
  // 1e-9 absorbs float noise in best - tolerance (accuracies are counts over n).
  return Math.min(...sweep.filter((s) => s.score >= best - tolerance - 1e-9).map((s) => s.k));
}

/** Accuracy of predictions against labels. */
function accuracy(pred: number[], y: number[]): number {
  let c = 0;
  for (let i = 0; i < y.length; i++) if (pred[i] === y[i]) c++;
  return y.length ? c / y.length : 0;
}

/**
 * sweepK scored by the paper's classifier: an SVM (polynomial, degree 3, gamma = 1/k, C = 1, no probabilities)
 * fitted on the standardised top-k training columns, scored by accuracy on the evaluation rows.
 */
export function sweepKWithSvm(
  trainX: ArrayLike<number>[],
  trainY: number[],
  evalX: ArrayLike<number>[],
  evalY: number[],
  F: ArrayLike<number>,
  opts: SweepOptions = {},
): SweepResult {
  // Standardising is per column, so the columns of the standardised matrix serve every k.
  const scaler = fitScaler(trainX);
  const Z = trainX.map((r) => standardize(scaler, r));
  const Ze = evalX.map((r) => standardize(scaler, r));
  const fit = (cols: number[]) => {
    const pick = (rows: number[][]) => rows.map((r) => cols.map((j) => r[j]));
    const svm = fitSvm('svm-poly', pick(Z), trainY);
    // Our predictor reproduces libsvm's exactly and is faster than the asm.js build's per-row calls.
    const clf = classifierFromJSON({ kind: 'svm-poly', nClasses: Math.max(...trainY) + 1, nFeatures: cols.length, scaler: identity(cols.length), svm });
    return accuracy(clf.predict(pick(Ze)), evalY);
  };
  return sweepK(F, fit, opts);
}
