// The gradient of ZerovarBatchNormRelu (BatchNormRelu.ts): one kernel call (ZerovarBatchNormReluGrad) gives dx and
// the BatchNorm's parameter gradients. The kernel exists on wasm only and batchNormRelu calls it only there, so this
// gradient never meets another backend.
import * as tf from '@tensorflow/tfjs';
import { BATCH_NORM_RELU } from './BatchNormRelu.js';
import { BATCH_NORM_RELU_GRAD } from './BatchNormReluGrad.js';

export const batchNormReluGradConfig: tf.GradConfig = {
  kernelName: BATCH_NORM_RELU,
  inputsToSave: ['x', 'mean', 'variance', 'scale', 'offset'],
  gradFunc: (dy, saved, attrs) => {
    const [x, mean, variance, scale, offset] = saved as tf.Tensor[];
    const inputs = { dy: dy as tf.Tensor, x, mean, variance, scale, offset };
    // Made outside the thunks, so they live until the end of the backward pass, and each is one input's gradient
    // alone: the thunks return them as they are (no clone, which is a kernel call).
    const [dx, dMean, dVariance, dScale, dOffset] = tf.engine().runKernel(BATCH_NORM_RELU_GRAD, inputs, attrs as tf.NamedAttrMap) as tf.Tensor[];
    return { x: () => dx, mean: () => dMean, variance: () => dVariance, scale: () => dScale, offset: () => dOffset };
  },
};
