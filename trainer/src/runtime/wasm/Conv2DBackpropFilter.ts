// Conv2DBackpropFilter for the wasm backend, which has none (a training step through a conv would fall back to the
// much slower cpu backend). 1x1 stride-1 convs: a matmul, or direct SIMD accumulation where one side is narrow;
// k x k convs with few input channels (a stem on RGB): direct SIMD accumulation along image rows; otherwise
// im2col + the backend's matmul. NHWC only.
import * as tf from '@tensorflow/tfjs';
import { isPlainPointwise, requireChannelsLast } from './conv_util.js';
import { runTask } from './parallel.js';
import { addressOf, free, gemm, matmul, nativeGemmInUse, transpose2d, view, wasmKernel, type ConvInfo, type Info, type KernelArgs, type Pad, type Rounding, type WasmBackend } from './shared.js';
import { simdHeap } from './simd.js';
import { packGeometry, tapGeometry } from './tap_runs.js';
import { sumSlots } from './tasks.js';

/** Upper bound on one im2col buffer (floats); larger batches are processed in slices of images. */
const MAX_COLS_FLOATS = 1 << 24;

function conv2dBackpropFilter({ inputs, backend, attrs }: KernelArgs): Info {
  const b = backend as WasmBackend;
  const { x, dy } = inputs as { x: Info; dy: Info };
  const a = attrs as { strides: number | [number, number]; pad: Pad; dataFormat?: string; dimRoundingMode?: Rounding; filterShape: [number, number, number, number] };
  requireChannelsLast(a.dataFormat, 'Conv2DBackpropFilter');
  const c = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], a.filterShape, a.strides, 1, a.pad, a.dimRoundingMode);
  const cout = c.outChannels;
  if (isPlainPointwise(c)) {
    // dW = x^T dy, or (dy^T x)^T. The matmul packs its second operand anew at every call (a new tensor each
    // step), which costs more than the transpose of the first: the narrower side goes second (measured on a
    // MobileNetV2 step: ~4% faster than always x^T dy, ~7% faster than the other way round).
    const m = c.batchSize * c.inHeight * c.inWidth;
    // On OpenBLAS one product reads x transposed in place (no copy); the paths below are XNNPACK's case.
    if (nativeGemmInUse()) return view(gemm(b, x, dy, c.inChannels, m, cout, { transA: true }), a.filterShape);
    const direct = outerFilterGrad(b, x, dy, m, c.inChannels, cout);
    if (direct) return view(direct, a.filterShape);
    if (c.inChannels > cout) {
      const xT = transpose2d(b, x, m, c.inChannels);
      const dw = matmul(b, xT, dy, c.inChannels, m, cout);
      free(b, xT);
      return view(dw, a.filterShape);
    }
    const dyT = transpose2d(b, dy, m, cout);
    const dwT = matmul(b, dyT, x, cout, m, c.inChannels);
    const dw = transpose2d(b, dwT, cout, c.inChannels);
    free(b, dyT, dwT);
    return view(dw, a.filterShape);
  }
  return directFilterGrad(b, x, dy, c, a.filterShape) ?? im2colFilterGrad(b, x, dy, c, a.filterShape);
}

/** Narrow side up to which the direct SIMD accumulation beats transpose + matmul (measured on MobileNetV2). */
const OUTER_MAX_NARROW = 16;
/** Bytes of a block's rows of the wide side: re-read once per narrow channel, so kept within L2. */
const OUTER_BLOCK_BYTES = 128 * 1024;

/**
 * dW = x^T dy for a 1x1 conv by direct SIMD accumulation (outerAcc), where one side is narrow: the matmul route
 * then spends most of its time transposing and packing tall matrices. Rows go in blocks summed in float32 (each
 * block a task piece, so the kernel pool can share them), blocks added in order in float64. Null when it does not
 * apply.
 */
function outerFilterGrad(b: WasmBackend, x: Info, dy: Info, m: number, cin: number, cout: number): Info | null {
  const heap = simdHeap(b);
  const swap = cin > cout; // the wider side is the vectorised one
  const [narrow, wide] = swap ? [cout, cin] : [cin, cout];
  if (!heap || wide % 4 !== 0 || narrow > OUTER_MAX_NARROW) return null;
  const block = Math.max(16, Math.floor(OUTER_BLOCK_BYTES / (4 * wide)));
  const blocks = Math.ceil(m / block);
  const out = b.makeOutput([cin, cout], 'float32');
  const slots = b.makeOutput([blocks, narrow * wide], 'float32');
  const [nAt, wAt] = swap ? [addressOf(b, dy), addressOf(b, x)] : [addressOf(b, x), addressOf(b, dy)];
  const slotsAt = addressOf(b, slots);
  runTask(heap, 'outerBlocks', [slotsAt, nAt, wAt, m, narrow, wide, block], blocks, m * (narrow + wide));
  const acc = sumSlots(b.typedArrayFromHeap(slots) as Float32Array, blocks, narrow * wide);
  const ov = b.typedArrayFromHeap(out) as Float32Array;
  if (!swap) ov.set(acc);
  else for (let co = 0; co < cout; co++) for (let ci = 0; ci < cin; ci++) ov[ci * cout + co] = acc[co * cin + ci];
  free(b, slots);
  return out;
}

