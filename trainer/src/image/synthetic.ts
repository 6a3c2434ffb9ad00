// Synthetic images that are plainly not chest radiographs (noise, flat fields, gradients, checkerboards, pages of
// text-like strokes), made deterministically from a seed. The trainer measures its out-of-distribution guard on
// them beside the real sets it is given, so every report says how the guard treats inputs a user may feed it by
// mistake. Browser-safe.
import type { GreyImage } from './pixels.js';
import { mulberry32 } from '../data/rng.js';

export const SYNTHETIC_KINDS = ['noise', 'flat', 'gradient', 'checker', 'text'] as const;
export type SyntheticKind = (typeof SYNTHETIC_KINDS)[number];


/** One synthetic image of `kind`; `seed` varies its parameters (grey level, direction, cell size, line layout). */
export function syntheticImage(kind: SyntheticKind, size: number, seed: number): GreyImage {
  const r = mulberry32(seed * 7919 + SYNTHETIC_KINDS.indexOf(kind));
  const a = r();
  const b = r();
  const data = new Uint8Array(size * size);
  const line = Math.max(6, Math.round(size / 16));
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let v: number;
      switch (kind) {
        case 'noise':
          v = r() * 255;
          break;
        case 'flat':
          v = 40 + a * 180;
          break;
        case 'gradient':
          v = (255 * (x * a + y * (1 - a))) / size;
          break;
        case 'checker': {
          const cell = Math.max(2, Math.round((size / 28) * (1 + 3 * a)));
          const cellY = Math.max(2, Math.round((size / 28) * (1 + 3 * b)));
          v = ((Math.floor(x / cell) + Math.floor(y / cellY)) % 2) * 255;
          break;
        }
        case 'text': {
          // Dark strokes in rows of "words" on a light page, with margins.
          const inMargin = x < size * 0.08 || x > size * 0.92 || y < size * 0.06 || y > size * 0.94;
          const row = y % line;
          const word = Math.floor((x + Math.floor(a * 997) * (1 + Math.floor(y / line))) / (line * 2)) % 5;
          const stroke = row > line * 0.2 && row < line * 0.7 && word !== 0 && (x * 7 + y * 3 + Math.floor(b * 50)) % 11 < 5;
          v = !inMargin && stroke ? 25 : 235;
          break;
        }
      }
      data[y * size + x] = Math.max(0, Math.min(255, Math.round(v)));
    }
  }
  return { width: size, height: size, data };
}

/** `count` images of every kind, keyed `synthetic-<kind>`. */
export function syntheticSets(size: number, count: number, seed = 1): Record<string, GreyImage[]> {
  return Object.fromEntries(
    SYNTHETIC_KINDS.map((kind) => [`synthetic-${kind}`, Array.from({ length: count }, (_, i) => syntheticImage(kind, size, seed * 1000 + i))]),
  );
}
