// DepthwiseConv2dNativeBackpropInput for the wasm backend, which has none: each filter tap's run of dy along an
// image row adds dy * filter into the input row it came from (the fma routine, in place; tasks.ts), or value by
// value in JS without SIMD or with a channel multiplier. NHWC only.
import { depthwiseInfo, type DepthwiseAttrs } from './conv_util.js';
import { runTask } from './parallel.js';
import { addressOf, wasmKernel, type Info, type KernelArgs, type WasmBackend } from './shared.js';
import { simdHeap } from './simd.js';
import { forEachTapRun, packGeometry, tapGeometry } from './tap_runs.js';

function depthwiseBackpropInput({ inputs, backend, attrs }: KernelArgs): Info {
  const b = backend as WasmBackend;
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  const a = attrs as unknown as DepthwiseAttrs & { inputShape: [number, number, number, number] };
  const c = depthwiseInfo(a.inputShape, filter.shape, a, 'DepthwiseConv2dNativeBackpropInput');
  const { inChannels: cin, outChannels: cout, inHeight: H, inWidth: W, outHeight: oh, outWidth: ow, strideWidth: sw } = c;
  const mult = cout / cin;
  const out = b.makeOutput(a.inputShape, 'float32');
  const heap = mult === 1 ? simdHeap(b) : null;
  if (heap) {
    // Input rows are the task's pieces (which the kernel pool can share): each row is zeroed and gathers the runs
    // that land in it, in their order, on one thread.
    const work = c.batchSize * (H * W * cin + oh * ow * c.filterHeight * c.filterWidth * 2 * cout);
    runTask(heap, 'depthwiseInputRows', [addressOf(b, out), addressOf(b, dy), addressOf(b, filter), cout, ...packGeometry(tapGeometry(c))], c.batchSize * H, work);
    return out;
  }
  const dx = b.typedArrayFromHeap(out) as Float32Array;
  dx.fill(0);
  const yv = b.typedArrayFromHeap(dy) as Float32Array;
  const wv = b.typedArrayFromHeap(filter) as Float32Array;
  // Scatter form, value by value: each dy value adds into the kh*kw inputs it was computed from.
  forEachTapRun(tapGeometry(c), (r) => {
    const wo = r.tap * cout;
    for (let k = 0; k < r.x1 - r.x0; k++) {
      const xi = ((r.n * H + r.iy) * W + r.ix0 + k * sw) * cin;
      const yo = ((r.n * oh + r.y) * ow + r.x0 + k) * cout;
      if (mult === 1) {
        for (let ch = 0; ch < cout; ch++) dx[xi + ch] += yv[yo + ch] * wv[wo + ch];
      } else {
        for (let ch = 0; ch < cout; ch++) dx[xi + ((ch / mult) | 0)] += yv[yo + ch] * wv[wo + ch];
      }
    }
  });
  return out;
}

export const depthwiseConv2dNativeBackpropInputConfig = wasmKernel('DepthwiseConv2dNativeBackpropInput', depthwiseBackpropInput);
