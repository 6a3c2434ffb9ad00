import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rocAuc, rocCurve } from '../../trainer/src/stats/metrics.js';

test('rocAuc handles ties by average ranks and empty classes as NaN', () => {
  assert.equal(rocAuc([0, 1], [0.5, 0.5]), 0.5);
  assert.equal(rocAuc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 0.75);
  assert.ok(Number.isNaN(rocAuc([1, 1], [0.2, 0.3])));
});

test('rocCurve runs from (0,0) to (1,1) with decreasing thresholds and its area equals rocAuc', () => {
  const y = [0, 0, 1, 1, 0, 1, 1, 0];
  const s = [0.1, 0.4, 0.35, 0.8, 0.4, 0.9, 0.4, 0.05];
  const { fpr, tpr, thresholds } = rocCurve(y, s);
  assert.deepEqual([fpr[0], tpr[0], fpr.at(-1), tpr.at(-1)], [0, 0, 1, 1]);
  for (let i = 1; i < thresholds.length; i++) assert.ok(thresholds[i] < thresholds[i - 1]);
  let area = 0;
  for (let i = 1; i < fpr.length; i++) area += ((fpr[i] - fpr[i - 1]) * (tpr[i] + tpr[i - 1])) / 2;
  assert.ok(Math.abs(area - rocAuc(y, s)) < 1e-12);
});
