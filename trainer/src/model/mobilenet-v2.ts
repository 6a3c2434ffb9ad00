// MobileNetV2 as Keras builds it (the same layers, padding and channel rounding), with seeded random weights: the
// architecture the trainer's benchmark and its --threads auto probe time, and the kernel tests' step model.
// Browser-safe (tfjs only).
import * as tf from '@tensorflow/tfjs';

function makeDivisible(v: number, divisor = 8): number {
  let n = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (n < 0.9 * v) n += divisor;
  return n;
}

/** MobileNetV2 at width `alpha` on `size` x `size` RGB, a softmax over `classes`; the same weights every time. */
export function mobileNetV2(alpha: number, size: number, classes = 2): tf.LayersModel {
  let seed = 1;
  const conv = (filters: number, kernelSize: number, strides = 1, padding: 'same' | 'valid' = 'same') =>
    tf.layers.conv2d({ filters, kernelSize, strides, padding, useBias: false, kernelInitializer: tf.initializers.heNormal({ seed: seed++ }) });
  const bnRelu = (t: tf.SymbolicTensor, relu = true): tf.SymbolicTensor => {
    const b = tf.layers.batchNormalization({ epsilon: 1e-3, momentum: 0.999 }).apply(t) as tf.SymbolicTensor;
    return relu ? (tf.layers.reLU({ maxValue: 6 }).apply(b) as tf.SymbolicTensor) : b;
  };
  const pad = (t: tf.SymbolicTensor) => tf.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]] }).apply(t) as tf.SymbolicTensor;
  const input = tf.input({ shape: [size, size, 3] });
  let x = bnRelu(conv(makeDivisible(32 * alpha), 3, 2, 'valid').apply(pad(input)) as tf.SymbolicTensor);
  let channels = makeDivisible(32 * alpha);
  const blocks: Array<[number, number, number]> = [
    [1, 16, 1], [6, 24, 2], [6, 24, 1], [6, 32, 2], [6, 32, 1], [6, 32, 1], [6, 64, 2], [6, 64, 1], [6, 64, 1],
    [6, 64, 1], [6, 96, 1], [6, 96, 1], [6, 96, 1], [6, 160, 2], [6, 160, 1], [6, 160, 1], [6, 320, 1],
  ];
  blocks.forEach(([expansion, filters, stride], id) => {
    const out = makeDivisible(Math.floor(filters * alpha));
    let h = x;
    if (id > 0) h = bnRelu(conv(expansion * channels, 1).apply(h) as tf.SymbolicTensor);
    if (stride === 2) h = pad(h);
    h = tf.layers
      .depthwiseConv2d({ kernelSize: 3, strides: stride, padding: stride === 1 ? 'same' : 'valid', useBias: false, depthwiseInitializer: tf.initializers.heNormal({ seed: seed++ }) })
      .apply(h) as tf.SymbolicTensor;
    h = bnRelu(h);
    h = bnRelu(conv(out, 1).apply(h) as tf.SymbolicTensor, false);
    x = channels === out && stride === 1 ? (tf.layers.add().apply([x, h]) as tf.SymbolicTensor) : h;
    channels = out;
  });
  x = bnRelu(conv(alpha > 1 ? makeDivisible(1280 * alpha) : 1280, 1).apply(x) as tf.SymbolicTensor);
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: classes, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }) }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}
