// The F-test against scikit-learn's f_classif (needs Python 3 with scikit-learn), and the paper's k sweep with its SVM
// on synthetic features (seconds of SVM fitting).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fClassif, selectKBest } from '../../trainer/src/stats/ftest.js';
import { sweepKWithSvm } from '../../trainer/src/train/kselect.js';
import { gaussian, rng, sklearnRef } from '../helpers/sklearn.js';

function closeRel(actual: number, expected: number, tol: number, what: string): void {
  if (Number.isNaN(expected)) return assert.ok(Number.isNaN(actual), `${what}: expected NaN, got ${actual}`);
  if (!Number.isFinite(expected)) return assert.equal(actual, expected, what);
  const err = Math.abs(actual - expected);
  assert.ok(err <= tol * Math.max(Math.abs(expected), Math.abs(actual)), `${what}: ${actual} vs ${expected}`);
}

/** 3 classes of 30/50/70 samples (shuffled) and columns meant to stress the statistic. */
function stressData() {
  const u = rng(7);
  const g = gaussian(u);
  const y: number[] = [];
  for (const [c, m] of [[0, 30], [1, 50], [2, 70]]) for (let i = 0; i < m; i++) y.push(c);
  for (let i = y.length - 1; i > 0; i--) {
    const j = Math.floor(u() * (i + 1));
    [y[i], y[j]] = [y[j], y[i]];
  }
  const shifts = [0, 0.05, 0.2, 0.5, 1, 2, 5, 12];
  const X = y.map((c, i) => {
    const row = [
      3.5, // constant: F and p are NaN
      i === 17 ? 1 : 0, // near-constant: a single sample differs
      c, // constant within each class: F = +Infinity, p = 0
      100 + c + g(), // large offset
      1e-3 * (g() + c), // small scale
    ];
    for (const s of shifts) row.push(s * c + g());
    for (const s of shifts) row.push(s * (c === 1 ? 1 : 0) + 3 * g());
    row.push(row[row.length - 1]); // a duplicate column: tied scores
    return row;
  });
  return { X, y };
}

test('fClassif matches sklearn f_classif (F and p, NaN and Infinity included)', () => {
  const { X, y } = stressData();
  const ks = [1, 3, 7, 12, X[0].length];
  const ref = sklearnRef<{ F: number[]; p: number[]; selected: Record<string, number[]> }>('f_classif', { X, y, ks });
  const { F, p } = fClassif(X, y);
  assert.equal(F.length, ref.F.length);
  assert.ok(Number.isNaN(ref.F[0]) && ref.F[2] === Infinity, 'the reference has the NaN and Infinity cases');
  assert.ok(ref.p.some((v) => v > 0 && v < 1e-100), 'the reference has a very small p-value');
  for (let j = 0; j < F.length; j++) {
    closeRel(F[j], ref.F[j], 1e-9, `F[${j}]`);
    closeRel(p[j], ref.p[j], 1e-9, `p[${j}]`);
  }
  for (const k of ks) assert.deepEqual(selectKBest(F, k), ref.selected[String(k)], `SelectKBest k=${k}`);
});

test('sweepKWithSvm picks a k that keeps the informative features and scores the paper SVM', () => {
  const u = rng(5);
  const g = gaussian(u);
  const make = (m: number) => {
    const y = Array.from({ length: m }, (_, i) => i % 2);
    // 4 informative columns among 30 noise columns
    const X = y.map((c) => Array.from({ length: 34 }, (_, j) => (j < 4 ? 1.2 * c : 0) + g()));
    return { X, y };
  };
  const tr = make(200);
  const va = make(100);
  const { F } = fClassif(tr.X, tr.y);
  const r = sweepKWithSvm(tr.X, tr.y, va.X, va.y, F, { fineStep: 1 });
  const best = r.sweep.find((s) => s.k === r.k)!.score;
  const all = r.sweep.find((s) => s.k === 34)!.score;
  assert.ok(r.k <= 12, `best k ${r.k}`);
  assert.ok(best >= all, 'the selected k is at least as good as all features');
  assert.ok(best > 0.8, `validation accuracy ${best}`);
  // Each score is the accuracy on the 100 validation rows: a whole number of them.
  for (const s of r.sweep) assert.ok(Math.abs(s.score * 100 - Math.round(s.score * 100)) < 1e-9, `k ${s.k}: score ${s.score}`);
});
