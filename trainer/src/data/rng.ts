// Seeded pseudo-random numbers so splits, shuffles and sampling are reproducible from one integer seed.

/**
 * mulberry32, a tiny 32-bit generator good enough for shuffling and sampling (not for cryptography), with its
 * state exposed so a checkpoint can carry it (fine-tuning resumes its shuffles exactly).
 */
export class SeededRng {
  constructor(public state: number) {
    this.state = state >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** A random order of 0..n-1. */
  shuffle(n: number): number[] {
    return shuffled(Array.from({ length: n }, (_, i) => i), () => this.next());
  }
}

/** The generator as a function, for callers that need no saved state. */
export function mulberry32(seed: number): () => number {
  const rng = new SeededRng(seed);
  return () => rng.next();
}

/** A uniform integer in [0, n). */
export function randomInt(rand: () => number, n: number): number {
  return Math.floor(rand() * n);
}

/** Fisher-Yates shuffle into a new array; the input is left untouched. */
export function shuffled<T>(items: readonly T[], rand: () => number): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(rand, i + 1);
    const t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
  return out;
}

/** Derives an independent seed from a seed and a label, e.g. one stream per epoch or per class. */
export function deriveSeed(seed: number, label: string | number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  const s = String(label);
  for (let i = 0; i < s.length; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  }
  return mulberry32(h)() * 4294967296 >>> 0;
}
