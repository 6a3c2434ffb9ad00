// `zerovar guard`: adds the out-of-distribution guard and the probability calibration to a bundle made before
// they existed, from the dataset it was trained on. The split is the trainer's own (same dataset, classes and
// seed as the bundle's provenance records, checked against its recorded split sizes), so the guard is fitted on
// the training split, thresholded and calibrated on the validation split and measured on the test split exactly
// as the export step does. The network, features and classifier are untouched: predictions stay the same.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { discoverCsvDataset, discoverDataset, parseFindingMapping } from '../data/dataset.js';
import { readGreyImage } from '../data/decode.js';
import { splitDataset } from '../data/split.js';
import { resizeGrey, type GreyImage } from '../image/pixels.js';
import { amendBundle, fsFetcher } from '../io/bundle-fs.js';
import { BundleModel } from '../model/inference.js';
import { initBackend } from '../runtime/backend.js';
import { guardStep, OOD_GUARD_PATH, type GuardStepResult } from './guard-step.js';
import { loadImageSet } from './images.js';

export interface GuardBundleOptions {
  bundle: string;
  dataset: string;
  /** CSV-labelled datasets: the CSV and the finding mapping, as the bundle was trained with. */
  csv?: string;
  mapping?: string;
  /** Folders of out-of-distribution images to measure on: each subfolder (or the folder itself) is one set. */
  ood?: string[];
  components?: number;
  acceptance?: number;
  backend?: 'auto' | 'wasm' | 'cpu';
  log?: (line: string) => void;
  onProgress?: (done: number, total: number) => void;
}

const IMAGE = /\.(png|jpe?g|dcm)$/i;

/** Named image sets from folders: a folder's image-holding subfolders are sets of their own. */
export async function loadOodSets(dirs: string[], size: number): Promise<Record<string, GreyImage[]>> {
  const sets: Record<string, GreyImage[]> = {};
  const load = async (name: string, dir: string) => {
    const files = readdirSync(dir).filter((f) => IMAGE.test(f)).sort();
    if (files.length === 0) return;
    sets[name] = [];
    for (const f of files) {
      try {
        sets[name].push(resizeGrey(await readGreyImage(join(dir, f)), size, size));
      } catch {
        // an unreadable image is no out-of-distribution example: leave it out
      }
    }
  };
  for (const dir of dirs) {
    const subdirs = readdirSync(dir).filter((d) => !d.startsWith('.') && statSync(join(dir, d)).isDirectory()).sort();
    for (const d of subdirs) await load(d, join(dir, d));
    await load(dir.split('/').filter(Boolean).at(-1) ?? dir, dir);
  }
  return sets;
}

export async function guardBundle(o: GuardBundleOptions): Promise<GuardStepResult> {
  const log = o.log ?? (() => {});
  await initBackend(o.backend ?? 'auto');
  const bm = await BundleModel.load(fsFetcher(o.bundle));
  try {
    const m = bm.manifest;
    const ds = o.csv
      ? await discoverCsvDataset(o.dataset, { csv: o.csv, mapping: parseFindingMapping(o.mapping ?? 'COVID-19*=COVID,No Finding=Normal') })
      : await discoverDataset(o.dataset);
    const missing = m.classes.filter((c) => !ds.classes.includes(c));
    if (missing.length) throw new Error(`the dataset has no class ${missing.join(', ')} of the bundle (found: ${ds.classes.join(', ')})`);
    const samples = ds.samples.filter((s) => m.classes.includes(s.className)).map((s) => ({ ...s, label: m.classes.indexOf(s.className) }));
    const split = splitDataset(samples, { seed: m.provenance.seed });
    const want = m.provenance.split;
    const got = { train: split.train.length, val: split.val.length, test: split.test.length };
    if (got.train !== want.train || got.val !== want.val || got.test !== want.test) {
      throw new Error(
        `the split of ${o.dataset} (seed ${m.provenance.seed}) is ${got.train}/${got.val}/${got.test}, the bundle was trained on ` +
          `${want.train}/${want.val}/${want.test}: not the dataset the bundle was made from (or a --limit run)`,
      );
    }
    log(`split ${got.train}/${got.val}/${got.test} (seed ${m.provenance.seed}), as the bundle records`);
    const load = async (part: 'train' | 'val' | 'test') => {
      const { set, skipped } = await loadImageSet(split[part], bm.spec);
      if (skipped.length) throw new Error(`${skipped.length} image(s) of the ${part} split no longer decode: ${skipped[0].path}`);
      return { images: set.images, labels: set.labels };
    };
    const input = { train: await load('train'), val: await load('val'), test: await load('test') };
    const outOfDistribution = await loadOodSets(o.ood ?? [], bm.spec.size);
    log(`out-of-distribution sets: ${Object.entries(outOfDistribution).map(([k, v]) => `${k} ${v.length}`).join(', ') || 'synthetic only'}`);
    const r = guardStep(bm, { ...input, outOfDistribution, components: o.components, acceptance: o.acceptance, onProgress: o.onProgress });
    await amendBundle(o.bundle, { [OOD_GUARD_PATH]: r.guardBytes }, (manifest) => ({ ...manifest, ood: r.ood, calibration: r.calibration }));
    return r;
  } finally {
    bm.dispose();
  }
}
