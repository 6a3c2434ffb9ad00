// The bundle manifest's contract: a type for every field the trainer writes, the errors a reader reports, and the
// validator that checks a parsed manifest.json against those types. The trainer builds its manifest as this type
// (a wrong field is a compile error there) and every reader gets it only through the validator (a wrong field is
// refused at the door, with its path named, instead of failing deep inside a prediction). Browser-safe.
import { CLASSIFIER_KINDS, type ClassifierJSON, type ClassifierKind, type ForestClassifierJSON, type ScalerJSON, type SvmModelJSON } from './classifiers.js';
import type { ClassificationMetrics } from '../stats/metrics.js';
import type { MaskRefinement } from './segmenter.js';
import type { PruningSummary } from './surgery.js';
import type { OodGuardHeader } from './ood.js';
import type { Calibration, CalibrationMethod } from '../stats/calibration.js';
import { ARRAY_DTYPES, binaryRefs, isBinaryRef, type BinaryArrayRef } from './classifier-store.js';

export const BUNDLE_FORMAT = 'zerovar-bundle';
export const BUNDLE_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';
export const MODEL_PATH = 'model/model.json';

/**
 * Why a bundle cannot be used, for callers that act on the cause rather than show the message:
 * - `not-found`: there is no bundle at the location (its manifest.json does not exist);
 * - `missing-file`: a file the bundle needs could not be read (absent, or the fetch failed);
 * - `checksum`: a file's bytes differ from the manifest's sha256 (truncated or altered);
 * - `unsupported-version`: a format version this reader does not know;
 * - `invalid-field`: a manifest field (or a model file's content) has the wrong type or shape.
 */
export type BundleErrorCode = 'not-found' | 'missing-file' | 'checksum' | 'unsupported-version' | 'invalid-field';

/** A bundle that cannot be used; `code` says why, the message names the culprit. */
export class BundleError extends Error {
  constructor(
    readonly code: BundleErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'BundleError';
  }
}

/** What the manifest's `classifier` field holds: the deployed classifier and, when that one cannot be
 * differentiated (k-NN, random forest), a linear one on the same features used only to draw attention. */
export interface BundleClassifier {
  deployed: ClassifierJSON;
  explainer?: ClassifierJSON;
}

/** Units of one layer before and after the surgery. */
export type LayerUnits = PruningSummary['layers'][number];

/** What the zero-variance surgery removed (the surgery's own summary) and how exactly the pruned network
 * reproduces the fine-tuned one. */
export interface PruningStats extends PruningSummary {
  /** max |pruned - unpruned| over the kept fc2 features and the logits, on the test split. */
  maxAbsDiff: number;
  maxAbsDiffFeatures: number;
  maxAbsDiffLogits: number;
  /** The same on training images, where the statistics were measured. */
  maxAbsDiffTrain: number;
  removedPerLayer: Record<string, number>;
  unconfirmedOnValidation: number;
  keptThinMargin: number;
  deadMargin: number;
  /** Parameters of the exported network (pruned, cut to the selected features). */
  compressedParams: number;
  /** Surviving penultimate units left out by the feature selection. */
  selectedUnitsRemoved: number;
  // Optional: bundles made before the relative threshold and the compact k lack them.
  /** Units of the exported network (after surgery, selection and removing units that fed nothing). */
  compressedUnits?: number;
  /** Units removed after the selection because no outgoing weight was left. */
  unreferencedUnitsRemoved?: number;
  /** The variance threshold, relative to each layer's mean unit variance (0: exactly constant). */
  varianceThreshold?: number;
  /** 'auto': the largest threshold of a validation sweep up to which accuracy stays within 0.5 pt of the unpruned. */
  thresholdRule?: 'auto' | 'fixed';
  /** Each threshold tried, with what it removed, its validation accuracy and max |pruned - unpruned| there. */
  thresholdSweep?: ThresholdPointStats[];
  baselineValAccuracy?: number;
  valAccuracy?: number;
  testAccuracy?: number;
  maxAbsDiffVal?: number;
  /** The auto rule's looser threshold for fc1 and fc2, followed by a head-only recovery fine-tune. */
  headThreshold?: number;
  /** Each head threshold tried: what it removed, validation accuracy before and after the recovery. */
  headSweep?: HeadPointStats[];
  recoveryEpochs?: number;
  /** What that recovery fitted: the unpruned network's logits ('distill') or the labels. */
  recoveryFit?: 'distill' | 'labels';
}

