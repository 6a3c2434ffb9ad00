// Browser-safe prediction side of the classifiers fitted in train/classifiers.ts.
//
// A fitted classifier is a plain JSON object (`ClassifierJSON`): its kind, the standard scaler fitted on the
// training features, and the parameters. Prediction is plain TypeScript that reproduces the fitting library:
// for SVMs, libsvm's decision function and probability estimates (pairwise coupling), so no wasm/asm is needed
// in the viewer. Feature matrices are `number[][]` (rows = samples) of raw, unstandardised features;
// class indices are 0..nClasses-1.
import * as tf from '@tensorflow/tfjs';
import { RandomForestClassifier } from 'ml-random-forest';
import { argmax } from '../stats/metrics.js';

export type ClassifierKind = 'svm-poly' | 'svm-rbf' | 'svm-linear' | 'logistic' | 'knn' | 'random-forest';
export const CLASSIFIER_KINDS: readonly ClassifierKind[] = [
  'svm-poly',
  'svm-rbf',
  'svm-linear',
  'logistic',
  'knn',
  'random-forest',
];

/** sklearn's StandardScaler: x' = (x - mean) / scale, scale = population std, 1 for constant features. */
export interface ScalerJSON {
  mean: number[];
  scale: number[];
}

/** A libsvm C-SVC model, as in libsvm's model file (support vectors grouped by class in `labels` order). */
export interface SvmModelJSON {
  kernel: 'linear' | 'polynomial' | 'rbf';
  degree: number;
  gamma: number;
  coef0: number;
  /** Class index of each libsvm class, in the model's order. */
  labels: number[];
  /** Support vectors per class, in `labels` order. */
  nSV: number[];
  /** Standardised support vectors, totalSV rows. */
  supportVectors: number[][];
  /** libsvm's sv_coef: (nr_class - 1) rows x totalSV. */
  dualCoef: number[][];
  /** One per class pair (0,1), (0,2), ..., (1,2), ... in model order. */
  rho: number[];
  /** Platt sigmoid parameters per pair; present when fitted with probability estimates. */
  probA?: number[];
  probB?: number[];
}

export interface LogisticJSON {
  /** nClasses rows (multinomial) or a single row (binary: the logit of class 1). */
  weights: number[][];
  intercept: number[];
}

export interface KnnJSON {
  k: number;
  /** The standardised training set. */
  X: number[][];
  y: number[];
}

interface ClassifierBase {
  nClasses: number;
  nFeatures: number;
  scaler: ScalerJSON;
}
export type SvmClassifierJSON = ClassifierBase & { kind: 'svm-poly' | 'svm-rbf' | 'svm-linear'; svm: SvmModelJSON };
export type LogisticClassifierJSON = ClassifierBase & { kind: 'logistic'; logistic: LogisticJSON };
export type KnnClassifierJSON = ClassifierBase & { kind: 'knn'; knn: KnnJSON };
export type ForestClassifierJSON = ClassifierBase & {
  kind: 'random-forest';
  /** ml-random-forest's own JSON (RandomForestClassifier#toJSON). */
  forest: ReturnType<RandomForestClassifier['toJSON']>;
};
export type ClassifierJSON = SvmClassifierJSON | LogisticClassifierJSON | KnnClassifierJSON | ForestClassifierJSON;

export interface Classifier {
  readonly json: ClassifierJSON;
  /** Class index per row. For SVMs with probability estimates this is the argmax of predictProba (as libsvm's
   * svm_predict_probability); without, libsvm's one-vs-one vote. */
  predict(X: ArrayLike<number>[]): number[];
  /** Per-class probabilities per row (columns = class indices). */
  predictProba(X: ArrayLike<number>[]): number[][];
}

// ---------------------------------------------------------------------------------------------------------
// Scaler

