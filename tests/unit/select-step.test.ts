// The select step's rules: where k is scored (validation, or test under the paper's protocol), ties to the
// smaller k, which classifier 'auto' deploys and how ties break, the explainer a bundle carries, and the whole
// step on the tiny classifier of step-models.ts.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mulberry32 } from '../../trainer/src/data/rng.js';
import type { ClassifierJSON, ClassifierKind } from '../../trainer/src/model/classifiers.js';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import { evaluateScores, type ClassificationMetrics } from '../../trainer/src/stats/metrics.js';
import { selectKBest } from '../../trainer/src/stats/ftest.js';
import { fitClassifier } from '../../trainer/src/train/classifiers.js';
import { pruneStep } from '../../trainer/src/train/prune-step.js';
import {
  bundleClassifierFor,
  chooseDeployed,
  chooseK,
  DEPLOYABLE_BY_DEFAULT,
  kEvaluationSplit,
  pickColumns,
  scoreFeatures,
  selectStep,
  type ClassifierResult,
} from '../../trainer/src/train/select-step.js';
import { imageSet, tinyClassifier } from './step-models.js';

before(async () => {
  await initBackend('cpu');
});

/** Feature 0 separates the classes sharply on train and val but is noise on test, where feature 1 carries them. */
function protocolRows() {
  const rand = mulberry32(7);
  const noise = () => rand() - 0.5;
  const rows = (n: number, f0: boolean) => {
    const y = Array.from({ length: n }, (_, i) => i % 2);
    return { y, X: y.map((c) => [f0 ? c + 0.1 * noise() : noise(), c + 0.8 * noise(), noise()]) };
  };
  return { train: rows(40, true), val: rows(20, true), test: rows(20, false) };
}

test('k is scored on validation, or on test under the paper protocol; ties go to the smaller k', () => {
  const { train, val, test } = protocolRows();
  assert.equal(kEvaluationSplit('validation', { val, test }), val);
  assert.equal(kEvaluationSplit('paper', { val, test }), test);
  const F = scoreFeatures(train);
  assert.ok(F[0] > F[1] && F[1] > F[2], `F ${Array.from(F)}`);
  const onVal = chooseK(F, train, kEvaluationSplit('validation', { val, test }));
  // Every k separates the validation rows: the smallest wins.
  assert.deepEqual(onVal.sweep.map((s) => s.score), [1, 1, 1]);
  assert.equal(onVal.k, 1);
  assert.deepEqual(onVal.columns, [0]);
  const onTest = chooseK(F, train, kEvaluationSplit('paper', { val, test }));
  assert.equal(onTest.k, 2, JSON.stringify(onTest.sweep));
  assert.deepEqual(onTest.columns, [0, 1]);
  assert.deepEqual(pickColumns([[1, 2, 3], [4, 5, 6]], [2, 0]), [[3, 1], [6, 4]]);
});

function result(kind: ClassifierKind, accuracy: number, macroF1: number): ClassifierResult {
  const m = { accuracy, macroF1 } as ClassificationMetrics;
  return { kind, val: m, test: m, fitSeconds: 0 };
}

test("'auto' deploys the best validation accuracy among the calibrated classifiers; ties by macro-F1, then order", () => {
  const results = [
    result('svm-poly', 0.8, 0.7),
    result('svm-rbf', 0.8, 0.75),
    result('svm-linear', 0.8, 0.75),
    result('logistic', 0.7, 0.9),
    result('knn', 0.95, 0.95),
    result('random-forest', 0.9, 0.9),
  ];
  assert.equal(chooseDeployed(results, 'auto'), 'svm-rbf', 'k-NN and the forest are not deployed by default; svm-rbf before svm-linear');
  assert.equal(chooseDeployed([...results].reverse(), 'auto'), 'svm-linear', 'a full tie goes to the earlier result');
  assert.equal(chooseDeployed(results, 'knn'), 'knn', 'an explicit choice wins');
  assert.equal(chooseDeployed(results, 'auto', ['logistic', 'knn']), 'knn');
  assert.throws(() => chooseDeployed(results.slice(4), 'auto'), /none of/);
  assert.deepEqual([...DEPLOYABLE_BY_DEFAULT], ['svm-poly', 'svm-rbf', 'svm-linear', 'logistic']);
});

test('the bundle carries a logistic explainer only for a classifier without a score function', () => {
  const X = [[0], [0.1], [1], [1.1], [0.05], [1.05]];
  const y = [0, 0, 1, 1, 0, 1];
  const fitted = new Map<ClassifierKind, ClassifierJSON>(
    (['logistic', 'svm-rbf', 'knn'] as const).map((k) => [k, fitClassifier(k, X, y, { seed: 1, probability: true })]),
  );
  const svm = bundleClassifierFor('svm-rbf', fitted);
  assert.equal(svm.deployed.kind, 'svm-rbf');
  assert.equal(svm.explainer, undefined);
  const knn = bundleClassifierFor('knn', fitted);
  assert.equal(knn.deployed.kind, 'knn');
  assert.equal(knn.explainer?.kind, 'logistic');
  assert.throws(() => bundleClassifierFor('svm-poly', fitted), /not fitted/);
});

test('selectStep: score -> choose k -> fit -> deploy on a pruned model', async () => {
  const sets = { train: imageSet(40, 1, 127), val: imageSet(20, 2), test: imageSet(20, 3) };
  const model = tinyClassifier();
  const pr = await pruneStep(model, sets, { varianceThreshold: 0, deadMargin: 1, protect: [] });
  assert.deepEqual(pr.result.keptFeatures, [1, 2, 3]);
  const lines: string[] = [];
  const classes = ['A', 'B'];
  const { compressed, classifier, result } = selectStep(pr.pruned, sets, { kept: pr.result.keptFeatures, total: 4 }, {
    protocol: 'validation',
    classifier: 'auto',
    classes,
    positiveClass: 'B',
    seed: 3,
    log: (l) => lines.push(l),
  });
  // Unit 2 reads the pixel the label is drawn from: the best F score, always selected.
  const best = result.fScores.indexOf(Math.max(...result.fScores.filter(Number.isFinite)));
  assert.equal(pr.result.keptFeatures[best], 2);
  const top = result.sweep.reduce((a, s) => (s.score > a.score || (s.score === a.score && s.k < a.k) ? s : a));
  assert.equal(result.k, top.k, JSON.stringify(result.sweep));
  assert.equal(result.selected.length, result.k);
  assert.deepEqual(result.selected, selectKBest(result.fScores, result.k).map((j) => pr.result.keptFeatures[j]), 'indices into the fine-tuned fc2');
  assert.ok(result.selected.includes(2));
  assert.equal(result.totalFeatures, 4);
  assert.equal(result.classifiers.length, 6);
  assert.ok(DEPLOYABLE_BY_DEFAULT.includes(result.deployed));
  assert.equal(classifier.deployed.kind, result.deployed);
  assert.deepEqual(compressed.outputs[0].shape, [null, result.k], 'the compressed model outputs the selected features');
  assert.equal(result.compressedParams, compressed.countParams());
  assert.equal(result.testProbabilities.length, sets.test.size);
  assert.deepEqual(result.compressed, evaluateScores(sets.test.labels, result.testProbabilities, classes, 'B'));
  assert.ok(result.compressed.accuracy > 0.7, `accuracy ${result.compressed.accuracy}`);
  assert.ok(lines.some((l) => /sweeping k on the validation split/.test(l)));
  assert.ok(lines.some((l) => l.startsWith(`deployed classifier: ${result.deployed} (best on validation`)));
  [model, pr.pruned, compressed].forEach((m) => m.dispose());
});
