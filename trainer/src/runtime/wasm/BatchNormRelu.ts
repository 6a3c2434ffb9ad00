// ZerovarBatchNormRelu, a training-forward kernel (not a tfjs kernel name): an inference-mode BatchNorm over the
// last axis and the ReLU after it (capped at `max`: 6 for MobileNets' ReLU6, Infinity for a plain ReLU) in one SIMD
// pass, where tfjs makes two. Its gradient (BatchNormRelu_grad.ts) is one pass too, in place of the ReLU's mask,
// the BatchNorm gradient's two column sums and its channel scaling; and the BatchNorm's output is never kept for the
// backward pass. The training forward (model/graph-run.ts) takes it for every BatchNormalization whose only reader
// is a ReLU; batchNormRelu says where it cannot run (another backend, no SIMD, channels not in fours), and the
// layers then run one by one as before.
import * as tf from '@tensorflow/tfjs';
import { channelAffine } from './FusedBatchNorm.js';
import { runTask } from './parallel.js';
import { addressOf, BACKEND, free, wasmKernel, type Info, type KernelArgs, type WasmBackend } from './shared.js';
import { simdHeap } from './simd.js';

export const BATCH_NORM_RELU = 'ZerovarBatchNormRelu';

/** The per-channel statistics and parameters of an inference-mode BatchNorm. */
export interface BatchNormParams {
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
  scale: tf.Tensor1D;
  offset: tf.Tensor1D;
  varianceEpsilon: number;
}

/**
 * Whether the one-pass BatchNorm kernel `kernel` (this op's, or its gradient's) takes x: float32 with channels in
 * fours on the last axis, on wasm with SIMD, the kernel registered.
 */
export function onePassBatchNorm(x: tf.Tensor, kernel: string): boolean {
  if (tf.getBackend() !== BACKEND || !tf.getKernel(kernel, BACKEND)) return false;
  if (x.dtype !== 'float32' || x.rank < 2 || x.shape[x.rank - 1] % 4 !== 0) return false;
  return !!simdHeap(tf.backend() as unknown as WasmBackend);
}

/**
 * min(max(batchNorm(x), 0), max) as the one kernel on wasm; undefined where that kernel cannot run (the caller
 * then applies the two ops).
 */
export function batchNormRelu(x: tf.Tensor, p: BatchNormParams, max: number): tf.Tensor | undefined {
  if (!onePassBatchNorm(x, BATCH_NORM_RELU) || !tf.getGradient(BATCH_NORM_RELU)) return undefined;
  const c = x.shape[x.rank - 1];
  const perChannel = [p.mean, p.variance, p.scale, p.offset].every((t) => t.rank === 1 && t.shape[0] === c && t.dtype === 'float32');
  if (!perChannel || !(max > 0)) return undefined;
  const inputs = { x, mean: p.mean, variance: p.variance, scale: p.scale, offset: p.offset };
  return tf.engine().runKernel(BATCH_NORM_RELU, inputs, { varianceEpsilon: p.varianceEpsilon, max }) as tf.Tensor;
}

function batchNormReluKernel({ inputs, backend, attrs }: KernelArgs): Info {
  const b = backend as WasmBackend;
  const { x, mean, variance, scale, offset } = inputs as Record<string, Info>;
  const { varianceEpsilon, max } = attrs as { varianceEpsilon: number; max: number };
  const heap = simdHeap(b);
  if (!heap) throw new Error(`${BATCH_NORM_RELU}: no SIMD on this heap (batchNormRelu does not call it then)`);
  const c = x.shape[x.shape.length - 1];
  const rows = x.shape.reduce((p, q) => p * q, 1) / c;
  const out = b.makeOutput(x.shape, 'float32');
  const ab = channelAffine(b, { mean, variance, scale, offset }, varianceEpsilon, c);
  const abAt = addressOf(b, ab);
  runTask(heap, 'scaleShiftClipRows', [addressOf(b, out), addressOf(b, x), abAt, abAt + 4 * c, c, 0, max], rows, 2 * rows * c);
  free(b, ab);
  return out;
}

export const batchNormReluConfig = wasmKernel(BATCH_NORM_RELU, batchNormReluKernel);
