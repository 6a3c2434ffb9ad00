// Grad-CAM: class-discriminative attention maps from a conv layer's activations and the gradients of a class
// score with respect to them. The channel weighting is the one part that varies between CAM methods, so it is a
// parameter (default: Grad-CAM's mean gradient over the spatial grid). The gradients can be taken at the
// activations themselves (Grad-CAM) or averaged along the straight path from zero activations to them
// (`pathSteps`, Integrated Grad-CAM): the plain gradient is local, and behind a non-linear head (an RBF SVM) it
// can weight every position negatively for the very class the image scores highest, leaving an empty map.
// Averaged along the path, and with a head that starts by pooling the grid, the map sums to the class score's
// rise over a zero activation map (the completeness of integrated gradients). Browser-safe.
import * as tf from '@tensorflow/tfjs';
import { argmax } from '../stats/metrics.js';
// The map resize lives with the other image resampling (tfjs-free, for code that must not load tfjs).
export { upsampleCam } from '../image/pixels.js';

export type ChannelWeighting = (grads: tf.Tensor4D, acts: tf.Tensor4D) => tf.Tensor2D;

/** Grad-CAM's weighting: the mean of the gradients over height and width, one weight per channel. */
export const gradCamWeighting: ChannelWeighting = (grads) => tf.mean(grads, [1, 2]) as tf.Tensor2D;

export interface CamTarget {
  /** Per-class scores computed from the head's output; default: the output itself. Must be differentiable. */
  score?: (outputs: tf.Tensor) => tf.Tensor2D;
  /** Class whose score is explained; default: the highest-scoring class. */
  classIndex?: number;
}

export interface CamOptions {
  weighting?: ChannelWeighting;
  /** Gradients averaged at this many points (midpoints) of the path from zero activations; 1 (default): the
   * gradient at the activations themselves, plain Grad-CAM. */
  pathSteps?: number;
}

export interface CamResult {
  /** height x width values at the layer's resolution, row-major, ReLU'd and scaled so the maximum is 1. */
  cam: Float32Array;
  width: number;
  height: number;
  classIndex: number;
  /** The per-class scores of the explained input (from `target.score`). */
  scores: number[];
}

interface ChainLocation {
  /** Model whose input reaches the target layer directly (the model itself or a nested backbone). */
  inner: tf.LayersModel;
  target: tf.layers.Layer;
  /** Layers after the target, in order, across the nested model and the outer model. */
  after: tf.layers.Layer[];
}

function isLayersModel(layer: tf.layers.Layer): layer is tf.LayersModel {
  return layer instanceof tf.LayersModel;
}

/** The single layer feeding `layer` in the graph it was built in (its first inbound node). */
function soleInboundLayer(layer: tf.layers.Layer): tf.layers.Layer | null {
  const node = layer.inboundNodes[0];
  if (!node) return null;
  return node.inboundLayers.length === 1 ? node.inboundLayers[0] : null;
}

/** Layers after `target` in `model`, checked to form a chain (each fed only by the previous one). */
function chainAfter(model: tf.LayersModel, target: tf.layers.Layer): tf.layers.Layer[] {
  const layers = model.layers;
  const at = layers.indexOf(target);
  const after = layers.slice(at + 1);
  let prev = target;
  for (const layer of after) {
    const from = soleInboundLayer(layer);
    // A Sequential whose first layer is a model feeds the next layer from that model's own output layer.
    const fedByPrev = from === prev || (from !== null && isLayersModel(prev) && prev.outputLayers.includes(from));
    if (!fedByPrev) {
      throw new Error(
        `splitAtLayer: the part after layer "${target.name}" is not a chain: ` +
          `layer "${layer.name}" is not fed by "${prev.name}" alone`,
      );
    }
    prev = layer;
  }
  return after;
}

function locate(model: tf.LayersModel, layerName: string): ChainLocation {
  const direct = model.layers.find((l) => l.name === layerName);
  if (direct) return { inner: model, target: direct, after: chainAfter(model, direct) };
  // Transfer-learning models often wrap the backbone as one nested model applied to the input.
  for (const layer of model.layers) {
    if (!isLayersModel(layer)) continue;
    const target = layer.layers.find((l) => l.name === layerName);
    if (!target) continue;
    const firstReal = model.layers.find((l) => l.getClassName() !== 'InputLayer');
    if (firstReal !== layer) {
      throw new Error(`splitAtLayer: layer "${layerName}" sits in nested model "${layer.name}", which is not the first layer`);
    }
    return { inner: layer, target, after: [...chainAfter(layer, target), ...chainAfter(model, layer)] };
  }
  throw new Error(`splitAtLayer: no layer named "${layerName}" in model "${model.name}"`);
}

/** A fresh copy of `layer` (same class, config and current weights) so the original graph is left untouched. */
function cloneLayer(layer: tf.layers.Layer): tf.layers.Layer {
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[layer.getClassName()];
  if (!entry) throw new Error(`splitAtLayer: layer class ${layer.getClassName()} is not registered for serialization`);
  const config = { ...layer.getConfig() } as tf.serialization.ConfigDict;
  delete config.batchInputShape;
  delete config.inputShape;
  const [cls, fromConfig] = entry;
  return fromConfig(cls, config) as unknown as tf.layers.Layer;
}

