import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import KNN from 'ml-knn';
import { RandomForestClassifier } from 'ml-random-forest';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import {
  classifierFromJSON,
  classifierScoreFn,
  parseLibsvmModel,
  standardize,
  type ClassifierJSON,
} from '../../trainer/src/model/classifiers.js';
import { argmax } from '../../trainer/src/stats/metrics.js';
import { fitClassifier, fitScaler, fitSvmKeepingLibsvm, type SvmKind } from '../../trainer/src/train/classifiers.js';
import { gaussian, rng } from '../helpers/sklearn.js';

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

for (const [kind, k] of [
  ['svm-poly', 3],
  ['svm-rbf', 2],
  ['svm-linear', 4],
] as [SvmKind, number][]) {
  test(`${kind} (${k} classes, Platt probabilities): JSON predictor reproduces libsvm-js exactly`, () => {
    const { X, y } = featureData(240, 16, k, 10 + k);
    const { X: Xt } = featureData(150, 16, k, 20 + k);
    // Shuffle class order so that libsvm would otherwise number classes by first appearance.
    y[0] = k - 1;
    const scaler = fitScaler(X);
    const Z = X.map((r) => standardize(scaler, r));
    const { model, libsvm } = fitSvmKeepingLibsvm(kind, Z, y, { probability: true });
    try {
      // Through JSON text, as a bundle would carry it.
      const json = JSON.parse(JSON.stringify({ kind, nClasses: k, nFeatures: 16, scaler, svm: model })) as ClassifierJSON;
      const clf = classifierFromJSON(json);
      const proba = clf.predictProba(Xt);
      const pred = clf.predict(Xt);
      const ref = libsvm.predictProbability(Xt.map((r) => standardize(scaler, r)));
      let maxDiff = 0;
      ref.forEach((r, i) => {
        assert.equal(pred[i], r.prediction, `row ${i} label`);
        for (const e of r.estimates) maxDiff = Math.max(maxDiff, Math.abs(e.probability - proba[i][e.label]));
        assert.ok(Math.abs(proba[i].reduce((a, b) => a + b, 0) - 1) < 1e-9);
      });
      assert.ok(maxDiff <= 1e-6, `max |p - p_libsvm| = ${maxDiff}`);
      // Our full-precision parameters round to what libsvm's model text says.
      const text = parseLibsvmModel(libsvm.serializeModel());
      assert.deepEqual(text.nSV, model.nSV);
      model.rho.forEach((r, p) => assert.ok(Math.abs(r - text.rho[p]) <= 1e-5 * Math.abs(r) + 1e-12));
    } finally {
      libsvm.free();
    }
  });
}

test('SVM without probabilities predicts by libsvm vote, identical to libsvm-js', () => {
  const { X, y } = featureData(200, 12, 4, 31, 0.5);
  const { X: Xt } = featureData(150, 12, 4, 32, 0.5);
  const scaler = fitScaler(X);
  const { model, libsvm } = fitSvmKeepingLibsvm('svm-poly', X.map((r) => standardize(scaler, r)), y);
  try {
    const clf = classifierFromJSON({ kind: 'svm-poly', nClasses: 4, nFeatures: 12, scaler, svm: model });
    assert.deepEqual(clf.predict(Xt), libsvm.predict(Xt.map((r) => standardize(scaler, r))));
    assert.throws(() => clf.predictProba(Xt), /probability: true/);
  } finally {
    libsvm.free();
  }
});

test('probability fits are reproducible (fresh libsvm per fit)', () => {
  const { X, y } = featureData(150, 8, 3, 41);
  const a = fitClassifier('svm-rbf', X, y, { probability: true });
  fitClassifier('svm-poly', X, y, { probability: true }); // would advance a shared rand() sequence
  const b = fitClassifier('svm-rbf', X, y, { probability: true });
  assert.deepEqual(a, b);
});

