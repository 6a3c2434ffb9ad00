// Fine-tuning of a classifier model (backbone + head) with a frozen prefix, seeded shuffling, Adam, per-epoch
// checkpoints and exact resume.
//
// The frozen prefix (the backbone, by default) is run once per image and its output is cached; only the layers
// after it are trained on the cached tensors. With no augmentation and BatchNorm in inference mode this is exactly
// training with a frozen backbone, at the cost of one forward pass per image instead of one per epoch.
// The trainable part is executed by walking the original model's graph on concrete tensors, so no layer gains an
// extra inbound node (the model keeps its clean topology for surgery and saving) and the weights are shared.
import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Progress } from './progress.js';
import { accumulatedGradients, applyAccumulated, microBatchRanges } from './accumulate.js';
import { readOnHost } from '../runtime/webgpu.js';

/** Preprocessed NHWC inputs for the given sample indices (decoded and normalised by the caller, per batch). */
export type InputLoader = (indices: number[]) => tf.Tensor4D | Promise<tf.Tensor4D>;

export interface SplitData {
  /** One preprocessed HWC Float32Array per sample, or a loader that builds batches on demand. */
  x: Float32Array[] | InputLoader;
  /** Class index per sample. */
  y: number[];
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
// Graph split

export interface GraphSplit {
  /** Index in model.layers of the first trainable layer. */
  splitIndex: number;
  /** Tensors produced by frozen layers (or model inputs) and consumed by the trainable part. */
  frontier: tf.SymbolicTensor[];
  /** True when the frontier is just the model input: nothing to cache. */
  frontierIsInput: boolean;
  /** Layers executed in the trainable part, in topological order. */
  trainableLayers: tf.layers.Layer[];
}

/** Where training starts: trainableFrom, else 'fc1' for a frozen backbone, else right after the input. */
export function resolveSplitLayer(model: tf.LayersModel, opts: Pick<FineTuneOptions, 'trainableFrom' | 'freezeBackbone'>): number {
  const names = model.layers.map((l) => l.name);
  if (opts.trainableFrom !== undefined) {
    const i = names.indexOf(opts.trainableFrom);
    if (i < 0) throw new Error(`trainableFrom: the model has no layer named '${opts.trainableFrom}'`);
    return i;
  }
  if (opts.freezeBackbone) {
    const i = names.indexOf('fc1');
    if (i < 0) throw new Error("freezeBackbone: the model has no 'fc1' layer (the head's first layer); pass trainableFrom");
    return i;
  }
  return model.layers.findIndex((l) => l.getClassName() !== 'InputLayer');
}

export function splitGraph(model: tf.LayersModel, splitIndex: number): GraphSplit {
  const frozen = new Set(model.layers.slice(0, splitIndex));
  const frontier = new Map<number, tf.SymbolicTensor>();
  const used = new Set<tf.layers.Layer>();
  const seen = new Set<number>();
  const visit = (t: tf.SymbolicTensor): void => {
    if (seen.has(t.id)) return;
    seen.add(t.id);
    if (frozen.has(t.sourceLayer) || t.sourceLayer.getClassName() === 'InputLayer') {
      frontier.set(t.id, t);
      return;
    }
    used.add(t.sourceLayer);
    for (const input of t.sourceLayer.inboundNodes[t.nodeIndex].inputTensors) visit(input);
  };
  for (const out of model.outputs) visit(out);
  const inputIds = new Set(model.inputs.map((t) => t.id));
  const list = [...frontier.values()];
  return {
    splitIndex,
    frontier: list,
    frontierIsInput: list.every((t) => inputIds.has(t.id)),
    trainableLayers: model.layers.filter((l) => used.has(l)),
  };
}

/** Computes a layer's output another way (e.g. with cheaper gradients); undefined: the layer's own apply. */
export type LayerOverride = (layer: tf.layers.Layer, inputs: tf.Tensor[]) => tf.Tensor | undefined;

/** The parts of a tf.layers Conv2D that overrides use. */
export interface ConvLayerLike {
  kernel?: { read(): tf.Tensor };
  bias?: { read(): tf.Tensor } | null;
  activation?: { apply(x: tf.Tensor): tf.Tensor };
  getConfig(): tf.serialization.ConfigDict;
}

/**
 * A channels-last Conv2D through the plain conv op. tf.layers runs convs as the fused op, whose gradient always
 * computes the input gradient too; the plain op's registered gradient computes it only where it is needed, which
 * saves a whole backward convolution at the first layer (12% of a MobileNetV2 0.35 training step at 224 px).
 */
export function plainConv(layer: tf.layers.Layer, inputs: tf.Tensor[]): tf.Tensor | undefined {
  if (layer.getClassName() !== 'Conv2D' || inputs.length !== 1) return undefined;
  const cfg = layer.getConfig();
  const conv = layer as unknown as ConvLayerLike;
  if (cfg.dataFormat !== 'channelsLast' || !conv.kernel || (cfg.padding !== 'same' && cfg.padding !== 'valid')) return undefined;
  const pair = (v: unknown) => [v].flat() as number[];
  const strides = pair(cfg.strides);
  const dilations = pair(cfg.dilationRate);
  let y: tf.Tensor = tf.conv2d(
    inputs[0] as tf.Tensor4D,
    conv.kernel.read() as tf.Tensor4D,
    [strides[0], strides[1] ?? strides[0]],
    cfg.padding,
    'NHWC',
    [dilations[0], dilations[1] ?? dilations[0]],
  );
  if (conv.bias) y = tf.add(y, conv.bias.read());
  return conv.activation ? conv.activation.apply(y) : y;
}

/**
 * A ReLU layer capped at 6 (MobileNets') as the one Relu6 op: tf.layers runs relu then a clip, two passes forward
 * and two masks backward.
 */
export function relu6Op(layer: tf.layers.Layer, inputs: tf.Tensor[]): tf.Tensor | undefined {
  if (layer.getClassName() !== 'ReLU' || inputs.length !== 1) return undefined;
  const cfg = layer.getConfig();
  return cfg.maxValue === 6 && !cfg.negativeSlope && !cfg.threshold ? tf.relu6(inputs[0]) : undefined;
}

/**
 * Evaluates `outputs` of a functional model from concrete values of some of its symbolic tensors, by applying
 * the same layer objects to concrete tensors (which adds no inbound nodes). BatchNormalization always runs in
 * inference mode; `training` reaches the other layers (dropout) and sends convs and ReLU6 layers through
 * plainConv and relu6Op (unless `override` computes them).
 */
export function runGraphFrom(
  outputs: tf.SymbolicTensor[],
  known: Map<number, tf.Tensor>,
  training: boolean,
  override?: LayerOverride,
): tf.Tensor[] {
  const values = new Map(known);
  const evaluate = (t: tf.SymbolicTensor): tf.Tensor => {
    const have = values.get(t.id);
    if (have) return have;
    const layer = t.sourceLayer;
    const node = layer.inboundNodes[t.nodeIndex];
    const inputs = node.inputTensors.map(evaluate);
    const isBn = layer.getClassName() === 'BatchNormalization';
    const kwargs = { ...(node.callArgs ?? {}), training: isBn ? false : training };
    const out =
      override?.(layer, inputs) ??
      (training ? (plainConv(layer, inputs) ?? relu6Op(layer, inputs)) : undefined) ??
      (layer.apply(inputs.length === 1 ? inputs[0] : inputs, kwargs) as tf.Tensor | tf.Tensor[]);
    const outs = Array.isArray(out) ? out : [out];
    node.outputTensors.forEach((o, i) => values.set(o.id, outs[i]));
    const v = values.get(t.id);
    if (!v) throw new Error(`graph evaluation did not produce ${t.name}`);
    return v;
  };
  return outputs.map(evaluate);
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
// Seeded shuffling with a saveable state

/** mulberry32 with its 32-bit state exposed, so a checkpoint can carry it. */
export class SeededRng {
  constructor(public state: number) {
    this.state = state >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  shuffle(n: number): number[] {
    const a = range(n);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Checkpoints

const CHECKPOINT_FORMAT = 'zerovar-finetune-checkpoint';
const CHECKPOINT_VERSION = 1;

interface TensorSpec {
  name: string;
  shape: number[];
}
interface BinRef {
  file: string;
  sha256: string;
  bytes: number;
}
export interface CheckpointState {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  /** Epochs finished. */
  epoch: number;
  history: EpochRecord[];
  bestEpoch: number;
  bestValAccuracy: number;
  /** Shuffling state after `epoch` epochs. */
  rngState: number;
  fingerprint: Record<string, unknown>;
  variables: TensorSpec[];
  weights: BinRef;
  best: BinRef;
  optimizer: { iterations: number; file: BinRef };
}

function sha256(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** Writes a file atomically: a temporary name in the same folder, then rename. */
async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

function concatFloats(arrays: Float32Array[]): Uint8Array {
  const total = arrays.reduce((a, b) => a + b.length, 0);
  const out = new Float32Array(total);
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return new Uint8Array(out.buffer);
}

async function writeBin(dir: string, file: string, arrays: Float32Array[]): Promise<BinRef> {
  const bytes = concatFloats(arrays);
  await writeAtomic(join(dir, file), bytes);
  return { file, sha256: sha256(bytes), bytes: bytes.byteLength };
}

function corrupt(dir: string, why: string): Error {
  return new Error(`corrupt checkpoint in ${dir}: ${why}. Delete the folder or pass resume=false (--no-resume) to start over`);
}

async function readBin(dir: string, ref: BinRef, specs: TensorSpec[]): Promise<Float32Array[]> {
  const path = join(dir, ref.file);
  if (!existsSync(path)) throw corrupt(dir, `${ref.file} is missing`);
  const buf = await readFile(path);
  if (buf.byteLength !== ref.bytes || sha256(buf) !== ref.sha256) throw corrupt(dir, `${ref.file} does not match its sha256`);
  const floats = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const out: Float32Array[] = [];
  let o = 0;
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (o + n > floats.length) throw corrupt(dir, `${ref.file} is too short for ${s.name}`);
    out.push(floats.slice(o, o + n));
    o += n;
  }
  if (o !== floats.length) throw corrupt(dir, `${ref.file} has ${floats.length - o} unexpected values`);
  return out;
}

/** Reads and validates `dir/state.json`; null when the folder holds no checkpoint. */
export async function readCheckpointState(dir: string): Promise<CheckpointState | null> {
  const path = join(dir, 'state.json');
  if (!existsSync(path)) return null;
  let state: CheckpointState;
  try {
    state = JSON.parse(await readFile(path, 'utf8')) as CheckpointState;
  } catch (e) {
    throw corrupt(dir, `state.json is not valid JSON (${(e as Error).message})`);
  }
  if (state?.format !== CHECKPOINT_FORMAT) throw corrupt(dir, 'state.json is not a fine-tuning checkpoint');
  if (state.version !== CHECKPOINT_VERSION) {
    throw new Error(`checkpoint in ${dir} has format version ${state.version}; this trainer reads version ${CHECKPOINT_VERSION}`);
  }
  const ok =
    Number.isInteger(state.epoch) &&
    Array.isArray(state.history) &&
    state.history.length === state.epoch &&
    Array.isArray(state.variables) &&
    typeof state.weights?.file === 'string' &&
    typeof state.best?.file === 'string' &&
    typeof state.optimizer?.file?.file === 'string' &&
    Number.isInteger(state.rngState);
  if (!ok) throw corrupt(dir, 'state.json lacks required fields');
  return state;
}

function epochFile(kind: string, epoch: number): string {
  return `${kind}-epoch-${String(epoch).padStart(4, '0')}.bin`;
}

/** Removes weight files no longer referenced by the state (older epochs, interrupted writes). */
async function pruneFiles(dir: string, keep: Set<string>): Promise<void> {
  for (const f of await readdir(dir)) {
    if ((f.endsWith('.bin') || f.includes('.tmp-')) && !keep.has(f)) await rm(join(dir, f), { force: true });
  }
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

  const split = splitGraph(model, resolveSplitLayer(model, opts));
  const variables = split.trainableLayers.filter((l) => l.trainable).flatMap((l) => l.trainableWeights);
  if (variables.length === 0) throw new Error('nothing to train: the layers after the split have no trainable weights');
  const vars = variables.map((v) => v.read() as tf.Variable);
  const specs: TensorSpec[] = variables.map((v) => ({ name: v.originalName, shape: v.shape as number[] }));
  const output = model.outputs[0];
  const inputShape = inputShapeOf(model);
  log(
    `fine-tune: ${split.trainableLayers.length} layers trained from '${model.layers[split.splitIndex].name}' ` +
      `(${specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0)} parameters), ` +
      `${nTrain} train / ${nVal} val samples`,
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
  };
  await mkdir(opts.checkpointDir, { recursive: true });
  let state = opts.resume ? await readCheckpointState(opts.checkpointDir) : null;
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

  const optimizer = tf.train.adam(opts.learningRate);
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
  const microLoss = (inputs: Map<number, tf.Tensor>, labels: tf.Tensor1D, hits: tf.Scalar[]): tf.Scalar => {
    const [probs] = runGraphFrom([output], inputs, true);
    hits.push(tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(probs!, -1), labels), 'float32')) as tf.Scalar));
    const ce = crossEntropy(probs!, labels, classes);
    const reg = regularization(split.trainableLayers);
    return reg ? tf.add(ce, reg) : ce;
  };
  // Values are read with data(), not dataSync(): WebGPU in Node cannot read GPU buffers synchronously.
  const countHits = async (hits: tf.Scalar[]): Promise<number> => {
    const c = (await Promise.all(hits.map((h) => h.data()))).reduce((a, h) => a + h[0], 0);
    tf.dispose(hits);
    return c;
  };
  const step = async (inputs: Map<number, tf.Tensor>, labels: tf.Tensor1D): Promise<{ loss: number; correct: number }> => {
    const hits: tf.Scalar[] = [];
    const n = labels.shape[0];
    const micro = opts.microBatchSize && opts.microBatchSize < n ? opts.microBatchSize : n;
    if (micro === n) {
      const cost = optimizer.minimize(() => microLoss(inputs, labels, hits), true, vars)!;
      const loss = (await cost.data())[0];
      cost.dispose();
      return { loss, correct: await countHits(hits) };
    }
    const batches = microBatchRanges(n, micro).map(([start, end]) => ({
      size: end - start,
      inputs: new Map([...inputs].map(([id, t]) => [id, tf.slice(t, start, end - start)] as const)),
      labels: tf.slice(labels, start, end - start) as tf.Tensor1D,
    }));
    try {
      const { loss, grads } = await accumulatedGradients((b) => microLoss(b.inputs, b.labels, hits), vars, batches);
      applyAccumulated(optimizer, vars, grads);
      return { loss, correct: await countHits(hits) };
    } finally {
      tf.dispose(batches.flatMap((b) => [...b.inputs.values(), b.labels]));
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
    await writeAtomic(join(dir, 'state.json'), JSON.stringify(next, null, 1));
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
        let r: { loss: number; correct: number };
        try {
          r = await step(inputs, labels);
        } catch (e) {
          if (!isMissingKernelError(e) || tf.getBackend() === 'cpu') throw e;
          await switchToCpu((e as Error).message.split('\n')[0]);
          r = await step(inputs, labels);
        }
        tf.dispose([...inputs.values(), labels]);
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
