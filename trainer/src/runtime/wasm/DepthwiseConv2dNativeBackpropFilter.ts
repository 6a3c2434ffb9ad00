// DepthwiseConv2dNativeBackpropFilter for the wasm backend, which has none: per image, the SIMD routines sum
// x * dy along each filter tap's runs of an image row in place (diagAcc in registers when the channels come in
// fours, fma otherwise; tasks.ts), images added up in float64; plain JS loops over the same runs without SIMD or
// with a channel multiplier. NHWC only.
import { depthwiseInfo, type DepthwiseAttrs } from './conv_util.js';
import { runTask } from './parallel.js';
import { addressOf, free, wasmKernel, type Info, type KernelArgs, type WasmBackend } from './shared.js';
import { simdHeap } from './simd.js';
import { forEachTapRun, packGeometry, tapGeometry } from './tap_runs.js';
import { sumSlots } from './tasks.js';

function depthwiseBackpropFilter({ inputs, backend, attrs }: KernelArgs): Info {
  const b = backend as WasmBackend;
  const { x, dy } = inputs as { x: Info; dy: Info };
  const a = attrs as unknown as DepthwiseAttrs & { filterShape: [number, number, number, number] };
  const c = depthwiseInfo(x.shape, a.filterShape, a, 'DepthwiseConv2dNativeBackpropFilter');
  const { filterHeight: fh, filterWidth: fw, inChannels: cin, outChannels: cout, inHeight: H, inWidth: W } = c;
  const { outHeight: oh, outWidth: ow, strideWidth: sw } = c;
  const mult = cout / cin;
  const out = b.makeOutput(a.filterShape, 'float32');
  const heap = mult === 1 ? simdHeap(b) : null;
  if (heap) {
    // Per image (a task piece, which the kernel pool can share): float32 sums in its own slot on the heap (SIMD; in
    // registers along a row when the channels come in fours), then the slots added up in order in float64.
    const size = fh * fw * cout;
    const slots = b.makeOutput([c.batchSize, size], 'float32');
    const slotsAt = addressOf(b, slots);
    const work = c.batchSize * oh * ow * fh * fw * 2 * cout;
    runTask(heap, 'depthwiseFilterImages', [slotsAt, addressOf(b, x), addressOf(b, dy), cout, ...packGeometry(tapGeometry(c))], c.batchSize, work);
    (b.typedArrayFromHeap(out) as Float32Array).set(sumSlots(b.typedArrayFromHeap(slots) as Float32Array, c.batchSize, size));
    free(b, slots);
    return out;
  }
  // No SIMD (or a channel multiplier): the same runs, value by value, summed in float64 (as exact as the cpu
  // backend's sums over batch x rows x columns).
  const acc = new Float64Array(fh * fw * cout);
  const xv = b.typedArrayFromHeap(x) as Float32Array;
  const yv = b.typedArrayFromHeap(dy) as Float32Array;
  forEachTapRun(tapGeometry(c), (r) => {
    const ao = r.tap * cout;
    for (let k = 0; k < r.x1 - r.x0; k++) {
      const xi = ((r.n * H + r.iy) * W + r.ix0 + k * sw) * cin;
      const yo = ((r.n * oh + r.y) * ow + r.x0 + k) * cout;
      if (mult === 1) {
        for (let ch = 0; ch < cout; ch++) acc[ao + ch] += xv[xi + ch] * yv[yo + ch];
      } else {
        for (let ch = 0; ch < cout; ch++) acc[ao + ch] += xv[xi + ((ch / mult) | 0)] * yv[yo + ch];
      }
    }
  });
  (b.typedArrayFromHeap(out) as Float32Array).set(acc);
  return out;
}

export const depthwiseConv2dNativeBackpropFilterConfig = wasmKernel('DepthwiseConv2dNativeBackpropFilter', depthwiseBackpropFilter);
