// The select step as stages with plain data between them: score the pruned network's penultimate features
// (ANOVA F on the training split), choose k (the paper's SVM sweep, scored on validation or, under the
// paper's protocol, on test), fit every classifier on the top-k features, and deploy one: the pruned network
// cut to those features plus the chosen classifier, less any unit left with no outgoing weight. selectStep runs
// them in order; each stage is exported.
import * as tf from '@tensorflow/tfjs';
import { HEAD_LAYERS } from '../model/backbones.js';
import { classifierFromJSON, classifierScoreFn, CLASSIFIER_KINDS, type ClassifierJSON, type ClassifierKind } from '../model/classifiers.js';
import type { BundleClassifier } from '../model/inference.js';
import { countUnits, pruneOutputUnits, removeUnreferencedUnits } from '../model/surgery.js';
import { fClassif, selectKBest } from '../stats/ftest.js';
import { evaluateScores, type ClassificationMetrics } from '../stats/metrics.js';
import { fitClassifier } from './classifiers.js';
import { predictRows, type ImageSet } from './images.js';
import { compactK, sweepKWithSvm } from './kselect.js';
import type { ClassifierChoice } from './options.js';

export interface ClassifierResult {
  kind: ClassifierKind;
  val: ClassificationMetrics;
  test: ClassificationMetrics;
  fitSeconds: number;
}

export interface SelectResult {
  protocol: 'validation' | 'paper';
  k: number;
  /** Which k was taken ('best' when absent: results from before the compact rule). */
  kRule?: KRule;
  /** The sweep's best k and the smallest k within 0.5 pt of it; `k` is one of the two. */
  kBest?: number;
  kCompact?: number;
  /** Units of the compressed network, and those removed after selection for feeding nothing. */
  compressedUnits?: number;
  unreferencedUnitsRemoved?: number;
  sweep: { k: number; score: number }[];
  /** Indices into the fine-tuned features layer of the selected features, in the compressed model's output order. */
  selected: number[];
  totalFeatures: number;
  fScores: number[];
  classifiers: ClassifierResult[];
  deployed: ClassifierKind;
  compressed: ClassificationMetrics;
  compressedParams: number;
  testProbabilities: number[][];
}

/**
 * What 'auto' deploys from: the classifiers whose probabilities are calibrated (Platt scaling, logistic) and
 * whose parameters stay small. k-NN (the training set itself, coarse vote fractions) and the forest (vote
 * fractions) are compared in the report and deployable on request.
 */
export const DEPLOYABLE_BY_DEFAULT: readonly ClassifierKind[] = ['svm-poly', 'svm-rbf', 'svm-linear', 'logistic'];

/** Feature rows and their labels. */
export interface Rows {
  X: ArrayLike<number>[];
  y: number[];
}

export type KRule = 'best' | 'compact';

export interface SelectOptions {
  protocol: 'validation' | 'paper';
  /** Default 'best'. */
  kRule?: KRule;
  classifier: ClassifierChoice;
  classes: string[];
  /** The class whose ROC / sensitivity the metrics single out. */
  positiveClass: string;
  seed: number;
  /** Default: the classifier head's penultimate layer (HEAD_LAYERS.features). */
  featuresLayer?: string;
  log?: (line: string) => void;
}

// ---------------------------------------------------------------------------------------------------------
// score

/** ANOVA F score of each feature on the training rows. */
export function scoreFeatures(train: Rows): Float64Array {
  return fClassif(train.X, train.y).F;
}

// ---------------------------------------------------------------------------------------------------------
// choose k

/** Where k is scored: the validation split (ours, unbiased), or the test split (the paper's protocol, optimistic). */
export function kEvaluationSplit<T>(protocol: 'validation' | 'paper', splits: { val: T; test: T }): T {
  return protocol === 'paper' ? splits.test : splits.val;
}

export interface KChoice {
  k: number;
  kBest: number;
  kCompact: number;
  sweep: { k: number; score: number }[];
  /** Column indices of the k best features by F score. */
  columns: number[];
}