/**
 * dW of a k x k conv with few input channels (a network's stem on RGB) by direct SIMD accumulation: for each image
 * row and filter tap, the input pixels along the row are evenly spaced (stride * cin), so outerAcc runs on the
 * input and dy in place, with no im2col copy. Per-image sums in float32 (each image a task piece), images added
 * in order in float64. Null when it does not apply.
 */
function directFilterGrad(b: WasmBackend, x: Info, dy: Info, c: ConvInfo, filterShape: number[]): Info | null {
  const { filterHeight: fh, filterWidth: fw, inChannels: cin, outChannels: cout } = c;
  const heap = simdHeap(b);
  if (!heap || cout % 4 !== 0 || cin > OUTER_MAX_NARROW) return null;
  const size = fh * fw * cin * cout;
  const out = b.makeOutput(filterShape, 'float32');
  const slots = b.makeOutput([c.batchSize, size], 'float32');
  const slotsAt = addressOf(b, slots);
  const work = c.batchSize * c.outHeight * c.outWidth * fh * fw * (cin + cout);
  runTask(heap, 'stemImages', [slotsAt, addressOf(b, x), addressOf(b, dy), cin, cout, ...packGeometry(tapGeometry(c))], c.batchSize, work);
  (b.typedArrayFromHeap(out) as Float32Array).set(sumSlots(b.typedArrayFromHeap(slots) as Float32Array, c.batchSize, size));
  free(b, slots);
  return out;
}

/** dW = cols^T . dy, with cols^T ([kh*kw*cin, images*oh*ow]) built a slice of images at a time. */
function im2colFilterGrad(b: WasmBackend, x: Info, dy: Info, c: ConvInfo, filterShape: number[]): Info {
  const { filterHeight: fh, filterWidth: fw, inChannels: cin, outChannels: cout, inHeight: H, inWidth: W } = c;
  const { outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = c;
  const pt = c.padInfo.top;
  const pl = c.padInfo.left;
  const k = fh * fw * cin;
  const perImage = oh * ow;
  const chunk = Math.max(1, Math.min(c.batchSize, Math.floor(MAX_COLS_FLOATS / (k * perImage))));
  const out = b.makeOutput(filterShape, 'float32');
  let acc: Float32Array | null = null;
  for (let n0 = 0; n0 < c.batchSize; n0 += chunk) {
    const nImg = Math.min(chunk, c.batchSize - n0);
    const m = nImg * perImage;
    const cols = b.makeOutput([k, m], 'float32');
    // Views are taken after every allocation: growing the heap detaches older views.
    const colsV = b.typedArrayFromHeap(cols) as Float32Array;
    const xv = b.typedArrayFromHeap(x) as Float32Array;
    for (let i = 0; i < fh; i++) {
      for (let j = 0; j < fw; j++) {
        for (let ci = 0; ci < cin; ci++) {
          let o = ((i * fw + j) * cin + ci) * m;
          for (let n = n0; n < n0 + nImg; n++) {
            for (let y = 0; y < oh; y++) {
              const iy = y * sh - pt + i * dh;
              if (iy < 0 || iy >= H) {
                colsV.fill(0, o, o + ow);
                o += ow;
                continue;
              }
              const rowBase = (n * H + iy) * W;
              for (let xo = 0; xo < ow; xo++) {
                const ix = xo * sw - pl + j * dw;
                colsV[o++] = ix < 0 || ix >= W ? 0 : xv[(rowBase + ix) * cin + ci];
              }
            }
          }
        }
      }
    }
    const dySlice = nImg === c.batchSize ? dy : sliceImages(b, dy, n0, nImg);
    const part = matmul(b, cols, dySlice, k, m, cout);
    free(b, cols);
    if (dySlice !== dy) free(b, dySlice);
    const pv = b.typedArrayFromHeap(part) as Float32Array;
    if (acc) for (let t = 0; t < acc.length; t++) acc[t] += pv[t];
    else acc = pv.slice();
    free(b, part);
  }
  (b.typedArrayFromHeap(out) as Float32Array).set(acc!);
  return out;
}

/** Images [n0, n0 + count) of an NHWC tensor, as a fresh tensor (the matmul caches operators per data id). */
function sliceImages(b: WasmBackend, t: Info, n0: number, count: number): Info {
  const per = t.shape.slice(1).reduce((p, q) => p * q, 1);
  const out = b.makeOutput([count, ...t.shape.slice(1)], 'float32');
  const src = b.typedArrayFromHeap(t) as Float32Array;
  (b.typedArrayFromHeap(out) as Float32Array).set(src.subarray(n0 * per, (n0 + count) * per));
  return out;
}

export const conv2DBackpropFilterConfig = wasmKernel('Conv2DBackpropFilter', conv2dBackpropFilter);
