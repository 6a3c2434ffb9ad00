// The out-of-distribution guard: its score is the Mahalanobis distance it claims to be, its threshold accepts
// the asked fraction of validation data, points off the training distribution are flagged, and its binary
// form reads back bit for bit.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { decodeOodGuard, encodeOodGuard, fitOodGuard, oodGuardHeader, oodScore, oodVerdict, quantile } from '../../trainer/src/model/ood.js';
import { mulberry32 } from '../../trainer/src/data/rng.js';

await tf.setBackend('cpu');

function gaussian(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** Two classes in `d` dims: class means apart along axis 0, variance 9 along axes 1..3, 1 elsewhere. */
function sample(n: number, d: number, seed: number): { x: number[][]; y: number[] } {
  const r = mulberry32(seed);
  const x: number[][] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % 2;
    x.push(Array.from({ length: d }, (_, j) => (j === 0 ? 4 * c : 0) + (j >= 1 && j <= 3 ? 3 : 1) * gaussian(r)));
    y.push(c);
  }
  return { x, y };
}

describe('out-of-distribution guard', () => {
  const d = 20;
  const train = sample(4000, d, 1);
  const val = sample(2000, d, 2);
  const guard = fitOodGuard('feat', train.x, train.y, val.x, { components: 3, acceptance: 0.95 });

  test('finds the high-variance directions and the residual variance', () => {
    assert.equal(guard.components.length, 3);
    for (const v of guard.variances) assert.ok(Math.abs(v - 9) < 1, `variance ${v}`);
    assert.ok(Math.abs(guard.residualVariance - 1) < 0.1, `residual ${guard.residualVariance}`);
    // The directions span axes 1..3.
    for (const v of guard.components) {
      const inPlane = v[1] ** 2 + v[2] ** 2 + v[3] ** 2;
      assert.ok(inPlane > 0.95, `component outside the planted plane (${inPlane})`);
    }
  });

  test('scores as the exact Mahalanobis distance to the nearest class mean', () => {
    const x = Array.from({ length: d }, (_, j) => (j === 2 ? 3 : j === 10 ? 2 : 0.5));
    // Exact distance under the fitted model, assembled independently: project, scale, add the residual.
    const expected = Math.min(
      ...guard.means.map((m) => {
        const diff = x.map((v, j) => v - m[j]);
        const p = guard.components.map((c) => c.reduce((s, cj, j) => s + cj * diff[j], 0));
        const total = diff.reduce((s, v) => s + v * v, 0);
        const proj = p.reduce((s, v) => s + v * v, 0);
        return p.reduce((s, v, k) => s + (v * v) / guard.variances[k], 0) + (total - proj) / guard.residualVariance;
      }),
    );
    assert.ok(Math.abs(oodScore(guard, x) - expected) < 1e-3 * expected);
  });

  test('accepts the asked fraction of new in-distribution data and flags what lies off it', () => {
    const fresh = sample(4000, d, 3);
    const flagged = fresh.x.filter((x) => oodVerdict(guard, x).flagged).length / fresh.x.length;
    assert.ok(flagged > 0.03 && flagged < 0.07, `flagged ${flagged} of in-distribution data`);
    // Off the distribution: large along a low-variance axis, or everything shifted.
    const r = mulberry32(4);
    const off = Array.from({ length: 200 }, (_, i) => Array.from({ length: d }, (_, j) => gaussian(r) + (i % 2 ? (j === 15 ? 8 : 0) : 2)));
    assert.ok(off.every((x) => oodVerdict(guard, x).flagged));
    assert.equal(oodVerdict(guard, guard.means[0]).flagged, false, 'a class mean itself is in distribution');
  });

  test('reads back from its binary form unchanged', () => {
    const back = decodeOodGuard(oodGuardHeader(guard), encodeOodGuard(guard));
    assert.deepEqual(back, guard);
    assert.throws(() => decodeOodGuard(oodGuardHeader(guard), encodeOodGuard(guard).slice(4)), /expected/);
  });

  test('quantiles interpolate between order statistics', () => {
    assert.equal(quantile([4, 1, 3, 2, 5], 0.5), 3);
    assert.ok(Math.abs(quantile([1, 2, 3, 4], 0.95) - 3.85) < 1e-12);
    assert.ok(Number.isNaN(quantile([], 0.5)));
  });
});
