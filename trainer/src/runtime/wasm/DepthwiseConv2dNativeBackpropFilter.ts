// DepthwiseConv2dNativeBackpropFilter for the wasm backend, which has none: per image, the SIMD routines sum
// x * dy along each filter tap's runs of an image row in place (diagAcc in registers when the channels come in
// fours, fma otherwise), images added up in float64; plain JS loops over the same runs without SIMD or with a
// channel multiplier. NHWC only.
import { depthwiseInfo, forEachTapRun, type DepthwiseAttrs } from './conv_util.js';
import { addressOf, free, wasmKernel, type Info, type KernelArgs, type WasmBackend } from './shared.js';
import { simd } from './simd.js';

function depthwiseBackpropFilter({ inputs, backend, attrs }: KernelArgs): Info {
  const b = backend as WasmBackend;
  const { x, dy } = inputs as { x: Info; dy: Info };
  const a = attrs as unknown as DepthwiseAttrs & { filterShape: [number, number, number, number] };
  const c = depthwiseInfo(x.shape, a.filterShape, a, 'DepthwiseConv2dNativeBackpropFilter');
  const { filterHeight: fh, filterWidth: fw, inChannels: cin, outChannels: cout, inHeight: H, inWidth: W } = c;
  const { outHeight: oh, outWidth: ow, strideWidth: sw } = c;
  const mult = cout / cin;
  // Sums over batch x rows x columns: float64 keeps them as exact as the cpu backend's.
  const acc = new Float64Array(fh * fw * cout);
  const out = b.makeOutput(a.filterShape, 'float32');
  const fns = mult === 1 ? simd(b) : null;
  if (fns) {
    // Per image: float32 sums on the heap (SIMD; in registers along a row when the channels come in fours), then
    // added up in float64.
    const part = b.makeOutput([fh * fw * cout], 'float32');
    const partAt = addressOf(b, part);
    const xAt = addressOf(b, x);
    const yAt = addressOf(b, dy);
    const row = 4 * cout;
    (b.typedArrayFromHeap(part) as Float32Array).fill(0);
    forEachTapRun(
      c,
      (r) => {
        const xAddr = xAt + ((r.n * H + r.iy) * W + r.ix0) * row;
        const yAddr = yAt + ((r.n * oh + r.y) * ow + r.x0) * row;
        if (cout % 4 === 0) fns.diagAcc(partAt + r.tap * row, xAddr, sw * row, yAddr, row, r.x1 - r.x0, cout);
        else fns.fma(partAt + r.tap * row, 0, xAddr, sw * row, yAddr, row, r.x1 - r.x0, cout);
      },
      () => {
        const pv = b.typedArrayFromHeap(part) as Float32Array;
        for (let t = 0; t < acc.length; t++) acc[t] += pv[t];
        pv.fill(0);
      },
    );
    free(b, part);
    (b.typedArrayFromHeap(out) as Float32Array).set(acc);
    return out;
  }
  // No SIMD (or a channel multiplier): the same runs, value by value, summed in float64.
  const xv = b.typedArrayFromHeap(x) as Float32Array;
  const yv = b.typedArrayFromHeap(dy) as Float32Array;
  forEachTapRun(c, (r) => {
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
