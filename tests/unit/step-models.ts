// A tiny classifier and image sets for the prune and select step tests: 4x4 px grey images -> Flatten ->
// Dense 'fc2' (4 ReLU units whose fate is planted) -> Dense 'logits'. Pixel values decide which units fire.
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../../trainer/src/data/rng.js';
import type { GreyImage, InputSpec } from '../../trainer/src/image/pixels.js';
import { ImageSet } from '../../trainer/src/train/images.js';

export const SPEC: InputSpec = { size: 4, normalization: 'mobilenet' };

/**
 * fc2 pre-activations, with x_i = pixel_i / 127.5 - 1 (channel 0 of pixel i is flat input 3 i):
 * unit 0 = -100 (dead everywhere, a constant), unit 1 = x_0 (dead while pixel 0 <= 127, fires above),
 * unit 2 = x_1 + 5 and unit 3 = 5 - x_2 (alive, varying).
 */
export function tinyClassifier(): tf.LayersModel {
  const input = tf.input({ shape: [4, 4, 3], name: 'input' });
  const flat = tf.layers.flatten({ name: 'flatten' }).apply(input) as tf.SymbolicTensor;
  const fc2 = tf.layers.dense({ units: 4, activation: 'relu', name: 'fc2' }).apply(flat) as tf.SymbolicTensor;
  const logits = tf.layers.dense({ units: 2, name: 'logits' }).apply(fc2) as tf.SymbolicTensor;
  const out = tf.layers.activation({ activation: 'softmax', name: 'predictions' }).apply(logits) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  const kernel = new Float32Array(48 * 4);
  kernel[0 * 4 + 1] = 1; // x_0 -> unit 1
  kernel[3 * 4 + 2] = 1; // x_1 -> unit 2
  kernel[6 * 4 + 3] = -1; // x_2 -> unit 3
  model.getLayer('fc2').setWeights([tf.tensor2d(kernel, [48, 4]), tf.tensor1d([-100, 0, 5, 5])]);
  model.getLayer('logits').setWeights([tf.tensor2d([[1, 2], [3, -4], [5, -6], [-7, 8]]), tf.tensor1d([0, 0])]);
  return model;
}

/**
 * n images with pixel 0 drawn from [0, maxPixel0] and the others from [0, 255]; label 1 when pixel 1 is above
 * 127 (which unit 2 reads), alternating labels, so every set holds both classes.
 */
export function imageSet(n: number, seed: number, maxPixel0 = 255): ImageSet {
  const rand = mulberry32(seed);
  const images: GreyImage[] = [];
  const samples = [];
  for (let i = 0; i < n; i++) {
    const label = i % 2;
    const data = new Uint8Array(16);
    for (let p = 0; p < 16; p++) data[p] = Math.floor(rand() * 256);
    data[0] = Math.floor(rand() * (maxPixel0 + 1));
    data[1] = label ? 128 + Math.floor(rand() * 128) : Math.floor(rand() * 128);
    images.push({ width: 4, height: 4, data });
    samples.push({ path: `img-${seed}-${i}.png`, className: label ? 'B' : 'A', label });
  }
  return new ImageSet(samples, images, SPEC);
}
