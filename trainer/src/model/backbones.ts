// ImageNet backbones and the classification head put on top of them. Browser-safe: no Node imports, so the
// viewer can share the exact architecture code with the trainer.
import * as tf from '@tensorflow/tfjs';

export type BackboneName = 'mobilenet_v2_0.35' | 'mobilenet_v1_0.25' | 'vgg16';

export interface BackboneInfo {
  name: BackboneName;
  /** Input side in pixels the published weights were trained at. */
  inputSize: number;
  /** 'mobilenet': x / 127.5 - 1 on RGB; 'caffe': BGR minus the ImageNet mean (Keras VGG16). */
  normalization: 'mobilenet' | 'caffe';
  /** Where a user downloads the weights (tfjs LayersModel); null when none is published in tfjs format. */
  defaultWeightsUrl: string | null;
  /** Folder name of a local copy under $ZEROVAR_WEIGHTS_DIR. */
  weightsFolder: string;
  /** Last conv activation, the usual Grad-CAM target. */
  gradcamLayer: string;
  /** How the conv features reach fc1: global average pooling, or VGG16's Flatten (as in the paper). */
  pooling: 'gap' | 'flatten';
  /** Output layer of the backbone once the ImageNet top (if any) is cut off. */
  outputLayer: string;
  /**
   * First backbone layer fine-tuning trains by default (the layers before it stay frozen, their outputs cached);
   * absent: the backbone stays frozen and only the head trains.
   */
  fineTuneFrom?: string;
}

export const BACKBONES: Record<BackboneName, BackboneInfo> = {
  'mobilenet_v2_0.35': {
    name: 'mobilenet_v2_0.35',
    inputSize: 224,
    normalization: 'mobilenet',
    defaultWeightsUrl:
      'https://storage.googleapis.com/teachable-machine-models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top/model.json',
    weightsFolder: 'mobilenet_v2_0.35_224_notop',
    gradcamLayer: 'out_relu',
    pooling: 'gap',
    outputLayer: 'out_relu',
    // The last five inverted-residual blocks and Conv_1 (14x14 and 7x7): on the Kaggle subset, test accuracy
    // 0.955 -> 0.977 over the frozen backbone for ~40% more fine-tuning time on a 2-core CPU.
    fineTuneFrom: 'block_12_expand',
  },
  'mobilenet_v1_0.25': {
    name: 'mobilenet_v1_0.25',
    inputSize: 224,
    normalization: 'mobilenet',
    defaultWeightsUrl: 'https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v1_0.25_224/model.json',
    weightsFolder: 'mobilenet_v1_0.25_224',
    gradcamLayer: 'conv_pw_13_relu',
    pooling: 'gap',
    outputLayer: 'conv_pw_13_relu',
  },
  vgg16: {
    name: 'vgg16',
    inputSize: 224,
    normalization: 'caffe',
    defaultWeightsUrl: null,
    weightsFolder: 'vgg16',
    gradcamLayer: 'block5_conv3',
    pooling: 'flatten',
    outputLayer: 'block5_pool',
  },
};

export function isBackboneName(s: string): s is BackboneName {
  return Object.prototype.hasOwnProperty.call(BACKBONES, s);
}

/** Spatial side of a model's input (assumes square NHWC input). */
export function modelInputSize(model: tf.LayersModel): number | null {
  const shape = model.inputs[0].shape;
  return shape[1] ?? null;
}

/**
 * Rebuilds a functional model from its config with a new square input size and copies its weights.
 * Conv backbones do not depend on the spatial size, so the same weights apply.
 */
export function rebuildAtInputSize(model: tf.LayersModel, inputSize: number): tf.LayersModel {
  const config = JSON.parse(JSON.stringify(model.getConfig())) as {
    layers: { className: string; config: { batchInputShape?: (number | null)[] } }[];
  };
  let found = false;
  for (const layer of config.layers) {
    if (layer.className !== 'InputLayer') continue;
    const shape = layer.config.batchInputShape;
    if (!shape || shape.length !== 4) throw new Error(`cannot resize input of shape ${JSON.stringify(shape)}`);
    layer.config.batchInputShape = [shape[0] ?? null, inputSize, inputSize, shape[3] ?? 3];
    found = true;
  }
  if (!found) throw new Error('cannot resize a model without an InputLayer');
  // fastWeightInit: the random initial values are overwritten right below.
  const rebuilt = tf.LayersModel.fromConfig(
    tf.LayersModel as unknown as tf.serialization.SerializableConstructor<tf.LayersModel>,
    config as unknown as tf.serialization.ConfigDict,
    {},
    true,
  );
  rebuilt.setWeights(model.getWeights());
  return rebuilt;
}

/**
 * The conv backbone from a pretrained ImageNet model: MobileNetV2 no-top as is, MobileNet v1 cut at its last
 * pointwise activation, VGG16 rebuilt with buildVgg16 and its conv weights copied by layer name.
 * With `inputSize` different from the model's, the backbone is rebuilt at that size with the same weights.
 */
export function backboneFromPretrained(name: BackboneName, pretrained: tf.LayersModel, inputSize?: number): tf.LayersModel {
  const info = BACKBONES[name];
  if (name === 'vgg16') {
    const size = inputSize ?? modelInputSize(pretrained) ?? info.inputSize;
    const vgg = buildVgg16(size);
    copyWeightsByName(pretrained, vgg, vgg.layers.filter((l) => l.weights.length > 0).map((l) => l.name));
    return vgg;
  }
  let backbone = pretrained;
  if (pretrained.outputs[0].sourceLayer.name !== info.outputLayer) {
    const out = pretrained.getLayer(info.outputLayer).output as tf.SymbolicTensor;
    backbone = tf.model({ inputs: pretrained.inputs, outputs: out, name: `${name}_backbone` });
  }
  const size = modelInputSize(backbone);
  if (inputSize !== undefined && inputSize !== size) backbone = rebuildAtInputSize(backbone, inputSize);
  return backbone;
}

