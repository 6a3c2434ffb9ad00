// Seeded, class-stratified, patient-grouped train/validation/test split (64/16/20 by default, as in the paper).
import { deriveSeed, mulberry32, shuffled } from './rng.js';

export interface SplitOptions {
  seed?: number;
  /** train, validation, test; non-negative, summing to 1. */
  fractions?: [number, number, number];
}

export interface Split<T> {
  train: T[];
  val: T[];
  test: T[];
}

export const PAPER_FRACTIONS: readonly [number, number, number] = [0.64, 0.16, 0.2];

interface Group {
  key: string;
  members: number[]; // indices into the samples
  label: number;
}

/**
 * Splits samples so that every patient's images land in one split (samples without a patient id are their own
 * group), each class is spread over the splits in the given fractions (patients stratified by their majority
 * label), and the same seed always gives the same split. Samples keep their input order inside each split.
 */
export function splitDataset<T extends { label: number; patientId?: string }>(
  samples: T[],
  opts: SplitOptions = {},
): Split<T> {
  const seed = opts.seed ?? 42;
  const fractions = opts.fractions ?? [...PAPER_FRACTIONS];
  if (
    fractions.length !== 3 ||
    fractions.some((f) => !(f >= 0)) ||
    Math.abs(fractions[0] + fractions[1] + fractions[2] - 1) > 1e-6
  ) {
    throw new Error(`split fractions must be three non-negative numbers summing to 1, got ${JSON.stringify(fractions)}`);
  }

  // Group by patient, in first-appearance order so that the grouping itself does not depend on the seed.
  const byKey = new Map<string, number[]>();
  samples.forEach((s, i) => {
    const key = s.patientId !== undefined && s.patientId !== '' ? `p:${s.patientId}` : `i:${i}`;
    const list = byKey.get(key);
    if (list) list.push(i);
    else byKey.set(key, [i]);
  });
  const groups: Group[] = [...byKey].map(([key, members]) => ({ key, members, label: majorityLabel(samples, members) }));

  const assignment = new Int8Array(samples.length);
  const labels = [...new Set(groups.map((g) => g.label))].sort((a, b) => a - b);
  for (const label of labels) {
    const rand = mulberry32(deriveSeed(seed, `class:${label}`));
    // Shuffle, then place larger patient groups first (stable sort keeps the random order among equal sizes):
    // big groups are the hard ones to balance.
    const order = shuffled(
      groups.filter((g) => g.label === label),
      rand,
    ).sort((a, b) => b.members.length - a.members.length);
    const total = order.reduce((n, g) => n + g.members.length, 0);
    const target = fractions.map((f) => f * total);
    const filled = [0, 0, 0];
    for (const g of order) {
      // The split furthest below its target (in images) takes the group; ties go to train, then val, then test.
      let best = 0;
      for (let k = 1; k < 3; k++) {
        if (target[k] - filled[k] > target[best] - filled[best] + 1e-9) best = k;
      }
      filled[best] += g.members.length;
      for (const i of g.members) assignment[i] = best;
    }
  }

  const out: Split<T> = { train: [], val: [], test: [] };
  const names = ['train', 'val', 'test'] as const;
  samples.forEach((s, i) => out[names[assignment[i]]].push(s));
  return out;
}

/** The most frequent label of a group; ties go to the smallest label. */
function majorityLabel(samples: { label: number }[], members: number[]): number {
  const counts = new Map<number, number>();
  for (const i of members) counts.set(samples[i].label, (counts.get(samples[i].label) ?? 0) + 1);
  let best = Infinity;
  let bestCount = -1;
  for (const [label, c] of counts) {
    if (c > bestCount || (c === bestCount && label < best)) {
      best = label;
      bestCount = c;
    }
  }
  return best;
}
