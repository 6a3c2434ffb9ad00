// A bundle's metrics on a labelled dataset (any layout the trainer reads), and the external-data check of a
// finished experiment: domain operations the CLI's `evaluate` and `xai --external` call, as a library user may.
import { discoverCsvDataset, discoverDataset, parseFindingMapping } from '../data/dataset.js';
import { fsFetcher } from '../io/bundle-fs.js';
import { BundleModel } from '../model/inference.js';
import { initBackend } from '../runtime/backend.js';
import { evaluateScores, type ClassificationMetrics } from '../stats/metrics.js';
import { expectedCalibrationError } from '../stats/calibration.js';
import { classifySet, loadImageSet, type SkippedFile } from './images.js';
import type { Pipeline } from './pipeline.js';

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
  /** Expected calibration error (top-label, 15 bins) of the probabilities the bundle returns (calibrated). */
  ece: number;
  /** Fraction of the images the out-of-distribution guard flags; null for a bundle without a guard. */
  flagged: number | null;
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
    let flaggedCount = 0;
    for (const p of classifySet(bm, set)) {
      scores.push(p.probabilities);
      if (p.ood?.flagged) flaggedCount++;
    }
    const metrics = evaluateScores(y, scores, bm.classes, bm.manifest.positiveClass ?? 'COVID');
    const ece = expectedCalibrationError(scores, y);
    const flagged = bm.guard && set.size > 0 ? flaggedCount / set.size : null;
    return { bundle: o.bundle, dataset: ds.root, classes: bm.classes, n: set.size, accuracy: metrics.accuracy, metrics, ece, flagged, skipped, unknownClasses };
  } finally {
    bm.dispose();
  }
}

/**
 * The exported bundle of an experiment on external data (a CSV-labelled folder is read as such), kept beside
 * the experiment's report (Pipeline.setExternal) and logged.
 */
export async function evaluateExternal(p: Pipeline, dataset: string): Promise<EvaluateResult> {
  const ex = p.exp.result<{ dir: string }>('export');
  const backend = p.opts.backend === 'webgpu' ? 'auto' : p.opts.backend;
  const ext = await evaluateBundle({ bundle: ex.dir, dataset, mapping: p.opts.mapping, backend, csvAuto: true });
  p.setExternal(ext);
  p.log(`external data ${dataset}: accuracy ${ext.metrics.accuracy.toFixed(4)}, macro-F1 ${ext.metrics.macroF1.toFixed(4)}, AUC ${ext.metrics.auc.macro.toFixed(4)}`);
  return ext;
}
