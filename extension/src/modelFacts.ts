// The facts the panel shows about a model, read from its bundle manifest: what was pruned, how big it is, how it
// scored on its test split and on external data, where its operating point lies, whether it carries an
// out-of-distribution guard and how its probabilities are calibrated. The reader has validated every field, so
// they are used as typed; a fact the bundle does not record (the unpruned reference has no surgery figures, an
// undefined AUC is stored as null, an older bundle has no guard) is undefined.
import type { BundleManifest } from '@zerovar/trainer/browser';
import { taskLabel } from './modelIndex.js';

/**
 * A model's decision rule and what it gave on the test split: a binary model's threshold on its positive class
 * with sensitivity and specificity, or a model of more classes answering with its most probable class, with each
 * class's recall.
 */
export type OperatingPoint =
  | {
    kind: 'threshold';
    positiveClass: string;
    /** Predicted positive when its calibrated probability is at least this (argmax of two classes). */
    threshold: number;
    sensitivity: number;
    specificity: number;
  }
  | { kind: 'argmax'; recall: { className: string; recall: number }[] };

/** The bundle's figures on data from other sources than its training set (`metrics.external`). */
export interface ExternalFacts {
  name: string;
  dataset: string;
  n: number;
  accuracy: number;
  auc?: number;
  sensitivity?: number;
  specificity?: number;
}

export interface GuardFacts {
  /** Fraction of the test split the guard flags. */
  testFlagged: number;
  /** Fraction of the validation split its threshold accepts. */
  acceptance: number;
  threshold: number;
}

export interface CalibrationFacts {
  method: 'none' | 'temperature';
  temperature?: number;
  /** Expected calibration error on the test split, before and after calibration. */
  testEceBefore: number;
  testEceAfter: number;
}

export interface ModelFacts {
  name: string;
  variant: 'raw' | 'masked';
  classes: string[];
  /** "COVID vs Normal", "4 classes: …" (the model index's words). */
  task: string;
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
  operatingPoint?: OperatingPoint;
  external: ExternalFacts[];
  /** Undefined: the bundle has no guard and answers for any image. */
  guard?: GuardFacts;
  calibration?: CalibrationFacts;
}

/**
 * The test split's operating point: for two classes the positive class (the recorded one, else the first) against
 * the other, for more the recall of every class; undefined when the test figures lack a class.
 */
function operatingPoint(manifest: BundleManifest): OperatingPoint | undefined {
  const { classes, metrics } = manifest;
  const per = metrics.compressed.perClass;
  if (classes.length !== 2) {
    const recall = classes.map((className) => ({ className, recall: per[className]?.recall }));
    return recall.every((r) => r.recall !== undefined) ? { kind: 'argmax', recall: recall as { className: string; recall: number }[] } : undefined;
  }
  const positiveClass = manifest.positiveClass ?? classes[0];
  const negativeClass = classes.find((c) => c !== positiveClass);
  const sensitivity = per[positiveClass]?.recall;
  const specificity = negativeClass === undefined ? undefined : per[negativeClass]?.recall;
  if (sensitivity === undefined || specificity === undefined) return undefined;
  return { kind: 'threshold', positiveClass, threshold: 0.5, sensitivity, specificity };
}

export function modelFacts(manifest: BundleManifest, bundleBytes: number): ModelFacts {
  const { pruning, metrics, ood, calibration } = manifest;
  const surgery = 'unpruned' in pruning ? undefined : pruning;
  const cal = calibration?.calibration;
  return {
    name: manifest.name,
    variant: manifest.variant,
    classes: [...manifest.classes],
    task: taskLabel(manifest.classes, manifest.positiveClass),
    inputSize: manifest.input.size,
    backbone: manifest.backbone.name,
    // Before: the fine-tuned network; after: the network the bundle carries (surgery, then the feature selection
    // and the units left feeding nothing), which older bundles record only in part.
    unitsBefore: surgery?.unitsBefore,
    unitsAfter: surgery?.compressedUnits ?? surgery?.unitsAfter,
    paramsBefore: surgery?.paramsBefore,
    paramsAfter: surgery?.compressedParams ?? pruning.paramsAfter,
    bundleBytes,
    testAccuracy: metrics.compressed.accuracy,
    testAuc: metrics.compressed.auc.macro ?? undefined,
    classifier: metrics.deployed,
    k: manifest.features.selected.length,
    createdAt: manifest.createdAt || undefined,
    operatingPoint: operatingPoint(manifest),
    external: Object.entries(metrics.external ?? {})
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, e]) => ({
        name, dataset: e.dataset, n: e.n, accuracy: e.accuracy, auc: e.auc ?? undefined,
        sensitivity: e.covidSensitivity, specificity: e.specificity,
      })),
    guard: ood ? { testFlagged: ood.flagged.test, acceptance: ood.acceptance, threshold: ood.threshold } : undefined,
    calibration: calibration && cal
      ? {
        method: cal.method,
        temperature: cal.method === 'temperature' ? cal.temperature : undefined,
        testEceBefore: calibration.testEce.before,
        testEceAfter: calibration.testEce.after,
      }
      : undefined,
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
