// Fine-tuning of a classifier model (backbone + head) with a frozen prefix, seeded shuffling, Adam, per-epoch
// checkpoints and exact resume.
//
// The frozen prefix (the backbone, by default) is run once per image and its output is cached; only the layers
// after it are trained on the cached tensors. With no augmentation and BatchNorm in inference mode this is exactly
// training with a frozen backbone, at the cost of one forward pass per image instead of one per epoch.
// The trainable part is executed by walking the original model's graph on concrete tensors, so no layer gains an
// extra inbound node (the model keeps its clean topology for surgery and saving) and the weights are shared.
import * as tf from '@tensorflow/tfjs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Progress } from './progress.js';
import { accumulatedGradients, applyAccumulated, microBatchRanges } from './accumulate.js';
import { adam } from './adam.js';
import { readOnHost } from '../runtime/webgpu.js';
import { resolveSplitLayer, runGraphFrom, splitGraph } from '../model/graph-run.js';
import { SeededRng } from '../data/rng.js';
import { writeFileAtomic } from '../io/atomic.js';
import {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  epochFile,
  pruneFiles,
  readBin,
  readCheckpointState,
  sha256,
  writeBin,
  type BinRef,
  type CheckpointState,
  type TensorSpec,
} from './checkpoint.js';

/** Preprocessed NHWC inputs for the given sample indices (decoded and normalised by the caller, per batch). */
export type InputLoader = (indices: number[]) => tf.Tensor4D | Promise<tf.Tensor4D>;

export interface SplitData {
  /** One preprocessed HWC Float32Array per sample, or a loader that builds batches on demand. */
  x: Float32Array[] | InputLoader;
  /** Class index per sample. */
  y: number[];
  /**
   * A teacher's logits per sample (distillation, training split only): when given, the loss matches the model's
   * logits to them instead of fitting the labels (FineTuneOptions.logitsLayer names the logits).
   */
  teacherLogits?: Float32Array[];
}

export interface FineTuneData {
  train: SplitData;
  val: SplitData;
}

export interface FineTuneOptions {
  epochs: number;
  batchSize: number;
  /** Adam learning rate. */
  learningRate: number;
  seed: number;
  /** Layers before this one (in the model's topological order) stay frozen; overrides freezeBackbone. */
  trainableFrom?: string;
  /** Train only the head (from 'fc1' on). When false and no trainableFrom, the whole model is trained. */
  freezeBackbone: boolean;
  checkpointDir: string;
  /** Continue after the last finished epoch recorded in checkpointDir (a fresh start when there is none). */
  resume: boolean;
  log?: (line: string) => void;
  /** Progress bars on stderr for the cached forward pass and the epochs. */
  progress?: boolean;
  /** Batch size of the cached forward pass (default: batchSize). */
  inferenceBatchSize?: number;
  /**
   * Largest number of samples whose activations are alive at once in a training step: a larger batch is run as
   * micro-batches whose gradients are accumulated into one update, equal to the whole batch's (default: the
   * whole batch at once). Bounds memory when training through the backbone at full resolution.
   */
  microBatchSize?: number;
  /** Backend the training steps run on (default: the current one, which is restored afterwards). */
  backend?: string;
  /** The layer whose output is the logits (before the softmax): needed with train.teacherLogits. */
  logitsLayer?: string;
}

export interface EpochRecord {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss: number;
  valAccuracy: number;
  seconds: number;
}

