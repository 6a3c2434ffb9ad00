// Classification metrics as plain functions (browser-safe), defined as scikit-learn defines them.
//
// Zero division (a class never predicted, or absent from the truth) gives 0, like sklearn's default
// zero_division behaviour (sklearn also warns; we do not). Averages run over all the given classes,
// i.e. sklearn with labels=range(nClasses).

export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  /** Number of true samples of the class. */
  support: number;
}

export interface ClassificationMetrics {
  accuracy: number;
  perClass: Record<string, ClassMetrics>;
  macroF1: number;
  /** confusion[t][p]: samples of true class t predicted as p. */
  confusion: number[][];
  /**
   * One-vs-rest ROC AUC per class from that class's score column; NaN for a class with no positive or no
   * negative sample. `macro` is the mean over the classes where it is defined.
   */
  auc: { perClass: Record<string, number>; macro: number };
  /** Recall of the positive class (COVID by default) when it is one of the classes. */
  covidSensitivity?: number;
  n: number;
}

/** Index of the largest value (the first one on ties, like numpy's argmax). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
  return best;
}

/**
 * Metrics of a classifier from its per-class scores (probabilities or decision values; rows = samples,
 * columns = classes in `classes` order). The prediction is the argmax of each row.
 */
export function evaluateScores(
  yTrue: number[],
  scores: ArrayLike<number>[],
  classes: string[],
  positiveClass = 'COVID',
): ClassificationMetrics {
  const n = yTrue.length;
  const k = classes.length;
  if (scores.length !== n) throw new Error(`evaluateScores: ${n} labels but ${scores.length} score rows`);
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const t = yTrue[i];
    if (!Number.isInteger(t) || t < 0 || t >= k) throw new Error(`evaluateScores: label ${t} outside 0..${k - 1}`);
    if (scores[i].length !== k) throw new Error(`evaluateScores: row ${i} has ${scores[i].length} scores, expected ${k}`);
    const p = argmax(scores[i]);
    confusion[t][p]++;
    if (p === t) correct++;
  }

  const perClass: Record<string, ClassMetrics> = {};
  const aucPerClass: Record<string, number> = {};
  let f1Sum = 0;
  let aucSum = 0;
  let aucCount = 0;
  for (let c = 0; c < k; c++) {
    const tp = confusion[c][c];
    const support = confusion[c].reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, row) => a + row[c], 0);
    const precision = predicted > 0 ? tp / predicted : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    perClass[classes[c]] = { precision, recall, f1, support };
    f1Sum += f1;
    const auc = rocAuc(
      yTrue.map((t) => (t === c ? 1 : 0)),
      scores.map((row) => row[c]),
    );
    aucPerClass[classes[c]] = auc;
    if (!Number.isNaN(auc)) {
      aucSum += auc;
      aucCount++;
    }
  }
  const result: ClassificationMetrics = {
    accuracy: n > 0 ? correct / n : 0,
    perClass,
    macroF1: k > 0 ? f1Sum / k : 0,
    confusion,
    auc: { perClass: aucPerClass, macro: aucCount > 0 ? aucSum / aucCount : NaN },
    n,
  };
  if (classes.includes(positiveClass)) result.covidSensitivity = perClass[positiveClass].recall;
  return result;
}

/**
 * Area under the ROC curve of a binary problem (labels 1 = positive): the Mann-Whitney statistic with average
 * ranks for tied scores, which is what sklearn's trapezoidal roc_auc_score computes. NaN when a class is empty.
 */
export function rocAuc(yBinary: ArrayLike<number>, score: ArrayLike<number>): number {
  const n = yBinary.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => score[a] - score[b]);
  let rankSumPos = 0;
  let nPos = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && score[order[j + 1]] === score[order[i]]) j++;
    const avgRank = (i + j) / 2 + 1; // ranks are 1-based
    for (let t = i; t <= j; t++) {
      if (yBinary[order[t]] === 1) {
        rankSumPos += avgRank;
        nPos++;
      }
    }
    i = j + 1;
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

export interface RocCurve {
  fpr: number[];
  tpr: number[];
  /** Decreasing; the first point (0, 0) has threshold +Infinity (nothing predicted positive). */
  thresholds: number[];
}

/** ROC curve with one point per distinct score (sklearn's roc_curve with drop_intermediate=False). */
export function rocCurve(yBinary: ArrayLike<number>, score: ArrayLike<number>): RocCurve {
  const n = yBinary.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => score[b] - score[a]);
  let P = 0;
  for (let i = 0; i < n; i++) if (yBinary[i] === 1) P++;
  const N = n - P;
  const fpr = [0];
  const tpr = [0];
  const thresholds = [Infinity];
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < n; ) {
    const s = score[order[i]];
    while (i < n && score[order[i]] === s) {
      if (yBinary[order[i]] === 1) tp++;
      else fp++;
      i++;
    }
    fpr.push(N > 0 ? fp / N : NaN);
    tpr.push(P > 0 ? tp / P : NaN);
    thresholds.push(s);
  }
  return { fpr, tpr, thresholds };
}