export interface HeadPointStats {
  threshold: number;
  unitsRemoved: number;
  paramsRemoved: number;
  paramsAfter: number;
  valAccuracyBefore: number;
  valAccuracy: number;
}

export interface ThresholdPointStats {
  threshold: number;
  unitsRemoved: number;
  paramsRemoved: number;
  paramsAfter: number;
  valAccuracy: number;
  maxAbsDiff: number;
}

/** The unpruned reference bundle (--export-unpruned): no surgery, only its size. */
export interface UnprunedStats {
  unpruned: true;
  paramsAfter: number;
}

export type BundlePruning = PruningStats | UnprunedStats;

/** Classification metrics as stored: JSON has no NaN, so an undefined AUC reads back as null. */
export type StoredMetrics = Omit<ClassificationMetrics, 'auc'> & {
  auc: { perClass: Record<string, number | null>; macro: number | null };
};

/** Test-split figures. */
export interface BundleMetrics {
  /** The fine-tuned network's own softmax head. */
  finetuned: StoredMetrics;
  /** The bundle as deployed: selected features + deployed classifier. */
  compressed: StoredMetrics;
  /** Every classifier fitted on the selected features (absent in the unpruned reference). */
  classifiers?: Partial<Record<ClassifierKind, StoredMetrics>>;
  deployed: ClassifierKind;
  /** The bundle on data from other sources than its training set (`zerovar evaluate --record NAME`), by name:
   * what a radiologist should expect on images from elsewhere, shown beside the test split's figures. */
  external?: Record<string, ExternalMetrics>;
}

export interface ExternalMetrics {
  /** The dataset's folder name (never a machine path). */
  dataset: string;
  n: number;
  accuracy: number;
  /** Macro ROC AUC (null when a class is absent). */
  auc: number | null;
  covidSensitivity?: number;
  /** Recall of the other class of a binary task. */
  specificity?: number;
}

/** Where the training data came from and how it was split. */
export interface Provenance {
  dataset: string;
  layout: 'flat' | 'kaggle' | 'csv';
  /** Images found per class. */
  found: Record<string, number>;
  split: { train: number; val: number; test: number };
  skipped: number;
  seed: number;
  experiment: string;
  command: string;
  /** Later commands that resumed the experiment or redid steps of it, oldest first (absent: none). */
  laterCommands?: string[];
  /** What the network was fine-tuned on (bundles made before this was recorded have none). */
  runtime?: RuntimeProvenance;
}

/** --threads auto's measurement at the start of a run: what was timed, the fastest step per thread count. */
export interface ThreadsProbe {
  model: string;
  /** Fastest timed step (ms) per thread count tried. */
  stepMs: Record<string, number>;
  chosen: number;
}

/** The backend and threads fine-tuning ran with. */
export interface RuntimeProvenance {
  backend: string;
  /** wasm threads (XNNPACK's pool); 1 on other backends. */
  threads: number;
  /** Threads the project's own kernels used, the calling one included (the native addon's, or the kernel pool's). */
  kernelThreads: number;
  /** Whether the native addon ran the products and the kernels' tasks (absent in bundles made before it did). */
  nativeKernels?: boolean;
  /** What computed the training kernels' matrix products on wasm: 'OpenBLAS 0.3.21 (Haswell) on 1 thread', or XNNPACK's. */
  matrixProducts?: string;
  /** Present when --threads auto chose the count. */
  threadsProbe?: ThreadsProbe;
}

/** The fine-tuning settings. */
export interface TrainingSettings {
  epochs: number;
  bestEpoch: number;
  batchSize: number;
  learningRate: number;
  freezeBackbone: boolean;
  /** First trained layer; null: the whole model or the head only (see the trainer's TrainResult). */
  trainableFrom: string | null;
  fc1: number;
  fc2: number;
}

/** The lung segmenter a masked bundle carries: another LayersModel inside the bundle, and its post-processing. */
export interface SegmenterInfo {
  path: string;
  inputSize: number;
  threshold: number;
  refinement: MaskRefinement;
  heldOut?: { dice: number; iou: number; n: number };
}