/**
 * Splits a model at a layer: `features` maps the model's input to the layer's output; `head` maps that output
 * to the model's output by copies of the layers after it (which must form a chain: pooling, flatten, dense,
 * dropout, activation...). The head's weights are a snapshot taken now.
 */
export function splitAtLayer(
  model: tf.LayersModel,
  layerName: string,
): { features: tf.LayersModel; head: tf.LayersModel } {
  const { inner, target, after } = locate(model, layerName);
  const targetOut = target.getOutputAt(0) as tf.SymbolicTensor;
  const features = tf.model({ inputs: inner.inputs, outputs: targetOut, name: `${model.name}_to_${layerName}` });
  const headInput = tf.input({ shape: targetOut.shape.slice(1) as number[] });
  let x: tf.SymbolicTensor = headInput;
  const pairs: [tf.layers.Layer, tf.layers.Layer][] = [];
  for (const layer of after) {
    const copy = cloneLayer(layer);
    x = copy.apply(x) as tf.SymbolicTensor;
    pairs.push([layer, copy]);
  }
  const head = tf.model({ inputs: headInput, outputs: x, name: `${model.name}_from_${layerName}` });
  for (const [layer, copy] of pairs) copy.setWeights(layer.getWeights());
  return { features, head };
}

/** Grad-CAM on one layer of a model. Keep one instance per (model, layer); call `dispose()` when done. */
export class GradCAM {
  readonly features: tf.LayersModel;
  readonly head: tf.LayersModel;
  private readonly weighting: ChannelWeighting;
  readonly pathSteps: number;

  constructor(model: tf.LayersModel, readonly layerName: string, opts: CamOptions = {}) {
    const { features, head } = splitAtLayer(model, layerName);
    const outShape = features.outputs[0].shape;
    if (outShape.length !== 4) {
      throw new Error(`GradCAM: layer "${layerName}" must output a 4D (batch, h, w, channels) tensor, got [${outShape}]`);
    }
    this.features = features;
    this.head = head;
    this.weighting = opts.weighting ?? gradCamWeighting;
    this.pathSteps = opts.pathSteps ?? 1;
    if (!Number.isInteger(this.pathSteps) || this.pathSteps < 1) throw new Error(`GradCAM: pathSteps must be a positive integer, got ${opts.pathSteps}`);
  }

  /** The attention map of one image (a batch of 1, already preprocessed) for the target class. */
  compute(input: tf.Tensor4D, target: CamTarget = {}): CamResult {
    if (input.shape[0] !== 1) throw new Error(`GradCAM.compute expects a batch of 1, got ${input.shape[0]}`);
    const score = target.score ?? ((o: tf.Tensor) => o as tf.Tensor2D);
    const headScores = (acts: tf.Tensor4D): tf.Tensor2D =>
      score(this.head.apply(acts, { training: false }) as tf.Tensor);

    const acts = tf.tidy(() => this.features.apply(input, { training: false }) as tf.Tensor4D);
    try {
      const scoreTensor = tf.tidy(() => headScores(acts));
      const scores = Array.from(scoreTensor.dataSync());
      scoreTensor.dispose();
      const classIndex = target.classIndex ?? argmax(scores);
      if (!Number.isInteger(classIndex) || classIndex < 0 || classIndex >= scores.length) {
        throw new Error(`GradCAM: class index ${classIndex} is outside 0..${scores.length - 1}`);
      }
      const [, height, width] = acts.shape;
      const cam = tf.tidy(() => {
        // The class's score summed over a batch: each row's gradient is its own (the head is applied row by row).
        const gradAt = tf.grad((a: tf.Tensor) => tf.sum(tf.slice(headScores(a as tf.Tensor4D), [0, classIndex], [-1, 1])));
        const grads = this.pathGradients(gradAt, acts);
        const w = this.weighting(grads, acts); // [1, channels]
        const weighted = tf.sum(tf.mul(acts, tf.reshape(w, [1, 1, 1, -1])), -1); // [1, h, w]
        return tf.relu(weighted);
      });
      const values = cam.dataSync() as Float32Array;
      cam.dispose();
      return { cam: normalizeMax(Float32Array.from(values)), width, height, classIndex, scores };
    } finally {
      acts.dispose();
    }
  }

  /** The gradient at the activations, or its mean over the path's midpoints from zero (inside a tidy): the
   * midpoints go through the head as one batch, one backward pass in all. */
  private pathGradients(gradAt: (a: tf.Tensor) => tf.Tensor, acts: tf.Tensor4D): tf.Tensor4D {
    const n = this.pathSteps;
    if (n === 1) return gradAt(acts) as tf.Tensor4D;
    const alphas = tf.tensor4d(Array.from({ length: n }, (_, s) => (s + 0.5) / n), [n, 1, 1, 1]);
    return tf.mean(gradAt(tf.mul(acts, alphas)), 0, true) as tf.Tensor4D;
  }

  /** Frees the head's copied weights (the features part shares the original model's weights). */
  dispose(): void {
    this.head.dispose();
  }
}

/** Scales so the maximum is 1 (an all-zero map stays zero). */
function normalizeMax(v: Float32Array): Float32Array {
  let max = 0;
  for (const x of v) if (x > max) max = x;
  if (max > 0) for (let i = 0; i < v.length; i++) v[i] /= max;
  return v;
}