export interface FineTuneResult {
  /** The input model itself, holding the weights of the best validation accuracy. */
  model: tf.LayersModel;
  history: EpochRecord[];
  bestEpoch: number;
  /** Number of finished epochs found in the checkpoint, when resumed. */
  resumedFrom?: number;
  /** Seconds spent on the cached forward pass (0 when nothing is cached). */
  cacheSeconds: number;
  /** Backend the training steps ran on (may be 'cpu' when wasm lacks gradient kernels). */
  trainBackend: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Inputs and the cached forward pass

function inputShapeOf(model: tf.LayersModel): number[] {
  const shape = model.inputs[0].shape.slice(1);
  if (shape.some((d) => d == null)) throw new Error(`the model input shape [${model.inputs[0].shape}] must be fully defined`);
  return shape as number[];
}

async function loadInputs(split: SplitData, indices: number[], shape: number[]): Promise<tf.Tensor4D> {
  if (typeof split.x === 'function') {
    const t = await split.x(indices);
    if (t.shape[0] !== indices.length || t.shape.slice(1).join('x') !== shape.join('x')) {
      const got = `[${t.shape}]`;
      t.dispose();
      throw new Error(`input loader returned ${got}, expected [${indices.length},${shape}]`);
    }
    return t;
  }
  const size = shape.reduce((a, b) => a * b, 1);
  const buf = new Float32Array(indices.length * size);
  indices.forEach((idx, k) => {
    const arr = (split.x as Float32Array[])[idx];
    if (!arr || arr.length !== size) throw new Error(`input ${idx} has ${arr?.length ?? 0} values, expected ${size}`);
    buf.set(arr, k * size);
  });
  return tf.tensor4d(buf, [indices.length, ...shape] as [number, number, number, number]);
}

function splitSize(split: SplitData): number {
  if (typeof split.x !== 'function' && split.x.length !== split.y.length) {
    throw new Error(`${split.x.length} inputs but ${split.y.length} labels`);
  }
  return split.y.length;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Frontier activations for every sample of a split, computed in batches (the expensive part). */
async function cacheActivations(
  frozen: tf.LayersModel,
  split: SplitData,
  inputShape: number[],
  batchSize: number,
  label: string,
  progress: boolean,
): Promise<tf.Tensor[]> {
  const n = splitSize(split);
  const shapes = frozen.outputs.map((o) => o.shape.slice(1) as number[]);
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  const buffers = sizes.map((s) => new Float32Array(n * s));
  const bar = progress ? new Progress(label, n) : null;
  for (let start = 0; start < n; start += batchSize) {
    const idx = range(Math.min(batchSize, n - start)).map((i) => start + i);
    const x = await loadInputs(split, idx, inputShape);
    const out = frozen.predict(x, { batchSize: idx.length });
    x.dispose();
    const outs = Array.isArray(out) ? out : [out];
    for (let k = 0; k < outs.length; k++) {
      buffers[k].set(await outs[k].data(), start * sizes[k]);
      outs[k].dispose();
    }
    bar?.tick(idx.length);
  }
  return buffers.map((b, k) => tf.tensor(b, [n, ...shapes[k]]));
}

// ---------------------------------------------------------------------------------------------------------------
// Training

function isMissingKernelError(e: unknown): boolean {
  const msg = String((e as Error)?.message ?? e);
  return /kernel .*not registered|not registered for backend|not yet implemented/i.test(msg);
}

// Gradient kernels a layer class needs beyond the forward pass; tfjs-wasm registers none of these.
const GRADIENT_KERNELS: Record<string, string[]> = {
  Conv2D: ['Conv2DBackpropFilter', 'Conv2DBackpropInput'],
  Conv2DTranspose: ['Conv2DBackpropFilter', 'Conv2D'],
  DepthwiseConv2D: ['DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput'],
  SeparableConv2D: ['DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput', 'Conv2DBackpropFilter'],
};

/** Kernels the current backend lacks to train these layers (known conv cases; others are caught at run time). */
export function missingGradientKernels(layers: tf.layers.Layer[], backend = tf.getBackend()): string[] {
  const need = new Set(layers.flatMap((l) => GRADIENT_KERNELS[l.getClassName()] ?? []));
  return [...need].filter((k) => tf.getKernel(k, backend) === undefined);
}

function crossEntropy(probs: tf.Tensor, labels: tf.Tensor, classes: number): tf.Scalar {
  // As Keras' categorical cross-entropy on probabilities: clipped to [eps, 1 - eps].
  const eps = 1e-7;
  const oneHot = tf.oneHot(labels as tf.Tensor1D, classes);
  return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.log(tf.clipByValue(probs, eps, 1 - eps))), -1))) as tf.Scalar;
}

/**
 * Logit matching (Ba and Caruana's regression on logits, the high-temperature limit of Hinton's distillation):
 * the mean squared difference between the model's and the teacher's logits, each row centred first because a
 * softmax ignores a constant added to every logit. Unlike the labels, it keeps a signal on a training split the
 * teacher fits at 100 %: how sure the teacher is, image by image.
 */
