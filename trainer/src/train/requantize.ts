// `zerovar requantize`: stores an existing bundle's numbers more compactly (network and segmenter weights as
// float16 or uint8, the classifier's arrays in a binary file) and says what that costs. With the dataset the bundle
// was trained on, the validation and test splits (the trainer's own, from the provenance's seed, as `zerovar
// guard` does) are classified before and after: accuracies, the largest probability change and how many answers
// changed. The bundle is rewritten atomically; the figures recorded in its manifest are left as they were.
import { cp, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { discoverCsvDataset, discoverDataset, parseFindingMapping } from '../data/dataset.js';
import { splitDataset } from '../data/split.js';
import type { GreyImage } from '../image/pixels.js';
import { amendBundle, fsFetcher, type BundleStorage } from '../io/bundle-fs.js';
import type { BundleManifest } from '../model/bundle.js';
import { BundleModel } from '../model/inference.js';
import { initBackend } from '../runtime/backend.js';
import { loadImageSet } from './images.js';

export interface RequantizeOptions extends BundleStorage {
  bundle: string;
  /** The dataset the bundle was trained on: measure the splits before and after. */
  dataset?: string;
  csv?: string;
  mapping?: string;
  backend?: 'auto' | 'wasm' | 'cpu';
  /** Measure only: leave the bundle as it is. */
  dryRun?: boolean;
  log?: (line: string) => void;
}

export interface SplitFigures {
  n: number;
  accuracyBefore: number;
  accuracyAfter: number;
  /** max |after - before| over every probability of the split (calibrated, as the bundle answers). */
  maxAbsDiff: number;
  /** Images whose predicted class changed. */
  changed: number;
  /** Images whose out-of-distribution verdict changed (bundles with a guard). */
  guardChanged: number;
}

export interface RequantizeResult {
  bundle: string;
  storage: Required<BundleStorage>;
  bytesBefore: number;
  bytesAfter: number;
  /** Bytes per bundle file, before and after. */
  filesBefore: Record<string, number>;
  filesAfter: Record<string, number>;
  splits?: { validation: SplitFigures; test: SplitFigures };
}

async function fileSizes(dir: string, prefix = ''): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const e of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const p = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) Object.assign(out, await fileSizes(dir, p));
    else out[p] = (await stat(join(dir, p))).size;
  }
  return out;
}

/** The bundle's own files (its manifest and what it lists), by size. */
async function bundleSizes(dir: string, m: BundleManifest): Promise<Record<string, number>> {
  const all = await fileSizes(dir);
  return Object.fromEntries(Object.entries(all).filter(([p]) => p === 'manifest.json' || p in m.files));
}

const total = (sizes: Record<string, number>) => Object.values(sizes).reduce((a, b) => a + b, 0);

/** The validation and test images of the bundle's own split, decoded as the trainer decodes them. */
async function provenanceSplits(m: BundleManifest, o: RequantizeOptions, spec: BundleModel['spec']) {
  const ds = o.csv
    ? await discoverCsvDataset(o.dataset as string, { csv: o.csv, mapping: parseFindingMapping(o.mapping ?? 'COVID-19*=COVID,No Finding=Normal') })
    : await discoverDataset(o.dataset as string);
  const samples = ds.samples.filter((s) => m.classes.includes(s.className)).map((s) => ({ ...s, label: m.classes.indexOf(s.className) }));
  const split = splitDataset(samples, { seed: m.provenance.seed });
  const want = m.provenance.split;
  if (split.train.length !== want.train || split.val.length !== want.val || split.test.length !== want.test) {
    throw new Error(`the split of ${o.dataset} (seed ${m.provenance.seed}) is ${split.train.length}/${split.val.length}/${split.test.length}, ` +
      `the bundle records ${want.train}/${want.val}/${want.test}: not the dataset the bundle was made from`);
  }
  const load = async (part: 'val' | 'test') => (await loadImageSet(split[part], spec)).set;
  return { validation: await load('val'), test: await load('test') };
}

type Answers = { probabilities: number[][]; classIndex: number[]; flagged: (boolean | undefined)[] };

