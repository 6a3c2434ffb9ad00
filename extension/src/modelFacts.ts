// The facts the panel shows about a model, read from its bundle manifest: what was pruned, how big it is, how it
// scored on its test split. The reader has validated every field, so they are used as typed; a fact the bundle
// does not record (the unpruned reference has no surgery figures, an undefined AUC is stored as null) is undefined.
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

export function modelFacts(manifest: BundleManifest, bundleBytes: number): ModelFacts {
  const { pruning, metrics } = manifest;
  const surgery = 'unpruned' in pruning ? undefined : pruning;
  return {
    name: manifest.name,
    variant: manifest.variant,
    classes: [...manifest.classes],
    inputSize: manifest.input.size,
    backbone: manifest.backbone.name,
    unitsBefore: surgery?.unitsBefore,
    unitsAfter: surgery?.unitsAfter,
    paramsBefore: surgery?.paramsBefore,
    paramsAfter: pruning.paramsAfter,
    bundleBytes,
    testAccuracy: metrics.compressed.accuracy,
    testAuc: metrics.compressed.auc.macro ?? undefined,
    classifier: metrics.deployed,
    k: manifest.features.selected.length,
    createdAt: manifest.createdAt || undefined,
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
