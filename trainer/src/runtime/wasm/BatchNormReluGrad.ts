// ZerovarBatchNormReluGrad, the helper kernel of ZerovarBatchNormRelu's gradient (BatchNormRelu_grad.ts; not a
// tfjs kernel name): from dz (the gradient at the ReLU's output) and x (the BatchNorm's input), in one SIMD pass,
// dx and the per-channel sums of g and of g * x, g being dz masked where the ReLU was flat; from those sums, the
// gradients of the BatchNorm's mean, variance, scale and offset, per channel in float64. One kernel call where the
// same algebra as tensor ops took six per layer, a fifth of a MobileNetV2 training step's calls. The BatchNorm's
// output is recomputed as the forward computed it, so the mask is the one the separate ReLU gradient would take.
// With `min` -Infinity and `max` Infinity it is a plain BatchNorm's gradient (FusedBatchNorm_grad.ts).
import { F32_MIN_POSITIVE } from './ClipByValue_grad.js';
import { COLUMN_BLOCK } from './ColumnDot.js';
import { channelAffine } from './FusedBatchNorm.js';
import { runTask } from './parallel.js';
import { addressOf, free, wasmKernel, type Info, type Kernel, type KernelArgs, type WasmBackend } from './shared.js';
import { simdHeap } from './simd.js';
import { sumSlots } from './tasks.js';

export const BATCH_NORM_RELU_GRAD = 'ZerovarBatchNormReluGrad';

/**
 * Outputs [dx, dmean, dvariance, dscale, doffset] (a multi-output kernel): rows summed in float32 per block of
 * COLUMN_BLOCK, blocks in float64. `scale` and `offset` may be missing (a BatchNorm without them).
 */
function batchNormReluGrad({ inputs, backend, attrs }: KernelArgs): Info[] {
  const b = backend as WasmBackend;
  const { dy, x, mean, variance, scale, offset } = inputs as Record<string, Info | undefined> as { dy: Info; x: Info; mean: Info; variance: Info; scale?: Info; offset?: Info };
  const { varianceEpsilon, max, min = F32_MIN_POSITIVE } = attrs as { varianceEpsilon: number; max: number; min?: number };
  const heap = simdHeap(b);
  if (!heap) throw new Error(`${BATCH_NORM_RELU_GRAD}: no SIMD on this heap`);
  const c = x.shape[x.shape.length - 1];
  const rows = x.shape.reduce((p, q) => p * q, 1) / c;
  const blocks = Math.ceil(rows / COLUMN_BLOCK);
  const dx = b.makeOutput(x.shape, 'float32');
  const slots = b.makeOutput([blocks, 2 * c], 'float32');
  const ab = channelAffine(b, { mean, variance, scale, offset }, varianceEpsilon, c);
  const abAt = addressOf(b, ab);
  const params = [addressOf(b, dx), addressOf(b, dy), addressOf(b, x), abAt, abAt + 4 * c, addressOf(b, slots), rows, c, COLUMN_BLOCK, min, max];
  runTask(heap, 'scaleShiftClipGradBlocks', params, blocks, 3 * rows * c);
  const sums = sumSlots(b.typedArrayFromHeap(slots) as Float32Array, blocks, 2 * c);
  free(b, slots, ab);
  const outs = [0, 1, 2, 3].map(() => b.makeOutput([c], 'float32'));
  const [dMean, dVariance, dScale, dOffset] = outs.map((o) => b.typedArrayFromHeap(o) as Float32Array);
  const m = b.typedArrayFromHeap(mean) as Float32Array;
  const v = b.typedArrayFromHeap(variance) as Float32Array;
  const g = scale ? (b.typedArrayFromHeap(scale) as Float32Array) : null;
  for (let ch = 0; ch < c; ch++) {
    // z = (x - mean) * inv * scale + offset, summed against g over every row.
    const inv = 1 / Math.sqrt(v[ch] + varianceEpsilon);
    const factor = g ? g[ch] * inv : inv;
    const sumG = sums[ch];
    const centred = sums[c + ch] - m[ch] * sumG; // sum of g * (x - mean)
    dMean[ch] = -sumG * factor;
    dVariance[ch] = -0.5 * centred * factor * inv * inv;
    dScale[ch] = centred * inv;
    dOffset[ch] = sumG;
  }
  return [dx, ...outs];
}

export const batchNormReluGradConfig = wasmKernel(BATCH_NORM_RELU_GRAD, batchNormReluGrad as unknown as Kernel);
