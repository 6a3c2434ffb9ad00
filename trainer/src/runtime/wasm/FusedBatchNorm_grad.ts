// The FusedBatchNorm gradient, replaced for speed in training (registered by registerTrainingKernels, never for
// inference). tfjs' own gradient tiles 1/sqrt(var + eps) to the full activation shape and reduces over
// batch x rows x columns with Sum (a transpose first, on wasm): most of a MobileNetV2 training step. Broadcasting
// the per-channel factor and taking column sums gives the same values.
//
// A gradient is registered for every backend, not per backend. That is safe here: on wasm one kernel call (the
// BatchNorm + ReLU gradient's, nothing masked) gives dx and every parameter's gradient in one pass over dy and x;
// elsewhere the column sums and the channel scaling are a matmul with ones and a broadcast tf.mul, ordinary ops that
// compute the same values as tfjs' gradient; statistics that are not per channel over the last axis get tfjs' own
// gradient, which the replacement keeps and calls.
import * as tf from '@tensorflow/tfjs';
import { BATCH_NORM_RELU_GRAD } from './BatchNormReluGrad.js';
import { columnSums } from './ColumnDot.js';
import { onePassBatchNorm } from './BatchNormRelu.js';
import { scaleChannels } from './ScaleChannels.js';

/** The replacement gradient config; `original` (tfjs' own) takes the cases it does not cover. */
export function fusedBatchNormGradConfig(original: tf.GradConfig): tf.GradConfig {
  return {
    kernelName: 'FusedBatchNorm',
    inputsToSave: ['x', 'mean', 'variance', 'scale'],
    gradFunc: (dy, saved, attrs) => {
      const [x, mean, variance, scale] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor | undefined];
      const dyT = dy as tf.Tensor;
      // Per-channel statistics over the last axis (what tf.layers uses); anything else: tfjs' own gradient.
      const channels = x.shape[x.shape.length - 1];
      if (mean.rank !== 1 || mean.shape[0] !== channels || x.rank < 2) return original.gradFunc(dy, saved, attrs);
      const eps = (attrs as { varianceEpsilon: number }).varianceEpsilon;
      if (onePassBatchNorm(x, BATCH_NORM_RELU_GRAD)) {
        // On wasm: the one-pass kernel of the BatchNorm + ReLU gradient with nothing masked.
        const inputs = { dy: dyT, x, mean, variance, ...(scale ? { scale } : {}) };
        const [dx, dMean, dVariance, dScale, dOffset] = tf.engine().runKernel(BATCH_NORM_RELU_GRAD, inputs, { varianceEpsilon: eps, min: -Infinity, max: Infinity }) as tf.Tensor[];
        return { x: () => dx, mean: () => dMean, variance: () => dVariance, scale: () => dScale, offset: () => dOffset };
      }
      const inv = tf.rsqrt(tf.add(variance, eps));
      const factor = scale ? tf.mul(inv, scale) : inv;
      // The column sums of dy serve the offset, scale, mean and variance gradients: computed once, here (tensors
      // made outside the thunks live until the end of the backward pass).
      const sumDy = columnSums(dyT, channels);
      return {
        x: () => scaleChannels(dyT, factor as tf.Tensor1D),
        ...statisticGradients(sumDy, () => columnSums(dyT, channels, x), mean, inv, factor),
      };
    },
  };
}

/**
 * The mean, variance, scale and offset gradients of an inference-mode BatchNorm, from the column sums of the
 * gradient at its output, g: sum g, and sum g * x (lazily: only the scale and variance gradients need it).
 * `factor` is inv * scale (inv alone without a scale). ZerovarBatchNormReluGrad computes the same per channel.
 */
export function statisticGradients(sumG: tf.Tensor, sumGX: () => tf.Tensor, mean: tf.Tensor, inv: tf.Tensor, factor: tf.Tensor) {
  const centred = () => tf.sub(sumGX(), tf.mul(mean, sumG)); // sum of g * (x - mean)
  return {
    mean: () => tf.neg(tf.mul(sumG, factor)),
    variance: () => tf.mul(tf.mul(centred(), factor), tf.mul(tf.square(inv), -0.5)),
    scale: () => tf.mul(centred(), inv),
    offset: () => tf.clone(sumG),
  };
}
