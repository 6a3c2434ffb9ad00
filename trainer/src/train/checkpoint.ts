// Fine-tuning checkpoints: after each epoch the weights, the best weights so far and Adam's moments go to
// binary files (each with its sha256), and state.json, written last and atomically, names them with the history
// and the shuffling state. A resumed run continues exactly; a damaged or mismatching checkpoint is refused.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import type { EpochRecord } from './finetune.js';

export const CHECKPOINT_FORMAT = 'zerovar-finetune-checkpoint';
export const CHECKPOINT_VERSION = 1;

export interface TensorSpec {
  name: string;
  shape: number[];
}
export interface BinRef {
  file: string;
  sha256: string;
  bytes: number;
}
export interface CheckpointState {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  /** Epochs finished. */
  epoch: number;
  history: EpochRecord[];
  bestEpoch: number;
  bestValAccuracy: number;
  /** Shuffling state after `epoch` epochs. */
  rngState: number;
  fingerprint: Record<string, unknown>;
  variables: TensorSpec[];
  weights: BinRef;
  best: BinRef;
  optimizer: { iterations: number; file: BinRef };
}

export function sha256(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

function concatFloats(arrays: Float32Array[]): Uint8Array {
  const total = arrays.reduce((a, b) => a + b.length, 0);
  const out = new Float32Array(total);
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return new Uint8Array(out.buffer);
}

export async function writeBin(dir: string, file: string, arrays: Float32Array[]): Promise<BinRef> {
  const bytes = concatFloats(arrays);
  await writeFileAtomic(join(dir, file), bytes);
  return { file, sha256: sha256(bytes), bytes: bytes.byteLength };
}

function corrupt(dir: string, why: string): Error {
  return new Error(`corrupt checkpoint in ${dir}: ${why}. Delete the folder or pass resume=false (--no-resume) to start over`);
}

export async function readBin(dir: string, ref: BinRef, specs: TensorSpec[]): Promise<Float32Array[]> {
  const path = join(dir, ref.file);
  if (!existsSync(path)) throw corrupt(dir, `${ref.file} is missing`);
  const buf = await readFile(path);
  if (buf.byteLength !== ref.bytes || sha256(buf) !== ref.sha256) throw corrupt(dir, `${ref.file} does not match its sha256`);
  const floats = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const out: Float32Array[] = [];
  let o = 0;
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (o + n > floats.length) throw corrupt(dir, `${ref.file} is too short for ${s.name}`);
    out.push(floats.slice(o, o + n));
    o += n;
  }
  if (o !== floats.length) throw corrupt(dir, `${ref.file} has ${floats.length - o} unexpected values`);
  return out;
}

/** Reads and validates `dir/state.json`; null when the folder holds no checkpoint. */
export async function readCheckpointState(dir: string): Promise<CheckpointState | null> {
  const path = join(dir, 'state.json');
  if (!existsSync(path)) return null;
  let state: CheckpointState;
  try {
    state = JSON.parse(await readFile(path, 'utf8')) as CheckpointState;
  } catch (e) {
    throw corrupt(dir, `state.json is not valid JSON (${(e as Error).message})`);
  }
  if (state?.format !== CHECKPOINT_FORMAT) throw corrupt(dir, 'state.json is not a fine-tuning checkpoint');
  if (state.version !== CHECKPOINT_VERSION) {
    throw new Error(`checkpoint in ${dir} has format version ${state.version}; this trainer reads version ${CHECKPOINT_VERSION}`);
  }
  const ok =
    Number.isInteger(state.epoch) &&
    Array.isArray(state.history) &&
    state.history.length === state.epoch &&
    Array.isArray(state.variables) &&
    typeof state.weights?.file === 'string' &&
    typeof state.best?.file === 'string' &&
    typeof state.optimizer?.file?.file === 'string' &&
    Number.isInteger(state.rngState);
  if (!ok) throw corrupt(dir, 'state.json lacks required fields');
  return state;
}

export function epochFile(kind: string, epoch: number): string {
  return `${kind}-epoch-${String(epoch).padStart(4, '0')}.bin`;
}

/** Removes weight files no longer referenced by the state (older epochs, interrupted writes). */
export async function pruneFiles(dir: string, keep: Set<string>): Promise<void> {
  for (const f of await readdir(dir)) {
    if ((f.endsWith('.bin') || f.includes('.tmp-')) && !keep.has(f)) await rm(join(dir, f), { force: true });
  }
}