export function standardize(scaler: ScalerJSON, row: ArrayLike<number>): number[] {
  const { mean, scale } = scaler;
  if (row.length !== mean.length) throw new Error(`expected ${mean.length} features, got ${row.length}`);
  const out = new Array<number>(mean.length);
  for (let j = 0; j < mean.length; j++) out[j] = (row[j] - mean[j]) / scale[j];
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// libsvm

/** Parses the text of a libsvm C-SVC model (svm_save_model / libsvm-js serializeModel). Labels are kept as
 * libsvm's class labels; the SV values are as printed (libsvm writes them with 8 significant digits). */
export function parseLibsvmModel(text: string): SvmModelJSON {
  const lines = text.split('\n');
  const header = new Map<string, string[]>();
  let i = 0;
  for (; i < lines.length && lines[i].trim() !== 'SV'; i++) {
    const parts = lines[i].trim().split(/\s+/);
    if (parts[0]) header.set(parts[0], parts.slice(1));
  }
  if (i === lines.length) throw new Error('libsvm model: no SV section');
  const get = (key: string): string[] => {
    const v = header.get(key);
    if (!v) throw new Error(`libsvm model: missing "${key}"`);
    return v;
  };
  const num = (key: string) => get(key).map(Number);
  if (get('svm_type')[0] !== 'c_svc') throw new Error(`libsvm model: only c_svc is supported, got ${get('svm_type')[0]}`);
  const kernel = get('kernel_type')[0];
  if (kernel !== 'linear' && kernel !== 'polynomial' && kernel !== 'rbf') {
    throw new Error(`libsvm model: unsupported kernel ${kernel}`);
  }
  const nrClass = num('nr_class')[0];
  const totalSV = num('total_sv')[0];
  const dualCoef = Array.from({ length: nrClass - 1 }, () => new Array<number>(totalSV));
  const supportVectors: number[][] = [];
  let dim = 0;
  const sparse: Map<number, number>[] = [];
  for (let s = 0; s < totalSV; s++) {
    const parts = (lines[i + 1 + s] ?? '').trim().split(/\s+/);
    for (let c = 0; c < nrClass - 1; c++) dualCoef[c][s] = Number(parts[c]);
    const m = new Map<number, number>();
    for (const p of parts.slice(nrClass - 1)) {
      if (!p) continue;
      const [idx, val] = p.split(':');
      m.set(Number(idx), Number(val));
      dim = Math.max(dim, Number(idx));
    }
    sparse.push(m);
  }
  for (const m of sparse) supportVectors.push(Array.from({ length: dim }, (_, j) => m.get(j + 1) ?? 0));
  const model: SvmModelJSON = {
    kernel,
    degree: header.has('degree') ? num('degree')[0] : 3,
    gamma: header.has('gamma') ? num('gamma')[0] : 0,
    coef0: header.has('coef0') ? num('coef0')[0] : 0,
    labels: num('label'),
    nSV: num('nr_sv'),
    supportVectors,
    dualCoef,
    rho: num('rho'),
  };
  if (header.has('probA')) model.probA = num('probA');
  if (header.has('probB')) model.probB = num('probB');
  return model;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += a[j] * b[j];
  return s;
}

/** libsvm's powi: exponentiation by squaring (bit-identical to libsvm's). */
function powi(base: number, times: number): number {
  let tmp = base;
  let ret = 1;
  for (let t = times; t > 0; t = Math.floor(t / 2)) {
    if (t % 2 === 1) ret *= tmp;
    tmp *= tmp;
  }
  return ret;
}

function kernelValue(m: SvmModelJSON, x: ArrayLike<number>, sv: ArrayLike<number>): number {
  switch (m.kernel) {
    case 'linear':
      return dot(x, sv);
    case 'polynomial':
      return powi(m.gamma * dot(x, sv) + m.coef0, m.degree);
    case 'rbf': {
      let s = 0;
      for (let j = 0; j < x.length; j++) {
        const d = x[j] - sv[j];
        s += d * d;
      }
      return Math.exp(-m.gamma * s);
    }
  }
}

/** One-vs-one decision values (pairs (0,1), (0,2), ..., in model order) for a standardised row, as libsvm. */
export function svmDecisionValues(m: SvmModelJSON, x: ArrayLike<number>): number[] {
  const k = m.labels.length;
  const kv = m.supportVectors.map((sv) => kernelValue(m, x, sv));
  const start = [0];
  for (let c = 1; c < k; c++) start.push(start[c - 1] + m.nSV[c - 1]);
  const dec: number[] = [];
  let p = 0;
  for (let i = 0; i < k; i++) {
    for (let j = i + 1; j < k; j++) {
      let sum = 0;
      const coef1 = m.dualCoef[j - 1];
      const coef2 = m.dualCoef[i];
      for (let t = 0; t < m.nSV[i]; t++) sum += coef1[start[i] + t] * kv[start[i] + t];
      for (let t = 0; t < m.nSV[j]; t++) sum += coef2[start[j] + t] * kv[start[j] + t];
      dec.push(sum - m.rho[p]);
      p++;
    }
  }
  return dec;
}

/** Position (in model order) that wins libsvm's one-vs-one vote; ties go to the earlier class. */
function svmVote(k: number, dec: number[]): number {
  const votes = new Array<number>(k).fill(0);
  let p = 0;
  for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) votes[dec[p++] > 0 ? i : j]++;
  return argmax(votes);
}

