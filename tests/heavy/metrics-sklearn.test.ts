// Classification metrics against scikit-learn's (accuracy, precision, recall, F1, confusion, ROC AUC): needs Python 3
// with scikit-learn.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateScores } from '../../trainer/src/stats/metrics.js';
import { gaussian, rng, sklearnRef } from '../helpers/sklearn.js';

interface Ref {
  accuracy: number;
  precision: number[];
  recall: number[];
  f1: number[];
  support: number[];
  macroF1: number;
  confusion: number[][];
  aucPerClass: number[];
  aucMacro: number;
}

/** Noisy softmax scores for y; scores are rounded to 2 decimals so that many ties occur. */
function makeScores(y: number[], k: number, seed: number, neverPredict?: number): number[][] {
  const g = gaussian(rng(seed));
  return y.map((c) => {
    const logits = Array.from({ length: k }, (_, j) => (j === c ? 1 : 0) + 1.2 * g() - (j === neverPredict ? 50 : 0));
    const m = Math.max(...logits);
    const e = logits.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => Math.round((100 * v) / s) / 100);
  });
}

function compare(y: number[], scores: number[][], classes: string[]): void {
  const ref = sklearnRef<Ref>('metrics', { y, scores });
  const m = evaluateScores(y, scores, classes);
  const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-12, `${what}: ${a} vs ${b}`);
  near(m.accuracy, ref.accuracy, 'accuracy');
  near(m.macroF1, ref.macroF1, 'macro F1');
  assert.deepEqual(m.confusion, ref.confusion);
  classes.forEach((c, i) => {
    near(m.perClass[c].precision, ref.precision[i], `precision ${c}`);
    near(m.perClass[c].recall, ref.recall[i], `recall ${c}`);
    near(m.perClass[c].f1, ref.f1[i], `f1 ${c}`);
    assert.equal(m.perClass[c].support, ref.support[i]);
    near(m.auc.perClass[c], ref.aucPerClass[i], `auc ${c}`);
  });
  near(m.auc.macro, ref.aucMacro, 'macro AUC');
  assert.equal(m.n, y.length);
}

test('3-class metrics match sklearn, including a never-predicted class (zero division) and tied scores', () => {
  const u = rng(11);
  const y = Array.from({ length: 240 }, () => (u() < 0.5 ? 0 : u() < 0.6 ? 1 : 2));
  const classes = ['COVID', 'Normal', 'Lung_Opacity'];
  const scores = makeScores(y, 3, 5, 2);
  const m = evaluateScores(y, scores, classes);
  assert.equal(m.perClass.Lung_Opacity.precision, 0, 'never predicted -> precision 0');
  assert.equal(m.covidSensitivity, m.perClass.COVID.recall);
  compare(y, scores, classes);
});

test('binary metrics match sklearn (roc_auc_score on the positive column)', () => {
  const u = rng(12);
  const y = Array.from({ length: 300 }, () => (u() < 0.3 ? 1 : 0));
  compare(y, makeScores(y, 2, 6), ['Normal', 'COVID']);
  assert.equal(evaluateScores(y, makeScores(y, 2, 6), ['A', 'B']).covidSensitivity, undefined);
});

