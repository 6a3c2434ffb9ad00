// Valid stand-ins for the figures a bundle manifest records (pruning, metrics, provenance, training), for tests
// that write small bundles or read a manifest: the reader validates these fields, so a test bundle must carry
// well-formed ones.
import type { BundleManifestDraft } from '../../trainer/src/io/bundle-fs.js';
import type { BundleManifest, StoredMetrics } from '../../trainer/src/model/bundle.js';

/** Metrics of a two-class test split of `n` images with the given accuracy (balanced, symmetric errors). */
export function twoClassMetrics(accuracy: number, n = 20): StoredMetrics {
  const right = Math.round((accuracy * n) / 2);
  const perClass = { precision: accuracy, recall: accuracy, f1: accuracy, support: n / 2 };
  return {
    accuracy,
    perClass: { COVID: perClass, Normal: { ...perClass } },
    macroF1: accuracy,
    confusion: [[right, n / 2 - right], [n / 2 - right, right]],
    auc: { perClass: { COVID: accuracy, Normal: accuracy }, macro: accuracy },
    covidSensitivity: accuracy,
    n,
  };
}

export function recordedFigures(): Pick<BundleManifestDraft, 'pruning' | 'metrics' | 'provenance' | 'training'> {
  return {
    pruning: {
      unitsBefore: 10,
      unitsAfter: 8,
      paramsBefore: 200,
      paramsAfter: 160,
      keptForPadding: 0,
      keptProtected: 0,
      keptLastUnit: 0,
      layers: [{ name: 'last_conv', type: 'Conv2D', unitsBefore: 4, unitsAfter: 2 }],
      maxAbsDiff: 0,
      maxAbsDiffFeatures: 0,
      maxAbsDiffLogits: 0,
      maxAbsDiffTrain: 0,
      removedPerLayer: { last_conv: 2 },
      unconfirmedOnValidation: 0,
      keptThinMargin: 0,
      deadMargin: 1,
      compressedParams: 150,
      selectedUnitsRemoved: 1,
    },
    metrics: { finetuned: twoClassMetrics(0.5), compressed: twoClassMetrics(0.6), deployed: 'logistic' },
    provenance: {
      dataset: 'synthetic',
      layout: 'flat',
      found: { COVID: 10, Normal: 10 },
      split: { train: 12, val: 4, test: 4 },
      skipped: 0,
      seed: 1,
      experiment: 'test',
      command: 'zerovar compress --dataset synthetic',
    },
    training: {
      epochs: 1,
      bestEpoch: 1,
      batchSize: 4,
      learningRate: 0.001,
      freezeBackbone: true,
      trainableFrom: null,
      fc1: 8,
      fc2: 6,
    },
  };
}

/** A valid manifest of a small raw 2-class bundle (logistic on 3 of 16 features), listing `files`. */
export function devManifest(files: Record<string, string> = { 'model/model.json': '0'.repeat(64) }): BundleManifest {
  return {
    format: 'zerovar-bundle', formatVersion: 1, name: 'dev', variant: 'raw', createdAt: '2026-01-02T03:04:05.000Z',
    classes: ['COVID', 'Normal'], input: { size: 96, channels: 3, normalization: 'mobilenet', resize: 'stretch' },
    backbone: { name: 'mobilenet_v2_0.35', weights: 'default' },
    model: { path: 'model/model.json', gradcamLayer: 'out_relu', featuresLayer: 'fc2', outputs: ['fc2'] },
    features: { selected: [1, 5, 9], total: 16, protocol: 'validation' },
    classifier: {
      deployed: {
        kind: 'logistic', nClasses: 2, nFeatures: 3, scaler: { mean: [0, 0, 0], scale: [1, 1, 1] },
        logistic: { weights: [[1, 2, 3]], intercept: [0] },
      },
    },
    ...recordedFigures(),
    files,
  };
}
