// Loads pretrained ImageNet weights (tfjs LayersModel) from a folder, a model.json path or an http(s) URL.
//
// Default source per backbone: $ZEROVAR_WEIGHTS_DIR/<weights folder>/model.json when that file exists
// (offline copies: mobilenet_v2_0.35_224_notop, mobilenet_v1_0.25_224, vgg16), else the public URL of the
// backbone (BACKBONES[name].defaultWeightsUrl). VGG16 has no published tfjs copy: pass a LayersModel converted
// from Keras' VGG16 weights (with or without its top), or 'none' for random initialisation.
import * as tf from '@tensorflow/tfjs';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadLayersModel } from '../io/layers-fs.js';
import { BACKBONES, buildVgg16, copyWeightsByName, modelInputSize, type BackboneName } from '../model/backbones.js';

export const WEIGHTS_DIR_ENV = 'ZEROVAR_WEIGHTS_DIR';

function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/** The weights a run uses when --weights is not given: a local copy under $ZEROVAR_WEIGHTS_DIR, else the URL. */
export function defaultWeightsSource(name: BackboneName, env: NodeJS.ProcessEnv = process.env): string {
  const info = BACKBONES[name];
  const dir = env[WEIGHTS_DIR_ENV];
  if (dir) {
    const local = join(dir, info.weightsFolder, 'model.json');
    if (existsSync(local)) return local;
  }
  if (info.defaultWeightsUrl) return info.defaultWeightsUrl;
  throw new Error(
    `${name} has no published tfjs weights: pass --weights DIR (a tfjs LayersModel converted from Keras' ` +
      `${name} ImageNet weights), put it at $${WEIGHTS_DIR_ENV}/${info.weightsFolder}/, or pass --weights none ` +
      'for a randomly initialised backbone',
  );
}

/**
 * Pretrained weights for `name` from `weights` (a folder, a model.json path, an http(s) URL, or 'none';
 * undefined means defaultWeightsSource). Returns null for 'none'. For VGG16 the result is buildVgg16's
 * topology with the conv weights copied by layer name (shapes checked), whatever the source's layout.
 */
export async function loadPretrained(name: BackboneName, weights?: string): Promise<tf.LayersModel | null> {
  const source = weights ?? defaultWeightsSource(name);
  if (source === 'none') return null;
  let model: tf.LayersModel;
  if (isUrl(source)) {
    try {
      model = await tf.loadLayersModel(source);
    } catch (e) {
      throw new Error(
        `could not download ${name} weights from ${source} (offline? pass --weights DIR, or set ` +
          `$${WEIGHTS_DIR_ENV}): ${(e as Error).message}`,
      );
    }
  } else {
    const path = resolve(source);
    const modelJson = path.endsWith('.json') ? path : join(path, 'model.json');
    if (!existsSync(modelJson) || !statSync(modelJson).isFile()) {
      throw new Error(`weights not found at ${modelJson} (expected a tfjs LayersModel: model.json + weight files)`);
    }
    try {
      model = await loadLayersModel(modelJson);
    } catch (e) {
      throw new Error(`could not read ${name} weights at ${modelJson}: ${(e as Error).message}`);
    }
  }
  if (name !== 'vgg16') return model;
  const vgg = buildVgg16(modelInputSize(model) ?? BACKBONES.vgg16.inputSize);
  try {
    const convs = vgg.layers.filter((l) => l.weights.length > 0).map((l) => l.name);
    copyWeightsByName(model, vgg, convs);
  } catch (e) {
    vgg.dispose();
    throw new Error(`${source} does not hold Keras VGG16 weights: ${(e as Error).message}`);
  } finally {
    model.dispose();
  }
  return vgg;
}