export function logitMatching(logits: tf.Tensor, teacher: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const d = tf.sub(logits, teacher);
    return tf.mean(tf.square(tf.sub(d, tf.mean(d, -1, true)))) as tf.Scalar;
  });
}

function regularization(layers: tf.layers.Layer[]): tf.Scalar | null {
  const terms = layers.flatMap((l) => l.calculateLosses());
  return terms.length ? (tf.addN(terms) as tf.Scalar) : null;
}

export async function fineTune(model: tf.LayersModel, data: FineTuneData, opts: FineTuneOptions): Promise<FineTuneResult> {
  const log = opts.log ?? (() => {});
  if (model.outputs.length !== 1) throw new Error('fineTune expects a model with one (softmax) output');
  if (!(opts.epochs >= 1 && opts.batchSize >= 1)) throw new Error('epochs and batchSize must be >= 1');
  const classes = model.outputs[0].shape[1] as number;
  for (const [name, split] of Object.entries(data)) {
    splitSize(split);
    const bad = split.y.find((c: number) => !Number.isInteger(c) || c < 0 || c >= classes);
    if (bad !== undefined) throw new Error(`${name} label ${bad} is not a class index in [0, ${classes})`);
  }
  const nTrain = data.train.y.length;
  const nVal = data.val.y.length;
  if (nTrain === 0) throw new Error('no training samples');
  const teacher = data.train.teacherLogits;
  if (teacher) {
    if (!opts.logitsLayer) throw new Error('distillation (teacher logits) needs logitsLayer, the layer that outputs the logits');
    if (teacher.length !== nTrain || teacher.some((r) => r.length !== classes)) {
      throw new Error(`teacher logits must be ${nTrain} rows of ${classes} values, one per training sample`);
    }
  }

  const split = splitGraph(model, resolveSplitLayer(model, opts));
  const variables = split.trainableLayers.filter((l) => l.trainable).flatMap((l) => l.trainableWeights);
  if (variables.length === 0) throw new Error('nothing to train: the layers after the split have no trainable weights');
  const vars = variables.map((v) => v.read() as tf.Variable);
  const specs: TensorSpec[] = variables.map((v) => ({ name: v.originalName, shape: v.shape as number[] }));
  const output = model.outputs[0];
  const logitsOutput = teacher ? (model.getLayer(opts.logitsLayer!).output as tf.SymbolicTensor) : null;
  const inputShape = inputShapeOf(model);
  log(
    `fine-tune: ${split.trainableLayers.length} layers trained from '${model.layers[split.splitIndex].name}' ` +
      `(${specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0)} parameters), ` +
      `${nTrain} train / ${nVal} val samples${teacher ? ", fitting the teacher's logits (distillation)" : ''}`,
  );

  // Checkpoint state first: a corrupt or mismatching checkpoint should fail before the expensive forward pass.
  const fingerprint = {
    seed: opts.seed,
    batchSize: opts.batchSize,
    learningRate: opts.learningRate,
    splitLayer: model.layers[split.splitIndex].name,
    nTrain,
    nVal,
    labels: sha256(new TextEncoder().encode(JSON.stringify([data.train.y, data.val.y]))).slice(0, 16),
    variables: specs,
    // Only when distilling, so that earlier checkpoints keep their fingerprint.
    ...(teacher && { teacher: sha256(new Uint8Array(new Float32Array(teacher.flatMap((r) => Array.from(r))).buffer)).slice(0, 16) }),
  };
  await mkdir(opts.checkpointDir, { recursive: true });
  const state = opts.resume ? await readCheckpointState(opts.checkpointDir) : null;
  if (state) {
    const want = JSON.stringify(fingerprint);
    if (JSON.stringify(state.fingerprint) !== want) {
      const diff = Object.keys(fingerprint).filter(
        (k) => JSON.stringify(state!.fingerprint[k]) !== JSON.stringify((fingerprint as Record<string, unknown>)[k]),
      );
      throw new Error(
        `checkpoint in ${opts.checkpointDir} was made with different settings (${diff.join(', ')}); ` +
          'use another checkpoint folder or start over without resume',
      );
    }
  } else if (opts.resume) {
    log(`no checkpoint in ${opts.checkpointDir}: starting from epoch 1`);
  } else {
    // Starting over: an older run's state must not be resumed later if this one stops before its first epoch.
    await rm(join(opts.checkpointDir, 'state.json'), { force: true });
  }

  const optimizer = adam(opts.learningRate);
  const rng = new SeededRng(opts.seed);
  let history: EpochRecord[] = [];
  let bestEpoch = 0;
  let bestValAccuracy = -Infinity;
  let bestWeights: Float32Array[] | null = null;
  let bestRef: BinRef | null = null;
  const setVars = (arrays: Float32Array[]) =>
    tf.tidy(() => vars.forEach((v, i) => v.assign(tf.tensor(arrays[i], specs[i].shape))));
  if (state) {
    const s = state;
    setVars(await readBin(opts.checkpointDir, s.weights, specs));
    bestWeights = await readBin(opts.checkpointDir, s.best, specs);
    const moments = await readBin(opts.checkpointDir, s.optimizer.file, [...specs, ...specs]);
    await optimizer.setWeights([
      { name: 'iter', tensor: tf.scalar(s.optimizer.iterations, 'int32') },
      ...moments.map((m, i) => ({ name: `${specs[i % specs.length].name}/${i < specs.length ? 'm' : 'v'}`, tensor: tf.tensor(m, specs[i % specs.length].shape) })),
    ]);
    rng.state = s.rngState >>> 0;
    history = s.history;
    bestEpoch = s.bestEpoch;
    bestValAccuracy = s.bestValAccuracy;
    bestRef = s.best;
    log(`resuming after epoch ${s.epoch} (best val accuracy ${bestValAccuracy.toFixed(4)} at epoch ${bestEpoch})`);
  }
  const resumedFrom = state?.epoch;

  // The frozen prefix runs once; its output feeds every epoch.
  let cacheSeconds = 0;
  let cached: { train: tf.Tensor[]; val: tf.Tensor[] } | null = null;
  const startEpoch = history.length;
  if (!split.frontierIsInput && startEpoch < opts.epochs) {
    const frozen = tf.model({ inputs: model.inputs, outputs: split.frontier });
    const t0 = performance.now();
    const bs = opts.inferenceBatchSize ?? opts.batchSize;
    const train = await cacheActivations(frozen, data.train, inputShape, bs, 'backbone forward (train)', !!opts.progress);
    const val = nVal ? await cacheActivations(frozen, data.val, inputShape, bs, 'backbone forward (val)', !!opts.progress) : [];
    cached = { train, val };
    cacheSeconds = (performance.now() - t0) / 1000;
    log(
      `cached frozen activations [${split.frontier.map((t) => `[${t.shape.slice(1)}]`).join(', ')}] for ${nTrain + nVal} ` +
        `images in ${cacheSeconds.toFixed(1)} s (${((1000 * cacheSeconds) / Math.max(1, nTrain + nVal)).toFixed(1)} ms/img)`,
    );
  }

  const batchInputs = async (which: 'train' | 'val', idx: number[]): Promise<Map<number, tf.Tensor>> => {
    if (cached) {
      const sel = tf.tensor1d(idx, 'int32');
      const m = new Map(split.frontier.map((t, k) => [t.id, tf.gather(cached![which][k], sel)] as const));
      sel.dispose();
      return m;
    }
    const x = await loadInputs(data[which], idx, inputShape);
    return new Map([[model.inputs[0].id, x as tf.Tensor]]);
  };

  const initialBackend = tf.getBackend();
  // Training may run on another backend (a GPU); the weights come back to the caller's backend afterwards.
  if (opts.backend && opts.backend !== initialBackend && startEpoch < opts.epochs) {
    if (!(await tf.setBackend(opts.backend))) throw new Error(`the ${opts.backend} backend could not be started for training`);
    log(`training on the ${opts.backend} backend`);
  }
  let trainBackend = tf.getBackend();
  const switchToCpu = async (why: string): Promise<void> => {
    log(
      `the ${tf.getBackend()} backend has no gradient kernel for a layer being trained (${why}); switching to the cpu ` +
        'backend for training: correct but much slower. Train fewer layers (a later trainableFrom, or ' +
        'freezeBackbone) to stay on the fast backend',
    );
    if (!(await tf.setBackend('cpu'))) throw new Error(`the cpu backend could not be started (${why})`);
    trainBackend = 'cpu';
  };
  const missing = missingGradientKernels(split.trainableLayers);
  if (missing.length && startEpoch < opts.epochs && tf.getBackend() !== 'cpu') await switchToCpu(missing.join(', '));
  // A step's loss is the batch mean of the cross-entropy plus the regularization; over micro-batches the
  // size-weighted mean of each micro-batch's loss is the same, so accumulation gives the whole batch's update.
  // With a teacher, its logits replace the labels in the loss (the labels still count the hits).
  const microLoss = (inputs: Map<number, tf.Tensor>, labels: tf.Tensor1D, targets: tf.Tensor | null, hits: tf.Scalar[]): tf.Scalar => {
    const [probs, logits] = runGraphFrom(logitsOutput ? [output, logitsOutput] : [output], inputs, true);
    hits.push(tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(probs!, -1), labels), 'float32')) as tf.Scalar));
    const fit = targets ? logitMatching(logits!, targets) : crossEntropy(probs!, labels, classes);
    const reg = regularization(split.trainableLayers);
    return reg ? tf.add(fit, reg) : fit;
  };
  // Values are read with data(), not dataSync(): WebGPU in Node cannot read GPU buffers synchronously.
  const countHits = async (hits: tf.Scalar[]): Promise<number> => {
    const c = (await Promise.all(hits.map((h) => h.data()))).reduce((a, h) => a + h[0], 0);
    tf.dispose(hits);
    return c;
  };
  const step = async (inputs: Map<number, tf.Tensor>, labels: tf.Tensor1D, targets: tf.Tensor | null): Promise<{ loss: number; correct: number }> => {
    const hits: tf.Scalar[] = [];
    const n = labels.shape[0];
    const micro = opts.microBatchSize && opts.microBatchSize < n ? opts.microBatchSize : n;
    if (micro === n) {
      const cost = optimizer.minimize(() => microLoss(inputs, labels, targets, hits), true, vars)!;
      const loss = (await cost.data())[0];
      cost.dispose();
      return { loss, correct: await countHits(hits) };
    }
    const batches = microBatchRanges(n, micro).map(([start, end]) => ({
      size: end - start,
      inputs: new Map([...inputs].map(([id, t]) => [id, tf.slice(t, start, end - start)] as const)),
      labels: tf.slice(labels, start, end - start) as tf.Tensor1D,
      targets: targets ? tf.slice(targets, start, end - start) : null,
    }));
    try {
      const { loss, grads } = await accumulatedGradients((b) => microLoss(b.inputs, b.labels, b.targets, hits), vars, batches);
      applyAccumulated(optimizer, vars, grads);
      return { loss, correct: await countHits(hits) };
    } finally {
      tf.dispose(batches.flatMap((b) => [...b.inputs.values(), b.labels, ...(b.targets ? [b.targets] : [])]));
    }
  };

  const evaluate = async (): Promise<{ loss: number; accuracy: number }> => {
    if (nVal === 0) return { loss: NaN, accuracy: NaN };
    let lossSum = 0;
    let correct = 0;
    const bs = opts.inferenceBatchSize ?? opts.batchSize;
    for (let start = 0; start < nVal; start += bs) {
      const idx = range(Math.min(bs, nVal - start)).map((i) => start + i);
      const inputs = await batchInputs('val', idx);
      const [ce, hit] = tf.tidy(() => {
        const labels = tf.tensor1d(idx.map((i) => data.val.y[i]), 'int32');
        const [probs] = runGraphFrom([output], inputs, false);
        return [
          tf.mul(crossEntropy(probs!, labels, classes), idx.length),
          tf.sum(tf.cast(tf.equal(tf.argMax(probs!, -1), labels), 'float32')),
        ];
      });
      const [l, c] = [(await ce!.data())[0], (await hit!.data())[0]];
      tf.dispose([ce!, hit!, ...inputs.values()]);
      lossSum += l;
      correct += c;
    }
    const regT = tf.tidy(() => regularization(split.trainableLayers) ?? tf.scalar(0));
    const reg = (await regT.data())[0];
    regT.dispose();
    return { loss: lossSum / nVal + reg, accuracy: correct / nVal };
  };

  const saveCheckpoint = async (epoch: number, improved: boolean): Promise<void> => {
    const dir = opts.checkpointDir;
    const current = (await Promise.all(vars.map((v) => v.data()))) as Float32Array[];
    const weights = await writeBin(dir, epochFile('weights', epoch), current);
    if (improved || !bestRef) bestRef = weights;
    const optWeights = await optimizer.getWeights();
    const moments = (await Promise.all(optWeights.slice(1).map((w) => w.tensor.data()))) as Float32Array[];
    if (moments.length !== 2 * vars.length) throw new Error('unexpected Adam state layout');
    const iterations = (await optWeights[0].tensor.data())[0];
    optWeights[0].tensor.dispose(); // the moments are the optimizer's own variables
    const optimizerRef = await writeBin(dir, epochFile('optimizer', epoch), moments);
    const next: CheckpointState = {
      format: CHECKPOINT_FORMAT,
      version: CHECKPOINT_VERSION,
      epoch,
      history,
      bestEpoch,
      bestValAccuracy,
      rngState: rng.state,
      fingerprint,
      variables: specs,
      weights,
      best: bestRef,
      optimizer: { iterations, file: optimizerRef },
    };
    await writeFileAtomic(join(dir, 'state.json'), JSON.stringify(next, null, 1));
    await pruneFiles(dir, new Set([weights.file, bestRef.file, optimizerRef.file]));
  };

  try {
    for (let epoch = startEpoch + 1; epoch <= opts.epochs; epoch++) {
      const t0 = performance.now();
      const order = rng.shuffle(nTrain);
      const steps = Math.ceil(nTrain / opts.batchSize);
      const bar = opts.progress ? new Progress(`epoch ${epoch}/${opts.epochs}`, steps) : null;
      let lossSum = 0;
      let correct = 0;
      for (let s = 0; s < steps; s++) {
        const idx = order.slice(s * opts.batchSize, (s + 1) * opts.batchSize);
        const inputs = await batchInputs('train', idx);
        const labels = tf.tensor1d(idx.map((i) => data.train.y[i]), 'int32');
        const targets = teacher ? tf.tensor2d(idx.map((i) => Array.from(teacher[i]))) : null;
        let r: { loss: number; correct: number };
        try {
          r = await step(inputs, labels, targets);
        } catch (e) {
          if (!isMissingKernelError(e) || tf.getBackend() === 'cpu') throw e;
          await switchToCpu((e as Error).message.split('\n')[0]);
          r = await step(inputs, labels, targets);
        }
        tf.dispose([...inputs.values(), labels, ...(targets ? [targets] : [])]);
        lossSum += r.loss * idx.length;
        correct += r.correct;
        bar?.tick(1, `loss ${(lossSum / Math.min(nTrain, (s + 1) * opts.batchSize)).toFixed(4)}`);
      }
      const val = await evaluate();
      const record: EpochRecord = {
        epoch,
        loss: lossSum / nTrain,
        accuracy: correct / nTrain,
        valLoss: val.loss,
        valAccuracy: val.accuracy,
        seconds: (performance.now() - t0) / 1000,
      };
      history = [...history, record];
      // Best = highest val accuracy, first epoch wins ties (Keras' save_best_only). Without val: the last epoch.
      const score = nVal ? val.accuracy : epoch;
      const improved = score > bestValAccuracy;
      if (improved) {
        bestValAccuracy = score;
        bestEpoch = epoch;
        bestWeights = (await Promise.all(vars.map((v) => v.data()))).map((d) => d.slice() as Float32Array);
      }
      await saveCheckpoint(epoch, improved);
      log(
        `epoch ${epoch}/${opts.epochs} loss ${record.loss.toFixed(4)} acc ${record.accuracy.toFixed(4)} ` +
          `val_loss ${record.valLoss.toFixed(4)} val_acc ${record.valAccuracy.toFixed(4)} ` +
          `${record.seconds.toFixed(1)} s${improved ? ' (best)' : ''}`,
      );
    }
  } finally {
    if (cached) tf.dispose([...cached.train, ...cached.val]);
    optimizer.dispose();
    if (tf.getBackend() !== initialBackend) {
      await readOnHost(); // GPU values come to the host first: the move back reads them synchronously
      await tf.setBackend(initialBackend);
    }
  }

  if (bestWeights) setVars(bestWeights);
  return { model, history, bestEpoch, resumedFrom, cacheSeconds, trainBackend };
}
