// Runs tests/helpers/sklearn_ref.py with a Python that has scikit-learn, so tests compare against the reference
// implementation. Missing scikit-learn is a test failure with instructions, never a skip.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from '../../trainer/src/data/rng.js';

const script = fileURLToPath(new URL('./sklearn_ref.py', import.meta.url));

let chosen: string | undefined;

/** The first of $ZEROVAR_PYTHON, python3, /usr/bin/python3 that imports sklearn. */
export function pythonWithSklearn(): string {
  if (chosen) return chosen;
  const candidates = [process.env.ZEROVAR_PYTHON, 'python3', '/usr/bin/python3'].filter((c): c is string => !!c);
  for (const c of candidates) {
    const r = spawnSync(c, ['-c', 'import sklearn'], { encoding: 'utf8' });
    if (r.status === 0) return (chosen = c);
  }
  throw new Error(
    `scikit-learn is not importable from ${candidates.join(', ')}. These tests compare against it: install it ` +
      '(Debian/Ubuntu: apt-get install python3-sklearn) or point ZEROVAR_PYTHON at a Python that has it.',
  );
}

function revive(_key: string, v: unknown): unknown {
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  return v;
}

/** Runs one task of sklearn_ref.py on `input` (written to a temporary JSON file) and returns its parsed output. */
export function sklearnRef<T>(task: string, input: unknown): T {
  const python = pythonWithSklearn();
  const dir = mkdtempSync(join(tmpdir(), 'zerovar-sk-'));
  try {
    const file = join(dir, 'input.json');
    writeFileSync(file, JSON.stringify(input));
    const r = spawnSync(python, [script, task, file], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    if (r.status !== 0) throw new Error(`sklearn_ref.py ${task} failed (status ${r.status}):\n${r.stderr}`);
    return JSON.parse(r.stdout, revive) as T;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Deterministic pseudo-random numbers so test data are reproducible (the trainer's own seeded generator). */
export const rng = mulberry32;

/** Standard normal draws from a uniform generator (Box-Muller). */
export function gaussian(u: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}
