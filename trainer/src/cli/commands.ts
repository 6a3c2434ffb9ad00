// What each `zerovar` subcommand does, on top of the pipeline's steps.
import { initBackend } from '../runtime/backend.js';
import { discoverCsvDataset, discoverDataset, parseFindingMapping, type Sample } from '../data/dataset.js';
import { fsFetcher } from '../io/bundle-fs.js';
import { BundleModel } from '../model/inference.js';
import { evaluateScores, type ClassificationMetrics } from '../stats/metrics.js';
import type { GreyImage } from '../image/pixels.js';
import { loadImageSet, type SkippedFile } from '../train/images.js';
import type { PipelineOptions } from '../train/options.js';
import { Pipeline } from '../train/pipeline.js';
import { writeReport } from '../train/report.js';
import { externalSamples, loadBundles, measureAttention, writeAttentionFigure, writeBiasStudy, type BiasStudy, type VariantRow } from '../train/bias-study.js';
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export async function runCommand(command: string, raw: PipelineOptions | Record<string, unknown>): Promise<void> {
  if (command === 'evaluate') {
    const o = raw as Record<string, unknown>;
    const r = await evaluateBundle({
      bundle: String(o.bundle),
      dataset: String(o.dataset),
      csv: o.csv as string | undefined,
      mapping: String(o.mapping),
      limit: o.limit as number | undefined,
      backend: (o.backend as 'auto' | 'wasm' | 'cpu') ?? 'auto',
    });
    if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else printMetrics(r);
    return;
  }

  const opts = raw as PipelineOptions;
  const isStep = ['prune', 'select', 'explain', 'export'].includes(command);
  if (command === 'xai') {
    // The paper's xai.py: a binary COVID vs Normal model.
    opts.classes ??= ['COVID', 'Normal'];
    // With a segmenter and no single variant asked for: the bias study, raw and masked side by side.
    if (opts.segmenter && opts.variant !== 'masked') return runBiasStudy(opts);
  }
  const p = new Pipeline({ ...opts, continueExisting: isStep });
  await p.init();
  switch (command) {
    case 'train':
      await p.train();
      break;
    case 'prune':
      await p.prune();
      break;
    case 'select':
      await p.select();
      break;
    case 'export':
      await p.export();
      await writeReport(p);
      break;
    case 'explain':
      await p.explain();
      break;
    case 'compress':
    case 'xai': {
      await p.explain();
      if (command === 'xai' && opts.external) {
        const ex = p.exp.result<{ dir: string }>('export');
        const ext = await evaluateBundle({ bundle: ex.dir, dataset: opts.external, mapping: opts.mapping, backend: opts.backend === 'webgpu' ? 'auto' : opts.backend, csvAuto: true });
        p.setExternal(ext);
        p.log(`external data ${opts.external}: accuracy ${ext.metrics.accuracy.toFixed(4)}, macro-F1 ${ext.metrics.macroF1.toFixed(4)}, AUC ${ext.metrics.auc.macro.toFixed(4)}`);
      }
      const out = await writeReport(p);
      p.log(`report: ${out.html}`);
      break;
    }
    default:
      throw new Error(`unknown command ${command}`);
  }
}

export interface EvaluateOptions {
  bundle: string;
  dataset: string;
  csv?: string;
  /** Use <dataset>/metadata.csv when the folder has one and no class folders. */
  csvAuto?: boolean;
  mapping: string;
  limit?: number;
  backend: 'auto' | 'wasm' | 'cpu';
}

export interface EvaluateResult {
  bundle: string;
  dataset: string;
  classes: string[];
  n: number;
  accuracy: number;
  metrics: ClassificationMetrics;
  skipped: SkippedFile[];
  /** Dataset classes the bundle does not know, and how many images they held (left out). */
  unknownClasses: Record<string, number>;
}

/** Metrics of a bundle on any dataset the trainer reads; classes are matched by name. */
export async function evaluateBundle(o: EvaluateOptions): Promise<EvaluateResult> {
  await initBackend(o.backend);
  const bm = await BundleModel.load(fsFetcher(o.bundle));
  try {
    let ds;
    if (o.csv) ds = await discoverCsvDataset(o.dataset, { csv: o.csv, mapping: parseFindingMapping(o.mapping) });
    else {
      try {
        ds = await discoverDataset(o.dataset);
      } catch (err) {
        if (!o.csvAuto) throw err;
        ds = await discoverCsvDataset(o.dataset, { mapping: parseFindingMapping(o.mapping) });
      }
    }
    const unknownClasses: Record<string, number> = {};
    let samples = ds.samples.filter((s) => {
      if (bm.classes.includes(s.className)) return true;
      unknownClasses[s.className] = (unknownClasses[s.className] ?? 0) + 1;
      return false;
    });
    if (samples.length === 0) {
      throw new Error(`no images of the bundle's classes (${bm.classes.join(', ')}) in ${o.dataset} (found: ${ds.classes.join(', ')})`);
    }
    if (o.limit) samples = bm.classes.flatMap((c) => samples.filter((s) => s.className === c).slice(0, o.limit));
    const { set, skipped } = await loadImageSet(samples, bm.spec);
    const y = set.samples.map((s) => bm.classes.indexOf(s.className));
    const scores: number[][] = [];
    for (let i = 0; i < set.size; i += 32) {
      const batch: GreyImage[] = set.images.slice(i, i + 32);
      for (const p of bm.classifyBatch(batch)) scores.push(p.probabilities);
    }
    const metrics = evaluateScores(y, scores, bm.classes, bm.manifest.positiveClass ?? 'COVID');
    return { bundle: o.bundle, dataset: ds.root, classes: bm.classes, n: set.size, accuracy: metrics.accuracy, metrics, skipped, unknownClasses };
  } finally {
    bm.dispose();
  }
}

