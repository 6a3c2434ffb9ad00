// Bundles for the viewer benchmark: a quick trainer run that exports the pruned bundle and its unpruned reference
// side by side, and what each bundle weighs (bytes on disk, network parameters, selected features).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { BundleManifest } from '../../trainer/src/model/bundle.js';

export interface QuickRun {
  dataset: string;
  weights: string;
  experimentsDir: string;
  /** Images per class. */
  limit: number;
  epochs: number;
}

/** Runs `zerovar compress --export-unpruned`; returns the experiment folder (bundle/ and bundle-unpruned/). */
export function trainQuickBundles(projectRoot: string, o: QuickRun): string {
  const args = [
    join(projectRoot, 'trainer', 'bin', 'zerovar.mjs'), 'compress',
    '--dataset', o.dataset, '--experiment_id', 'bench', '--experiments-dir', o.experimentsDir,
    '--weights', o.weights, '--limit', String(o.limit), '--epochs', String(o.epochs), '--quiet', '--export-unpruned',
  ];
  const r = spawnSync(process.execPath, args, { cwd: projectRoot, encoding: 'utf8', maxBuffer: 1 << 26, timeout: 10 * 60_000 });
  const dir = join(o.experimentsDir, 'bench');
  if (r.status !== 0) {
    const tail = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(`the trainer run failed (exit ${r.status ?? r.signal}):\n${tail}`);
  }
  for (const b of ['bundle', 'bundle-unpruned']) {
    if (!existsSync(join(dir, b, 'manifest.json'))) {
      throw new Error(`the trainer run wrote no ${b}/manifest.json in ${dir} (does 'zerovar compress' know --export-unpruned?)`);
    }
  }
  return dir;
}

export interface BundleStats {
  name: string;
  /** Every file of the bundle, manifest included. */
  bytes: number;
  /** Weights of the network(s) the viewer loads, counted from the tfjs weights manifest(s). */
  params: number;
  /** Of which the lung segmenter's (masked bundles). */
  segmenterParams: number;
  /** Penultimate features fed to the classifier. */
  features: number;
  inputSize: number;
  /** Conv / dense units before and after surgery, when the manifest records them. */
  unitsBefore?: number;
  unitsAfter?: number;
}

function folderBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? folderBytes(p) : statSync(p).size;
  }
  return n;
}

interface WeightsManifest {
  weightsManifest: { weights: { shape: number[] }[] }[];
}

/** Number of weights listed by a tfjs model.json (every tensor, trainable or not). */
export function countWeights(modelJson: WeightsManifest): number {
  let n = 0;
  for (const group of modelJson.weightsManifest) {
    for (const w of group.weights) n += w.shape.reduce((a, b) => a * b, 1);
  }
  return n;
}

export function bundleStats(dir: string): BundleStats {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as BundleManifest;
  const weightsOf = (path: string) => countWeights(JSON.parse(readFileSync(join(dir, path), 'utf8')) as WeightsManifest);
  const segmenterParams = manifest.segmenter ? weightsOf(manifest.segmenter.path) : 0;
  const pruning = (manifest.pruning ?? {}) as { unitsBefore?: number; unitsAfter?: number };
  return {
    name: manifest.name,
    bytes: folderBytes(dir),
    params: weightsOf(manifest.model.path) + segmenterParams,
    segmenterParams,
    features: manifest.features.selected.length,
    inputSize: manifest.input.size,
    unitsBefore: pruning.unitsBefore,
    unitsAfter: pruning.unitsAfter,
  };
}
