// FusedBatchNorm forward for the wasm backend (inference mode: mean and variance given), used by classification
// and Grad-CAM as much as by training. The backend's kernel takes a modulo, a square root and a division per
// value; as x * a + b with per-channel a = scale / sqrt(var + eps) and b = offset - mean * a it is one SIMD pass
// (scaleShift). Anything but per-channel float32 statistics, or no SIMD: the backend's kernel.
import { addressOf, builtinKernel, free, wasmKernel, type Info, type KernelArgs, type WasmBackend } from './shared.js';
import { runTask } from './parallel.js';
import { simdHeap } from './simd.js';

function batchNorm(args: KernelArgs): Info {
  const b = args.backend as WasmBackend;
  const { x, mean, variance, offset, scale } = args.inputs as Record<string, Info | undefined>;
  const eps = (args.attrs as { varianceEpsilon: number }).varianceEpsilon;
  const c = x!.shape[x!.shape.length - 1];
  const perChannel = (t: Info | undefined) => !t || (t.shape.length === 1 && t.shape[0] === c && t.dtype === 'float32');
  const heap = simdHeap(b);
  if (!heap || x!.dtype !== 'float32' || x!.shape.length < 2 || ![mean, variance, offset, scale].every(perChannel) || !mean || !variance) {
    return builtinKernel('FusedBatchNorm')(args);
  }
  const out = b.makeOutput(x!.shape, 'float32');
  const ab = channelAffine(b, { mean, variance, scale, offset }, eps, c);
  const abAt = addressOf(b, ab);
  const rows = x!.shape.reduce((p, q) => p * q, 1) / c;
  runTask(heap, 'scaleShiftRows', [addressOf(b, out), addressOf(b, x!), abAt, abAt + 4 * c, c], rows, 2 * rows * c);
  free(b, ab);
  return out;
}

/**
 * The per-channel a = scale / sqrt(var + eps) and b = offset - mean * a of an inference-mode BatchNorm, as a [2, C]
 * tensor on the heap (a's row, then b's); computed in float64, stored in float32. Every kernel that applies a
 * BatchNorm takes them from here, so the forward and the fused gradient (BatchNormRelu*.ts) see the same bits.
 */
export function channelAffine(b: WasmBackend, t: { mean: Info; variance: Info; scale?: Info; offset?: Info }, eps: number, c: number): Info {
  const ab = b.makeOutput([2, c], 'float32');
  const m = b.typedArrayFromHeap(t.mean) as Float32Array;
  const v = b.typedArrayFromHeap(t.variance) as Float32Array;
  const g = t.scale ? (b.typedArrayFromHeap(t.scale) as Float32Array) : null;
  const o = t.offset ? (b.typedArrayFromHeap(t.offset) as Float32Array) : null;
  const abv = b.typedArrayFromHeap(ab) as Float32Array;
  for (let ch = 0; ch < c; ch++) {
    const a = (g ? g[ch] : 1) / Math.sqrt(v[ch] + eps);
    abv[ch] = a;
    abv[c + ch] = (o ? o[ch] : 0) - m[ch] * a;
  }
  return ab;
}

export const fusedBatchNormConfig = wasmKernel('FusedBatchNorm', batchNorm, { wrapsBuiltin: true });