test('k-NN (k=5) gives class frequencies of the 5 nearest rows and agrees with ml-knn', () => {
  // Continuous features (no ReLU zeros), so that distances are not tied.
  const { X, y } = featureData(200, 6, 3, 70, 0.8, false);
  const { X: Xt } = featureData(100, 6, 3, 71, 0.8, false);
  const json = fitClassifier('knn', X, y);
  const clf = classifierFromJSON(json);
  const proba = clf.predictProba(Xt);
  const pred = clf.predict(Xt);
  const Z = X.map((r) => standardize(json.scaler, r));
  const ref = new KNN(Z, y, { k: 5 }).predict(Xt.map((r) => standardize(json.scaler, r)));
  let compared = 0;
  proba.forEach((p, i) => {
    assert.ok(p.every((v) => Math.abs(v * 5 - Math.round(v * 5)) < 1e-9) && Math.abs(p.reduce((a, b) => a + b) - 1) < 1e-9);
    // ml-knn breaks 2-2-1 vote ties differently; compare where the vote is clear.
    const top = [...p].sort((a, b) => b - a);
    if (top[0] > top[1]) {
      assert.equal(pred[i], ref[i], `row ${i}`);
      compared++;
    }
  });
  assert.ok(compared > 80);
});

test('random forest: seeded, and its JSON predicts as the fitted ml-random-forest', () => {
  const { X, y } = featureData(200, 16, 2, 80, 1.5);
  const { X: Xt, y: yt } = featureData(100, 16, 2, 81, 1.5);
  const opts = { seed: 3, nEstimators: 25 };
  const json = fitClassifier('random-forest', X, y, opts);
  assert.deepEqual(JSON.parse(JSON.stringify(fitClassifier('random-forest', X, y, opts))), JSON.parse(JSON.stringify(json)));
  if (json.kind !== 'random-forest') throw new Error('unreachable');
  const clf = classifierFromJSON(JSON.parse(JSON.stringify(json)) as ClassifierJSON);
  const forest = RandomForestClassifier.load(json.forest);
  const Zt = Xt.map((r) => standardize(json.scaler, r));
  const votes = forest.predictionValues(Zt);
  const proba = clf.predictProba(Xt);
  proba.forEach((p, i) => {
    const row = votes.getRow(i);
    assert.ok(Math.abs(p[1] - row.filter((v: number) => v === 1).length / row.length) < 1e-12);
  });
  const acc = clf.predict(Xt).filter((p, i) => p === yt[i]).length / yt.length;
  assert.ok(acc > 0.8, `forest accuracy ${acc}`);
});

test('classifierScoreFn: differentiable scores whose argmax is the prediction; null for k-NN and forest', async () => {
  await initBackend();
  const cases: [string, ClassifierJSON, boolean][] = [];
  {
    const { X, y } = featureData(160, 12, 2, 90);
    cases.push(['svm-poly binary with Platt', fitClassifier('svm-poly', X, y, { probability: true }), true]);
    cases.push(['svm-rbf binary', fitClassifier('svm-rbf', X, y), true]);
    cases.push(['logistic binary', fitClassifier('logistic', X, y), true]);
  }
  {
    const { X, y } = featureData(160, 12, 3, 91);
    cases.push(['svm-linear 3 classes', fitClassifier('svm-linear', X, y), false]);
    cases.push(['logistic 3 classes', fitClassifier('logistic', X, y), true]);
    assert.equal(classifierScoreFn(fitClassifier('knn', X, y)), null);
    assert.equal(classifierScoreFn(fitClassifier('random-forest', X, y, { nEstimators: 5 })), null);
  }
  const { X: Xt } = featureData(80, 12, 3, 92);
  for (const [name, json, exact] of cases) {
    const fn = classifierScoreFn(json)!;
    assert.ok(fn, name);
    const scores = tf.tidy(() => fn(tf.tensor2d(Xt)).arraySync());
    const pred = classifierFromJSON(json).predict(Xt);
    const agree = scores.filter((s, i) => argmax(s) === pred[i]).length;
    // Multi-class SVM scores can differ from the vote only on tied votes.
    assert.ok(exact ? agree === Xt.length : agree >= Xt.length - 2, `${name}: argmax agrees on ${agree}/${Xt.length}`);
    // Every class's score must have a gradient: Grad-CAM explains whichever class was predicted.
    for (let target = 0; target < json.nClasses; target++) {
      const grad = tf.tidy(() => {
        const x = tf.tensor2d([Xt[0]]);
        const g = tf.grad((f: tf.Tensor) => tf.sum(tf.slice(fn(f as tf.Tensor2D), [0, target], [1, 1])))(x);
        return g.arraySync() as number[][];
      });
      assert.ok(grad[0].every(Number.isFinite), `${name}: finite gradient for class ${target}`);
      assert.ok(grad[0].some((v) => Math.abs(v) > 1e-6), `${name}: non-zero gradient for class ${target}`);
    }
  }
});