function printMetrics(r: EvaluateResult): void {
  const m = r.metrics;
  const lines = [
    `bundle ${r.bundle} on ${r.dataset}: ${r.n} images`,
    `accuracy ${m.accuracy.toFixed(4)}  macro-F1 ${m.macroF1.toFixed(4)}  macro AUC ${m.auc.macro.toFixed(4)}`,
    ...r.classes.map((c) => {
      const pc = m.perClass[c];
      return `  ${c.padEnd(12)} precision ${pc.precision.toFixed(4)}  recall ${pc.recall.toFixed(4)}  F1 ${pc.f1.toFixed(4)}  n ${pc.support}`;
    }),
  ];
  if (r.skipped.length) lines.push(`skipped ${r.skipped.length} unreadable file(s)`);
  process.stdout.write(lines.join('\n') + '\n');
}

/** Samples drawn per set (test, external) for the attention measurement: Grad-CAM costs a backward pass each. */
const ATTENTION_SAMPLES = 120;

/**
 * `xai --segmenter DIR`: the same COVID vs Normal experiment as `<id>-raw` and `<id>-masked`, each tested on its
 * test split and the external data; the share of Grad-CAM attention inside the lungs for both on the same raw
 * images; the comparison in `<id>/report.json|html` with image | raw attention | masked attention figures.
 */
async function runBiasStudy(opts: PipelineOptions): Promise<void> {
  const rows: VariantRow[] = [];
  const bundleDirs: string[] = [];
  let testSamples: Sample[] = [];
  let classes: string[] = [];
  for (const variant of ['raw', 'masked'] as const) {
    const id = `${opts.experimentId}-${variant}`;
    const p = new Pipeline({ ...opts, experimentId: id, variant, bundleOut: undefined });
    await p.init();
    p.log(`bias study: ${variant} variant (experiment ${id})`);
    await p.explain();
    const ex = p.exp.result<{ dir: string }>('export');
    const data = p.exp.result<{ classes: string[]; split: { test: Sample[] } }>('data');
    const sel = p.exp.result<{ compressed: ClassificationMetrics }>('select');
    let external: VariantRow['external'];
    if (opts.external) {
      const ext = await evaluateBundle({ bundle: ex.dir, dataset: opts.external, mapping: opts.mapping, backend: opts.backend === 'webgpu' ? 'auto' : opts.backend, csvAuto: true });
      p.setExternal(ext);
      external = { ...ext.metrics, n: ext.n };
      p.log(`external data: accuracy ${ext.metrics.accuracy.toFixed(4)}, AUC ${ext.metrics.auc.macro.toFixed(4)}`);
    }
    await writeReport(p);
    bundleDirs.push(ex.dir);
    testSamples = data.split.test;
    classes = data.classes;
    rows.push({ variant, experiment: id, test: sel.compressed, external, attention: {} });
  }
  // Both variants split the same dataset with the same seed: the same test images.
  const dir = resolve(opts.experimentsDir, opts.experimentId);
  mkdirSync(join(dir, 'figures'), { recursive: true });
  const bundles = await loadBundles(bundleDirs);
  const figures: { title: string; png: Uint8Array }[] = [];
  const study: BiasStudy = { dataset: resolve(opts.dataset), external: opts.external && resolve(opts.external), rows, figures: [] };
  try {
    const size = bundles[0].spec.size;
    const sets: [string, Sample[]][] = [['test', testSamples]];
    if (opts.external) sets.push(['external', await externalSamples(opts.external, opts.mapping, classes)]);
    for (const [name, samples] of sets) {
      const { records, summaries } = await measureAttention(bundles, spreadOver(samples, ATTENTION_SAMPLES), opts.segmenter!, size);
      summaries.forEach((s, b) => (rows[b].attention[name as 'test' | 'external'] = s));
      const file = `figures/attention-${name}.png`;
      await writeAttentionFigure(join(dir, file), spreadOver(records, 8));
      study.figures.push(file);
      figures.push({ title: `${name}: image (lung outline) | raw model attention | masked model attention`, png: new Uint8Array(await readFile(join(dir, file))) });
      process.stderr.write(
        `attention inside the lungs (${name}, ${records.length} images): ` +
          rows.map((r) => `${r.variant} ${(100 * (r.attention[name as 'test' | 'external']?.meanInside ?? NaN)).toFixed(1)}%`).join(', ') + '\n',
      );
    }
  } finally {
    bundles.forEach((b) => b.dispose());
  }
  await writeBiasStudy(dir, study, figures);
  process.stderr.write(`bias study: ${join(dir, 'report.html')}\n`);
}

function spreadOver<T>(xs: T[], n: number): T[] {
  if (xs.length <= n) return xs;
  const step = xs.length / n;
  return Array.from({ length: n }, (_, i) => xs[Math.floor(i * step)]);
}
