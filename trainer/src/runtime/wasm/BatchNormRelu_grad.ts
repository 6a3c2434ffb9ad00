// The gradient of ZerovarBatchNormRelu (BatchNormRelu.ts): one pass (ZerovarBatchNormReluGrad) gives dx and the
// column sums of the masked dz; the BatchNorm's parameter gradients follow from those sums by
// FusedBatchNorm_grad.ts's statisticGradients. The kernel exists on wasm only and batchNormRelu calls it only there, so this gradient
// never meets another backend.
import * as tf from '@tensorflow/tfjs';
import { BATCH_NORM_RELU } from './BatchNormRelu.js';
import { BATCH_NORM_RELU_GRAD } from './BatchNormReluGrad.js';
import { statisticGradients } from './FusedBatchNorm_grad.js';

export const batchNormReluGradConfig: tf.GradConfig = {
  kernelName: BATCH_NORM_RELU,
  inputsToSave: ['x', 'mean', 'variance', 'scale', 'offset'],
  gradFunc: (dy, saved, attrs) => {
    const [x, mean, variance, scale, offset] = saved as tf.Tensor[];
    const inputs = { dy: dy as tf.Tensor, x, mean, variance, scale, offset };
    // Made outside the thunks, so they live until the end of the backward pass.
    const [dx, sumG, sumGX] = tf.engine().runKernel(BATCH_NORM_RELU_GRAD, inputs, attrs as tf.NamedAttrMap) as tf.Tensor[];
    const inv = tf.rsqrt(tf.add(variance, (attrs as { varianceEpsilon: number }).varianceEpsilon));
    return { x: () => tf.clone(dx), ...statisticGradients(sumG, () => sumGX, mean, inv, tf.mul(inv, scale)) };
  },
};
