// The paper's model_compression.py as resumable steps: data -> train -> prune -> select -> export -> explain ->
// report. Each step reads what earlier steps left in the experiment folder, so the CLI's subcommands can run
// them one at a time and an interrupted run continues where it stopped.
import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { cp, rm, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { initBackend, trainingBackend, wasmThreadsLine } from '../runtime/backend.js';
import { discoverCsvDataset, discoverDataset, parseFindingMapping, type Dataset, type Sample } from '../data/dataset.js';
import { deriveSeed, shuffled, mulberry32 } from '../data/rng.js';
import { splitDataset } from '../data/split.js';
import { amendBundle, fsFetcher, type BundleManifestDraft } from '../io/bundle-fs.js';
import { loadLayersModel, saveLayersModel } from '../io/layers-fs.js';
import { BACKBONES, HEAD_LAYERS, backboneFromPretrained, buildClassifierModel, buildVgg16, type BackboneInfo } from '../model/backbones.js';
import type { ClassifierKind } from '../model/classifiers.js';
import type { PruningPlan } from '../model/surgery.js';
import { BundleModel, type BundleClassifier } from '../model/inference.js';
import { evaluateScores, type ClassificationMetrics } from '../stats/metrics.js';
import type { InputSpec } from '../image/pixels.js';
import { Experiment, writeJsonAtomic } from './experiment.js';
import { fineTune, type EpochRecord } from './finetune.js';
import { Progress } from './progress.js';
import { ImageSet, loadImageSet, predictRows, type SkippedFile } from './images.js';
import { DEFAULTS, type PipelineOptions } from './options.js';
import { gradcamGrid, writeRgbaPng } from '../report/png.js';
import { headOutputs, pruneStep, type PruneResult } from './prune-step.js';
import { recoverHead } from './recover.js';
import { refitHead, refitReference, type RefitReference } from './head-refit.js';
import { selectStep, type SelectResult } from './select-step.js';
import { loadPretrained } from './weights.js';
import { loadSegmenter, maskImageSet, segmenterFiles, type LoadedSegmenter } from './segmenter.js';
import { guardStep, guardSummaryLines, OOD_GUARD_PATH, type GuardStepResult } from './guard-step.js';
import { loadOodSets } from './guard-bundle.js';
import { checkExportedBundle, exportCheckLine, type ExportCheck } from './export-check.js';
import type { WeightsDtype } from '../model/quantize.js';
import { chooseThreads, trainingRuntime, type RuntimeProvenance, type ThreadsProbe } from './threads-probe.js';
import { writeBundleWithWeights } from './weights-choice.js';
import { dirSize, exportUnpruned } from './export-unpruned.js';

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
  /** The backend and threads fine-tuning ran with, and what --threads auto measured. */
  runtime?: RuntimeProvenance;
  params: number;
  weights: string;
  metrics: ClassificationMetrics;
  testScores: number[][];
}

export type { PruneResult } from './prune-step.js';
export type { ClassifierResult, SelectResult } from './select-step.js';

export interface ExportResult {
  dir: string;
  files: Record<string, string>;
  /** max |bundle - trainer| over the test probabilities, through the same reader the viewer uses (after quantization). */
  reproduceMaxAbsDiff: number;
  /** The same check in full: weights dtype, test accuracy through the bundle and the trainer's. */
  check?: ExportCheck;
  sizeBytes: number;
  /** The unpruned reference bundle (--export-unpruned). */
  unpruned?: { dir: string; params: number; accuracy: number; sizeBytes: number };
  /** The out-of-distribution guard and the calibration written into the bundle, with what the report draws. */
  guard?: Omit<GuardStepResult, 'guardBytes'>;
}

export interface ExplainResult {
  layer: string;
  figures: string[];
  samples: { path: string; trueClass: string; predicted: string; probability: number }[];
}

/** What the report needs of an external evaluation (see evaluate.ts). */
export interface EvaluateResultLike {
  dataset: string;
  n: number;
  metrics: ClassificationMetrics;
}

const POSITIVE = 'COVID';