/** Keras VGG16 without its top (block1_conv1 ... block5_pool), randomly initialised, NHWC input. */
export function buildVgg16(inputSize: number, seed = 0): tf.LayersModel {
  if (inputSize < 32) throw new Error(`VGG16 needs an input of at least 32 px (got ${inputSize})`);
  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'input_1' });
  const blocks = [
    [64, 2],
    [128, 2],
    [256, 3],
    [512, 3],
    [512, 3],
  ] as const;
  let x: tf.SymbolicTensor = input;
  let layerSeed = seed;
  blocks.forEach(([filters, convs], b) => {
    for (let c = 1; c <= convs; c++) {
      x = tf.layers
        .conv2d({
          filters,
          kernelSize: 3,
          padding: 'same',
          activation: 'relu',
          name: `block${b + 1}_conv${c}`,
          kernelInitializer: tf.initializers.glorotUniform({ seed: layerSeed++ }),
        })
        .apply(x) as tf.SymbolicTensor;
    }
    x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `block${b + 1}_pool` }).apply(x) as tf.SymbolicTensor;
  });
  return tf.model({ inputs: input, outputs: x, name: 'vgg16' });
}

/**
 * Copies weights from `from` into `to` for the named layers (all layers with weights present in both, if omitted).
 * Shapes must match exactly. Returns the names of the layers copied.
 */
export function copyWeightsByName(from: tf.LayersModel, to: tf.LayersModel, names?: string[]): string[] {
  const fromByName = new Map(from.layers.map((l) => [l.name, l]));
  const targets = names ?? to.layers.filter((l) => l.weights.length > 0 && fromByName.has(l.name)).map((l) => l.name);
  for (const name of targets) {
    const src = fromByName.get(name);
    if (!src) throw new Error(`pretrained weights have no layer named '${name}'`);
    const dst = to.getLayer(name);
    const srcW = src.getWeights();
    const dstW = dst.weights;
    if (srcW.length !== dstW.length) {
      throw new Error(`layer '${name}': pretrained has ${srcW.length} weight arrays, the model expects ${dstW.length}`);
    }
    srcW.forEach((w, i) => {
      const want = dstW[i].shape;
      if (w.shape.join('x') !== want.join('x')) {
        throw new Error(`layer '${name}' weight ${i}: pretrained shape [${w.shape}] does not match [${want}]`);
      }
    });
    dst.setWeights(srcW);
  }
  return targets;
}

/**
 * Names of the head's layers (buildClassifierModel), the same on every backbone: fine-tuning the head alone
 * starts at `first`, pruning and feature selection work on `features` (the penultimate units), the surgery
 * check compares `logits` too, and `predictions` is the softmax output.
 */
export const HEAD_LAYERS = { first: 'fc1', features: 'fc2', logits: 'logits', predictions: 'predictions' } as const;
export type HeadLayers = typeof HEAD_LAYERS;

export interface HeadOptions {
  classes: number;
  fc1: number;
  fc2: number;
  /** L2 factor on the logits kernel (the paper: 0.05). */
  l2: number;
  /** Dropout after fc1 (none when 0 / undefined). Dropout draws are not seeded. */
  dropout?: number;
  /** Seed of the head's initializers (fc1, fc2, logits use seed, seed+1, seed+2). */
  seed?: number;
}

/**
 * input -> backbone layers -> GAP | Flatten -> Dense 'fc1' relu -> [Dropout] -> Dense 'fc2' relu (penultimate)
 * -> Dense 'logits' linear (L2) -> Activation 'predictions' softmax. The backbone's layers are part of the
 * returned model by name (not nested), and shared with `backbone` (same layer objects, same weights).
 */
export function buildClassifierModel(backbone: tf.LayersModel, info: BackboneInfo, head: HeadOptions): tf.LayersModel {
  if (backbone.inputs.length !== 1 || backbone.outputs.length !== 1) {
    throw new Error('the backbone must have exactly one input and one output');
  }
  const seed = head.seed ?? 0;
  const features = backbone.outputs[0];
  let x =
    info.pooling === 'gap'
      ? (tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(features) as tf.SymbolicTensor)
      : (tf.layers.flatten({ name: 'flatten' }).apply(features) as tf.SymbolicTensor);
  const dense = (name: string, units: number, activation: 'relu' | 'linear', s: number, l2?: number) =>
    tf.layers.dense({
      name,
      units,
      activation,
      kernelInitializer: tf.initializers.glorotUniform({ seed: s }),
      biasInitializer: 'zeros',
      kernelRegularizer: l2 ? tf.regularizers.l2({ l2 }) : undefined,
    });
  x = dense(HEAD_LAYERS.first, head.fc1, 'relu', seed).apply(x) as tf.SymbolicTensor;
  if (head.dropout && head.dropout > 0) x = tf.layers.dropout({ rate: head.dropout, name: 'dropout' }).apply(x) as tf.SymbolicTensor;
  x = dense(HEAD_LAYERS.features, head.fc2, 'relu', seed + 1).apply(x) as tf.SymbolicTensor;
  x = dense(HEAD_LAYERS.logits, head.classes, 'linear', seed + 2, head.l2).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.activation({ activation: 'softmax', name: HEAD_LAYERS.predictions }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: backbone.inputs, outputs: out, name: `${info.name}_classifier` });
}
