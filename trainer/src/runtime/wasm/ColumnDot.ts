// ZerovarColumnDot, a helper kernel of the FusedBatchNorm gradient (FusedBatchNorm_grad.ts; not a tfjs kernel
// name): per-channel sums over rows of a * b, or of a, in one SIMD pass over the heap on wasm, and columnSums, which
// runs it on wasm and a matmul with ones elsewhere.
import * as tf from '@tensorflow/tfjs';
import { addressOf, BACKEND, free, wasmKernel, type Info, type KernelArgs, type WasmBackend } from './shared.js';
import { simdFma } from './simd.js';

export const COLUMN_DOT = 'ZerovarColumnDot';

/** sum over rows of a * b (b absent: of a), per channel: [C]. One SIMD pass over the heap on wasm. */
export function columnSums(t: tf.Tensor, channels: number, times?: tf.Tensor): tf.Tensor1D {
  if (tf.getBackend() === BACKEND && tf.getKernel(COLUMN_DOT, BACKEND)) {
    const inputs: Record<string, tf.Tensor> = { a: t };
    if (times) inputs.b = times;
    return tf.engine().runKernel(COLUMN_DOT, inputs, { channels }) as tf.Tensor1D;
  }
  const m = t.size / channels;
  const prod = times ? tf.mul(t, times) : t;
  return tf.reshape(tf.matMul(tf.ones([1, m]), tf.reshape(prod, [m, channels])), [channels]) as tf.Tensor1D;
}

/** Rows summed in float32 per block, blocks added in float64: as accurate as the reference at any batch size. */
const COLUMN_BLOCK = 256;

function columnDot({ inputs, backend, attrs }: KernelArgs): Info {
  const b = backend as WasmBackend;
  const { a, b: other } = inputs as { a: Info; b?: Info };
  const channels = (attrs as { channels: number }).channels;
  const rows = a.shape.reduce((p, q) => p * q, 1) / channels;
  const fma = simdFma(b);
  const out = b.makeOutput([channels], 'float32');
  const part = b.makeOutput([channels], 'float32');
  const ones = other ? null : b.makeOutput([channels], 'float32');
  if (ones) (b.typedArrayFromHeap(ones) as Float32Array).fill(1);
  const acc = new Float64Array(channels);
  const row = 4 * channels;
  const aAt = addressOf(b, a);
  const bAt = other ? addressOf(b, other) : addressOf(b, ones!);
  const bStep = other ? row : 0;
  const partAt = addressOf(b, part);
  for (let r0 = 0; r0 < rows; r0 += COLUMN_BLOCK) {
    const n = Math.min(COLUMN_BLOCK, rows - r0);
    const pv = b.typedArrayFromHeap(part) as Float32Array;
    pv.fill(0);
    if (fma) {
      fma(partAt, 0, aAt + r0 * row, row, bAt + r0 * bStep, bStep, n, channels);
    } else {
      const av = b.typedArrayFromHeap(a) as Float32Array;
      const bv = b.typedArrayFromHeap(other ?? ones!) as Float32Array;
      for (let r = r0; r < r0 + n; r++) {
        for (let ch = 0; ch < channels; ch++) pv[ch] += av[r * channels + ch] * bv[(other ? r * channels : 0) + ch];
      }
    }
    for (let ch = 0; ch < channels; ch++) acc[ch] += pv[ch];
  }
  (b.typedArrayFromHeap(out) as Float32Array).set(acc);
  free(b, part);
  if (ones) free(b, ones);
  return out;
}

export const columnDotConfig = wasmKernel(COLUMN_DOT, columnDot);
