// The facts the panel shows about a model, read from its bundle manifest: what was pruned, how big it is, how it
// scored on its test split. Tolerant: a manifest without a field gives `undefined`, never an exception.
import type { BundleManifest } from '@zerovar/trainer/browser';

export interface ModelFacts {
  name: string;
  variant: 'raw' | 'masked';
  classes: string[];
  inputSize: number;
  backbone: string;
  unitsBefore?: number;
  unitsAfter?: number;
  paramsBefore?: number;
  paramsAfter?: number;
  /** Bytes of every bundle file, manifest included. */
  bundleBytes: number;
  /** Test accuracy and macro ROC AUC of the compressed model (selected features + deployed classifier). */
  testAccuracy?: number;
  testAuc?: number;
  classifier?: string;
  /** Number of selected penultimate features. */
  k: number;
  createdAt?: string;
}

const rec = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function modelFacts(manifest: BundleManifest, bundleBytes: number): ModelFacts {
  const pruning = rec(manifest.pruning);
  const metrics = rec(manifest.metrics);
  const compressed = rec(metrics.compressed);
  const classifier = rec(manifest.classifier);
  return {
    name: manifest.name,
    variant: manifest.variant,
    classes: [...manifest.classes],
    inputSize: manifest.input.size,
    backbone: manifest.backbone?.name ?? 'unknown',
    unitsBefore: num(pruning.unitsBefore),
    unitsAfter: num(pruning.unitsAfter),
    paramsBefore: num(pruning.paramsBefore),
    paramsAfter: num(pruning.paramsAfter),
    bundleBytes,
    testAccuracy: num(compressed.accuracy),
    testAuc: num(rec(compressed.auc).macro),
    classifier: str(metrics.deployed) ?? str(rec(classifier.deployed).kind),
    k: manifest.features.selected.length,
    createdAt: str(manifest.createdAt),
  };
}

/** "1.8 MB", "930 kB". */
export function formatBytes(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${Math.round(n / 1e3)} kB`;
  return `${n} B`;
}

/** "153 of 7,170 (2.1 %)" for a before / after pair, or undefined without both. */
export function removedText(before: number | undefined, after: number | undefined): string | undefined {
  if (before === undefined || after === undefined || before <= 0) return undefined;
  const removed = before - after;
  return `${removed.toLocaleString('en-US')} of ${before.toLocaleString('en-US')} (${((100 * removed) / before).toFixed(1)} %)`;
}
