// Fitting the classifiers (Node side). The result is the plain ClassifierJSON that model/classifiers.ts turns
// into a predictor in Node or in the browser.
//
// Feature matrices are `number[][]` (rows = samples) of raw features; every classifier works on features
// standardised by a StandardScaler fitted here on the training rows and stored in the JSON.
import { createRequire } from 'node:module';
import { RandomForestClassifier } from 'ml-random-forest';
import type SVMType from 'libsvm-js/asm.js';
import {
  parseLibsvmModel,
  standardize,
  type ClassifierJSON,
  type ClassifierKind,
  type LogisticJSON,
  type ScalerJSON,
  type SvmModelJSON,
} from '../model/classifiers.js';

export interface FitOptions {
  /** Seed of the random forest's bootstrap and feature draws (default 1). */
  seed?: number;
  /** SVMs: fit libsvm's Platt scaling (-b 1) so that predictProba is calibrated (default false). */
  probability?: boolean;
  /** Inverse L2 regularisation of SVMs and logistic regression, as sklearn's C (default 1). */
  C?: number;
  /** Neighbours for k-NN (default 5). */
  k?: number;
  /** Trees of the random forest (default 100). */
  nEstimators?: number;
}

// ---------------------------------------------------------------------------------------------------------
// Scaler

/** sklearn's StandardScaler fit: population mean and std; constant features (within rounding) get scale 1. */
export function fitScaler(X: ArrayLike<number>[]): ScalerJSON {
  const n = X.length;
  const d = X[0].length;
  const mean = new Array<number>(d).fill(0);
  for (const row of X) for (let j = 0; j < d; j++) mean[j] += row[j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  const variance = new Array<number>(d).fill(0);
  for (const row of X) {
    for (let j = 0; j < d; j++) {
      const e = row[j] - mean[j];
      variance[j] += e * e;
    }
  }
  const eps = Number.EPSILON;
  const scale = variance.map((v, j) => {
    const varJ = v / n;
    // sklearn's _is_constant_feature bound: the variance is indistinguishable from 0 at this precision.
    const bound = n * eps * varJ + (n * mean[j] * eps) ** 2;
    return varJ <= bound ? 1 : Math.sqrt(varJ);
  });
  return { mean, scale };
}

// ---------------------------------------------------------------------------------------------------------
// libsvm

const require = createRequire(import.meta.url);

/**
 * A fresh libsvm instance (its own emscripten heap). libsvm's probability fitting shuffles with the C rand(),
 * which the wasm/asm build never lets us seed; a fresh instance starts its sequence anew, so fits are
 * reproducible, and its memory goes with it.
 */
function freshLibsvm(): { SVM: typeof SVMType; heap: { HEAP32: Int32Array; HEAPF64: Float64Array } } {
  const entry = require.resolve('libsvm-js/asm.js');
  const core = require.resolve('libsvm-js/out/asm/libsvm');
  delete require.cache[entry];
  delete require.cache[core];
  // The emscripten runtime registers process-wide error handlers on every load; drop them again so that many
  // fits neither pile up listeners nor change how this process reports errors.
  const events = ['uncaughtException', 'unhandledRejection'];
  const proc = process as unknown as NodeJS.EventEmitter;
  const before = events.map((e) => new Set(proc.listeners(e)));
  const SVM = require(entry) as typeof SVMType;
  const heap = require(core) as { HEAP32: Int32Array; HEAPF64: Float64Array };
  events.forEach((e, t) => {
    for (const l of proc.listeners(e)) if (!before[t].has(l)) proc.removeListener(e, l as (...args: unknown[]) => void);
  });
  return { SVM, heap };
}

/**
 * Reads the model's numbers at full precision from the emscripten heap (libsvm's text format prints rho and the
 * Platt parameters with 6 digits and the support vectors with 8). Layout of `struct svm_model` in the 32-bit
 * build: svm_parameter (96 bytes), then nr_class, l, SV, sv_coef, rho, probA, probB, sv_indices, label, nSV.
 * Checked against the parsed text; returns null if anything disagrees.
 */
function readModelFromHeap(
  heap: { HEAP32: Int32Array; HEAPF64: Float64Array },
  modelPtr: number,
  text: SvmModelJSON,
  nFeatures: number,
): SvmModelJSON | null {
  const i32 = (addr: number) => heap.HEAP32[addr >> 2];
  const f64 = (addr: number) => heap.HEAPF64[addr >> 3];
  const k = i32(modelPtr + 96);
  const l = i32(modelPtr + 100);
  const nPairs = (k * (k - 1)) / 2;
  if (k !== text.labels.length || l !== text.supportVectors.length) return null;
  const doubles = (ptr: number, count: number) => Array.from({ length: count }, (_, t) => f64(ptr + 8 * t));
  const ints = (ptr: number, count: number) => Array.from({ length: count }, (_, t) => i32(ptr + 4 * t));
  const labels = ints(i32(modelPtr + 128), k);
  const nSV = ints(i32(modelPtr + 132), k);
  const rho = doubles(i32(modelPtr + 112), nPairs);
  const coefPtrs = ints(i32(modelPtr + 108), k - 1);
  const dualCoef = coefPtrs.map((p) => doubles(p, l));
  const svPtrs = ints(i32(modelPtr + 104), l);
  const supportVectors = svPtrs.map((p) => {
    const row = new Array<number>(nFeatures).fill(0);
    for (let node = p; i32(node) !== -1; node += 16) row[i32(node) - 1] = f64(node + 8);
    return row;
  });
  const model: SvmModelJSON = { ...text, labels, nSV, rho, dualCoef, supportVectors };
  if (text.probA && text.probB) {
    model.probA = doubles(i32(modelPtr + 116), nPairs);
    model.probB = doubles(i32(modelPtr + 120), nPairs);
  }
  // The text has 6-8 significant digits; the heap values must round to it.
  const near = (a: number[], b: number[], rel: number) =>
    a.length === b.length && a.every((v, t) => Math.abs(v - b[t]) <= rel * Math.max(1e-12, Math.abs(b[t])) + 1e-300);
  const ok =
    labels.every((v, t) => v === text.labels[t]) &&
    nSV.every((v, t) => v === text.nSV[t]) &&
    near(rho, text.rho, 1e-5) &&
    dualCoef.every((row, c) => near(row, text.dualCoef[c], 1e-12)) &&
    supportVectors.every((row, s) => near(row, text.supportVectors[s], 1e-7)) &&
    (!model.probA || (near(model.probA, text.probA!, 1e-5) && near(model.probB!, text.probB!, 1e-5)));
  return ok ? model : null;
}

export type SvmKind = 'svm-poly' | 'svm-rbf' | 'svm-linear';

/** libsvm's own gamma for the kernels, as sklearn chooses it: 'auto' for poly (the paper), 'scale' for RBF. */
function svmGamma(kind: SvmKind, Z: number[][]): number {
  const d = Z[0].length;
  if (kind !== 'svm-rbf') return 1 / d;
  let s = 0;
  let s2 = 0;
  for (const row of Z) for (const v of row) {
    s += v;
    s2 += v * v;
  }
  const count = Z.length * d;
  const mean = s / count;
  const variance = s2 / count - mean * mean;
  return variance > 0 ? 1 / (d * variance) : 1;
}

/**
 * Fits a libsvm C-SVC on standardised rows Z. Rows are stably ordered by class first, so libsvm numbers its
 * classes in ascending order as sklearn's SVC does (same one-vs-one pairs and tie-breaking).
 */
export function fitSvm(kind: SvmKind, Z: number[][], y: number[], opts: { C?: number; probability?: boolean } = {}): SvmModelJSON {
  const { model, libsvm } = fitSvmKeepingLibsvm(kind, Z, y, opts);
  libsvm.free();
  return model;
}

/** As fitSvm, also handing back the live libsvm-js model (the caller must free() it): for checking parity. */
export function fitSvmKeepingLibsvm(
  kind: SvmKind,
  Z: number[][],
  y: number[],
  opts: { C?: number; probability?: boolean } = {},
): { model: SvmModelJSON; libsvm: SVMType } {
  const { SVM, heap } = freshLibsvm();
  const order = Array.from({ length: y.length }, (_, i) => i).sort((a, b) => y[a] - y[b] || a - b);
  const kernel = { 'svm-poly': SVM.KERNEL_TYPES.POLYNOMIAL, 'svm-rbf': SVM.KERNEL_TYPES.RBF, 'svm-linear': SVM.KERNEL_TYPES.LINEAR }[kind];
  const svm = new SVM({
    type: SVM.SVM_TYPES.C_SVC,
    kernel,
    degree: 3,
    gamma: svmGamma(kind, Z),
    coef0: 0,
    cost: opts.C ?? 1,
    probabilityEstimates: !!opts.probability,
    quiet: true,
  });
  try {
    svm.train(
      order.map((i) => Z[i]),
      order.map((i) => y[i]),
    );
    const text = parseLibsvmModel(svm.serializeModel());
    // The text's SV rows are only as wide as the last non-zero index; pad them to the feature count.
    const d = Z[0].length;
    text.supportVectors = text.supportVectors.map((r) => [...r, ...new Array<number>(d - r.length).fill(0)]);
    const exact = readModelFromHeap(heap, svm.model as number, text, d);
    if (!exact) console.warn('libsvm: could not read the model at full precision; using its text (6-8 digits)');
    return { model: exact ?? text, libsvm: svm };
  } catch (e) {
    svm.free();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Logistic regression (own L-BFGS; ml-logistic-regression is plain fixed-step gradient descent)

/**
 * L2-regularised logistic regression as sklearn's LogisticRegression(C) with lbfgs: minimises
 * 0.5 |W|^2 + C * sum of log-losses (intercepts unpenalised); binary problems use one sigmoid weight vector,
 * more classes the multinomial (softmax) loss.
 */
export function fitLogistic(Z: number[][], y: number[], nClasses: number, C = 1): LogisticJSON {
  const n = Z.length;
  const d = Z[0].length;
  const binary = nClasses === 2;
  const out = binary ? 1 : nClasses;
  const stride = d + 1; // weights then intercept, per output
  const loss = (theta: Float64Array, grad: Float64Array): number => {
    grad.fill(0);
    let f = 0;
    const z = new Float64Array(out);
    for (let i = 0; i < n; i++) {
      const x = Z[i];
      for (let c = 0; c < out; c++) {
        let s = theta[c * stride + d];
        for (let j = 0; j < d; j++) s += theta[c * stride + j] * x[j];
        z[c] = s;
      }
      // g[c]: derivative of this sample's loss w.r.t. z[c]
      const g = new Float64Array(out);
      if (binary) {
        const t = y[i] === 1 ? 1 : -1;
        const m = t * z[0];
        f += m > 0 ? Math.log1p(Math.exp(-m)) : -m + Math.log1p(Math.exp(m));
        g[0] = -t / (1 + Math.exp(m));
      } else {
        let mx = -Infinity;
        for (let c = 0; c < out; c++) mx = Math.max(mx, z[c]);
        let se = 0;
        for (let c = 0; c < out; c++) se += Math.exp(z[c] - mx);
        const lse = mx + Math.log(se);
        f += lse - z[y[i]];
        for (let c = 0; c < out; c++) g[c] = Math.exp(z[c] - lse) - (c === y[i] ? 1 : 0);
      }
      for (let c = 0; c < out; c++) {
        const gc = C * g[c];
        if (gc === 0) continue;
        for (let j = 0; j < d; j++) grad[c * stride + j] += gc * x[j];
        grad[c * stride + d] += gc;
      }
    }
    f *= C;
    for (let c = 0; c < out; c++) {
      for (let j = 0; j < d; j++) {
        const w = theta[c * stride + j];
        f += 0.5 * w * w;
        grad[c * stride + j] += w;
      }
    }
    return f;
  };
  const theta = lbfgs(loss, new Float64Array(out * stride));
  const weights: number[][] = [];
  const intercept: number[] = [];
  for (let c = 0; c < out; c++) {
    weights.push(Array.from(theta.subarray(c * stride, c * stride + d)));
    intercept.push(theta[c * stride + d]);
  }
  return { weights, intercept };
}

/** Limited-memory BFGS with a backtracking (Armijo) line search; stops when the gradient's max-norm < gtol. */
export function lbfgs(
  f: (x: Float64Array, grad: Float64Array) => number,
  x0: Float64Array,
  { memory = 10, maxIter = 2000, gtol = 1e-7 } = {},
): Float64Array {
  const dim = x0.length;
  let x = Float64Array.from(x0);
  let g = new Float64Array(dim);
  let fx = f(x, g);
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rhoHist: number[] = [];
  const dotp = (a: Float64Array, b: Float64Array) => {
    let s = 0;
    for (let i = 0; i < dim; i++) s += a[i] * b[i];
    return s;
  };
  const maxAbs = (a: Float64Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  for (let iter = 0; iter < maxIter && maxAbs(g) > gtol; iter++) {
    // Two-loop recursion: direction = -H g.
    const q = Float64Array.from(g);
    const alpha: number[] = [];
    for (let t = S.length - 1; t >= 0; t--) {
      alpha[t] = rhoHist[t] * dotp(S[t], q);
      for (let i = 0; i < dim; i++) q[i] -= alpha[t] * Y[t][i];
    }
    const gammaScale = S.length ? dotp(S[S.length - 1], Y[Y.length - 1]) / dotp(Y[Y.length - 1], Y[Y.length - 1]) : 1 / Math.max(1, maxAbs(g));
    for (let i = 0; i < dim; i++) q[i] *= gammaScale;
    for (let t = 0; t < S.length; t++) {
      const beta = rhoHist[t] * dotp(Y[t], q);
      for (let i = 0; i < dim; i++) q[i] += S[t][i] * (alpha[t] - beta);
    }
    const dir = q.map((v) => -v);
    let slope = dotp(g, dir);
    if (slope >= 0) {
      // Not a descent direction (numerical trouble): restart from steepest descent.
      S.length = Y.length = rhoHist.length = 0;
      for (let i = 0; i < dim; i++) dir[i] = -g[i] / Math.max(1, maxAbs(g));
      slope = dotp(g, dir);
    }
    let step = 1;
    const xNew = new Float64Array(dim);
    const gNew = new Float64Array(dim);
    let fNew = Infinity;
    for (let ls = 0; ls < 60; ls++) {
      for (let i = 0; i < dim; i++) xNew[i] = x[i] + step * dir[i];
      fNew = f(xNew, gNew);
      if (fNew <= fx + 1e-4 * step * slope) break;
      step *= 0.5;
    }
    if (!(fNew <= fx)) break; // no progress possible at this precision
    const s = xNew.map((v, i) => v - x[i]);
    const yv = gNew.map((v, i) => v - g[i]);
    const sy = dotp(s, yv);
    if (sy > 1e-12) {
      S.push(s);
      Y.push(yv);
      rhoHist.push(1 / sy);
      if (S.length > memory) {
        S.shift();
        Y.shift();
        rhoHist.shift();
      }
    }
    const converged = Math.abs(fx - fNew) <= 1e-15 * Math.max(1, Math.abs(fx));
    x = Float64Array.from(xNew);
    g = Float64Array.from(gNew);
    fx = fNew;
    if (converged) break;
  }
  return x;
}

// ---------------------------------------------------------------------------------------------------------

/**
 * Fits one classifier kind on raw training rows X with class indices y (0..nClasses-1, nClasses = max(y) + 1)
 * and returns its JSON. SVM kinds: the paper's 'svm-poly' (degree 3, gamma = 1/nFeatures, coef0 0, C 1),
 * 'svm-rbf' (gamma = 1/(nFeatures * var(Z))), 'svm-linear'. 'knn': k = 5, Euclidean. 'random-forest':
 * ml-random-forest, seeded, sqrt(nFeatures) features per tree.
 */
export function fitClassifier(kind: ClassifierKind, X: ArrayLike<number>[], y: number[], opts: FitOptions = {}): ClassifierJSON {
  if (X.length === 0) throw new Error('fitClassifier: no training rows');
  if (X.length !== y.length) throw new Error(`fitClassifier: ${X.length} rows but ${y.length} labels`);
  const nClasses = Math.max(...y) + 1;
  const nFeatures = X[0].length;
  const scaler = fitScaler(X);
  const Z = X.map((row) => standardize(scaler, row));
  const base = { nClasses, nFeatures, scaler };
  switch (kind) {
    case 'svm-poly':
    case 'svm-rbf':
    case 'svm-linear':
      return { ...base, kind, svm: fitSvm(kind, Z, y, { C: opts.C, probability: opts.probability }) };
    case 'logistic':
      return { ...base, kind, logistic: fitLogistic(Z, y, nClasses, opts.C ?? 1) };
    case 'knn':
      return { ...base, kind, knn: { k: opts.k ?? 5, X: Z, y: [...y] } };
    case 'random-forest': {
      const forest = new RandomForestClassifier({
        seed: opts.seed ?? 1,
        nEstimators: opts.nEstimators ?? 100,
        maxFeatures: Math.max(1, Math.round(Math.sqrt(nFeatures))),
        replacement: false,
        useSampleBagging: true,
        noOOB: true,
      });
      forest.train(Z, y);
      return { ...base, kind, forest: forest.toJSON() };
    }
  }
}
