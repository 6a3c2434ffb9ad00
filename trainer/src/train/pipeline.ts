// The paper's model_compression.py as resumable steps: data -> train -> prune -> select -> export -> explain ->
// report. Each step reads what earlier steps left in the experiment folder, so the CLI's subcommands can run
// them one at a time and an interrupted run continues where it stopped.
import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { cp, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { initBackend, trainingBackend } from '../runtime/backend.js';
import { wasmThreadCount } from '../runtime/wasm-threads.js';
import { discoverCsvDataset, discoverDataset, parseFindingMapping, type Dataset, type Sample } from '../data/dataset.js';
import { deriveSeed, shuffled, mulberry32 } from '../data/rng.js';
import { splitDataset } from '../data/split.js';
import { fsFetcher, writeBundle, type BundleManifestDraft } from '../io/bundle-fs.js';
import { loadLayersModel, saveLayersModel } from '../io/layers-fs.js';
import { BACKBONES, backboneFromPretrained, buildClassifierModel, buildVgg16, type BackboneInfo } from '../model/backbones.js';
import { classifierFromJSON, classifierScoreFn, CLASSIFIER_KINDS, type ClassifierJSON, type ClassifierKind } from '../model/classifiers.js';
import { fClassif, selectKBest } from '../stats/ftest.js';
import { BundleModel, type BundleClassifier } from '../model/inference.js';
import { evaluateScores, type ClassificationMetrics } from '../stats/metrics.js';
import type { InputSpec } from '../image/pixels.js';
import {
  applyPruning,
  planZeroVariancePruning,
  pruneOutputUnits,
  pruningSummary,
  restrictPlan,
  type PlannedUnit,
  type PruningSummary,
} from '../model/surgery.js';
import { fitClassifier } from './classifiers.js';
import { Experiment, writeJsonAtomic } from './experiment.js';
import { fineTune, type EpochRecord } from './finetune.js';
import { Progress } from './progress.js';
import { ImageSet, loadImageSet, predictRows, type SkippedFile } from './images.js';
import { sweepKWithSvm } from './kselect.js';
import type { PipelineOptions } from './options.js';
import { gradcamGrid, writeRgbaPng } from '../report/png.js';
import { measureUnitStats } from './variance.js';
import { deadReluUnits, preActivationStats } from './dead-margin.js';
import { loadPretrained } from './weights.js';
import { loadSegmenter, maskImageSet, segmenterFiles, type LoadedSegmenter } from './segmenter.js';

export interface DataResult {
  dataset: string;
  layout: Dataset['layout'];
  classes: string[];
  positiveClass?: string;
  notes: string[];
  found: Record<string, number>;
  split: { train: Sample[]; val: Sample[]; test: Sample[] };
  skipped: SkippedFile[];
  input: InputSpec;
}

export interface TrainResult {
  history: EpochRecord[];
  bestEpoch: number;
  resumedFrom?: number;
  cacheSeconds: number;
  trainBackend: string;
  /** First trained layer (null: the whole model when the backbone is not frozen, else the head from fc1). */
  trainableFrom?: string | null;
  /** The WebGPU adapter fine-tuning ran on. */
  trainAdapter?: string;
  params: number;
  weights: string;
  metrics: ClassificationMetrics;
  testScores: number[][];
}

export interface PruneResult extends PruningSummary {
  /** max |pruned - unpruned| over the kept fc2 features and the logits, on the test split. */
  maxAbsDiff: number;
  /** The same on (up to 256) training images, where the statistics were measured: the surgery's own error. */
  maxAbsDiffTrain: number;
  maxAbsDiffFeatures: number;
  maxAbsDiffLogits: number;
  /** Unit groups constant on the training split but not on the validation split, hence kept. */
  unconfirmedOnValidation: number;
  /** Dead ReLU units kept because their training pre-activation came within `deadMargin` sd of 0. */
  keptThinMargin: number;
  deadMargin: number;
  /** Indices (in the fine-tuned fc2) of the penultimate units that survived. */
  keptFeatures: number[];
  removedPerLayer: Record<string, number>;
}

export interface ClassifierResult {
  kind: ClassifierKind;
  val: ClassificationMetrics;
  test: ClassificationMetrics;
  fitSeconds: number;
}

export interface SelectResult {
  protocol: 'validation' | 'paper';
  k: number;
  sweep: { k: number; score: number }[];
  /** Indices into the fine-tuned fc2 of the selected features, in the compressed model's output order. */
  selected: number[];
  totalFeatures: number;
  fScores: number[];
  classifiers: ClassifierResult[];
  deployed: ClassifierKind;
  compressed: ClassificationMetrics;
  compressedParams: number;
  testProbabilities: number[][];
}

export interface ExportResult {
  dir: string;
  files: Record<string, string>;
  /** max |bundle - trainer| over the test probabilities, through the same reader the viewer uses. */
  reproduceMaxAbsDiff: number;
  sizeBytes: number;
  /** The unpruned reference bundle (--export-unpruned). */
  unpruned?: { dir: string; params: number; accuracy: number; sizeBytes: number };
}

export interface ExplainResult {
  layer: string;
  figures: string[];
  samples: { path: string; trueClass: string; predicted: string; probability: number }[];
}

/** What the report needs of an external evaluation (see cli/commands.ts evaluateBundle). */
export interface EvaluateResultLike {
  dataset: string;
  n: number;
  metrics: ClassificationMetrics;
}

const POSITIVE = 'COVID';
const DEPLOYABLE_BY_DEFAULT: readonly ClassifierKind[] = ['svm-poly', 'svm-rbf', 'svm-linear', 'logistic'];

export class Pipeline {
  readonly exp: Experiment;
  readonly info: BackboneInfo;
  readonly spec: InputSpec;
  private sets: { train: ImageSet; val: ImageSet; test: ImageSet } | null = null;
  private lungSegmenter: Promise<LoadedSegmenter> | null = null;

  constructor(readonly opts: PipelineOptions) {
    const root = resolve(opts.experimentsDir);
    const dir = resolve(root, opts.experimentId);
    if (existsSync(resolve(dir, 'state.json')) && !opts.resume && !opts.continueExisting) {
      throw new Error(
        `experiment '${opts.experimentId}' already exists in ${root}; pass --resume to continue it, or choose another --experiment_id`,
      );
    }
    this.exp = Experiment.open(root, opts.experimentId, { ...opts }, `zerovar ${process.argv.slice(2).join(' ')}`);
    this.exp.quiet = opts.quiet;
    if (opts.redo) {
      this.exp.invalidateFrom(opts.redo);
      this.log(`redoing from step ${opts.redo}`);
    }
    this.info = BACKBONES[opts.backbone];
    this.spec = { size: opts.inputSize ?? this.info.inputSize, normalization: this.info.normalization };
    if (opts.variant === 'masked' && !opts.segmenter) {
      throw new Error('the masked variant needs --segmenter DIR (train one with: zerovar segmenter train --dataset DIR --out DIR)');
    }
  }

  /** The masked variant's segmenter, loaded once. */
  segmenter(): Promise<LoadedSegmenter> {
    this.lungSegmenter ??= loadSegmenter(this.opts.segmenter!);
    return this.lungSegmenter;
  }

  /** Masked variant: every image lung-masked (the dataset's mask where present, else the segmenter's). */
  private async lungsOnly(r: { set: ImageSet; skipped: SkippedFile[] }): Promise<{ set: ImageSet; skipped: SkippedFile[] }> {
    if (this.opts.variant !== 'masked') return r;
    const m = await maskImageSet(r.set, await this.segmenter());
    this.log(`lung-masked ${m.set.size} images: ${m.fromDataset} with the dataset's masks, ${m.predicted} with the segmenter's`);
    return { set: m.set, skipped: r.skipped };
  }

  /** Metrics of the exported bundle on external data (xai --external), kept beside the report. */
  external(): EvaluateResultLike | undefined {
    const f = this.exp.path('external.json');
    return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as EvaluateResultLike) : undefined;
  }

  setExternal(r: EvaluateResultLike): void {
    writeJsonAtomic(this.exp.path('external.json'), r);
  }

  log(line: string): void {
    this.exp.log(line);
  }

  async init(): Promise<string> {
    // WebGPU trains only (see trainingBackend): everything else reads tensors synchronously, on wasm or cpu.
    const backend = await initBackend(this.opts.backend === 'webgpu' ? 'auto' : this.opts.backend, { threads: this.opts.threads });
    const threads = backend === 'wasm' ? `, ${wasmThreadCount()} thread${wasmThreadCount() > 1 ? 's' : ''}` : '';
    this.log(`tfjs ${tf.version.tfjs}, backend ${backend}${threads}`);
    return backend;
  }

  // -------------------------------------------------------------------------------------------------------
  // data

  async data(): Promise<DataResult> {
    return this.exp.step('data', async () => {
      const o = this.opts;
      const ds = o.csv
        ? await discoverCsvDataset(o.dataset, { csv: o.csv, mapping: parseFindingMapping(o.mapping) })
        : await discoverDataset(o.dataset);
      let samples = ds.samples;
      let classes = ds.classes;
      if (o.classes) {
        const missing = o.classes.filter((c) => !ds.classes.includes(c));
        if (missing.length) throw new Error(`class(es) ${missing.join(', ')} not in the dataset (found: ${ds.classes.join(', ')})`);
        if (o.classes.length < 2) throw new Error('need at least two classes');
        classes = [...o.classes].sort();
        samples = samples
          .filter((s) => classes.includes(s.className))
          .map((s) => ({ ...s, label: classes.indexOf(s.className) }));
      }
      if (o.limit) {
        const rand = mulberry32(deriveSeed(o.seed, 'limit'));
        samples = classes.flatMap((c) => shuffled(samples.filter((s) => s.className === c), rand).slice(0, o.limit));
      }
      const found = Object.fromEntries(classes.map((c) => [c, samples.filter((s) => s.className === c).length]));
      this.log(`dataset ${ds.root} (${ds.layout}): ${Object.entries(found).map(([c, n]) => `${c} ${n}`).join(', ')}`);
      for (const note of ds.notes ?? []) this.log(`note: ${note}`);
      const split = splitDataset(samples, { seed: o.seed });
      const sets = await this.decodeSplit(split);
      const skipped = [...sets.skipped];
      if (skipped.length) this.log(`skipped ${skipped.length} unreadable file(s); the report lists them`);
      for (const name of ['train', 'val', 'test'] as const) {
        const labels = new Set(sets[name].labels);
        if (labels.size < 2) throw new Error(`the ${name} split holds fewer than two classes after decoding; the dataset is too small`);
      }
      this.sets = { train: sets.train, val: sets.val, test: sets.test };
      return {
        dataset: ds.root,
        layout: ds.layout,
        classes,
        positiveClass: classes.includes(POSITIVE) ? POSITIVE : undefined,
        notes: ds.notes ?? [],
        found,
        split: { train: sets.train.samples, val: sets.val.samples, test: sets.test.samples },
        skipped,
        input: this.spec,
      };
    });
  }

  private async decodeSplit(split: { train: Sample[]; val: Sample[]; test: Sample[] }) {
    const all = [...split.train, ...split.val, ...split.test];
    const progress = this.progress('decoding images', all.length);
    let done = 0;
    const load = async (samples: Sample[]) =>
      this.lungsOnly(await loadImageSet(samples, this.spec, () => progress(++done)));
    const train = await load(split.train);
    const val = await load(split.val);
    const test = await load(split.test);
    return { train: train.set, val: val.set, test: test.set, skipped: [...train.skipped, ...val.skipped, ...test.skipped] };
  }

  /** The decoded splits (decoded again when a later step runs in a new process). */
  async images(): Promise<{ train: ImageSet; val: ImageSet; test: ImageSet }> {
    if (!this.sets) {
      const d = this.exp.result<DataResult>('data');
      const sets = await this.decodeSplit(d.split);
      if (sets.skipped.length) throw new Error(`${sets.skipped.length} image(s) that decoded before no longer do: ${sets.skipped[0].path}`);
      this.sets = { train: sets.train, val: sets.val, test: sets.test };
    }
    return this.sets;
  }

  // -------------------------------------------------------------------------------------------------------
  // train

  async train(): Promise<TrainResult> {
    const data = await this.data();
    return this.exp.step('train', async () => {
      const o = this.opts;
      const { train, val, test } = await this.images();
      const { backbone, weights } = await this.backbone();
      const model = buildClassifierModel(backbone, this.info, {
        classes: data.classes.length,
        fc1: o.fc1,
        fc2: o.fc2,
        l2: o.l2,
        dropout: o.dropout,
        seed: deriveSeed(o.seed, 'head'),
      });
      this.log(`model: ${this.info.name} at ${this.spec.size} px + fc1 ${o.fc1} + fc2 ${o.fc2}, ${model.countParams()} parameters`);
      const trainOn = await trainingBackend(o.backend);
      // --trainable-from wins; else the backbone's own default unless the whole backbone trains (--no-freeze-backbone).
      const trainableFrom = o.trainableFrom ?? (o.freezeBackbone ? this.info.fineTuneFrom : undefined);
      const layerIndex = (name: string) => model.layers.findIndex((l) => l.name === name);
      const headStart = layerIndex('fc1');
      const from = trainableFrom ? layerIndex(trainableFrom) : o.freezeBackbone ? headStart : 0;
      const throughBackbone = from >= 0 && from < headStart; // the head alone trains on cached features, whole batches
      if (trainOn.adapter) this.log(`fine-tuning on WebGPU: ${trainOn.adapter}${trainOn.software ? ' (software adapter: slower than wasm)' : ''}`);
      const r = await fineTune(
        model,
        { train: { x: (idx) => train.batch(idx), y: train.labels }, val: { x: (idx) => val.batch(idx), y: val.labels } },
        {
          epochs: o.epochs,
          batchSize: o.batchSize,
          // Through the backbone, activations of a whole 224 px batch would crowd the 4 GB wasm heap.
          microBatchSize: o.microBatch ?? (throughBackbone ? 8 : undefined),
          backend: trainOn.name,
          learningRate: o.learningRate,
          seed: o.seed,
          trainableFrom,
          freezeBackbone: o.freezeBackbone,
          checkpointDir: this.exp.path('checkpoints'),
          resume: true,
          log: (l) => this.log(l),
          progress: !o.quiet,
        },
      );
      await saveLayersModel(r.model, this.exp.path('finetuned'));
      const [scores] = predictRows(r.model, test);
      const testScores = scores!.map((row) => Array.from(row));
      const metrics = evaluateScores(test.labels, testScores, data.classes, POSITIVE);
      this.log(`fine-tuned softmax model: test accuracy ${metrics.accuracy.toFixed(4)}, macro-F1 ${metrics.macroF1.toFixed(4)}`);
      const result: TrainResult = {
        history: r.history,
        bestEpoch: r.bestEpoch,
        resumedFrom: r.resumedFrom,
        cacheSeconds: r.cacheSeconds,
        trainBackend: r.trainBackend,
        trainableFrom: trainableFrom ?? null,
        trainAdapter: r.trainBackend === 'webgpu' ? trainOn.adapter : undefined,
        params: r.model.countParams(),
        weights,
        metrics,
        testScores,
      };
      r.model.dispose();
      return result;
    });
  }

  private async backbone(): Promise<{ backbone: tf.LayersModel; weights: string }> {
    const o = this.opts;
    // VGG16 has no published tfjs weights: loadPretrained says so unless --weights names some (or 'none').
    const pretrained = await loadPretrained(o.backbone, o.weights);
    if (!pretrained) {
      if (o.backbone !== 'vgg16') throw new Error(`${o.backbone} needs pretrained weights; --weights none is only for vgg16`);
      this.log('warning: VGG16 with random initialisation (--weights none): no ImageNet features');
      return { backbone: buildVgg16(this.spec.size, deriveSeed(o.seed, 'vgg16')), weights: 'none' };
    }
    return { backbone: backboneFromPretrained(o.backbone, pretrained, this.spec.size), weights: o.weights ?? 'default' };
  }

  // -------------------------------------------------------------------------------------------------------
  // prune

  async prune(): Promise<PruneResult> {
    await this.train();
    return this.exp.step('prune', async () => {
      const { train, val, test } = await this.images();
      const model = await loadLayersModel(this.exp.path('finetuned'));
      const protect = [this.info.gradcamLayer];
      const measure = async (set: ImageSet, label: string, names?: string[]) => {
        const progress = this.progress(label, set.size);
        let seen = 0;
        const batches = (function* (): Generator<tf.Tensor4D> {
          for (const b of set.batches(32)) {
            seen += b.shape[0];
            progress(seen);
            yield b;
          }
        })();
        return measureUnitStats(model, batches, names, { disposeBatches: true, protect });
      };
      const stats = await measure(train, 'unit statistics (train)');
      const planned = planZeroVariancePruning(model, stats, { threshold: this.opts.varianceThreshold, protect });
      // A ReLU unit that never fired on the training images may still fire on new ones (seen in the dense head):
      // a removal must also hold on the validation split, or the unit stays. The test split is never consulted.
      const valStats = await measure(val, 'unit statistics (validation)', Object.keys(stats.tensors));
      const holdsOnVal = (u: PlannedUnit) =>
        u.constants.every((c) => {
          const m = valStats.tensors[c.tensor];
          const variance = m.m2[c.channel] / m.count;
          return variance <= this.opts.varianceThreshold && Math.abs(m.mean[c.channel] - c.value) <= 1e-6 * Math.max(1, Math.abs(c.value));
        });
      const confirmed = restrictPlan(planned, holdsOnVal);
      const unconfirmed = planned.units.length - confirmed.units.length;
      // Dead ReLU units go only when their pre-activation stays clearly below 0 on the training images.
      const minMargin = this.opts.deadMargin;
      const dead = deadReluUnits(model, confirmed.units);
      const margins = minMargin > 0 ? preActivationStats(model, train.batches(32), dead) : new Map();
      const marginOk = (u: PlannedUnit) =>
        deadReluUnits(model, [u]).every(({ layer, unit }) => (margins.get(`${layer}:${unit}`)?.margin ?? Infinity) >= minMargin);
      const plan = minMargin > 0 ? restrictPlan(confirmed, marginOk) : confirmed;
      const thinMargin = confirmed.units.length - plan.units.length;
      this.log(
        `zero-variance unit groups: ${planned.units.length} on the training split; kept ${unconfirmed} not constant on the validation split ` +
          `and ${thinMargin} dead ReLU units whose pre-activation came within ${minMargin} sd of 0; removing ${plan.units.length}`,
      );
      const pruned = applyPruning(model, plan);
      const summary = pruningSummary(model, pruned, plan);
      const fc2Units = (model.getLayer('fc2').outputShape as number[])[1];
      const removedFc2 = new Set(plan.removedChannels['fc2'] ?? []);
      const keptFeatures = [...Array(fc2Units).keys()].filter((i) => !removedFc2.has(i));

      // Exactness where the statistics were measured (a slice of the training split: the surgery itself), and on
      // the test split, which the statistics never saw (a unit constant on training images may still move there).
      const view = (m: tf.LayersModel) =>
        tf.model({ inputs: m.inputs, outputs: [m.getLayer('fc2').output as tf.SymbolicTensor, m.getLayer('logits').output as tf.SymbolicTensor] });
      const [before, after] = [view(model), view(pruned)];
      const maxDiff = (set: ImageSet) => {
        const [fa, la] = predictRows(before, set);
        const [fb, lb] = predictRows(after, set);
        let features = 0;
        let logits = 0;
        for (let i = 0; i < set.size; i++) {
          keptFeatures.forEach((orig, j) => (features = Math.max(features, Math.abs(fa![i][orig] - fb![i][j]))));
          la![i].forEach((v, c) => (logits = Math.max(logits, Math.abs(v - lb![i][c]))));
        }
        return { features, logits };
      };
      const onTrain = maxDiff(train.subset([...Array(Math.min(train.size, 256)).keys()]));
      const { features: dFeat, logits: dLogit } = maxDiff(test);
      this.log(`surgery check on ${Math.min(train.size, 256)} training images: max |pruned - unpruned| ${Math.max(onTrain.features, onTrain.logits).toExponential(2)}`);
      const removedPerLayer = Object.fromEntries(
        summary.layers.filter((l) => l.unitsAfter < l.unitsBefore).map((l) => [l.name, l.unitsBefore - l.unitsAfter]),
      );
      this.log(
        `pruning: units ${summary.unitsBefore} -> ${summary.unitsAfter}, parameters ${summary.paramsBefore} -> ${summary.paramsAfter}, ` +
          `max |pruned - unpruned| ${Math.max(dFeat, dLogit).toExponential(2)} (features ${dFeat.toExponential(2)}, logits ${dLogit.toExponential(2)}); ` +
          `kept for padding ${summary.keptForPadding}, protected ${summary.keptProtected}`,
      );
      if (Math.max(dFeat, dLogit) > 1e-4) {
        this.log('warning: pruning changed the outputs by more than 1e-4; the report flags it');
      }
      await saveLayersModel(pruned, this.exp.path('pruned'));
      model.dispose();
      pruned.dispose();
      return {
        ...summary,
        maxAbsDiff: Math.max(dFeat, dLogit),
        maxAbsDiffFeatures: dFeat,
        maxAbsDiffLogits: dLogit,
        maxAbsDiffTrain: Math.max(onTrain.features, onTrain.logits),
        keptFeatures,
        removedPerLayer,
        unconfirmedOnValidation: unconfirmed,
        keptThinMargin: thinMargin,
        deadMargin: minMargin,
      };
    });
  }

  // -------------------------------------------------------------------------------------------------------
  // select + classifiers

  async select(): Promise<SelectResult> {
    const pr = await this.prune();
    return this.exp.step('select', async () => {
      const o = this.opts;
      const { classes } = this.exp.result<DataResult>('data');
      const { train, val, test } = await this.images();
      const pruned = await loadLayersModel(this.exp.path('pruned'));
      const feats = tf.model({ inputs: pruned.inputs, outputs: pruned.getLayer('fc2').output as tf.SymbolicTensor });
      const [Xtr] = predictRows(feats, train);
      const [Xva] = predictRows(feats, val);
      const [Xte] = predictRows(feats, test);
      const F = fClassif(Xtr!, train.labels).F;
      const evalOn = o.kProtocol === 'paper' ? { X: Xte!, y: test.labels } : { X: Xva!, y: val.labels };
      this.log(`F-test on ${F.length} penultimate features; sweeping k on the ${o.kProtocol === 'paper' ? 'TEST split (paper protocol: optimistic)' : 'validation split'}`);
      const sweep = sweepKWithSvm(Xtr!, train.labels, evalOn.X, evalOn.y, F);
      const local = selectKBest(F, sweep.k);
      this.log(`k = ${sweep.k} of ${F.length}`);
      const pick = (X: Float32Array[]) => X.map((row) => local.map((j) => row[j]));
      const [Str, Sva, Ste] = [pick(Xtr!), pick(Xva!), pick(Xte!)];

      const results: ClassifierResult[] = [];
      const fitted = new Map<ClassifierKind, ClassifierJSON>();
      for (const kind of CLASSIFIER_KINDS) {
        const t0 = performance.now();
        const json = fitClassifier(kind, Str, train.labels, { seed: o.seed, probability: true });
        const fitSeconds = (performance.now() - t0) / 1000;
        const c = classifierFromJSON(json);
        const vm = evaluateScores(val.labels, c.predictProba(Sva), classes, POSITIVE);
        const tm = evaluateScores(test.labels, c.predictProba(Ste), classes, POSITIVE);
        fitted.set(kind, json);
        results.push({ kind, val: vm, test: tm, fitSeconds });
        this.log(`${kind.padEnd(13)} val acc ${vm.accuracy.toFixed(4)}  test acc ${tm.accuracy.toFixed(4)}  macro-F1 ${tm.macroF1.toFixed(4)}  AUC ${tm.auc.macro.toFixed(4)}`);
      }
      // 'auto' deploys the best on validation among the classifiers whose probabilities are calibrated (Platt
      // scaling, logistic) and whose parameters stay small; k-NN (the training set itself, coarse vote fractions)
      // and the forest (vote fractions) are compared in the report and deployable on request.
      const candidates = results.filter((r) => DEPLOYABLE_BY_DEFAULT.includes(r.kind));
      const deployed: ClassifierKind =
        o.classifier !== 'auto'
          ? o.classifier
          : candidates.reduce((best, r) => (r.val.accuracy > best.val.accuracy || (r.val.accuracy === best.val.accuracy && r.val.macroF1 > best.val.macroF1) ? r : best)).kind;
      this.log(`deployed classifier: ${deployed}${o.classifier === 'auto' ? ` (best on validation among ${DEPLOYABLE_BY_DEFAULT.join(', ')})` : ''}`);

      // The compressed model: pruned network cut to the selected fc2 units, then the deployed classifier.
      const compressed = pruneOutputUnits(pruned, 'fc2', local);
      const [Cte] = predictRows(compressed, test);
      const deployedJson = fitted.get(deployed)!;
      const probs = classifierFromJSON(deployedJson).predictProba(Cte!);
      const cm = evaluateScores(test.labels, probs, classes, POSITIVE);
      this.log(`compressed model (${compressed.countParams()} parameters): test accuracy ${cm.accuracy.toFixed(4)}, macro-F1 ${cm.macroF1.toFixed(4)}`);
      await saveLayersModel(compressed, this.exp.path('compressed'));
      const bundleClassifier: BundleClassifier = {
        deployed: deployedJson,
        explainer: classifierScoreFn(deployedJson) ? undefined : fitted.get('logistic'),
      };
      await import('node:fs/promises').then((fs) => fs.writeFile(this.exp.path('classifier.json'), JSON.stringify(bundleClassifier)));
      const compressedParams = compressed.countParams();
      [pruned, compressed].forEach((m) => m.dispose());
      return {
        protocol: o.kProtocol,
        k: sweep.k,
        sweep: sweep.sweep,
        selected: local.map((j) => pr.keptFeatures[j]),
        totalFeatures: o.fc2,
        fScores: Array.from(F),
        classifiers: results,
        deployed,
        compressed: cm,
        compressedParams,
        testProbabilities: probs,
      };
    });
  }

  // -------------------------------------------------------------------------------------------------------
  // export

  async export(): Promise<ExportResult> {
    const sel = await this.select();
    return this.exp.step('export', async () => {
      const data = this.exp.result<DataResult>('data');
      const tr = this.exp.result<TrainResult>('train');
      const pr = this.exp.result<PruneResult>('prune');
      const { readFile } = await import('node:fs/promises');
      const classifier = JSON.parse(await readFile(this.exp.path('classifier.json'), 'utf8')) as BundleClassifier;
      const compressed = await loadLayersModel(this.exp.path('compressed'));
      const dir = this.exp.path('bundle');
      const { keptFeatures: _k, ...pruning } = pr;
      const masked = this.opts.variant === 'masked';
      const seg = masked ? await this.segmenter() : undefined;
      const draft: BundleManifestDraft = {
          name: `${this.opts.experimentId}`,
          variant: masked ? 'masked' : 'raw',
          ...(seg && { segmenter: { path: 'segmenter/model.json', inputSize: seg.meta.inputSize, threshold: seg.meta.refinement.threshold, refinement: seg.meta.refinement, heldOut: seg.meta.heldOut } }),
          classes: data.classes,
          positiveClass: data.positiveClass,
          input: { size: this.spec.size, channels: 3, normalization: this.spec.normalization, resize: 'stretch' },
          backbone: { name: this.info.name, weights: tr.weights },
          model: { gradcamLayer: this.info.gradcamLayer, featuresLayer: 'fc2', outputs: ['fc2'] },
          features: { selected: sel.selected, total: sel.totalFeatures, protocol: sel.protocol },
          classifier,
          pruning: {
            ...pruning,
            compressedParams: sel.compressedParams,
            selectedUnitsRemoved: pr.keptFeatures.length - sel.k,
          },
          metrics: {
            finetuned: tr.metrics,
            compressed: sel.compressed,
            classifiers: Object.fromEntries(sel.classifiers.map((c) => [c.kind, c.test])),
            deployed: sel.deployed,
          },
          provenance: {
            dataset: this.opts.dataset,
            layout: data.layout,
            found: data.found,
            split: { train: data.split.train.length, val: data.split.val.length, test: data.split.test.length },
            skipped: data.skipped.length,
            seed: this.opts.seed,
            experiment: this.opts.experimentId,
            command: this.exp.state.command ?? `zerovar ${process.argv.slice(2).join(' ')}`,
          },
          training: {
            epochs: this.opts.epochs,
            bestEpoch: tr.bestEpoch,
            batchSize: this.opts.batchSize,
            learningRate: this.opts.learningRate,
            freezeBackbone: this.opts.freezeBackbone,
            trainableFrom: tr.trainableFrom ?? this.opts.trainableFrom ?? null,
            fc1: this.opts.fc1,
            fc2: this.opts.fc2,
          },
        };
      const extraFiles = seg ? await segmenterFiles(this.opts.segmenter!) : {};
      const manifest = await writeBundle(dir, draft, compressed, extraFiles);
      compressed.dispose();

      // The bundle must give the trainer's own test answers through the reader the viewer uses.
      const { test } = await this.images();
      const bm = await BundleModel.load(fsFetcher(dir));
      let diff = 0;
      for (let i = 0; i < test.size; i += 32) {
        const preds = bm.classifyBatch(test.images.slice(i, i + 32), { premasked: true });
        preds.forEach((p, j) => p.probabilities.forEach((v, c) => (diff = Math.max(diff, Math.abs(v - sel.testProbabilities[i + j][c])))));
      }
      bm.dispose();
      this.log(`bundle written to ${dir}; reproduces the test probabilities to ${diff.toExponential(2)}`);
      if (this.opts.bundleOut) {
        const out = resolve(this.opts.bundleOut);
        await rm(out, { recursive: true, force: true });
        await cp(dir, out, { recursive: true });
        this.log(`bundle copied to ${out}`);
      }
      const sizeBytes = Object.keys(manifest.files).length ? await dirSize(dir) : 0;
      const unpruned = this.opts.exportUnpruned ? await this.exportUnpruned(draft, extraFiles, sel.deployed) : undefined;
      return { dir, files: manifest.files, reproduceMaxAbsDiff: diff, sizeBytes, unpruned };
    });
  }

  /**
   * The reference the compression is measured against, in the same format: the fine-tuned network cut at fc2
   * with every unit (no surgery, no selection) and the deployed classifier's kind refitted on all its features.
   */
  private async exportUnpruned(
    draft: BundleManifestDraft,
    extraFiles: Record<string, Uint8Array>,
    kind: ClassifierKind,
  ): Promise<NonNullable<ExportResult['unpruned']>> {
    const { classes } = this.exp.result<DataResult>('data');
    const { train, test } = await this.images();
    const finetuned = await loadLayersModel(this.exp.path('finetuned'));
    const all = [...Array(this.opts.fc2).keys()];
    const reference = pruneOutputUnits(finetuned, 'fc2', all);
    const [Xtr] = predictRows(reference, train);
    const [Xte] = predictRows(reference, test);
    const deployed = fitClassifier(kind, Xtr!, train.labels, { seed: this.opts.seed, probability: true });
    const explainer = classifierScoreFn(deployed) ? undefined : fitClassifier('logistic', Xtr!, train.labels, { seed: this.opts.seed });
    const metrics = evaluateScores(test.labels, classifierFromJSON(deployed).predictProba(Xte!), classes, POSITIVE);
    const dir = this.exp.path('bundle-unpruned');
    await writeBundle(
      dir,
      {
        ...draft,
        name: `${draft.name}-unpruned`,
        features: { selected: all, total: this.opts.fc2, protocol: draft.features.protocol },
        classifier: { deployed, explainer } satisfies BundleClassifier,
        pruning: { unpruned: true, paramsAfter: reference.countParams() },
        metrics: { compressed: metrics, finetuned: draft.metrics.finetuned, deployed: kind },
      },
      reference,
      extraFiles,
    );
    const params = reference.countParams();
    this.log(`unpruned reference bundle written to ${dir}: ${params} parameters, test accuracy ${metrics.accuracy.toFixed(4)}`);
    [finetuned, reference].forEach((m) => m.dispose());
    return { dir, params, accuracy: metrics.accuracy, sizeBytes: await dirSize(dir) };
  }

  // -------------------------------------------------------------------------------------------------------
  // explain

  async explain(): Promise<ExplainResult> {
    const ex = await this.export();
    return this.exp.step('explain', async () => {
      const { classes } = this.exp.result<DataResult>('data');
      const { test } = await this.images();
      const bm = await BundleModel.load(fsFetcher(ex.dir));
      const dir = this.exp.ensureDir('figures');
      const figures: string[] = [];
      const samples: ExplainResult['samples'] = [];
      try {
        for (const [c, className] of classes.entries()) {
          const idx = test.labels.flatMap((l, i) => (l === c ? [i] : [])).slice(0, this.opts.gradcamSamples);
          if (idx.length === 0) continue;
          const rows = idx.map((i) => {
            const img = test.images[i];
            const p = bm.classify(img, { premasked: true });
            const cam = bm.explain(img, p.classIndex, { premasked: true });
            samples.push({ path: test.samples[i].path, trueClass: className, predicted: p.className, probability: p.probabilities[p.classIndex] });
            return {
              image: img,
              cam: cam.cam,
              camW: cam.width,
              camH: cam.height,
              title: `true ${className}, predicted ${p.className} (${(100 * p.probabilities[p.classIndex]).toFixed(1)}%)`,
            };
          });
          const grid = gradcamGrid(rows, 224);
          const file = `gradcam-${className.replace(/[^\w.-]+/g, '_')}.png`;
          await writeRgbaPng(resolve(dir, file), grid.rgba, grid.width, grid.height);
          figures.push(`figures/${file}`);
        }
      } finally {
        bm.dispose();
      }
      this.log(`Grad-CAM grids (layer ${this.info.gradcamLayer}): ${figures.join(', ')}`);
      return { layer: this.info.gradcamLayer, figures, samples };
    });
  }

  /** A progress bar with ETA (nothing with --quiet); returns a function taking the count done so far. */
  private progress(label: string, total: number): (done: number) => void {
    if (this.opts.quiet) return () => {};
    const bar = new Progress(label, total);
    let last = 0;
    return (done) => {
      bar.tick(done - last);
      last = done;
      if (done >= total) bar.finish();
    };
  }
}

async function dirSize(dir: string): Promise<number> {
  const { readdir, stat } = await import('node:fs/promises');
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(resolve(e.parentPath, e.name))).size;
  }
  return total;
}