function sigmoidPredict(dec: number, A: number, B: number): number {
  const fApB = dec * A + B;
  // Written this way to avoid overflow and cancellation, as libsvm does.
  return fApB >= 0 ? Math.exp(-fApB) / (1 + Math.exp(-fApB)) : 1 / (1 + Math.exp(fApB));
}

/** Wu, Lin & Weng's pairwise coupling (their second method), iterated exactly as libsvm's multiclass_probability. */
function pairwiseCoupling(r: number[][]): number[] {
  const k = r.length;
  const maxIter = Math.max(100, k);
  const eps = 0.005 / k;
  const p = new Array<number>(k).fill(1 / k);
  const Q = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const Qp = new Array<number>(k).fill(0);
  for (let t = 0; t < k; t++) {
    for (let j = 0; j < t; j++) {
      Q[t][t] += r[j][t] * r[j][t];
      Q[t][j] = Q[j][t];
    }
    for (let j = t + 1; j < k; j++) {
      Q[t][t] += r[j][t] * r[j][t];
      Q[t][j] = -r[j][t] * r[t][j];
    }
  }
  for (let iter = 0; iter < maxIter; iter++) {
    let pQp = 0;
    for (let t = 0; t < k; t++) {
      Qp[t] = 0;
      for (let j = 0; j < k; j++) Qp[t] += Q[t][j] * p[j];
      pQp += p[t] * Qp[t];
    }
    let maxError = 0;
    for (let t = 0; t < k; t++) maxError = Math.max(maxError, Math.abs(Qp[t] - pQp));
    if (maxError < eps) break;
    for (let t = 0; t < k; t++) {
      const diff = (-Qp[t] + pQp) / Q[t][t];
      p[t] += diff;
      pQp = (pQp + diff * (diff * Q[t][t] + 2 * Qp[t])) / (1 + diff) / (1 + diff);
      for (let j = 0; j < k; j++) {
        Qp[j] = (Qp[j] + diff * Q[t][j]) / (1 + diff);
        p[j] /= 1 + diff;
      }
    }
  }
  return p;
}

/** libsvm's probability estimates in model order (requires probA/probB). */
function svmProbabilities(m: SvmModelJSON, dec: number[]): number[] {
  const k = m.labels.length;
  const { probA, probB } = m;
  if (!probA || !probB) throw new Error('this SVM has no probability estimates: fit it with { probability: true }');
  const minProb = 1e-7;
  const r = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let p = 0;
  for (let i = 0; i < k; i++) {
    for (let j = i + 1; j < k; j++) {
      r[i][j] = Math.min(Math.max(sigmoidPredict(dec[p], probA[p], probB[p]), minProb), 1 - minProb);
      r[j][i] = 1 - r[i][j];
      p++;
    }
  }
  return k === 2 ? [r[0][1], r[1][0]] : pairwiseCoupling(r);
}