/** The paper's SVM sweep over k on the top-k F-score features, scored on `evalOn`; `rule` says which k. */
export function chooseK(F: ArrayLike<number>, train: Rows, evalOn: Rows, rule: KRule = 'best'): KChoice {
  const sweep = sweepKWithSvm(train.X, train.y, evalOn.X, evalOn.y, F);
  const kCompact = compactK(sweep.sweep);
  const k = rule === 'compact' ? kCompact : sweep.k;
  return { k, kBest: sweep.k, kCompact, sweep: sweep.sweep, columns: selectKBest(F, k) };
}

/** The given columns of each row. */
export function pickColumns(X: ArrayLike<number>[], columns: number[]): number[][] {
  return X.map((row) => columns.map((j) => row[j]));
}

// ---------------------------------------------------------------------------------------------------------
// fit

/** Every classifier kind fitted on the training rows (with probabilities), scored on validation and test. */
export function fitClassifiers(
  rows: { train: Rows; val: Rows; test: Rows },
  opts: { classes: string[]; positiveClass: string; seed: number; kinds?: readonly ClassifierKind[]; log?: (line: string) => void },
): { results: ClassifierResult[]; fitted: Map<ClassifierKind, ClassifierJSON> } {
  const results: ClassifierResult[] = [];
  const fitted = new Map<ClassifierKind, ClassifierJSON>();
  for (const kind of opts.kinds ?? CLASSIFIER_KINDS) {
    const t0 = performance.now();
    const json = fitClassifier(kind, rows.train.X, rows.train.y, { seed: opts.seed, probability: true });
    const fitSeconds = (performance.now() - t0) / 1000;
    const c = classifierFromJSON(json);
    const vm = evaluateScores(rows.val.y, c.predictProba(rows.val.X), opts.classes, opts.positiveClass);
    const tm = evaluateScores(rows.test.y, c.predictProba(rows.test.X), opts.classes, opts.positiveClass);
    fitted.set(kind, json);
    results.push({ kind, val: vm, test: tm, fitSeconds });
    opts.log?.(`${kind.padEnd(13)} val acc ${vm.accuracy.toFixed(4)}  test acc ${tm.accuracy.toFixed(4)}  macro-F1 ${tm.macroF1.toFixed(4)}  AUC ${tm.auc.macro.toFixed(4)}`);
  }
  return { results, fitted };
}

// ---------------------------------------------------------------------------------------------------------
// deploy

/**
 * The classifier to deploy: the one asked for, or with 'auto' the best validation accuracy among `deployable`,
 * ties broken by validation macro-F1, then by the order of `results`.
 */
export function chooseDeployed(
  results: ClassifierResult[],
  requested: ClassifierChoice,
  deployable: readonly ClassifierKind[] = DEPLOYABLE_BY_DEFAULT,
): ClassifierKind {
  if (requested !== 'auto') return requested;
  const candidates = results.filter((r) => deployable.includes(r.kind));
  if (candidates.length === 0) throw new Error(`none of ${deployable.join(', ')} was fitted`);
  return candidates.reduce((best, r) =>
    r.val.accuracy > best.val.accuracy || (r.val.accuracy === best.val.accuracy && r.val.macroF1 > best.val.macroF1) ? r : best,
  ).kind;
}

/** The bundle's classifier: the deployed one, and the logistic model to explain it when it has no score function. */
export function bundleClassifierFor(deployed: ClassifierKind, fitted: Map<ClassifierKind, ClassifierJSON>): BundleClassifier {
  const json = fitted.get(deployed);
  if (!json) throw new Error(`classifier ${deployed} was not fitted`);
  return { deployed: json, explainer: classifierScoreFn(json) ? undefined : fitted.get('logistic') };
}

export interface Deployment {
  /** The pruned network cut to the selected features (its single output), without unreferenced units. */
  compressed: tf.LayersModel;
  /** Units removed after the cut for feeding nothing (every outgoing weight 0). */
  unreferencedUnitsRemoved: number;
  classifier: BundleClassifier;
  testProbabilities: number[][];
  metrics: ClassificationMetrics;
}

