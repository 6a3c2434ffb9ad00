// ZerovarColumnDot, a helper kernel of the FusedBatchNorm gradient (FusedBatchNorm_grad.ts; not a tfjs kernel
// name): per-channel sums over rows of a * b, or of a, in one SIMD pass over the heap on wasm, and columnSums, which
// runs it on wasm and a matmul with ones elsewhere.
import * as tf from '@tensorflow/tfjs';
import { addressOf, BACKEND, free, wasmKernel, type Info, type KernelArgs, type WasmBackend } from './shared.js';
import { runTask } from './parallel.js';
import { simdHeap } from './simd.js';
import { sumSlots } from './tasks.js';

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
export const COLUMN_BLOCK = 256;

function columnDot({ inputs, backend, attrs }: KernelArgs): Info {
  const b = backend as WasmBackend;
  const { a, b: other } = inputs as { a: Info; b?: Info };
  const channels = (attrs as { channels: number }).channels;
  const rows = a.shape.reduce((p, q) => p * q, 1) / channels;
  const heap = simdHeap(b);
  const blocks = Math.ceil(rows / COLUMN_BLOCK);
  const out = b.makeOutput([channels], 'float32');
  const slots = b.makeOutput([blocks, channels], 'float32');
  const ones = other ? null : b.makeOutput([channels], 'float32');
  if (ones) (b.typedArrayFromHeap(ones) as Float32Array).fill(1);
  const slotsAt = addressOf(b, slots);
  if (heap) {
    // Each block of rows is a task piece (the kernel pool can share them) with its own slot.
    const params = [slotsAt, addressOf(b, a), addressOf(b, other ?? ones!), other ? 4 * channels : 0, rows, channels, COLUMN_BLOCK];
    runTask(heap, 'columnBlocks', params, blocks, rows * channels * (other ? 2 : 1));
  } else {
    const sv = b.typedArrayFromHeap(slots) as Float32Array;
    const av = b.typedArrayFromHeap(a) as Float32Array;
    const bv = b.typedArrayFromHeap(other ?? ones!) as Float32Array;
    sv.fill(0);
    for (let r = 0; r < rows; r++) {
      const o = Math.floor(r / COLUMN_BLOCK) * channels;
      for (let ch = 0; ch < channels; ch++) sv[o + ch] += av[r * channels + ch] * bv[(other ? r * channels : 0) + ch];
    }
  }
  (b.typedArrayFromHeap(out) as Float32Array).set(sumSlots(b.typedArrayFromHeap(slots) as Float32Array, blocks, channels));
  free(b, slots);
  if (ones) free(b, ones);
  return out;
}

export const columnDotConfig = wasmKernel(COLUMN_DOT, columnDot);
