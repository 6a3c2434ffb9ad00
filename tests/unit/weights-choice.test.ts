// The rule that picks a bundle's weight encoding on validation: the candidate may cost at most 0.5 pt.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acceptCandidate, compareAnswers } from '../../trainer/src/train/weights-choice.js';

test('compareAnswers counts accuracies, changed answers and the largest probability change', () => {
  const labels = [0, 1, 1, 0];
  const ref = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]];
  const cand = [[0.85, 0.15], [0.3, 0.7], [0.45, 0.55], [0.7, 0.3]];
  const c = compareAnswers(ref, cand, labels);
  assert.equal(c.n, 4);
  assert.equal(c.accuracyFallback, 0.75);
  assert.equal(c.accuracyCandidate, 1);
  assert.equal(c.changed, 1);
  assert.ok(Math.abs(c.maxAbsDiff - 0.15) < 1e-12);
});

test('acceptCandidate allows a loss of 0.5 pt and no more', () => {
  assert.ok(acceptCandidate({ accuracyFallback: 0.96, accuracyCandidate: 0.96 }));
  assert.ok(acceptCandidate({ accuracyFallback: 0.96, accuracyCandidate: 0.97 }));
  // 2 of 480 images: 0.42 pt.
  assert.ok(acceptCandidate({ accuracyFallback: 0.9604, accuracyCandidate: 0.9604 - 2 / 480 }));
  // 3 of 480 images: 0.63 pt.
  assert.ok(!acceptCandidate({ accuracyFallback: 0.9604, accuracyCandidate: 0.9604 - 3 / 480 }));
});