/** The out-of-distribution guard (model/ood.ts): its numbers in a float32 file, its shape and threshold here. */
export interface OodInfo extends OodGuardHeader {
  method: 'mahalanobis-ppca';
  path: string;
  /** What the guard looks at: the image as given, before any lung masking (a CT slice must be refused before
   * the segmenter has a say). */
  input: 'unmasked';
  /** The fraction of each split flagged, and of each out-of-distribution set the trainer measured (by name). */
  flagged: { validation: number; test: number; sets?: Record<string, number> };
  /** Test split against each out-of-distribution set. */
  auroc?: Record<string, number>;
}

/** The deployed classifier's probability calibration (stats/calibration.ts), fitted on the validation split. */
export interface CalibrationInfo {
  calibration: Calibration;
  /** Cross-validated ECE on validation of each method tried: how the method was chosen. */
  cvEce: Partial<Record<CalibrationMethod, number>>;
  /** Expected calibration error (15 bins) on the test split, before and after. */
  testEce: { before: number; after: number };
}

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  formatVersion: number;
  name: string;
  /** Trained on whole images ('raw') or on lung-masked images ('masked'). */
  variant: 'raw' | 'masked';
  createdAt: string;
  classes: string[];
  positiveClass?: string;
  input: { size: number; channels: 3; normalization: 'mobilenet' | 'caffe'; resize: 'stretch' };
  backbone: { name: string; weights: string };
  model: {
    path: string;
    /** Conv layer explained by Grad-CAM. */
    gradcamLayer: string;
    /** Layer whose output feeds the feature selection and the classifier. */
    featuresLayer: string;
    outputs: string[];
  };
  features: { selected: number[]; total: number; protocol: 'validation' | 'paper' };
  /** The fitted classifier, serialised by the classifiers module; its large arrays may be references into a binary
 * file of the bundle (model/classifier-store.ts): readBundle resolves them, so readers get plain arrays. */
  classifier: BundleClassifier;
  pruning: BundlePruning;
  metrics: BundleMetrics;
  provenance: Provenance;
  training?: TrainingSettings;
  /** Optional lung segmenter for the masked variant. */
  segmenter?: SegmenterInfo;
  /** Out-of-distribution guard (bundles made before it have none: their answers cannot be guarded). */
  ood?: OodInfo;
  /** Probability calibration of the deployed classifier (absent: probabilities as the classifier gives them). */
  calibration?: CalibrationInfo;
  /** Relative path -> sha256 (lower-case hex) of every file except manifest.json. */
  files: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------------------
// Validation. A check takes a value and its path in the manifest, throws BundleError('invalid-field') naming the
// path, and returns the value as its type. `object` needs a check for every key of the interface it is given,
// so a field added to a type without a check is a compile error.

type Check<T> = (v: unknown, path: string) => T;
type Shape<T> = { [K in keyof T]-?: Check<T[K]> };

