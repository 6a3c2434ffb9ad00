// zerovar compare: McNemar's exact test, and the paired comparison of experiments read from their state.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mcnemarExact } from '../../trainer/src/stats/mcnemar.js';
import { compareExperiments, comparisonLines } from '../../trainer/src/train/compare.js';

test("McNemar's exact test: the binomial tail doubled, symmetric, 1 without discordant pairs, finite for large counts", () => {
  // 2 against 16 of 18: 2 * (C(18,0) + C(18,1) + C(18,2)) / 2^18.
  assert.ok(Math.abs(mcnemarExact(2, 16) - (2 * (1 + 18 + 153)) / 2 ** 18) < 1e-12);
  assert.equal(mcnemarExact(16, 2), mcnemarExact(2, 16));
  assert.equal(mcnemarExact(0, 0), 1);
  assert.equal(mcnemarExact(5, 5), 1); // capped: the doubled tail passes 1
  assert.ok(Math.abs(mcnemarExact(0, 3) - 0.25) < 1e-12);
  const big = mcnemarExact(900, 1100);
  assert.ok(big > 0 && big < 1e-4, String(big));
});

/** An experiment folder with a finished select step: `right[i]` says whether the deployed pipeline got image i. */
function experiment(root: string, id: string, paths: string[], labels: number[], deployedRight: boolean[], fineTunedRight: boolean[]): void {
  const row = (label: number, ok: boolean) => (label === (ok ? 0 : 1) ? [0.9, 0.1] : [0.1, 0.9]);
  const state = {
    id,
    createdAt: '2026-12-02T00:00:00.000Z',
    options: {},
    steps: {
      data: { finishedAt: '', seconds: 0, result: { split: { test: paths.map((path, i) => ({ path, className: String(labels[i]), label: labels[i] })) } } },
      train: { finishedAt: '', seconds: 0, result: { testScores: labels.map((l, i) => row(l, fineTunedRight[i])), params: 5678 } },
      select: { finishedAt: '', seconds: 0, result: { testProbabilities: labels.map((l, i) => row(l, deployedRight[i])), compressedParams: 1234, k: 7, deployed: 'logistic' } },
    },
  };
  mkdirSync(join(root, id), { recursive: true });
  writeFileSync(join(root, id, 'state.json'), JSON.stringify(state));
}

test('compare: pairs on the same split image by image, pools the pairs, and refuses pairs on different splits or unfinished ones', () => {
  const root = mkdtempSync(join(tmpdir(), 'zerovar-compare-'));
  try {
    const paths = ['a.png', 'b.png', 'c.png', 'd.png', 'e.png'];
    const labels = [0, 1, 0, 1, 1];
    experiment(root, 'ref1', paths, labels, [true, true, false, true, true], [true, true, true, true, false]);
    experiment(root, 'cand1', paths, labels, [true, false, true, false, true], [true, true, true, true, false]);
    experiment(root, 'ref2', paths, labels, [true, true, true, true, true], [true, true, true, true, true]);
    experiment(root, 'cand2', paths, labels, [false, true, true, true, true], [true, true, true, true, true]);
    const c = compareExperiments([['ref1', 'cand1'], ['ref2', 'cand2']], root);
    assert.deepEqual([c.pairs[0].candidateOnly, c.pairs[0].referenceOnly], [1, 2]);
    assert.deepEqual([c.pairs[1].candidateOnly, c.pairs[1].referenceOnly], [0, 1]);
    assert.deepEqual({ ...c.pooled, p: undefined }, { n: 10, reference: 9, candidate: 7, fineTuned: 9, candidateOnly: 1, referenceOnly: 3, p: undefined });
    assert.equal(c.pooled.p, mcnemarExact(1, 3));
    const lines = comparisonLines(c);
    assert.equal(lines.length, 3);
    assert.match(lines[0], /ref1 \(1,234 parameters, k 7, logistic\) 0\.8000 vs cand1 .* 0\.6000 on 5 test images \(fine-tuned softmax 0\.8000\)/);
    assert.match(lines[2], /^pooled, 10 test images: reference 0\.9000, candidate 0\.7000/);

    // ID@softmax: the experiment's fine-tuned network as the reference (ref1's softmax misses image e only).
    const s = compareExperiments([['ref1@softmax', 'cand1']], root);
    assert.deepEqual([s.pairs[0].candidateOnly, s.pairs[0].referenceOnly], [1, 2]); // cand1 gets e, misses b and d
    assert.equal(s.pairs[0].reference.classifier, 'softmax');
    assert.match(comparisonLines(s)[0], /^ref1@softmax \(5,678 parameters, fine-tuned softmax\) 0\.8000 vs cand1/);

    experiment(root, 'other-split', ['x.png', ...paths.slice(1)], labels, labels.map(() => true), labels.map(() => true));
    assert.throws(() => compareExperiments([['ref1', 'other-split']], root), /not tested on the same split/);
    mkdirSync(join(root, 'unfinished'));
    writeFileSync(join(root, 'unfinished', 'state.json'), JSON.stringify({ id: 'unfinished', createdAt: '', options: {}, steps: {} }));
    assert.throws(() => compareExperiments([['ref1', 'unfinished']], root), /has not finished its select step/);
    assert.throws(() => compareExperiments([['ref1', 'missing']], root), /no experiment 'missing'/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
