// The fitted classifiers against scikit-learn on real data (SVC on the digits set, LogisticRegression): needs Python 3
// with scikit-learn.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifierFromJSON, standardize } from '../../trainer/src/model/classifiers.js';
import { fitClassifier } from '../../trainer/src/train/classifiers.js';
import { gaussian, rng, sklearnRef } from '../helpers/sklearn.js';

/** Non-negative, sparse, correlated "ReLU feature"-like data with class signal in some columns. */
function featureData(n: number, d: number, k: number, seed: number, strength = 0.8, relu = true) {
  const u = rng(seed);
  const g = gaussian(u);
  const y = Array.from({ length: n }, () => Math.floor(u() * k));
  const X = y.map((c) => {
    const shared = g();
    return Array.from({ length: d }, (_, j) => {
      const signal = j % 3 === 0 ? strength * (((c + j) % k) - (k - 1) / 2) : 0;
      const v = signal + 0.5 * shared + g();
      return relu ? Math.max(0, v) : v;
    });
  });
  return { X, y };
}

/** The real digits data from sklearn (classes 0-3), split 60/40 by a fixed interleaving. */
function digits() {
  const { X, y } = sklearnRef<{ X: number[][]; y: number[] }>('digits', { classes: 4 });
  const tr = X.map((_, i) => i).filter((i) => i % 5 < 3);
  const te = X.map((_, i) => i).filter((i) => i % 5 >= 3);
  return { X: tr.map((i) => X[i]), y: tr.map((i) => y[i]), Xt: te.map((i) => X[i]), yt: te.map((i) => y[i]) };
}

test('svm-poly agrees with sklearn SVC(kernel=poly, degree=3, gamma=auto, C=1) on real digits data', () => {
  const { X, y, Xt } = digits();
  const json = fitClassifier('svm-poly', X, y);
  assert.equal(json.kind, 'svm-poly');
  const Z = X.map((r) => standardize(json.scaler, r));
  const Zt = Xt.map((r) => standardize(json.scaler, r));
  const ref = sklearnRef<{ predict: number[]; nSV: number[] }>('svc', { X: Z, y, Xtest: Zt });
  const pred = classifierFromJSON(json).predict(Xt);
  const agree = pred.filter((p, i) => p === ref.predict[i]).length / pred.length;
  assert.ok(agree >= 0.98, `agreement with sklearn ${agree}`);
  if (json.kind !== 'svm-poly') throw new Error('unreachable');
  const total = json.svm.nSV.reduce((a, b) => a + b, 0);
  const refTotal = ref.nSV.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(total - refTotal) <= Math.max(2, 0.02 * refTotal), `support vectors ${total} vs sklearn ${refTotal}`);
  assert.deepEqual(json.svm.labels, [0, 1, 2, 3], 'classes numbered in ascending order like sklearn');
});

test('logistic regression matches sklearn LogisticRegression(C=1) (binary and multinomial)', () => {
  for (const k of [2, 3]) {
    const { X, y } = featureData(300, 10, k, 50 + k, 0.4);
    const { X: Xt } = featureData(200, 10, k, 60 + k, 0.4);
    const json = fitClassifier('logistic', X, y);
    if (json.kind !== 'logistic') throw new Error('unreachable');
    const Z = X.map((r) => standardize(json.scaler, r));
    const Zt = Xt.map((r) => standardize(json.scaler, r));
    const ref = sklearnRef<{ coef: number[][]; intercept: number[]; predict: number[]; proba: number[][] }>('logistic', {
      X: Z,
      y,
      Xtest: Zt,
    });
    // sklearn's lbfgs stops on a relative objective change (its gradient is still ~1e-3 here; ours < 1e-6),
    // so agreement is to ~1e-5, and labels are compared where sklearn's top two probabilities are not tied.
    json.logistic.weights.forEach((w, c) =>
      w.forEach((v, j) => assert.ok(Math.abs(v - ref.coef[c][j]) < 1e-4, `coef[${c}][${j}] ${v} vs ${ref.coef[c][j]}`)),
    );
    const clf = classifierFromJSON(json);
    const pred = clf.predict(Xt);
    clf.predictProba(Xt).forEach((p, i) => {
      p.forEach((v, c) => assert.ok(Math.abs(v - ref.proba[i][c]) < 1e-4, `proba[${i}][${c}] ${v} vs ${ref.proba[i][c]}`));
      const [a, b] = [...ref.proba[i]].sort((u, v) => v - u);
      if (a - b > 1e-3) assert.equal(pred[i], ref.predict[i], `row ${i}`);
    });
  }
});

