import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fClassif, fSurvival, lnGamma, regularizedBeta, selectKBest } from '../../trainer/src/stats/ftest.js';
import { coarseStep, sweepK } from '../../trainer/src/train/kselect.js';

function closeRel(actual: number, expected: number, tol: number, what: string): void {
  if (Number.isNaN(expected)) return assert.ok(Number.isNaN(actual), `${what}: expected NaN, got ${actual}`);
  if (!Number.isFinite(expected)) return assert.equal(actual, expected, what);
  const err = Math.abs(actual - expected);
  assert.ok(err <= tol * Math.max(Math.abs(expected), Math.abs(actual)), `${what}: ${actual} vs ${expected}`);
}

test('fClassif accepts Float32Array rows and any label values', () => {
  const X = [[1, 5], [2, 5], [3, 6], [4, 7]].map((r) => Float32Array.from(r));
  const { F } = fClassif(X, [9, 9, 4, 4]);
  // Column 0: group means 1.5 / 3.5, within SS = 1, between SS = 4 -> F = (4/1)/(1/2) = 8.
  assert.ok(Math.abs(F[0] - 8) < 1e-12);
  assert.throws(() => fClassif(X, [1, 1, 1, 1]), /at least two classes/);
});

test('selectKBest: NaN ranks lowest, ties keep the higher index, output ascending', () => {
  assert.deepEqual(selectKBest([8, 8, 8, Infinity], 2), [2, 3]);
  assert.deepEqual(selectKBest([NaN, 1, NaN, 0.5], 3), [1, 2, 3]);
  assert.deepEqual(selectKBest([5, 1, 9, 3], 0), []);
  assert.throws(() => selectKBest([1, 2], 3));
});

test('lnGamma and the incomplete beta agree with closed forms', () => {
  // Gamma(n) = (n-1)!, Gamma(1/2) = sqrt(pi)
  closeRel(lnGamma(5), Math.log(24), 1e-14, 'lnGamma(5)');
  closeRel(lnGamma(0.5), 0.5 * Math.log(Math.PI), 1e-14, 'lnGamma(0.5)');
  // values of Python's math.lgamma
  closeRel(lnGamma(171.5), 709.1431630309282, 1e-14, 'lnGamma(171.5)');
  closeRel(lnGamma(3.2), 0.8854048271549084, 1e-14, 'lnGamma(3.2)');
  closeRel(lnGamma(1e-3), 6.907178885383854, 1e-14, 'lnGamma(1e-3)');
  // I_x(a, 1) = x^a and I_x(1, b) = 1 - (1-x)^b
  closeRel(regularizedBeta(3.5, 1, 0.3), Math.pow(0.3, 3.5), 1e-13, 'I_x(a,1)');
  closeRel(regularizedBeta(1, 4.5, 0.8), 1 - Math.pow(0.2, 4.5), 1e-13, 'I_x(1,b)');
  // F(2, d2) survival is (1 + 2f/d2)^(-d2/2)
  closeRel(fSurvival(3, 2, 40), Math.pow(1 + (2 * 3) / 40, -20), 1e-12, 'F(2,40) sf');
  assert.equal(fSurvival(0, 2, 10), 1);
  assert.equal(fSurvival(Infinity, 2, 10), 0);
});

test('sweepK: coarse pass every step (n included), then every k in the best window; ties -> smallest k', () => {
  const n = 256;
  const F = Float64Array.from({ length: n }, (_, j) => n - j + (j % 3) * 0.1); // a known ranking
  const calls: number[] = [];
  const peak = 37;
  const fit = (cols: number[]) => {
    assert.deepEqual(cols, selectKBest(F, cols.length), 'fit gets the top-k columns');
    calls.push(cols.length);
    return -Math.abs(cols.length - peak);
  };
  const r = sweepK(F, fit, { fineStep: 1 });
  assert.equal(coarseStep(n), 26);
  assert.equal(r.k, peak);
  const coarse = [26, 52, 78, 104, 130, 156, 182, 208, 234, 256];
  assert.deepEqual(calls.slice(0, coarse.length), coarse);
  // Best coarse k is 26 (score -11) -> window 1..51, every k once.
  assert.deepEqual(new Set(calls), new Set([...coarse, ...Array.from({ length: 51 }, (_, i) => i + 1)]));
  assert.equal(calls.length, new Set(calls).size, 'no k evaluated twice');
  assert.equal(r.sweep.length, calls.length);

  // Constant score: the smallest k wins.
  assert.equal(sweepK(F, () => 0.5, { fineStep: 1 }).k, 1);
  // Without the fine pass only coarse ks are tried.
  assert.equal(sweepK(F, fit, { fine: false }).k, 26);
  assert.equal(coarseStep(4096), 100);
});

test("sweepK 'auto' refines hierarchically: same optimum on a unimodal curve with far fewer fits", () => {
  const n = 4096;
  const F = Float64Array.from({ length: n }, (_, j) => -j);
  const fit = (cols: number[]) => -Math.abs(cols.length - 1234);
  const full = sweepK(F, fit, { fineStep: 1 });
  const auto = sweepK(F, fit);
  assert.equal(full.k, 1234);
  assert.equal(auto.k, 1234);
  assert.ok(auto.sweep.length < full.sweep.length / 2, `${auto.sweep.length} vs ${full.sweep.length} fits`);
});