function fail(path: string, problem: string): never {
  throw new BundleError('invalid-field', `${path}: ${problem}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const num: Check<number> = (v, path) => (typeof v === 'number' ? v : fail(path, 'expected a number'));
const int: Check<number> = (v, path) => (Number.isInteger(v) ? (v as number) : fail(path, 'expected an integer'));
const positiveInt: Check<number> = (v, path) =>
  Number.isInteger(v) && (v as number) > 0 ? (v as number) : fail(path, 'expected a positive integer');
const str: Check<string> = (v, path) => (typeof v === 'string' ? v : fail(path, 'expected a string'));
const bool: Check<boolean> = (v, path) => (typeof v === 'boolean' ? v : fail(path, 'expected true or false'));

function oneOf<const T extends readonly (string | number | boolean)[]>(...values: T): Check<T[number]> {
  return (v, path) =>
    values.includes(v as T[number]) ? (v as T[number]) : fail(path, `expected ${values.map((x) => JSON.stringify(x)).join(' or ')}`);
}

function optional<T>(check: Check<T>): Check<T | undefined> {
  return (v, path) => (v === undefined ? undefined : check(v, path));
}

function nullable<T>(check: Check<T>): Check<T | null> {
  return (v, path) => (v === null ? null : check(v, path));
}

function arrayOf<T>(check: Check<T>): Check<T[]> {
  return (v, path) => {
    if (!Array.isArray(v)) fail(path, 'expected an array');
    v.forEach((x, i) => check(x, `${path}[${i}]`));
    return v as T[];
  };
}

/** Plain number arrays are checked in one pass and reported as a whole (they hold thousands of values). */
const numbers: Check<number[]> = (v, path) =>
  Array.isArray(v) && v.every((x) => typeof x === 'number') ? v : fail(path, 'expected an array of numbers');
const integers: Check<number[]> = (v, path) =>
  Array.isArray(v) && v.every((x) => Number.isInteger(x)) ? v : fail(path, 'expected an array of integers');
const strings: Check<string[]> = (v, path) =>
  Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : fail(path, 'expected an array of strings');
const matrix: Check<number[][]> = (v, path) => {
  if (!Array.isArray(v)) fail(path, 'expected an array of arrays of numbers');
  v.forEach((row, i) => numbers(row, `${path}[${i}]`));
  return v as number[][];
};

/** A reference to an array stored in a bundle file (model/classifier-store.ts), with `dims` 1 or 2. */
function binaryRef(dims: 1 | 2): Check<BinaryArrayRef> {
  return (v, path) => {
    const ref = object<BinaryArrayRef>({
      binary: (p, at) => {
        const s = str(p, at);
        try {
          checkRelativePath(s);
        } catch (e) {
          fail(at, (e as Error).message);
        }
        return s;
      },
      dtype: oneOf(...ARRAY_DTYPES),
      offset: (o, at) => (Number.isInteger(o) && (o as number) >= 0 ? (o as number) : fail(at, 'expected a byte offset (an integer >= 0)')),
      shape: (sh, at) =>
        Array.isArray(sh) && sh.length === dims && sh.every((d) => Number.isInteger(d) && d >= 0)
          ? (sh as number[])
          : fail(at, `expected ${dims === 1 ? '[length]' : '[rows, columns]'} (non-negative integers)`),
    })(v, path);
    return ref;
  };
}

/** Inline numbers, or a reference to them in a binary file (typed as the array readBundle resolves it to). */
const numbersOrRef: Check<number[]> = (v, path) => (isBinaryRef(v) ? (binaryRef(1)(v, path) as unknown as number[]) : numbers(v, path));
const matrixOrRef: Check<number[][]> = (v, path) => (isBinaryRef(v) ? (binaryRef(2)(v, path) as unknown as number[][]) : matrix(v, path));

/** Length of an inline array or a referenced one (rows of a matrix), and whether every row is n wide. */
function lengthOf(v: number[] | number[][]): number {
  return isBinaryRef(v) ? v.shape[0] : v.length;
}
function rowsOf(m: number[][], n: number): boolean {
  return isBinaryRef(m) ? m.shape[1] === n : m.every((r) => r.length === n);
}

function recordOf<T>(check: Check<T>): Check<Record<string, T>> {
  return (v, path) => {
    if (!isObject(v)) fail(path, 'expected an object');
    for (const [k, x] of Object.entries(v)) check(x, `${path}[${JSON.stringify(k)}]`);
    return v as Record<string, T>;
  };
}

function object<T>(shape: Shape<T>): Check<T> {
  return (v, path) => {
    if (!isObject(v)) fail(path, 'expected an object');
    for (const key of Object.keys(shape) as (keyof T & string)[]) shape[key](v[key], `${path}.${key}`);
    return v as T;
  };
}

/** An extra condition on an already checked value. */
function need(ok: boolean, path: string, problem: string): void {
  if (!ok) fail(path, problem);
}

const scaler = object<ScalerJSON>({ mean: numbersOrRef, scale: numbersOrRef });

const svmModel = object<SvmModelJSON>({
  kernel: oneOf('linear', 'polynomial', 'rbf'),
  degree: num,
  gamma: num,
  coef0: num,
  labels: integers,
  nSV: integers,
  supportVectors: matrixOrRef,
  dualCoef: matrixOrRef,
  rho: numbers,
  probA: optional(numbers),
  probB: optional(numbers),
});

/** ml-random-forest's own model JSON: its name and the presence of its trees are checked here, the trees
 * themselves are the library's to read. */
const forestModel: Check<ForestClassifierJSON['forest']> = (v, path) => {
  object<{ name: 'RFClassifier'; baseModel: Record<string, unknown> }>({ name: oneOf('RFClassifier'), baseModel: recordOf((x) => x) })(v, path);
  return v as ForestClassifierJSON['forest'];
};

const SVM_KINDS: readonly string[] = ['svm-poly', 'svm-rbf', 'svm-linear'];

/** One fitted classifier, its parameters' shapes checked against its class and feature counts. */
const classifierJson: Check<ClassifierJSON> = (v, path) => {
  const base = object<{ kind: ClassifierKind; nClasses: number; nFeatures: number; scaler: ScalerJSON }>({
    kind: oneOf(...CLASSIFIER_KINDS),
    nClasses: positiveInt,
    nFeatures: positiveInt,
    scaler,
  })(v, path);
  const { nClasses, nFeatures } = base;
  const rec = v as Record<string, unknown>;
  need(lengthOf(base.scaler.mean) === nFeatures && lengthOf(base.scaler.scale) === nFeatures, `${path}.scaler`,
    `expected mean and scale of ${nFeatures} values (nFeatures)`);
  const rows = (m: number[][], n: number, at: string): void => need(rowsOf(m, n), at, `expected rows of ${n} values`);
  if (SVM_KINDS.includes(base.kind)) {
    const svm = svmModel(rec.svm, `${path}.svm`);
    const total = svm.nSV.reduce((a, b) => a + b, 0);
    const pairs = (nClasses * (nClasses - 1)) / 2;
    need(svm.labels.length === nClasses && svm.nSV.length === nClasses, `${path}.svm`, `expected labels and nSV for ${nClasses} classes`);
    need(lengthOf(svm.supportVectors) === total, `${path}.svm.supportVectors`, `expected ${total} rows (the sum of nSV)`);
    rows(svm.supportVectors, nFeatures, `${path}.svm.supportVectors`);
    need(lengthOf(svm.dualCoef) === nClasses - 1, `${path}.svm.dualCoef`, `expected ${nClasses - 1} rows`);
    rows(svm.dualCoef, total, `${path}.svm.dualCoef`);
    need(svm.rho.length === pairs, `${path}.svm.rho`, `expected ${pairs} values (one per class pair)`);
    for (const p of ['probA', 'probB'] as const) {
      const a = svm[p];
      if (a) need(a.length === pairs, `${path}.svm.${p}`, `expected ${pairs} values (one per class pair)`);
    }
  } else if (base.kind === 'logistic') {
    const lr = object<{ weights: number[][]; intercept: number[] }>({ weights: matrixOrRef, intercept: numbers })(rec.logistic, `${path}.logistic`);
    const nw = lengthOf(lr.weights);
    need(nw === nClasses || (nClasses === 2 && nw === 1), `${path}.logistic.weights`,
      `expected ${nClasses} rows${nClasses === 2 ? ' (or 1)' : ''}`);
    rows(lr.weights, nFeatures, `${path}.logistic.weights`);
    need(lr.intercept.length === nw, `${path}.logistic.intercept`, `expected ${nw} values`);
  } else if (base.kind === 'knn') {
    const knn = object<{ k: number; X: number[][]; y: number[] }>({ k: positiveInt, X: matrixOrRef, y: integers })(rec.knn, `${path}.knn`);
    rows(knn.X, nFeatures, `${path}.knn.X`);
    const nx = lengthOf(knn.X);
    need(knn.y.length === nx, `${path}.knn.y`, `expected ${nx} labels (one per row of X)`);
    need(knn.y.every((c) => c >= 0 && c < nClasses), `${path}.knn.y`, `expected class indices below ${nClasses}`);
  } else {
    forestModel(rec.forest, `${path}.forest`);
  }
  return v as ClassifierJSON;
};

const metrics = object<StoredMetrics>({
  accuracy: num,
  perClass: recordOf(object({ precision: num, recall: num, f1: num, support: num })),
  macroF1: num,
  confusion: matrix,
  auc: object<StoredMetrics['auc']>({ perClass: recordOf(nullable(num)), macro: nullable(num) }),
  covidSensitivity: optional(num),
  n: num,
});

const pruningStats = object<PruningStats>({
  unitsBefore: num,
  unitsAfter: num,
  paramsBefore: num,
  paramsAfter: num,
  keptForPadding: num,
  keptProtected: num,
  keptLastUnit: num,
  layers: arrayOf(object<LayerUnits>({ name: str, type: str, unitsBefore: num, unitsAfter: num })),
  maxAbsDiff: num,
  maxAbsDiffFeatures: num,
  maxAbsDiffLogits: num,
  maxAbsDiffTrain: num,
  removedPerLayer: recordOf(num),
  unconfirmedOnValidation: num,
  keptThinMargin: num,
  deadMargin: num,
  compressedParams: num,
  selectedUnitsRemoved: num,
  compressedUnits: optional(num),
  unreferencedUnitsRemoved: optional(num),
  varianceThreshold: optional(num),
  thresholdRule: optional(oneOf('auto', 'fixed')),
  thresholdSweep: optional(arrayOf(object<ThresholdPointStats>({
    threshold: num, unitsRemoved: num, paramsRemoved: num, paramsAfter: num, valAccuracy: num, maxAbsDiff: num,
  }))),
  baselineValAccuracy: optional(num),
  valAccuracy: optional(num),
  testAccuracy: optional(num),
  maxAbsDiffVal: optional(num),
  headThreshold: optional(num),
  headSweep: optional(arrayOf(object<HeadPointStats>({
    threshold: num, unitsRemoved: num, paramsRemoved: num, paramsAfter: num, valAccuracyBefore: num, valAccuracy: num,
  }))),
  recoveryEpochs: optional(num),
  recoveryFit: optional(oneOf('distill', 'labels')),
});

const pruning: Check<BundlePruning> = (v, path) =>
  isObject(v) && 'unpruned' in v ? object<UnprunedStats>({ unpruned: oneOf(true), paramsAfter: num })(v, path) : pruningStats(v, path);

const segmenter = object<SegmenterInfo>({
  path: str,
  inputSize: positiveInt,
  threshold: num,
  refinement: object<MaskRefinement>({ threshold: num, keepComponents: int, minComponentFraction: num, fillHoles: bool, dilation: num }),
  heldOut: optional(object({ dice: num, iou: num, n: num })),
});

const oodInfo = object<OodInfo>({
  method: oneOf('mahalanobis-ppca'),
  path: str,
  input: oneOf('unmasked'),
  layer: str,
  dims: positiveInt,
  classes: positiveInt,
  components: positiveInt,
  residualVariance: (v, path) => (typeof v === 'number' && v > 0 ? v : fail(path, 'expected a positive number')),
  threshold: num,
  acceptance: num,
  flagged: object<OodInfo['flagged']>({ validation: num, test: num, sets: optional(recordOf(num)) }),
  auroc: optional(recordOf(num)),
});

const calibrationInfo = object<CalibrationInfo>({
  calibration: (v, path) => {
    const c = object<{ method: CalibrationMethod }>({ method: oneOf('none', 'temperature') })(v, path);
    if (c.method === 'temperature') {
      object<{ temperature: number }>({
        temperature: (t, at) => (typeof t === 'number' && t > 0 && Number.isFinite(t) ? t : fail(at, 'expected a positive number')),
      })(v, path);
    }
    return v as Calibration;
  },
  cvEce: object<CalibrationInfo['cvEce']>({ none: optional(num), temperature: optional(num) }),
  testEce: object<CalibrationInfo['testEce']>({ before: num, after: num }),
});

const SHA256 = /^[0-9a-fA-F]{64}$/;

const manifestShape = object<BundleManifest>({
  format: oneOf(BUNDLE_FORMAT),
  formatVersion: int,
  name: str,
  variant: oneOf('raw', 'masked'),
  createdAt: str,
  classes: (v, path) => (strings(v, path).length >= 2 ? (v as string[]) : fail(path, 'expected at least two class names')),
  positiveClass: optional(str),
  input: object<BundleManifest['input']>({
    size: positiveInt,
    channels: oneOf(3),
    normalization: oneOf('mobilenet', 'caffe'),
    resize: oneOf('stretch'),
  }),
  backbone: object<BundleManifest['backbone']>({ name: str, weights: str }),
  model: object<BundleManifest['model']>({ path: str, gradcamLayer: str, featuresLayer: str, outputs: strings }),
  features: object<BundleManifest['features']>({ selected: integers, total: int, protocol: oneOf('validation', 'paper') }),
  classifier: object<BundleClassifier>({ deployed: classifierJson, explainer: optional(classifierJson) }),
  pruning,
  metrics: object<BundleMetrics>({
    finetuned: metrics,
    compressed: metrics,
    classifiers: optional(object<NonNullable<BundleMetrics['classifiers']>>({
      'svm-poly': optional(metrics),
      'svm-rbf': optional(metrics),
      'svm-linear': optional(metrics),
      logistic: optional(metrics),
      knn: optional(metrics),
      'random-forest': optional(metrics),
    })),
    deployed: oneOf(...CLASSIFIER_KINDS),
    external: optional(recordOf(object<ExternalMetrics>({
      dataset: str,
      n: num,
      accuracy: num,
      auc: nullable(num),
      covidSensitivity: optional(num),
      specificity: optional(num),
    }))),
  }),
  provenance: object<Provenance>({
    dataset: str,
    layout: oneOf('flat', 'kaggle', 'csv'),
    found: recordOf(num),
    split: object<Provenance['split']>({ train: num, val: num, test: num }),
    skipped: num,
    seed: num,
    experiment: str,
    command: str,
    laterCommands: optional(arrayOf(str)),
    runtime: optional(object<RuntimeProvenance>({
      backend: str,
      threads: num,
      kernelThreads: num,
      nativeKernels: optional(bool),
      matrixProducts: optional(str),
      threadsProbe: optional(object<ThreadsProbe>({ model: str, stepMs: recordOf(num), chosen: num })),
    })),
  }),
  training: optional(object<TrainingSettings>({
    epochs: num,
    bestEpoch: num,
    batchSize: num,
    learningRate: num,
    freezeBackbone: bool,
    trainableFrom: nullable(str),
    fc1: num,
    fc2: num,
  })),
  segmenter: optional(segmenter),
  ood: optional(oodInfo),
  calibration: optional(calibrationInfo),
  files: (v, path) => {
    const files = recordOf((hash, at) => (typeof hash === 'string' && SHA256.test(hash) ? hash : fail(at, 'expected a sha256 hex digest')))(v, path);
    for (const p of Object.keys(files)) {
      checkRelativePath(p);
      need(p !== MANIFEST_FILE, path, `${MANIFEST_FILE} cannot list itself`);
    }
    return files;
  },
});

/**
 * Checks a parsed manifest.json: format and version first (their own codes), then every field's type and shape,
 * then the fields that must agree with one another. Throws BundleError naming the field (`manifest.<path>`).
 * Binary array references are checked here for their shape and listing and left in place: readBundle resolves
 * them once the files are verified (model/classifier-store.ts unpackClassifier).
 */
export function validateManifest(json: unknown): BundleManifest {
  if (!isObject(json)) throw new BundleError('invalid-field', `${MANIFEST_FILE} must hold a JSON object`);
  if (json.format !== BUNDLE_FORMAT) {
    throw new BundleError('invalid-field', `not a ${BUNDLE_FORMAT} manifest (format: ${JSON.stringify(json.format)})`);
  }
  if (json.formatVersion !== BUNDLE_VERSION) {
    throw new BundleError(
      'unsupported-version',
      `bundle format version ${JSON.stringify(json.formatVersion)} is not supported (this reader supports ${BUNDLE_VERSION})`,
    );
  }
  const m = manifestShape(json, 'manifest');
  const k = m.features.selected.length;
  for (const role of ['deployed', 'explainer'] as const) {
    const c = m.classifier[role];
    if (!c) continue;
    need(c.nFeatures === k, `manifest.classifier.${role}.nFeatures`, `expected ${k} (the number of features.selected), got ${c.nFeatures}`);
    need(c.nClasses === m.classes.length, `manifest.classifier.${role}.nClasses`, `expected ${m.classes.length} (the number of classes), got ${c.nClasses}`);
  }
  if (m.positiveClass !== undefined) {
    need(m.classes.includes(m.positiveClass), 'manifest.positiveClass', `expected one of the classes, got ${JSON.stringify(m.positiveClass)}`);
  }
  if (m.ood) need(m.ood.classes === m.classes.length, 'manifest.ood.classes', `expected ${m.classes.length} (the number of classes), got ${m.ood.classes}`);
  const listed: [string, string][] = [[m.model.path, 'model.path']];
  if (m.segmenter) listed.push([m.segmenter.path, 'segmenter.path']);
  if (m.ood) listed.push([m.ood.path, 'ood.path']);
  for (const [p, role] of listed) {
    need(p in m.files, 'manifest.files', `${p} (${role}) is not listed`);
  }
  for (const { at, ref } of binaryRefs(m.classifier)) need(ref.binary in m.files, `${at}.binary`, `${ref.binary} is not listed in manifest.files`);
  return m;
}

/** Rejects paths that could leave the bundle's folder or are not plain relative paths. */
export function checkRelativePath(path: string): void {
  const parts = path.split('/');
  if (path === '' || path.startsWith('/') || path.includes('\\') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new BundleError('invalid-field', `invalid bundle path ${JSON.stringify(path)}: paths must be relative, without "." or ".."`);
  }
}