export class Pipeline {
  readonly exp: Experiment;
  readonly info: BackboneInfo;
  readonly spec: InputSpec;
  private sets: { train: ImageSet; val: ImageSet; test: ImageSet } | null = null;
  private lungSegmenter: Promise<LoadedSegmenter> | null = null;
  private threadsProbe: ThreadsProbe | undefined; // what --threads auto measured in this process

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
    const name = this.opts.backend === 'webgpu' ? 'auto' : this.opts.backend;
    // A finished train step's --threads auto choice is reused: a resumed or later command runs as training did.
    const recorded = this.exp.done('train') ? this.exp.result<TrainResult>('train').runtime?.threadsProbe : undefined;
    const batch = Math.min(this.opts.microBatch ?? 8, this.opts.batchSize);
    const chosen = await chooseThreads(this.opts.threads, name, { recorded, size: this.spec.size, batch, log: (l) => this.log(l) });
    this.threadsProbe = chosen.probe;
    const backend = await initBackend(name, { threads: chosen.threads });
    this.log(`tfjs ${tf.version.tfjs}, backend ${backend}${backend === 'wasm' ? `, ${wasmThreadsLine()}` : ''}`);
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
      const headStart = layerIndex(HEAD_LAYERS.first);
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
        runtime: trainingRuntime(r.trainBackend, this.threadsProbe),
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
      const sets = await this.images();
      const model = await loadLayersModel(this.exp.path('finetuned'));
      // The teacher's logits on the training split, computed once for every head candidate's recovery.
      let teacher: Float32Array[] | undefined;
      const teacherLogits = (): Float32Array[] => (teacher ??= headOutputs(model, sets.train, HEAD_LAYERS).logits);
      const distill = (this.opts.headRecovery ?? DEFAULTS.headRecovery) === 'distill';
      let reference: RefitReference | undefined;
      const refit = (this.opts.headRefit ?? DEFAULTS.headRefit)
        ? (m: tf.LayersModel, plan: PruningPlan) => refitHead(m, (reference ??= refitReference(model, sets)), sets, plan.removedChannels)
        : undefined;
      const { pruned, result } = await pruneStep(model, sets, {
        varianceThreshold: this.opts.varianceThreshold,
        deadMargin: this.opts.deadMargin,
        protect: [this.info.gradcamLayer],
        head: HEAD_LAYERS,
        log: (l) => this.log(l),
        progress: (label, total) => this.progress(label, total),
        recover:
          this.opts.headThresholds?.length === 0
            ? undefined
            : (m) => recoverHead(m, sets, this.opts, this.exp.path('recovery'), { teacherLogits: distill ? teacherLogits() : undefined }),
        recoveryFit: distill ? 'distill' : 'labels',
        refit,
        headThresholds: this.opts.headThresholds,
      });
      await saveLayersModel(pruned, this.exp.path('pruned'));
      model.dispose();
      pruned.dispose();
      return result;
    });
  }

  // -------------------------------------------------------------------------------------------------------
  // select + classifiers

  async select(): Promise<SelectResult> {
    const pr = await this.prune();
    return this.exp.step('select', async () => {
      const { classes } = this.exp.result<DataResult>('data');
      const sets = await this.images();
      const pruned = await loadLayersModel(this.exp.path('pruned'));
      const { compressed, classifier, result } = selectStep(pruned, sets, { kept: pr.keptFeatures, total: this.opts.fc2 }, {
        protocol: this.opts.kProtocol,
        kRule: this.opts.kRule ?? DEFAULTS.kRule,
        classifier: this.opts.classifier,
        classes,
        positiveClass: POSITIVE,
        seed: this.opts.seed,
        featuresLayer: HEAD_LAYERS.features,
        log: (l) => this.log(l),
      });
      await saveLayersModel(compressed, this.exp.path('compressed'));
      await writeFile(this.exp.path('classifier.json'), JSON.stringify(classifier));
      [pruned, compressed].forEach((m) => m.dispose());
      return result;
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
          model: { gradcamLayer: this.info.gradcamLayer, featuresLayer: HEAD_LAYERS.features, outputs: [HEAD_LAYERS.features] },
          features: { selected: sel.selected, total: sel.totalFeatures, protocol: sel.protocol },
          classifier,
          pruning: {
            ...pruning,
            compressedParams: sel.compressedParams,
            selectedUnitsRemoved: pr.keptFeatures.length - sel.k,
            compressedUnits: sel.compressedUnits,
            unreferencedUnitsRemoved: sel.unreferencedUnitsRemoved,
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
            ...(this.exp.state.laterCommands?.length ? { laterCommands: this.exp.state.laterCommands.map((c) => c.command) } : {}),
            ...(tr.runtime ? { runtime: tr.runtime } : {}),
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
      const { val, test } = await this.images();
      const weights = await writeBundleWithWeights(dir, draft, compressed, extraFiles, this.opts.weightsDtype ?? DEFAULTS.weightsDtype, val, (l) => this.log(l));
      compressed.dispose();

      // The bundle must give the trainer's own test answers through the reader the viewer uses.
      const bm = await BundleModel.load(fsFetcher(dir));
      const check = { ...checkExportedBundle(bm, test, sel.testProbabilities, weights.chosen), ...(weights.measured && { weightsChoice: weights.measured }) };
      const diff = check.maxAbsDiff;
      this.log(`bundle written to ${dir}; ${exportCheckLine(check)}`);
      const guard = await this.guardAndCalibrate(bm);
      bm.dispose();
      const guarded = await amendBundle(dir, { [OOD_GUARD_PATH]: guard.guardBytes }, (m) => ({ ...m, ood: guard.ood, calibration: guard.calibration }));
      if (this.opts.bundleOut) {
        const out = resolve(this.opts.bundleOut);
        await rm(out, { recursive: true, force: true });
        await cp(dir, out, { recursive: true });
        this.log(`bundle copied to ${out}`);
      }
      const sizeBytes = Object.keys(guarded.files).length ? await dirSize(dir) : 0;
      const unpruned = this.opts.exportUnpruned ? await this.exportUnpruned(draft, extraFiles, sel.deployed, weights.chosen) : undefined;
      const { guardBytes: _bytes, ...guardSummary } = guard;
      return { dir, files: guarded.files, reproduceMaxAbsDiff: diff, check, sizeBytes, unpruned, guard: guardSummary };
    });
  }

  /**
   * Fits the out-of-distribution guard on the training split and sets its threshold on validation, calibrates the
   * deployed classifier on validation, and measures both on test and the --ood sets. The guard looks at images
   * before any masking, so a masked run decodes its splits once more unmasked.
   */
  private async guardAndCalibrate(bm: BundleModel): Promise<GuardStepResult> {
    const sets = await this.images();
    const masked = this.opts.variant === 'masked';
    let raw = sets;
    if (masked) {
      const d = this.exp.result<DataResult>('data');
      const progress = this.progress('decoding images unmasked (guard)', d.split.train.length + d.split.val.length + d.split.test.length);
      let done = 0;
      const load = async (samples: Sample[]) => (await loadImageSet(samples, this.spec, () => progress(++done))).set;
      raw = { train: await load(d.split.train), val: await load(d.split.val), test: await load(d.split.test) };
    }
    const split = (name: 'train' | 'val' | 'test') => ({
      images: raw[name].images,
      labels: raw[name].labels,
      ...(masked && { premasked: sets[name].images }),
    });
    const outOfDistribution = await loadOodSets(this.opts.ood ?? [], this.spec.size);
    const total = Object.values(outOfDistribution).reduce((n, s) => n + s.length, 0);
    let bar: ((done: number) => void) | null = null;
    const r = guardStep(bm, {
      train: split('train'),
      val: split('val'),
      test: split('test'),
      outOfDistribution,
      onProgress: (done, all) => (bar ??= this.progress('guard and calibration', all))(done),
    });
    for (const line of guardSummaryLines(r)) this.log(line);
    if (total === 0) this.log('no --ood sets given: the guard was measured on synthetic images only');
    return r;
  }

  private async exportUnpruned(draft: BundleManifestDraft, extraFiles: Record<string, Uint8Array>, kind: ClassifierKind, weightsDtype: WeightsDtype) {
    const finetuned = await loadLayersModel(this.exp.path('finetuned'));
    try {
      const { classes } = this.exp.result<DataResult>('data');
      const dir = this.exp.path('bundle-unpruned');
      const r = await exportUnpruned(finetuned, await this.images(), { dir, draft, extraFiles, kind, weightsDtype, fc2: this.opts.fc2, seed: this.opts.seed, classes, positiveClass: POSITIVE });
      this.log(`unpruned reference bundle written to ${dir}: ${r.params} parameters, test accuracy ${r.accuracy.toFixed(4)}`);
      return r;
    } finally {
      finetuned.dispose();
    }
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
