// ZerovarBatchNormReluGrad, the helper kernel of ZerovarBatchNormRelu's gradient (BatchNormRelu_grad.ts; not a
// tfjs kernel name): from dz (the gradient at the ReLU's output) and x (the BatchNorm's input), in one SIMD pass,
// dx and the per-channel sums of g and of g * x, g being dz masked where the ReLU was flat. The BatchNorm's output
// is recomputed as the forward computed it, so the mask is the one the separate ReLU gradient would take.
import { F32_MIN_POSITIVE } from './ClipByValue_grad.js';
import { COLUMN_BLOCK } from './ColumnDot.js';
import { channelAffine } from './FusedBatchNorm.js';
import { runTask } from './parallel.js';
import { addressOf, free, wasmKernel, type Info, type Kernel, type KernelArgs, type WasmBackend } from './shared.js';
import { simdHeap } from './simd.js';
import { sumSlots } from './tasks.js';

export const BATCH_NORM_RELU_GRAD = 'ZerovarBatchNormReluGrad';

/** Outputs [dx, sum of g, sum of g * x] (a multi-output kernel): rows summed in float32 per block of COLUMN_BLOCK, blocks in float64. */
function batchNormReluGrad({ inputs, backend, attrs }: KernelArgs): Info[] {
  const b = backend as WasmBackend;
  const { dy, x, mean, variance, scale, offset } = inputs as Record<string, Info>;
  const { varianceEpsilon, max } = attrs as { varianceEpsilon: number; max: number };
  const heap = simdHeap(b);
  if (!heap) throw new Error(`${BATCH_NORM_RELU_GRAD}: no SIMD on this heap`);
  const c = x.shape[x.shape.length - 1];
  const rows = x.shape.reduce((p, q) => p * q, 1) / c;
  const blocks = Math.ceil(rows / COLUMN_BLOCK);
  const dx = b.makeOutput(x.shape, 'float32');
  const slots = b.makeOutput([blocks, 2 * c], 'float32');
  const ab = channelAffine(b, { mean, variance, scale, offset }, varianceEpsilon, c);
  const abAt = addressOf(b, ab);
  const params = [addressOf(b, dx), addressOf(b, dy), addressOf(b, x), abAt, abAt + 4 * c, addressOf(b, slots), rows, c, COLUMN_BLOCK, F32_MIN_POSITIVE, max];
  runTask(heap, 'scaleShiftClipGradBlocks', params, blocks, 3 * rows * c);
  const sums = sumSlots(b.typedArrayFromHeap(slots) as Float32Array, blocks, 2 * c);
  const sumG = b.makeOutput([c], 'float32');
  const sumGX = b.makeOutput([c], 'float32');
  (b.typedArrayFromHeap(sumG) as Float32Array).set(sums.subarray(0, c));
  (b.typedArrayFromHeap(sumGX) as Float32Array).set(sums.subarray(c));
  free(b, slots, ab);
  return [dx, sumG, sumGX];
}

export const batchNormReluGradConfig = wasmKernel(BATCH_NORM_RELU_GRAD, batchNormReluGrad as unknown as Kernel);