/** The compressed model: the pruned network cut to the selected units, then the deployed classifier, tested. */
export function deploy(
  pruned: tf.LayersModel,
  columns: number[],
  classifier: BundleClassifier,
  test: ImageSet,
  opts: { classes: string[]; positiveClass: string; featuresLayer?: string },
): Deployment {
  // The cut drops the unselected features' units; a unit that fed only those now feeds nothing and goes too (exact).
  const cut = pruneOutputUnits(pruned, opts.featuresLayer ?? HEAD_LAYERS.features, columns);
  const { model: compressed, removed } = removeUnreferencedUnits(cut);
  if (compressed !== cut) cut.dispose();
  const [Cte] = predictRows(compressed, test);
  const testProbabilities = classifierFromJSON(classifier.deployed).predictProba(Cte);
  const metrics = evaluateScores(test.labels, testProbabilities, opts.classes, opts.positiveClass);
  return { compressed, unreferencedUnitsRemoved: removed, classifier, testProbabilities, metrics };
}

// ---------------------------------------------------------------------------------------------------------
// the whole step

/**
 * score -> choose k -> fit -> deploy on the pruned model. `keptFeatures` maps the pruned model's features to
 * the fine-tuned model's (PruneResult.keptFeatures), `totalFeatures` is the fine-tuned width. The caller saves
 * the compressed model and the classifier, and disposes the models.
 */
export function selectStep(
  pruned: tf.LayersModel,
  sets: { train: ImageSet; val: ImageSet; test: ImageSet },
  features: { kept: number[]; total: number },
  opts: SelectOptions,
): { compressed: tf.LayersModel; classifier: BundleClassifier; result: SelectResult } {
  const { train, val, test } = sets;
  const log = opts.log ?? (() => {});
  const featuresLayer = opts.featuresLayer ?? HEAD_LAYERS.features;
  const feats = tf.model({ inputs: pruned.inputs, outputs: pruned.getLayer(featuresLayer).output as tf.SymbolicTensor });
  const rows = (set: ImageSet): Rows => ({ X: predictRows(feats, set)[0], y: set.labels });
  const [Rtr, Rva, Rte] = [rows(train), rows(val), rows(test)];

  const F = scoreFeatures(Rtr);
  log(`F-test on ${F.length} penultimate features; sweeping k on the ${opts.protocol === 'paper' ? 'TEST split (paper protocol: optimistic)' : 'validation split'}`);
  const kRule = opts.kRule ?? 'best';
  const choice = chooseK(F, Rtr, kEvaluationSplit(opts.protocol, { val: Rva, test: Rte }), kRule);
  log(`k = ${choice.k} of ${F.length} (${kRule}: best k ${choice.kBest}, compact k ${choice.kCompact}, the smallest within 0.5 pt of the best)`);
  const picked = (r: Rows): Rows => ({ X: pickColumns(r.X, choice.columns), y: r.y });

  const metricOpts = { classes: opts.classes, positiveClass: opts.positiveClass };
  const { results, fitted } = fitClassifiers({ train: picked(Rtr), val: picked(Rva), test: picked(Rte) }, { ...metricOpts, seed: opts.seed, log });
  const deployed = chooseDeployed(results, opts.classifier);
  log(`deployed classifier: ${deployed}${opts.classifier === 'auto' ? ` (best on validation among ${DEPLOYABLE_BY_DEFAULT.join(', ')})` : ''}`);

  const d = deploy(pruned, choice.columns, bundleClassifierFor(deployed, fitted), test, { ...metricOpts, featuresLayer });
  const compressedParams = d.compressed.countParams();
  const compressedUnits = countUnits(d.compressed);
  if (d.unreferencedUnitsRemoved > 0) log(`${d.unreferencedUnitsRemoved} unit(s) left with no outgoing weight after selection removed`);
  log(`compressed model (${compressedUnits} units, ${compressedParams} parameters): test accuracy ${d.metrics.accuracy.toFixed(4)}, macro-F1 ${d.metrics.macroF1.toFixed(4)}`);
  return {
    compressed: d.compressed,
    classifier: d.classifier,
    result: {
      protocol: opts.protocol,
      k: choice.k,
      kRule,
      kBest: choice.kBest,
      kCompact: choice.kCompact,
      compressedUnits,
      unreferencedUnitsRemoved: d.unreferencedUnitsRemoved,
      sweep: choice.sweep,
      selected: choice.columns.map((j) => features.kept[j]),
      totalFeatures: features.total,
      fScores: Array.from(F),
      classifiers: results,
      deployed,
      compressed: d.metrics,
      compressedParams,
      testProbabilities: d.testProbabilities,
    },
  };
}
