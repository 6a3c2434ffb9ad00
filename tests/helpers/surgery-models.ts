// Models and images for the surgery tests: MobileNetV2 0.35 (ImageNet weights) rebuilt at a small input with a
// small head, a VGG16-topology network at 32 px, chest X-ray PNGs, and weight-planting helpers.
import * as tf from '@tensorflow/tfjs';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { loadLayersModel } from '../../trainer/src/io/layers-fs.js';
import { sharedPath } from './shared.js';

type Config = { layers: { className: string; config: Record<string, unknown> }[] };

/** The MobileNetV2 0.35 backbone at `size` px, same ImageNet weights. */
export async function mobilenetV2Backbone(size: number): Promise<tf.LayersModel> {
  const original = await loadLayersModel(sharedPath('weights', 'mobilenet_v2_0.35_224_notop'));
  const config = JSON.parse(JSON.stringify(original.getConfig())) as Config;
  const input = config.layers.find((l) => l.className === 'InputLayer')!;
  input.config['batchInputShape'] = [null, size, size, 3];
  const ctor = tf.LayersModel as unknown as tf.serialization.SerializableConstructor<tf.LayersModel>;
  const model = tf.LayersModel.fromConfig(ctor, config as unknown as tf.serialization.ConfigDict, {}, true);
  model.setWeights(original.getWeights());
  original.dispose();
  return model;
}

export interface HeadSpec {
  pooling: 'gap' | 'flatten';
  fc1: number;
  fc2: number;
  classes: number;
  dropout?: number;
  seed?: number;
}

/** backbone -> GAP | Flatten -> fc1 relu -> [Dropout] -> fc2 relu -> logits -> predictions (softmax). */
export function withHead(backbone: tf.LayersModel, head: HeadSpec): tf.LayersModel {
  const seed = head.seed ?? 1;
  const init = (s: number) => tf.initializers.glorotUniform({ seed: s });
  let x = backbone.outputs[0];
  x = (head.pooling === 'gap'
    ? tf.layers.globalAveragePooling2d({ name: 'gap' })
    : tf.layers.flatten({ name: 'flatten' })
  ).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ units: head.fc1, activation: 'relu', name: 'fc1', kernelInitializer: init(seed), biasInitializer: 'zeros' }).apply(x) as tf.SymbolicTensor;
  if (head.dropout) x = tf.layers.dropout({ rate: head.dropout, name: 'dropout' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ units: head.fc2, activation: 'relu', name: 'fc2', kernelInitializer: init(seed + 1) }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ units: head.classes, name: 'logits', kernelInitializer: init(seed + 2) }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.activation({ activation: 'softmax', name: 'predictions' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: backbone.inputs, outputs: x, name: 'classifier' });
}

/** The VGG16 conv topology (13 convs 3x3 'same' + ReLU, 5 max pools), random weights. */
export function vgg16Backbone(size: number, seed = 10): tf.LayersModel {
  const input = tf.input({ shape: [size, size, 3], name: 'input_1' });
  let x: tf.SymbolicTensor = input;
  let s = seed;
  const blocks: [number, number][] = [[64, 2], [128, 2], [256, 3], [512, 3], [512, 3]];
  blocks.forEach(([filters, convs], b) => {
    for (let c = 1; c <= convs; c++) {
      x = tf.layers
        .conv2d({ filters, kernelSize: 3, padding: 'same', activation: 'relu', name: `block${b + 1}_conv${c}`,
          kernelInitializer: tf.initializers.heNormal({ seed: s++ }), biasInitializer: tf.initializers.randomUniform({ minval: 0, maxval: 0.05, seed: s++ }) })
        .apply(x) as tf.SymbolicTensor;
    }
    x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `block${b + 1}_pool` }).apply(x) as tf.SymbolicTensor;
  });
  return tf.model({ inputs: input, outputs: x, name: 'vgg16' });
}

/** Overwrites entries of one weight array of a layer: `edit(values, shape)` mutates a copy. */
export function editWeight(model: tf.LayersModel, layer: string, index: number, edit: (v: Float32Array, shape: number[]) => void): void {
  const l = model.getLayer(layer);
  const weights = l.getWeights();
  const w = weights[index];
  const values = Float32Array.from(w.dataSync());
  edit(values, w.shape);
  const replaced = tf.tensor(values, w.shape);
  l.setWeights(weights.map((t, i) => (i === index ? replaced : t)));
  replaced.dispose();
}

/** Sets output channel `channel` of the last axis of a weight array to `value`. */
export function setChannel(model: tf.LayersModel, layer: string, index: number, channel: number, value: number): void {
  editWeight(model, layer, index, (v, shape) => {
    const c = shape[shape.length - 1];
    for (let i = channel; i < v.length; i += c) v[i] = value;
  });
}

/** Weight index of a BatchNormalization parameter (gamma 0, beta 1 with center and scale). */
export const BN = { gamma: 0, beta: 1 } as const;

/** Chest X-ray PNGs from the shared subset, RGB, resized to `size`, scaled to [-1, 1]. */
export function xrayBatch(start: number, count: number, size: number): tf.Tensor4D {
  const dirs = ['COVID', 'Normal'].map((c) => sharedPath('data', 'covid19-radiography-subset', c));
  const files = dirs.flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.png')).sort().slice(0, 200).map((f) => join(d, f)));
  // Interleave the two classes so that any window holds both.
  const half = files.length / 2;
  const ordered = Array.from({ length: files.length }, (_, i) => files[(i % 2) * half + Math.floor(i / 2)]);
  const chosen = ordered.slice(start, start + count);
  if (chosen.length !== count) throw new Error(`only ${chosen.length} images available from ${start}`);
  return tf.tidy(() => {
    const images = chosen.map((f) => {
      const png = PNG.sync.read(readFileSync(f));
      const rgb = new Float32Array(png.width * png.height * 3);
      for (let p = 0; p < png.width * png.height; p++) for (let k = 0; k < 3; k++) rgb[p * 3 + k] = png.data[p * 4 + k];
      return tf.image.resizeBilinear(tf.tensor3d(rgb, [png.height, png.width, 3]), [size, size]);
    });
    return tf.stack(images).div(127.5).sub(1) as tf.Tensor4D;
  });
}

/** Splits a batch into chunks of `n` (the caller disposes the chunks). */
export function chunks(x: tf.Tensor4D, n: number): tf.Tensor4D[] {
  const out: tf.Tensor4D[] = [];
  for (let i = 0; i < x.shape[0]; i += n) out.push(x.slice([i], [Math.min(n, x.shape[0] - i)]));
  return out;
}

/** Outputs of the named layers of `model` for `x`, as nested arrays. */
export function layerOutputs(model: tf.LayersModel, names: string[], x: tf.Tensor): number[][][] {
  const probe = tf.model({ inputs: model.inputs, outputs: names.map((n) => model.getLayer(n).output as tf.SymbolicTensor) });
  return tf.tidy(() => {
    const out = probe.predict(x);
    return (Array.isArray(out) ? out : [out]).map((t) => t.arraySync() as number[][]);
  });
}

/** Largest |a - b| over matching entries. */
export function maxAbsDiff(a: number[][], b: number[][]): number {
  let m = 0;
  a.forEach((row, i) => row.forEach((v, j) => (m = Math.max(m, Math.abs(v - b[i][j])))));
  return m;
}
