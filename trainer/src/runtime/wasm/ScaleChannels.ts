// ZerovarScaleChannels, a helper kernel of the FusedBatchNorm gradient (FusedBatchNorm_grad.ts; not a tfjs kernel
// name): x times a per-channel factor in one SIMD pass on wasm, and scaleChannels, which runs it on wasm and
// tf.mul elsewhere.
import * as tf from '@tensorflow/tfjs';
import { addressOf, BACKEND, free, wasmKernel, type Info, type KernelArgs, type WasmBackend } from './shared.js';
import { runTask } from './parallel.js';
import { simdHeap } from './simd.js';

export const SCALE_CHANNELS = 'ZerovarScaleChannels';

/** x * a with a per-channel a ([C]): one SIMD pass on wasm (scaleShift with a zero shift), tf.mul elsewhere. */
export function scaleChannels(x: tf.Tensor, a: tf.Tensor1D): tf.Tensor {
  if (tf.getBackend() === BACKEND && tf.getKernel(SCALE_CHANNELS, BACKEND) && x.dtype === 'float32' && x.rank >= 2) {
    return tf.engine().runKernel(SCALE_CHANNELS, { x, a }, {}) as tf.Tensor;
  }
  return tf.mul(x, a);
}

function scaleChannelsKernel({ inputs, backend }: KernelArgs): Info {
  const b = backend as WasmBackend;
  const { x, a } = inputs as { x: Info; a: Info };
  const c = a.shape[0];
  const heap = simdHeap(b);
  const out = b.makeOutput(x.shape, 'float32');
  const zero = b.makeOutput([c], 'float32');
  (b.typedArrayFromHeap(zero) as Float32Array).fill(0);
  const rows = x.shape.reduce((p, q) => p * q, 1) / c;
  if (heap) {
    runTask(heap, 'scaleShiftRows', [addressOf(b, out), addressOf(b, x), addressOf(b, a), addressOf(b, zero), c], rows, 2 * rows * c);
  } else {
    const o = b.typedArrayFromHeap(out) as Float32Array;
    const xv = b.typedArrayFromHeap(x) as Float32Array;
    const av = b.typedArrayFromHeap(a) as Float32Array;
    for (let i = 0; i < o.length; i++) o[i] = xv[i] * av[i % c];
  }
  free(b, zero);
  return out;
}

export const scaleChannelsConfig = wasmKernel(SCALE_CHANNELS, scaleChannelsKernel);
