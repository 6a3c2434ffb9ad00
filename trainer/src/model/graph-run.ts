// Running a functional LayersModel's graph on concrete tensors, shared by fine-tuning and the segmenter's
// training: where training starts (the split between a frozen prefix and the trained layers) and a forward pass
// that applies the model's own layer objects, so no layer gains an inbound node and the weights are shared.
// The training forward is also where layers are computed in a cheaper-to-differentiate form (one table of
// overrides below); the gradients themselves are the wasm kernels' work (runtime/wasm/). Browser-safe.
import * as tf from '@tensorflow/tfjs';
import { batchNormRelu } from '../runtime/wasm/BatchNormRelu.js';
import { HEAD_LAYERS } from './backbones.js';

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

/** Where training starts: trainableFrom, else the head's first layer for a frozen backbone, else right after the input. */
export function resolveSplitLayer(model: tf.LayersModel, opts: { trainableFrom?: string; freezeBackbone: boolean }): number {
  const names = model.layers.map((l) => l.name);
  if (opts.trainableFrom !== undefined) {
    const i = names.indexOf(opts.trainableFrom);
    if (i < 0) throw new Error(`trainableFrom: the model has no layer named '${opts.trainableFrom}'`);
    return i;
  }
  if (opts.freezeBackbone) {
    const i = names.indexOf(HEAD_LAYERS.first);
    if (i < 0) throw new Error(`freezeBackbone: the model has no '${HEAD_LAYERS.first}' layer (the head's first layer); pass trainableFrom`);
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

/** Computes a layer's output another way (e.g. with cheaper gradients); undefined: not this override's case. */
export type LayerOverride = (layer: tf.layers.Layer, inputs: tf.Tensor[]) => tf.Tensor | undefined;

/** The parts of a tf.layers Conv2D that overrides use. */
interface ConvLayerLike {
  kernel?: { read(): tf.Tensor };
  bias?: { read(): tf.Tensor } | null;
  activation?: { apply(x: tf.Tensor): tf.Tensor };
}

/** A layer config's stride or dilation (one number, or one per axis) as [rows, columns]. */
function pairOf2(v: unknown): [number, number] {
  const [a, b] = [v].flat() as number[];
  return [a, b ?? a];
}

/**
 * A channels-last Conv2D through the plain conv op. tf.layers runs convs as the fused op, whose gradient always
 * computes the input gradient too; the plain op's registered gradient computes it only where it is needed, which
 * saves a whole backward convolution at the first layer (12% of a MobileNetV2 0.35 training step at 224 px), and
 * its gradients go through the wasm kernels (a stride-1 'same' conv's input gradient as a forward conv: the
 * segmenter's 3x3 convs).
 */
export function plainConv(layer: tf.layers.Layer, inputs: tf.Tensor[]): tf.Tensor | undefined {
  if (layer.getClassName() !== 'Conv2D' || inputs.length !== 1) return undefined;
  const cfg = layer.getConfig();
  const conv = layer as unknown as ConvLayerLike;
  if (cfg.dataFormat !== 'channelsLast' || !conv.kernel || (cfg.padding !== 'same' && cfg.padding !== 'valid')) return undefined;
  let y: tf.Tensor = tf.conv2d(inputs[0] as tf.Tensor4D, conv.kernel.read() as tf.Tensor4D, pairOf2(cfg.strides), cfg.padding, 'NHWC', pairOf2(cfg.dilationRate));
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

/** The weights of a tf.layers BatchNormalization. */
interface BatchNormLayerLike {
  gamma?: { read(): tf.Tensor };
  beta?: { read(): tf.Tensor };
  movingMean?: { read(): tf.Tensor };
  movingVariance?: { read(): tf.Tensor };
}

/**
 * A ReLU (capped, as MobileNets' ReLU6, or not) whose input is a BatchNormalization's output that nothing else
 * reads, as one op from the BatchNorm's input (runtime/wasm/BatchNormRelu.ts): one pass forward and one backward
 * instead of two and four, and the BatchNorm's output is never made. Undefined: not such a pair, or the op cannot
 * run here; the layers then run one by one (the BatchNorm's input, if evaluated, is kept for that).
 */
function batchNormReluPair(layer: tf.layers.Layer, input: tf.SymbolicTensor, evaluate: (t: tf.SymbolicTensor) => tf.Tensor): tf.Tensor | undefined {
  const pair = pairOf(layer, input);
  if (!pair) return undefined;
  const x = evaluate(pair.input);
  if (pair.axis !== -1 && pair.axis !== x.rank - 1) return undefined;
  const params = {
    mean: pair.w.movingMean.read() as tf.Tensor1D,
    variance: pair.w.movingVariance.read() as tf.Tensor1D,
    scale: pair.w.gamma.read() as tf.Tensor1D,
    offset: pair.w.beta.read() as tf.Tensor1D,
    varianceEpsilon: pair.epsilon,
  };
  return batchNormRelu(x, params, pair.max);
}

interface BatchNormReluPair {
  /** The BatchNorm's input. */
  input: tf.SymbolicTensor;
  w: Required<BatchNormLayerLike>;
  axis: number;
  epsilon: number;
  max: number;
}

/** Each ReLU layer's pair, or null where it is none: read off the layers' configs once, not at every step. */
const pairs = new WeakMap<tf.layers.Layer, BatchNormReluPair | null>();

function pairOf(layer: tf.layers.Layer, input: tf.SymbolicTensor): BatchNormReluPair | null {
  if (layer.getClassName() !== 'ReLU') return null;
  if (layer.inboundNodes.length !== 1) return findPair(layer, input); // a layer applied twice: per call
  if (!pairs.has(layer)) pairs.set(layer, findPair(layer, input));
  return pairs.get(layer)!;
}

function findPair(layer: tf.layers.Layer, input: tf.SymbolicTensor): BatchNormReluPair | null {
  const relu = layer.getConfig();
  if (relu.negativeSlope || relu.threshold) return null;
  const bn = input.sourceLayer;
  if (bn.getClassName() !== 'BatchNormalization' || bn.inboundNodes.length !== 1 || bn.outboundNodes.length !== 1) return null;
  const cfg = bn.getConfig();
  const w = bn as unknown as BatchNormLayerLike;
  if (!cfg.center || !cfg.scale || !w.gamma || !w.beta || !w.movingMean || !w.movingVariance) return null;
  const inputs = bn.inboundNodes[0].inputTensors;
  if (inputs.length !== 1) return null;
  const max = typeof relu.maxValue === 'number' ? relu.maxValue : Infinity;
  return { input: inputs[0], w: w as Required<BatchNormLayerLike>, axis: cfg.axis as number, epsilon: cfg.epsilon as number, max };
}

/** The parts of a tf.layers DepthwiseConv2D that paddedConv uses. */
interface DepthwiseLayerLike {
  depthwiseKernel?: { read(): tf.Tensor };
}

/** A 'valid' conv (plain or depthwise) reading a ZeroPadding2D's output that nothing else reads. */
interface PaddedConv {
  /** The ZeroPadding2D's input. */
  input: tf.SymbolicTensor;
  /** [[top, bottom], [left, right]]. */
  padding: [[number, number], [number, number]];
}

const paddedConvs = new WeakMap<tf.layers.Layer, PaddedConv | null>();

function findPaddedConv(layer: tf.layers.Layer, input: tf.SymbolicTensor): PaddedConv | null {
  const kind = layer.getClassName();
  if (kind !== 'Conv2D' && kind !== 'DepthwiseConv2D') return null;
  const cfg = layer.getConfig();
  if (cfg.padding !== 'valid' || cfg.dataFormat !== 'channelsLast') return null;
  const pad = input.sourceLayer;
  if (pad.getClassName() !== 'ZeroPadding2D' || pad.inboundNodes.length !== 1 || pad.outboundNodes.length !== 1) return null;
  const padCfg = pad.getConfig();
  const inputs = pad.inboundNodes[0].inputTensors;
  if (padCfg.dataFormat !== 'channelsLast' || inputs.length !== 1) return null;
  return { input: inputs[0], padding: padCfg.padding as [[number, number], [number, number]] };
}

/**
 * A 'valid' convolution (plain or depthwise) of a ZeroPadding2D's output that nothing else reads, as the one conv
 * op with that padding explicit: the padded copy is never made, nor the slice of its gradient (MobileNetV2's
 * stem and stride-2 blocks: 5 pads and 4 slices a step). The same sums: a padded tap only ever added a zero.
 * Undefined: not such a pair (the layers then run one by one).
 */
function paddedConv(layer: tf.layers.Layer, input: tf.SymbolicTensor, evaluate: (t: tf.SymbolicTensor) => tf.Tensor): tf.Tensor | undefined {
  if (layer.inboundNodes.length !== 1) return undefined;
  if (!paddedConvs.has(layer)) paddedConvs.set(layer, findPaddedConv(layer, input));
  const found = paddedConvs.get(layer);
  if (!found) return undefined;
  const cfg = layer.getConfig();
  const conv = layer as unknown as ConvLayerLike & DepthwiseLayerLike;
  const explicit: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], found.padding[0], found.padding[1], [0, 0]];
  const x = evaluate(found.input) as tf.Tensor4D;
  let y: tf.Tensor;
  if (layer.getClassName() === 'Conv2D') {
    if (!conv.kernel) return undefined;
    y = tf.conv2d(x, conv.kernel.read() as tf.Tensor4D, pairOf2(cfg.strides), explicit, 'NHWC', pairOf2(cfg.dilationRate));
  } else {
    if (!conv.depthwiseKernel) return undefined;
    y = tf.depthwiseConv2d(x, conv.depthwiseKernel.read() as tf.Tensor4D, pairOf2(cfg.strides), explicit, 'NHWC', pairOf2(cfg.dilationRate));
  }
  if (conv.bias) y = tf.add(y, conv.bias.read());
  return conv.activation ? conv.activation.apply(y) : y;
}

/** How the training forward computes layers, first match wins; a layer none matches runs its own apply. */
export const TRAINING_OVERRIDES: readonly LayerOverride[] = [plainConv, relu6Op];

/**
 * Evaluates `outputs` of a functional model from concrete values of some of its symbolic tensors, by applying
 * the same layer objects to concrete tensors (which adds no inbound nodes). BatchNormalization always runs in
 * inference mode; `training` reaches the other layers (dropout), sends layers through TRAINING_OVERRIDES and
 * computes a BatchNorm + ReLU pair as one op where it can (batchNormReluPair), and a conv of a zero padding as
 * one conv with that padding (paddedConv).
 */
export function runGraphFrom(outputs: tf.SymbolicTensor[], known: Map<number, tf.Tensor>, training: boolean): tf.Tensor[] {
  const values = new Map(known);
  const requested = new Set(outputs.map((o) => o.id));
  const evaluate = (t: tf.SymbolicTensor): tf.Tensor => {
    const have = values.get(t.id);
    if (have) return have;
    const layer = t.sourceLayer;
    const node = layer.inboundNodes[t.nodeIndex];
    const [first] = node.inputTensors;
    if (training && node.inputTensors.length === 1 && !values.has(first.id) && !requested.has(first.id)) {
      const fused = batchNormReluPair(layer, first, evaluate) ?? paddedConv(layer, first, evaluate);
      if (fused) {
        node.outputTensors.forEach((o) => values.set(o.id, fused));
        return fused;
      }
    }
    const inputs = node.inputTensors.map(evaluate);
    const isBn = layer.getClassName() === 'BatchNormalization';
    const kwargs = { ...(node.callArgs ?? {}), training: isBn ? false : training };
    let out: tf.Tensor | tf.Tensor[] | undefined;
    if (training) for (const o of TRAINING_OVERRIDES) if ((out = o(layer, inputs))) break;
    out ??= layer.apply(inputs.length === 1 ? inputs[0] : inputs, kwargs) as tf.Tensor | tf.Tensor[];
    const outs = Array.isArray(out) ? out : [out];
    node.outputTensors.forEach((o, i) => values.set(o.id, outs[i]));
    const v = values.get(t.id);
    if (!v) throw new Error(`graph evaluation did not produce ${t.name}`);
    return v;
  };
  return outputs.map(evaluate);
}
