// The ClipByValue (ReLU6 as a clip), Relu and Relu6 gradients, replaced for speed in training (registered by
// registerTrainingKernels, never for inference). tfjs builds the clip's from four full-size comparisons and a
// select, and ReLU's as dy * cast(step(x)), three full-size passes; each is one mask, lo <= x <= hi ? dy : 0, one
// pass over the heap on wasm (the ZerovarClipByValueGrad kernel).
//
// A gradient is registered for every backend, not per backend. That is safe here: each replacement checks the
// backend when it runs and, anywhere but wasm with float32 data, calls tfjs' own gradient, which it keeps.
import * as tf from '@tensorflow/tfjs';
import { CLIP_GRAD } from './ClipByValueGrad.js';
import { BACKEND } from './shared.js';

/** Smallest positive float32: for float32 values, x > 0 exactly when x >= this. */
export const F32_MIN_POSITIVE = 2 ** -149;

/** On wasm with float32 data, dx = lo <= x <= hi ? dy : 0 in one SIMD pass; elsewhere tfjs' own gradient. */
function maskGradient(kernelName: string, original: tf.GradConfig, bounds: (attrs: tf.NamedAttrMap) => tf.NamedAttrMap): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved as [tf.Tensor];
      const dyT = dy as tf.Tensor;
      if (tf.getBackend() !== BACKEND || x.dtype !== 'float32' || dyT.dtype !== 'float32') return original.gradFunc(dy, saved, attrs);
      return { x: () => tf.engine().runKernel(CLIP_GRAD, { x, dy: dyT }, bounds(attrs)) as tf.Tensor };
    },
  };
}

/** The replacement gradient configs, given tfjs' own (which take every case but float32 data on wasm). */
export function maskGradConfigs(original: { clip: tf.GradConfig; relu: tf.GradConfig; relu6: tf.GradConfig }): tf.GradConfig[] {
  return [
    maskGradient('ClipByValue', original.clip, (attrs) => attrs),
    // ReLU: the mask is x in [2^-149, inf]. (A NaN activation gives 0 here where tfjs gives NaN.)
    maskGradient('Relu', original.relu, () => ({ clipValueMin: F32_MIN_POSITIVE, clipValueMax: Infinity })),
    // ReLU6 as one op (the training forward's, see finetune.ts): tfjs' mask is 0 < x <= 6.
    maskGradient('Relu6', original.relu6, () => ({ clipValueMin: F32_MIN_POSITIVE, clipValueMax: 6 })),
  ];
}
