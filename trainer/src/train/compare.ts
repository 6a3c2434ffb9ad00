// Paired comparison of experiments that share a test split: the same test images, classified by two pipelines
// (another compression rule, another k, the same rule on another fine-tuning), compared image by image with
// McNemar's exact test, and pooled over several such pairs (one per split seed). A test split of 600 images
// cannot tell half a point apart; a paired test over several splits can, and says when it cannot. `ID@softmax`
// stands for that experiment's fine-tuned network itself (its softmax, before any pruning or selection): the
// reference "the compression must not cost accuracy" is measured against.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { argmax } from '../stats/metrics.js';
import { mcnemarExact } from '../stats/mcnemar.js';
import { readJson, type ExperimentState } from './experiment.js';

/** One experiment's answers on its test split. */
export interface TestAnswers {
  id: string;
  /** Test image paths, in split order. */
  paths: string[];
  labels: number[];
  /** The fine-tuned network's softmax, right or wrong per test image. */
  fineTuned: boolean[];
  /** The deployed pipeline (compressed network + selected features + classifier), right or wrong per image. */
  deployed: boolean[];
  /** Parameters of the compressed network, selected features and deployed classifier. */
  params: number;
  k: number;
  classifier: string;
}

export interface PairComparison {
  reference: TestAnswers;
  candidate: TestAnswers;
  /** Test images the candidate gets right and the reference wrong, and the reverse. */
  candidateOnly: number;
  referenceOnly: number;
  p: number;
}

export interface Comparison {
  pairs: PairComparison[];
  /** All pairs' test images together. */
  pooled: { n: number; reference: number; candidate: number; fineTuned: number; candidateOnly: number; referenceOnly: number; p: number };
}

const count = (xs: boolean[]) => xs.filter(Boolean).length;

interface SplitSample {
  path: string;
  label: number;
}

export const SOFTMAX_SUFFIX = '@softmax';

/**
 * The test answers an experiment recorded (its select step done), or an error naming what is missing. With the
 * '@softmax' suffix: the fine-tuned network's own answers, as the deployed ones.
 */
export function readTestAnswers(experimentsDir: string, name: string): TestAnswers {
  const softmax = name.endsWith(SOFTMAX_SUFFIX);
  const id = softmax ? name.slice(0, -SOFTMAX_SUFFIX.length) : name;
  const file = join(resolve(experimentsDir), id, 'state.json');
  if (!existsSync(file)) throw new Error(`compare: no experiment '${id}' (no ${file})`);
  const state = readJson<ExperimentState>(file);
  const data = state.steps.data?.result as { split?: { test?: SplitSample[] } } | undefined;
  const train = state.steps.train?.result as { testScores?: number[][]; params?: number } | undefined;
  const select = state.steps.select?.result as { testProbabilities?: number[][]; compressedParams?: number; k?: number; deployed?: string } | undefined;
  const test = data?.split?.test;
  if (!test || !train?.testScores || !select?.testProbabilities) {
    throw new Error(`compare: experiment '${id}' has not finished its select step (run: zerovar select --experiment_id ${id} ...)`);
  }
  const labels = test.map((s) => s.label);
  const right = (rows: number[][]) => rows.map((r, i) => argmax(r) === labels[i]);
  const fineTuned = right(train.testScores);
  return {
    id: name,
    paths: test.map((s) => s.path),
    labels,
    fineTuned,
    ...(softmax
      ? { deployed: fineTuned, params: train.params ?? 0, k: 0, classifier: 'softmax' }
      : { deployed: right(select.testProbabilities), params: select.compressedParams ?? 0, k: select.k ?? 0, classifier: select.deployed ?? '' }),
  };
}

/** Compares each [reference, candidate] pair on their shared test split, and all pairs pooled. */
export function compareExperiments(pairs: readonly (readonly [string, string])[], experimentsDir: string): Comparison {
  if (pairs.length === 0) throw new Error('compare: give at least one REFERENCE:CANDIDATE pair');
  const out: PairComparison[] = pairs.map(([r, c]) => {
    const reference = readTestAnswers(experimentsDir, r);
    const candidate = readTestAnswers(experimentsDir, c);
    const same = reference.paths.length === candidate.paths.length && reference.paths.every((p, i) => p === candidate.paths[i]);
    if (!same) throw new Error(`compare: '${r}' and '${c}' were not tested on the same split (another seed or dataset); pair experiments that share one`);
    const candidateOnly = candidate.deployed.filter((ok, i) => ok && !reference.deployed[i]).length;
    const referenceOnly = reference.deployed.filter((ok, i) => ok && !candidate.deployed[i]).length;
    return { reference, candidate, candidateOnly, referenceOnly, p: mcnemarExact(candidateOnly, referenceOnly) };
  });
  const sum = (f: (p: PairComparison) => number) => out.reduce((a, p) => a + f(p), 0);
  const candidateOnly = sum((p) => p.candidateOnly);
  const referenceOnly = sum((p) => p.referenceOnly);
  return {
    pairs: out,
    pooled: {
      n: sum((p) => p.reference.labels.length),
      reference: sum((p) => count(p.reference.deployed)),
      candidate: sum((p) => count(p.candidate.deployed)),
      fineTuned: sum((p) => count(p.reference.fineTuned)),
      candidateOnly,
      referenceOnly,
      p: mcnemarExact(candidateOnly, referenceOnly),
    },
  };
}

const pValue = (p: number) => (p < 0.001 ? 'p < 0.001' : `p = ${p.toFixed(3)}`);

/** The comparison as the lines `zerovar compare` prints. */
export function comparisonLines(c: Comparison): string[] {
  const acc = (k: number, n: number) => (k / n).toFixed(4);
  const model = (t: TestAnswers) =>
    `${t.id} (${t.params.toLocaleString('en-US')} parameters, ${t.classifier === 'softmax' ? 'fine-tuned softmax' : `k ${t.k}, ${t.classifier}`})`;
  const lines = c.pairs.map((p) => {
    const n = p.reference.labels.length;
    return (
      `${model(p.reference)} ${acc(count(p.reference.deployed), n)} vs ${model(p.candidate)} ${acc(count(p.candidate.deployed), n)} on ${n} test images ` +
      `(fine-tuned softmax ${acc(count(p.reference.fineTuned), n)}): right only by the candidate ${p.candidateOnly}, only by the reference ${p.referenceOnly}, McNemar ${pValue(p.p)}`
    );
  });
  const q = c.pooled;
  if (c.pairs.length > 1) {
    lines.push(
      `pooled, ${q.n} test images: reference ${acc(q.reference, q.n)}, candidate ${acc(q.candidate, q.n)}, fine-tuned softmax ${acc(q.fineTuned, q.n)}; ` +
        `right only by the candidate ${q.candidateOnly}, only by the reference ${q.referenceOnly}, McNemar ${pValue(q.p)}`,
    );
  }
  return lines;
}