function classifyAll(bm: BundleModel, images: GreyImage[]): Answers {
  const out: Answers = { probabilities: [], classIndex: [], flagged: [] };
  for (let i = 0; i < images.length; i += 16) {
    for (const p of bm.classifyBatch(images.slice(i, i + 16))) {
      out.probabilities.push(p.probabilities);
      out.classIndex.push(p.classIndex);
      out.flagged.push(p.ood?.flagged);
    }
  }
  return out;
}

function compare(before: Answers, after: Answers, labels: ArrayLike<number>): SplitFigures {
  const n = labels.length;
  let maxAbsDiff = 0;
  let changed = 0;
  let guardChanged = 0;
  let right0 = 0;
  let right1 = 0;
  for (let i = 0; i < n; i++) {
    before.probabilities[i].forEach((v, c) => (maxAbsDiff = Math.max(maxAbsDiff, Math.abs(v - after.probabilities[i][c]))));
    if (before.classIndex[i] !== after.classIndex[i]) changed++;
    if (before.flagged[i] !== after.flagged[i]) guardChanged++;
    if (before.classIndex[i] === labels[i]) right0++;
    if (after.classIndex[i] === labels[i]) right1++;
  }
  return { n, accuracyBefore: right0 / n, accuracyAfter: right1 / n, maxAbsDiff, changed, guardChanged };
}

export async function requantizeBundle(o: RequantizeOptions): Promise<RequantizeResult> {
  const log = o.log ?? (() => {});
  await initBackend(o.backend ?? 'auto');
  const storage: Required<BundleStorage> = { weightsDtype: o.weightsDtype ?? 'float16', classifierArrays: o.classifierArrays ?? 'float32' };
  // The new bundle is made beside the old one in a scratch folder first, so both can be measured.
  const scratch = await mkdtemp(join(tmpdir(), 'zerovar-requantize-'));
  try {
    const next = join(scratch, 'bundle');
    await cp(o.bundle, next, { recursive: true });
    const manifest = await amendBundle(next, {}, (m) => m, storage);
    const before = await BundleModel.load(fsFetcher(o.bundle));
    const filesBefore = await bundleSizes(o.bundle, before.manifest);
    const filesAfter = await bundleSizes(next, manifest);
    const result: RequantizeResult = { bundle: o.bundle, storage, bytesBefore: total(filesBefore), bytesAfter: total(filesAfter), filesBefore, filesAfter };
    if (o.dataset) {
      const after = await BundleModel.load(fsFetcher(next));
      try {
        const sets = await provenanceSplits(before.manifest, o, before.spec);
        log(`split from the provenance: ${sets.validation.size} validation, ${sets.test.size} test images`);
        const figures = (set: typeof sets.test) => compare(classifyAll(before, set.images), classifyAll(after, set.images), set.labels);
        result.splits = { validation: figures(sets.validation), test: figures(sets.test) };
      } finally {
        after.dispose();
      }
    }
    before.dispose();
    if (!o.dryRun) await amendBundle(o.bundle, {}, (m) => m, storage);
    return result;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** The result as lines of text. */
export function requantizeLines(r: RequantizeResult): string[] {
  const mb = (b: number) => `${(b / 1e6).toFixed(2)} MB`;
  const lines = [
    `bundle ${r.bundle}: weights ${r.storage.weightsDtype}, classifier arrays ${r.storage.classifierArrays}`,
    `size ${mb(r.bytesBefore)} -> ${mb(r.bytesAfter)}`,
  ];
  for (const p of [...new Set([...Object.keys(r.filesBefore), ...Object.keys(r.filesAfter)])].sort()) {
    lines.push(`  ${p.padEnd(26)} ${String(r.filesBefore[p] ?? '-').padStart(9)} -> ${String(r.filesAfter[p] ?? '-').padStart(9)} bytes`);
  }
  for (const [name, s] of Object.entries(r.splits ?? {})) {
    lines.push(`${name} (${s.n}): accuracy ${s.accuracyBefore.toFixed(4)} -> ${s.accuracyAfter.toFixed(4)}, ` +
      `max |probability change| ${s.maxAbsDiff.toExponential(2)}, ${s.changed} answer(s) changed, ${s.guardChanged} guard verdict(s) changed`);
  }
  return lines;
}
