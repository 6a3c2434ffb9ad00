// The bias study run (`xai --segmenter DIR`): the same COVID vs Normal experiment as `<id>-raw` and
// `<id>-masked`, each tested on its test split and the external data; the share of Grad-CAM attention inside
// the lungs for both on the same raw images; the comparison in `<id>/report.json|html` with image | raw
// attention | masked attention figures. The measuring and writing live in bias-study.ts.
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Sample } from '../data/dataset.js';
import type { ClassificationMetrics } from '../stats/metrics.js';
import { externalSamples, loadBundles, measureAttention, writeAttentionFigure, writeBiasStudy, type BiasStudy, type VariantRow } from './bias-study.js';
import { evaluateExternal } from './evaluate.js';
import type { PipelineOptions } from './options.js';
import { Pipeline } from './pipeline.js';
import { writeReport } from './report.js';

/** Samples drawn per set (test, external) for the attention measurement: Grad-CAM costs a backward pass each. */
const ATTENTION_SAMPLES = 120;

/**
 * Runs (or resumes) both variants and writes the study; `opts.segmenter` is required. `log` gets one line per
 * set measured with the attention inside the lungs. Returns the study's folder and what it holds.
 */
export async function runBiasStudy(opts: PipelineOptions, log: (line: string) => void = () => {}): Promise<{ dir: string; study: BiasStudy }> {
  if (!opts.segmenter) throw new Error('the bias study needs --segmenter DIR');
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
      const ext = await evaluateExternal(p, opts.external);
      external = { ...ext.metrics, n: ext.n };
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
      const { records, summaries } = await measureAttention(bundles, spreadOver(samples, ATTENTION_SAMPLES), opts.segmenter, size);
      summaries.forEach((s, b) => (rows[b].attention[name as 'test' | 'external'] = s));
      const file = `figures/attention-${name}.png`;
      await writeAttentionFigure(join(dir, file), spreadOver(records, 8));
      study.figures.push(file);
      figures.push({ title: `${name}: image (lung outline) | raw model attention | masked model attention`, png: new Uint8Array(await readFile(join(dir, file))) });
      log(
        `attention inside the lungs (${name}, ${records.length} images): ` +
          rows.map((r) => `${r.variant} ${(100 * (r.attention[name as 'test' | 'external']?.meanInside ?? NaN)).toFixed(1)}%`).join(', '),
      );
    }
  } finally {
    bundles.forEach((b) => b.dispose());
  }
  await writeBiasStudy(dir, study, figures);
  return { dir, study };
}

/** n items spread evenly over xs (all of them when there are no more than n). */
function spreadOver<T>(xs: T[], n: number): T[] {
  if (xs.length <= n) return xs;
  const step = xs.length / n;
  return Array.from({ length: n }, (_, i) => xs[Math.floor(i * step)]);
}