/** Re-orders values given in libsvm's model order into class-index order (absent classes get `fill`). */
function toClassOrder(m: SvmModelJSON, values: number[], nClasses: number, fill: number): number[] {
  const out = new Array<number>(nClasses).fill(fill);
  m.labels.forEach((label, pos) => (out[label] = values[pos]));
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Other kinds

function softmax(z: number[]): number[] {
  const mx = Math.max(...z);
  const e = z.map((v) => Math.exp(v - mx));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** Logits per class: for a binary model [0, w.x + b], so that softmax gives [1 - sigmoid, sigmoid]. */
export function logisticLogits(l: LogisticJSON, x: ArrayLike<number>): number[] {
  const z = l.weights.map((w, c) => dot(w, x) + l.intercept[c]);
  return z.length === 1 ? [0, z[0]] : z;
}

/** Class frequencies among the k nearest training rows (Euclidean; equal distances keep the earlier row). */
function knnProba(m: KnnJSON, x: ArrayLike<number>, nClasses: number): number[] {
  const k = Math.min(m.k, m.X.length);
  // Keep the k best (distance, index) pairs in a small sorted list: k is tiny.
  const bestD: number[] = [];
  const bestI: number[] = [];
  for (let i = 0; i < m.X.length; i++) {
    const row = m.X[i];
    let d = 0;
    for (let j = 0; j < row.length; j++) {
      const e = row[j] - x[j];
      d += e * e;
    }
    if (bestD.length === k && d >= bestD[k - 1]) continue;
    let pos = bestD.length;
    while (pos > 0 && bestD[pos - 1] > d) pos--;
    bestD.splice(pos, 0, d);
    bestI.splice(pos, 0, i);
    if (bestD.length > k) {
      bestD.pop();
      bestI.pop();
    }
  }
  const proba = new Array<number>(nClasses).fill(0);
  for (const i of bestI) proba[m.y[i]] += 1 / k;
  return proba;
}

// ---------------------------------------------------------------------------------------------------------

/** A working classifier from its JSON (see train/classifiers.ts fitClassifier). */
export function classifierFromJSON(json: ClassifierJSON): Classifier {
  const n = json.nClasses;
  const prep = (X: ArrayLike<number>[]) => X.map((row) => standardize(json.scaler, row));
  switch (json.kind) {
    case 'svm-poly':
    case 'svm-rbf':
    case 'svm-linear': {
      const m = json.svm;
      const hasProb = !!(m.probA && m.probB);
      const predictProba = (X: ArrayLike<number>[]) =>
        prep(X).map((x) => toClassOrder(m, svmProbabilities(m, svmDecisionValues(m, x)), n, 0));
      return {
        json,
        predictProba,
        predict: (X) =>
          hasProb
            ? predictProba(X).map((p) => argmaxInModelOrder(m, p))
            : prep(X).map((x) => m.labels[svmVote(m.labels.length, svmDecisionValues(m, x))]),
      };
    }
    case 'logistic': {
      const predictProba = (X: ArrayLike<number>[]) => prep(X).map((x) => softmax(logisticLogits(json.logistic, x)));
      return { json, predictProba, predict: (X) => predictProba(X).map(argmax) };
    }
    case 'knn': {
      const predictProba = (X: ArrayLike<number>[]) => prep(X).map((x) => knnProba(json.knn, x, n));
      return { json, predictProba, predict: (X) => predictProba(X).map(argmax) };
    }
    case 'random-forest': {
      const forest = RandomForestClassifier.load(json.forest);
      const predictProba = (X: ArrayLike<number>[]) => {
        if (X.length === 0) return [];
        const votes = forest.predictionValues(prep(X));
        const out: number[][] = [];
        for (let i = 0; i < votes.rows; i++) {
          const row = votes.getRow(i);
          const p = new Array<number>(n).fill(0);
          for (const v of row) p[v] += 1 / row.length;
          out.push(p);
        }
        return out;
      };
      return { json, predictProba, predict: (X) => predictProba(X).map(argmax) };
    }
  }
}

/** libsvm picks the first maximum in its model order, not in class-index order. */
function argmaxInModelOrder(m: SvmModelJSON, probaByClass: number[]): number {
  let best = m.labels[0];
  for (const label of m.labels) if (probaByClass[label] > probaByClass[best]) best = label;
  return best;
}

// ---------------------------------------------------------------------------------------------------------
// Differentiable scores for Grad-CAM

/**
 * tfjs function from raw features [n, nFeatures] to per-class scores [n, nClasses] (class-index order) that can
 * be differentiated, or null for k-NN and random forests. SVMs: two classes give the signed decision value
 * (+d for libsvm's first class, -d for the other), or the Platt logit (A d + B) when the model has
 * probabilities, so the argmax is the prediction; more classes give sklearn's one-vs-rest transform of the
 * pairwise decision values (votes plus a confidence bounded by 1/3), whose argmax is the vote winner except
 * on tied votes (and may differ from the probability argmax in rare borderline cases). Logistic: logits (binary: [-z, z]).
 */
export function classifierScoreFn(json: ClassifierJSON): ((features: tf.Tensor2D) => tf.Tensor2D) | null {
  const n = json.nClasses;
  const mean = tf.tensor1d(json.scaler.mean);
  const scale = tf.tensor1d(json.scaler.scale);
  const prep = (x: tf.Tensor2D) => tf.div(tf.sub(x, mean), scale) as tf.Tensor2D;
  switch (json.kind) {
    case 'logistic': {
      const W = tf.tensor2d(json.logistic.weights); // [out, d]
      const b = tf.tensor1d(json.logistic.intercept);
      return (features) =>
        tf.tidy(() => {
          const z = tf.add(tf.matMul(prep(features), W, false, true), b) as tf.Tensor2D;
          // Binary: [-z, z] rather than [0, z], so that class 0's score has a gradient too (Grad-CAM of class 0).
          return z.shape[1] === 1 ? (tf.concat([tf.neg(z), z], 1) as tf.Tensor2D) : z;
        });
    }
    case 'svm-poly':
    case 'svm-rbf':
    case 'svm-linear': {
      const m = json.svm;
      const k = m.labels.length;
      const SV = tf.tensor2d(m.supportVectors); // [S, d]
      const svNorm = tf.sum(tf.square(SV), 1); // [S]
      // One column of dual coefficients per class pair, zero outside the pair's support vectors: dec = K C - rho.
      const S = m.supportVectors.length;
      const start = [0];
      for (let c = 1; c < k; c++) start.push(start[c - 1] + m.nSV[c - 1]);
      const pairs: [number, number][] = [];
      for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) pairs.push([i, j]);
      const coefs = new Float32Array(S * pairs.length);
      pairs.forEach(([i, j], p) => {
        for (let t = 0; t < m.nSV[i]; t++) coefs[(start[i] + t) * pairs.length + p] = m.dualCoef[j - 1][start[i] + t];
        for (let t = 0; t < m.nSV[j]; t++) coefs[(start[j] + t) * pairs.length + p] = m.dualCoef[i][start[j] + t];
      });
      const C = tf.tensor2d(coefs, [S, pairs.length]);
      const rho = tf.tensor1d(m.rho);
      const kernel = (x: tf.Tensor2D): tf.Tensor2D => {
        const xs = tf.matMul(x, SV, false, true) as tf.Tensor2D; // [n, S]
        if (m.kernel === 'linear') return xs;
        if (m.kernel === 'rbf') {
          const d2 = tf.add(tf.sub(tf.sum(tf.square(x), 1, true), tf.mul(2, xs)), svNorm);
          return tf.exp(tf.mul(-m.gamma, d2)) as tf.Tensor2D;
        }
        const base = tf.add(tf.mul(m.gamma, xs), m.coef0) as tf.Tensor2D;
        let out = base;
        for (let t = 1; t < m.degree; t++) out = tf.mul(out, base); // integer power by products: clean gradients
        return out;
      };
      // Maps model-order columns to class-index order.
      const toClassData = new Float32Array(k * n);
      m.labels.forEach((label, pos) => (toClassData[pos * n + label] = 1));
      const toClass = tf.tensor2d(toClassData, [k, n]);
      const absent = tf.tensor1d(Array.from({ length: n }, (_, c) => (m.labels.includes(c) ? 0 : -1e9)));
      return (features) =>
        tf.tidy(() => {
          const dec = tf.sub(tf.matMul(kernel(prep(features)), C), rho) as tf.Tensor2D; // [n, pairs]
          let byModel: tf.Tensor2D;
          if (k === 2) {
            const s = m.probA && m.probB ? tf.neg(tf.add(tf.mul(dec, m.probA[0]), m.probB[0])) : dec;
            byModel = tf.concat([s, tf.neg(s)], 1) as tf.Tensor2D;
          } else {
            // sklearn's _ovr_decision_function: votes + confidences / (3 (|confidences| + 1)).
            const cols: tf.Tensor[] = [];
            for (let c = 0; c < k; c++) {
              let votes: tf.Tensor = tf.zeros([features.shape[0], 1]);
              let conf: tf.Tensor = tf.zeros([features.shape[0], 1]);
              pairs.forEach(([i, j], p) => {
                if (i !== c && j !== c) return;
                const d = tf.slice(dec, [0, p], [-1, 1]);
                const sign = i === c ? 1 : -1;
                // step() has a (zero) gradient where comparisons have none.
                const win = tf.step(d);
                votes = tf.add(votes, i === c ? win : tf.sub(1, win));
                conf = tf.add(conf, tf.mul(sign, d));
              });
              cols.push(tf.add(votes, tf.div(conf, tf.mul(3, tf.add(tf.abs(conf), 1)))));
            }
            byModel = tf.concat(cols, 1) as tf.Tensor2D;
          }
          // Model order -> class order by a 0/1 matrix product (gather's gradient lacks a wasm kernel);
          // classes absent from the model get a score that never wins.
          return tf.add(tf.matMul(byModel, toClass), absent) as tf.Tensor2D;
        });
    }
    case 'knn':
    case 'random-forest':
      return null;
  }
}
