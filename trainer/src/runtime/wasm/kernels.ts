// Kernels for the tfjs wasm backend, shared by the trainer (Node) and the viewer's inference worker (browser).
// - Training: the backend ships no gradient kernels for conv filters or depthwise convs; these keep a training
//   step through convolutions on wasm instead of the (much slower) cpu backend, and replace the costliest tfjs
//   gradients (BatchNorm, ReLU/ReLU6 masks) with single passes.
// - Forward, used by both: BatchNorm as one affine SIMD pass, Slice as copies of contiguous runs, Identity and
//   same-dtype Cast shared under a reference count instead of copied.
// Heavy products go through the backend's own XNNPACK matmul where its packing pays, and through small
// hand-assembled wasm SIMD routines on the backend's heap (no copies) where one side is narrow or the work is a
// sweep along image rows (see the routines below). NHWC only (what tf.layers uses); the kernels throw on
// channelsFirst rather than compute something wrong.
import * as tf from '@tensorflow/tfjs';

type Info = tf.TensorInfo;
type ConvInfo = ReturnType<typeof tf.backend_util.computeConv2DInfo>;
type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;

/** The slice of the wasm backend's interface these kernels use. */
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): Info;
  typedArrayFromHeap(info: Info): tf.TypedArray;
  disposeData(dataId: object, force?: boolean): boolean;
  incRef(dataId: object): void;
}

type KernelArgs = { inputs: Record<string, Info>; backend: unknown; attrs?: Record<string, unknown> };
type Kernel = (args: KernelArgs) => Info;

const BACKEND = 'wasm';
/** Upper bound on one im2col buffer (floats); larger batches are processed in slices of images. */
const MAX_COLS_FLOATS = 1 << 24;

let registered: string[] | null = null;

function kernelOf(name: string): Kernel {
  const k = tf.getKernel(name, BACKEND);
  if (!k) throw new Error(`the wasm backend has no ${name} kernel`);
  return k.kernelFunc as unknown as Kernel;
}

/** Same data, another shape (no copy, no reference count: never dispose a view). */
function view(info: Info, shape: number[]): Info {
  return { dataId: info.dataId, shape, dtype: info.dtype };
}

function free(b: WasmBackend, ...infos: Info[]): void {
  for (const i of infos) b.disposeData(i.dataId);
}

/** [M, K] x [K, N] on the backend's XNNPACK path. */
function matmul(b: WasmBackend, a: Info, bm: Info, m: number, k: number, n: number): Info {
  return kernelOf('BatchMatMul')({
    inputs: { a: view(a, [1, m, k]), b: view(bm, [1, k, n]) },
    backend: b,
    attrs: { transposeA: false, transposeB: false },
  });
}

function transpose2d(b: WasmBackend, x: Info, rows: number, cols: number): Info {
  return kernelOf('Transpose')({ inputs: { x: view(x, [rows, cols]) }, backend: b, attrs: { perm: [1, 0] } });
}

function requireChannelsLast(dataFormat: unknown, kernel: string): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new Error(`${kernel} on wasm: only NHWC data is supported (got ${String(dataFormat)})`);
  }
}

function isPlainPointwise(c: ConvInfo): boolean {
  return (
    c.filterHeight === 1 &&
    c.filterWidth === 1 &&
    c.strideHeight === 1 &&
    c.strideWidth === 1 &&
    c.padInfo.top === 0 &&
    c.padInfo.left === 0 &&
    c.outHeight === c.inHeight &&
    c.outWidth === c.inWidth
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Conv2D

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
 * then spends most of its time transposing and packing tall matrices. Rows go in blocks summed in float32, blocks
 * in float64. Null when it does not apply.
 */
function outerFilterGrad(b: WasmBackend, x: Info, dy: Info, m: number, cin: number, cout: number): Info | null {
  const fns = simd(b);
  const swap = cin > cout; // the wider side is the vectorised one
  const [narrow, wide] = swap ? [cout, cin] : [cin, cout];
  if (!fns || wide % 4 !== 0 || narrow > OUTER_MAX_NARROW) return null;
  const out = b.makeOutput([cin, cout], 'float32');
  const part = b.makeOutput([narrow, wide], 'float32');
  const acc = new Float64Array(narrow * wide);
  const [nAt, wAt] = swap ? [addressOf(b, dy), addressOf(b, x)] : [addressOf(b, x), addressOf(b, dy)];
  const partAt = addressOf(b, part);
  const block = Math.max(16, Math.floor(OUTER_BLOCK_BYTES / (4 * wide)));
  for (let r0 = 0; r0 < m; r0 += block) {
    const pv = b.typedArrayFromHeap(part) as Float32Array;
    pv.fill(0);
    fns.outerAcc(partAt, nAt + 4 * r0 * narrow, 4 * narrow, wAt + 4 * r0 * wide, 4 * wide, Math.min(block, m - r0), narrow, wide);
    for (let i = 0; i < acc.length; i++) acc[i] += pv[i];
  }
  const ov = b.typedArrayFromHeap(out) as Float32Array;
  if (!swap) ov.set(acc);
  else for (let co = 0; co < cout; co++) for (let ci = 0; ci < cin; ci++) ov[ci * cout + co] = acc[co * cin + ci];
  free(b, part);
  return out;
}

/**
 * dW of a k x k conv with few input channels (a network's stem on RGB) by direct SIMD accumulation: for each image
 * row and filter tap, the input pixels along the row are evenly spaced (stride * cin), so outerAcc runs on the
 * input and dy in place, with no im2col copy. Per-image sums in float32, images in float64. Null when it does
 * not apply.
 */
function directFilterGrad(b: WasmBackend, x: Info, dy: Info, c: ConvInfo, filterShape: number[]): Info | null {
  const { filterHeight: fh, filterWidth: fw, inChannels: cin, outChannels: cout, inHeight: H, inWidth: W } = c;
  const { outHeight: oh, outWidth: ow } = c;
  const fns = simd(b);
  if (!fns || cout % 4 !== 0 || cin > OUTER_MAX_NARROW) return null;
  const out = b.makeOutput(filterShape, 'float32');
  const part = b.makeOutput(filterShape, 'float32');
  const acc = new Float64Array(fh * fw * cin * cout);
  const xAt = addressOf(b, x);
  const dyAt = addressOf(b, dy);
  const partAt = addressOf(b, part);
  (b.typedArrayFromHeap(part) as Float32Array).fill(0);
  forEachTapRun(
    c,
    (r) => {
      const xAddr = xAt + 4 * ((r.n * H + r.iy) * W + r.ix0) * cin;
      const yAddr = dyAt + 4 * ((r.n * oh + r.y) * ow + r.x0) * cout;
      fns.outerAcc(partAt + 4 * r.tap * cin * cout, xAddr, 4 * c.strideWidth * cin, yAddr, 4 * cout, r.x1 - r.x0, cin, cout);
    },
    () => {
      const pv = b.typedArrayFromHeap(part) as Float32Array;
      for (let t = 0; t < acc.length; t++) acc[t] += pv[t];
      pv.fill(0);
    },
  );
  (b.typedArrayFromHeap(out) as Float32Array).set(acc);
  free(b, part);
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

let builtinConv2dBackpropInput: Kernel | null = null;

function conv2dBackpropInput(args: KernelArgs): Info {
  const { inputs, backend, attrs } = args;
  const b = backend as WasmBackend;
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  const a = attrs as { strides: number | [number, number]; pad: Pad; dataFormat?: string; dimRoundingMode?: Rounding; inputShape: [number, number, number, number] };
  const channelsLast = a.dataFormat === undefined || a.dataFormat === 'NHWC';
  if (channelsLast) {
    const c = tf.backend_util.computeConv2DInfo(a.inputShape, filter.shape as [number, number, number, number], a.strides, 1, a.pad, a.dimRoundingMode);
    if (isPlainPointwise(c)) {
      const m = c.batchSize * c.inHeight * c.inWidth;
      const wT = transpose2d(b, filter, c.inChannels, c.outChannels);
      const dx = matmul(b, dy, wT, m, c.outChannels, c.inChannels);
      free(b, wT);
      return view(dx, a.inputShape);
    }
    const p = c.padInfo;
    if (c.strideHeight === 1 && c.strideWidth === 1 && 2 * p.top === c.filterHeight - 1 && p.top === p.bottom && 2 * p.left === c.filterWidth - 1 && p.left === p.right) {
      // Stride 1, symmetric padding: dx is the 'same' forward conv of dy with the flipped, transposed filter, on
      // the backend's XNNPACK conv instead of its backprop loop (~4x faster for the segmenter's 3x3 convs).
      const fT = kernelOf('Transpose')({ inputs: { x: filter }, backend: b, attrs: { perm: [0, 1, 3, 2] } });
      const flipped = kernelOf('Reverse')({ inputs: { x: fT }, backend: b, attrs: { dims: [0, 1] } });
      const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1, dimRoundingMode: undefined };
      const dx = kernelOf('Conv2D')({ inputs: { x: dy, filter: flipped }, backend: b, attrs });
      free(b, fT, flipped);
      return dx;
    }
  }
  return builtinConv2dBackpropInput!(args);
}

// ---------------------------------------------------------------------------------------------------------------
// Hand-assembled wasm SIMD routines on the backend's own heap (no copies), four floats at a time:
//   fma(out, outStep, a, aStep, b, bStep, rows, C): for each of `rows` rows, out[c] += a[c] * b[c] for c < C,
//   then every pointer moves on by its step (bytes). A step of 0 keeps a pointer in place (an accumulator row,
//   a filter row). A scalar tail finishes each row.
//   clipMask(out, x, dy, bytes, lo, hi): out = lo <= x <= hi ? dy : 0 over `bytes` (a multiple of 16; the caller
//   finishes the tail), the ReLU6 gradient in one pass.
//   scaleShift(out, x, a, b, rows, C): out[r][c] = x[r][c] * a[c] + b[c], a per-channel affine map (inference-mode
//   BatchNorm) with a scalar tail per row.
//   outerAcc(out, x, xStride, y, yStride, rows, P, Q): out[p][q] += sum over rows of x[r][p] * y[r][q] (Q a multiple
//   of 4; row strides in bytes): x^T y for a tall x and y, four vectors of y's row at a time in registers, with no
//   transposed or packed copy.
//   diagAcc(out, x, xStride, y, yStride, rows, C): out[c] += sum over rows of x[r][c] * y[r][c] (C a multiple of 4),
//   sixteen channels at a time in registers: the depthwise filter gradient along an image row.

type Fma = (out: number, outStep: number, a: number, aStep: number, b: number, bStep: number, rows: number, c: number) => void;
type ClipMask = (out: number, x: number, dy: number, bytes: number, lo: number, hi: number) => void;
type ScaleShift = (out: number, x: number, a: number, b: number, rows: number, c: number) => void;
type OuterAcc = (out: number, x: number, xStride: number, y: number, yStride: number, rows: number, p: number, q: number) => void;
type DiagAcc = (out: number, x: number, xStride: number, y: number, yStride: number, rows: number, c: number) => void;
interface Simd {
  diagAcc: DiagAcc;
  outerAcc: OuterAcc;
  scaleShift: ScaleShift;
  fma: Fma;
  clipMask: ClipMask;
}

function simdModuleBytes(sharedMemory: boolean): Uint8Array<ArrayBuffer> {
  const get = (i: number) => [0x20, i];
  const set = (i: number) => [0x21, i];
  const i32 = (v: number) => [0x41, v]; // small non-negative constants only (< 64)
  const add = 0x6a;
  const ptr = (p: number) => [...get(p), ...get(8), add]; // base + c
  const v128Load = [0xfd, 0x00, 0x00, 0x00];
  const v128Store = [0xfd, 0x0b, 0x00, 0x00];
  const f32Load = [0x2a, 0x02, 0x00];
  const f32Store = [0x38, 0x02, 0x00];
  const fmaBody = [
    0x01, 0x03, 0x7f, // locals 8..10: i32 c, cEnd4, cEnd (byte offsets)
    ...get(7), ...i32(2), 0x74, ...set(10), // cEnd = C << 2
    ...get(7), 0x41, 0x7c, 0x71, ...i32(2), 0x74, ...set(9), // cEnd4 = (C & -4) << 2
    0x02, 0x40, 0x03, 0x40, // block, loop (rows)
    ...get(6), 0x45, 0x0d, 0x01, // if rows == 0 break
    ...i32(0), ...set(8),
    0x02, 0x40, 0x03, 0x40, // vector loop
    ...get(8), ...get(9), 0x4f, 0x0d, 0x01, // c >= cEnd4: leave
    ...ptr(0), ...ptr(0), ...v128Load, ...ptr(2), ...v128Load, ...ptr(4), ...v128Load,
    0xfd, 0xe6, 0x01, 0xfd, 0xe4, 0x01, ...v128Store, // out = out + a * b (f32x4.mul, f32x4.add)
    ...get(8), ...i32(16), add, ...set(8),
    0x0c, 0x00, 0x0b, 0x0b,
    0x02, 0x40, 0x03, 0x40, // scalar tail
    ...get(8), ...get(10), 0x4f, 0x0d, 0x01,
    ...ptr(0), ...ptr(0), ...f32Load, ...ptr(2), ...f32Load, ...ptr(4), ...f32Load, 0x94, 0x92, ...f32Store,
    ...get(8), ...i32(4), add, ...set(8),
    0x0c, 0x00, 0x0b, 0x0b,
    ...get(0), ...get(1), add, ...set(0),
    ...get(2), ...get(3), add, ...set(2),
    ...get(4), ...get(5), add, ...set(4),
    ...get(6), ...i32(1), 0x6b, ...set(6),
    0x0c, 0x00, 0x0b, 0x0b, // next row; end loop, end block
    0x0b, // end function
  ];
  const at = (p: number) => [...get(p), ...get(6), add]; // base + offset
  const clipBody = [
    0x02, 0x01, 0x7f, 0x02, 0x7b, // locals 6: i32 offset; 7, 8: v128 lo, hi
    ...get(4), 0xfd, 0x13, ...set(7), // f32x4.splat
    ...get(5), 0xfd, 0x13, ...set(8),
    0x02, 0x40, 0x03, 0x40,
    ...get(6), ...get(3), 0x4f, 0x0d, 0x01, // offset >= bytes: leave
    ...at(0),
    ...at(2), ...v128Load,
    ...at(1), ...v128Load, ...get(7), 0xfd, 0x46, 0x01, // f32x4.ge
    ...at(1), ...v128Load, ...get(8), 0xfd, 0x45, 0x01, // f32x4.le
    0xfd, 0x4e, 0x01, 0xfd, 0x4e, 0x01, ...v128Store, // dy & (x >= lo) & (x <= hi)
    ...get(6), ...i32(16), add, ...set(6),
    0x0c, 0x00, 0x0b, 0x0b,
    0x0b,
  ];
  // params 0 out, 1 x, 2 a, 3 b, 4 rows, 5 C; locals 6 c, 7 cEnd4, 8 cEnd (byte offsets)
  const col = (p: number) => [...get(p), ...get(6), add];
  const scaleShiftBody = [
    0x01, 0x03, 0x7f,
    ...get(5), ...i32(2), 0x74, ...set(8), // cEnd = C << 2
    ...get(5), 0x41, 0x7c, 0x71, ...i32(2), 0x74, ...set(7), // cEnd4 = (C & -4) << 2
    0x02, 0x40, 0x03, 0x40, // rows
    ...get(4), 0x45, 0x0d, 0x01,
    ...i32(0), ...set(6),
    0x02, 0x40, 0x03, 0x40, // vector loop
    ...get(6), ...get(7), 0x4f, 0x0d, 0x01,
    ...col(0), ...col(1), ...v128Load, ...col(2), ...v128Load, 0xfd, 0xe6, 0x01, ...col(3), ...v128Load, 0xfd, 0xe4, 0x01, ...v128Store,
    ...get(6), ...i32(16), add, ...set(6),
    0x0c, 0x00, 0x0b, 0x0b,
    0x02, 0x40, 0x03, 0x40, // scalar tail
    ...get(6), ...get(8), 0x4f, 0x0d, 0x01,
    ...col(0), ...col(1), ...f32Load, ...col(2), ...f32Load, 0x94, ...col(3), ...f32Load, 0x92, ...f32Store,
    ...get(6), ...i32(4), add, ...set(6),
    0x0c, 0x00, 0x0b, 0x0b,
    ...get(0), ...get(8), add, ...set(0), // next row of out and x
    ...get(1), ...get(8), add, ...set(1),
    ...get(4), ...i32(1), 0x6b, ...set(4),
    0x0c, 0x00, 0x0b, 0x0b,
    0x0b,
  ];
  // params 0 out, 1 x, 2 xStride, 3 y, 4 yStride, 5 rows, 6 P, 7 Q (strides in bytes); i32 locals 8 p, 9 q (bytes),
  // 10 r, 11 xp, 12 yp, 13 op, 14 outRow (bytes), 15 qEnd16 (bytes); v128 locals 16 s, 17..20 accumulators
  const load = (offset: number) => [0xfd, 0x00, 0x00, ...uleb(offset)];
  const store = (offset: number) => [0xfd, 0x0b, 0x00, ...uleb(offset)];
  const mulAdd = [0xfd, 0xe6, 0x01, 0xfd, 0xe4, 0x01]; // f32x4.mul then f32x4.add
  const setOut = [...get(0), ...get(8), ...get(14), 0x6c, add, ...get(9), add, ...set(13)]; // op = out + p*outRow + q
  const startRows = [
    ...get(1), ...get(8), ...i32(2), 0x74, add, ...set(11), // xp = x + 4p
    ...get(3), ...get(9), add, ...set(12), // yp = y + q
    ...get(5), ...set(10), // r = rows
  ];
  const nextRow = [...get(11), ...get(2), add, ...set(11), ...get(12), ...get(4), add, ...set(12), ...get(10), ...i32(1), 0x6b, ...set(10)];
  const splatX = [...get(11), ...f32Load, 0xfd, 0x13];
  const outerBody = [
    0x02, 0x08, 0x7f, 0x05, 0x7b,
    ...get(7), ...i32(2), 0x74, ...set(14),
    ...get(7), 0x41, 0x70, 0x71, ...i32(2), 0x74, ...set(15), // (Q & -16) << 2
    0x02, 0x40, 0x03, 0x40, // p loop
    ...get(8), ...get(6), 0x4f, 0x0d, 0x01,
    ...i32(0), ...set(9),
    0x02, 0x40, 0x03, 0x40, // sixteen columns at a time
    ...get(9), ...get(15), 0x4f, 0x0d, 0x01,
    ...setOut,
    ...get(13), ...load(0), ...set(17), ...get(13), ...load(16), ...set(18), ...get(13), ...load(32), ...set(19), ...get(13), ...load(48), ...set(20),
    ...startRows,
    0x02, 0x40, 0x03, 0x40,
    ...get(10), 0x45, 0x0d, 0x01,
    ...splatX, ...set(16),
    ...get(17), ...get(16), ...get(12), ...load(0), ...mulAdd, ...set(17),
    ...get(18), ...get(16), ...get(12), ...load(16), ...mulAdd, ...set(18),
    ...get(19), ...get(16), ...get(12), ...load(32), ...mulAdd, ...set(19),
    ...get(20), ...get(16), ...get(12), ...load(48), ...mulAdd, ...set(20),
    ...nextRow,
    0x0c, 0x00, 0x0b, 0x0b,
    ...get(13), ...get(17), ...store(0), ...get(13), ...get(18), ...store(16), ...get(13), ...get(19), ...store(32), ...get(13), ...get(20), ...store(48),
    ...get(9), 0x41, 0xc0, 0x00, add, ...set(9), // q += 64 bytes
    0x0c, 0x00, 0x0b, 0x0b,
    0x02, 0x40, 0x03, 0x40, // then four columns at a time
    ...get(9), ...get(14), 0x4f, 0x0d, 0x01,
    ...setOut,
    ...get(13), ...load(0), ...set(17),
    ...startRows,
    0x02, 0x40, 0x03, 0x40,
    ...get(10), 0x45, 0x0d, 0x01,
    ...get(17), ...splatX, ...get(12), ...load(0), ...mulAdd, ...set(17),
    ...nextRow,
    0x0c, 0x00, 0x0b, 0x0b,
    ...get(13), ...get(17), ...store(0),
    ...get(9), ...i32(16), add, ...set(9),
    0x0c, 0x00, 0x0b, 0x0b,
    ...get(8), ...i32(1), add, ...set(8),
    0x0c, 0x00, 0x0b, 0x0b,
    0x0b,
  ];
  // params 0 out, 1 x, 2 xStride, 3 y, 4 yStride, 5 rows, 6 C; i32 locals 7 q (bytes), 8 r, 9 xp, 10 yp, 11 op,
  // 12 qEnd16, 13 cBytes; v128 locals 14..17 accumulators
  const diagStart = [...get(1), ...get(7), add, ...set(9), ...get(3), ...get(7), add, ...set(10), ...get(5), ...set(8)];
  const diagNext = [...get(9), ...get(2), add, ...set(9), ...get(10), ...get(4), add, ...set(10), ...get(8), ...i32(1), 0x6b, ...set(8)];
  const diagTerm = (acc: number, offset: number) => [...get(acc), ...get(9), ...load(offset), ...get(10), ...load(offset), ...mulAdd, ...set(acc)];
  const diagBody = [
    0x02, 0x07, 0x7f, 0x04, 0x7b,
    ...get(6), ...i32(2), 0x74, ...set(13),
    ...get(6), 0x41, 0x70, 0x71, ...i32(2), 0x74, ...set(12),
    0x02, 0x40, 0x03, 0x40, // sixteen channels at a time
    ...get(7), ...get(12), 0x4f, 0x0d, 0x01,
    ...get(0), ...get(7), add, ...set(11),
    ...get(11), ...load(0), ...set(14), ...get(11), ...load(16), ...set(15), ...get(11), ...load(32), ...set(16), ...get(11), ...load(48), ...set(17),
    ...diagStart,
    0x02, 0x40, 0x03, 0x40,
    ...get(8), 0x45, 0x0d, 0x01,
    ...diagTerm(14, 0), ...diagTerm(15, 16), ...diagTerm(16, 32), ...diagTerm(17, 48),
    ...diagNext,
    0x0c, 0x00, 0x0b, 0x0b,
    ...get(11), ...get(14), ...store(0), ...get(11), ...get(15), ...store(16), ...get(11), ...get(16), ...store(32), ...get(11), ...get(17), ...store(48),
    ...get(7), 0x41, 0xc0, 0x00, add, ...set(7),
    0x0c, 0x00, 0x0b, 0x0b,
    0x02, 0x40, 0x03, 0x40, // then four at a time
    ...get(7), ...get(13), 0x4f, 0x0d, 0x01,
    ...get(0), ...get(7), add, ...set(11),
    ...get(11), ...load(0), ...set(14),
    ...diagStart,
    0x02, 0x40, 0x03, 0x40,
    ...get(8), 0x45, 0x0d, 0x01,
    ...diagTerm(14, 0),
    ...diagNext,
    0x0c, 0x00, 0x0b, 0x0b,
    ...get(11), ...get(14), ...store(0),
    ...get(7), ...i32(16), add, ...set(7),
    0x0c, 0x00, 0x0b, 0x0b,
    0x0b,
  ];
  const section = (id: number, bytes: number[]) => [id, ...uleb(bytes.length), ...bytes];
  const str = (s: string) => [s.length, ...[...s].map((ch) => ch.charCodeAt(0))];
  const fn = (bytes: number[]) => [...uleb(bytes.length), ...bytes];
  // A shared memory (the threaded build's) must be imported as shared, with a maximum (4 GiB).
  const memoryLimits = sharedMemory ? [0x03, 0x00, ...uleb(65536)] : [0x00, 0x00];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [0x05, 0x60, 0x08, ...Array(8).fill(0x7f), 0x00, 0x60, 0x06, 0x7f, 0x7f, 0x7f, 0x7f, 0x7d, 0x7d, 0x00, 0x60, 0x06, ...Array(6).fill(0x7f), 0x00, 0x60, 0x08, ...Array(8).fill(0x7f), 0x00, 0x60, 0x07, ...Array(7).fill(0x7f), 0x00]),
    ...section(2, [0x01, ...str('env'), ...str('memory'), 0x02, ...memoryLimits]),
    ...section(3, [0x05, 0x00, 0x01, 0x02, 0x03, 0x04]),
    ...section(7, [0x05, ...str('fma'), 0x00, 0x00, ...str('clipMask'), 0x00, 0x01, ...str('scaleShift'), 0x00, 0x02, ...str('outerAcc'), 0x00, 0x03, ...str('diagAcc'), 0x00, 0x04]),
    ...section(10, [0x05, ...fn(fmaBody), ...fn(clipBody), ...fn(scaleShiftBody), ...fn(outerBody), ...fn(diagBody)]),
  ]);
}

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}

const simdByMemory = new WeakMap<WebAssembly.Memory, Simd | null>();

/** The SIMD routines bound to the backend's heap, or null where they cannot be (no SIMD, memory not reachable). */
function simd(b: WasmBackend): Simd | null {
  // The single-threaded build exports its memory; the threaded build imports a shared one (Module.wasmMemory).
  const wasm = (b as unknown as { wasm?: { asm?: { memory?: unknown }; wasmMemory?: unknown } }).wasm;
  const memory = wasm?.asm?.memory ?? wasm?.wasmMemory;
  if (!(memory instanceof WebAssembly.Memory)) return null;
  if (!simdByMemory.has(memory)) {
    let fns: Simd | null = null;
    try {
      const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
      const mod = new WebAssembly.Module(simdModuleBytes(shared));
      const exports = new WebAssembly.Instance(mod, { env: { memory } }).exports;
      fns = {
        fma: exports.fma as Fma,
        clipMask: exports.clipMask as ClipMask,
        scaleShift: exports.scaleShift as ScaleShift,
        outerAcc: exports.outerAcc as OuterAcc,
        diagAcc: exports.diagAcc as DiagAcc,
      };
    } catch {
      fns = null; // an engine without wasm SIMD: the JS loops below still work
    }
    simdByMemory.set(memory, fns);
  }
  return simdByMemory.get(memory)!;
}

/** Whether the hand-assembled SIMD routines run on the current wasm backend's heap (else JS loops stand in). */
export function wasmSimdKernelsBound(): boolean {
  return tf.getBackend() === BACKEND && simd(tf.backend() as unknown as WasmBackend) !== null;
}

function simdFma(b: WasmBackend): Fma | null {
  return simd(b)?.fma ?? null;
}

/** Byte address of a tensor's data on the wasm heap. */
function addressOf(b: WasmBackend, info: Info): number {
  const arr = b.typedArrayFromHeap(info);
  return arr.byteOffset;
}

// ---------------------------------------------------------------------------------------------------------------
// Depthwise conv

interface DepthwiseAttrs {
  strides: number | [number, number];
  dilations?: number | [number, number];
  pad: Pad;
  dimRoundingMode?: Rounding;
  dataFormat?: string;
}

function depthwiseInfo(xShape: number[], filterShape: number[], a: DepthwiseAttrs, kernel: string): ConvInfo {
  requireChannelsLast(a.dataFormat, kernel);
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
    true,
  );
}

/** Output columns [x0, x1) whose input column x * stride + offset falls inside [0, width). */
function validColumns(offset: number, stride: number, width: number, outWidth: number): [number, number] {
  const x0 = Math.max(0, Math.ceil(-offset / stride));
  const x1 = Math.min(outWidth, Math.floor((width - 1 - offset) / stride) + 1);
  return [x0, x1];
}

/** One run of a filter tap along an output row: output pixels [x0, x1) of row y meet input row iy from column ix0. */
interface TapRun {
  n: number;
  y: number;
  /** Filter tap index (i * filterWidth + j). */
  tap: number;
  iy: number;
  x0: number;
  x1: number;
  ix0: number;
}

/**
 * Every (image, output row, filter tap) with the output columns whose input lies inside the image: along such a
 * run the input pixels are evenly spaced (stride), so a SIMD routine can sweep it in place. `afterImage` runs
 * once an image is done.
 */
function forEachTapRun(c: ConvInfo, visit: (run: TapRun) => void, afterImage?: (n: number) => void): void {
  const { filterHeight: fh, filterWidth: fw, inHeight: H, inWidth: W, outHeight: oh, outWidth: ow } = c;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = c;
  for (let n = 0; n < c.batchSize; n++) {
    for (let y = 0; y < oh; y++) {
      for (let i = 0; i < fh; i++) {
        const iy = y * sh - c.padInfo.top + i * dh;
        if (iy < 0 || iy >= H) continue;
        for (let j = 0; j < fw; j++) {
          const offset = j * dw - c.padInfo.left;
          const [x0, x1] = validColumns(offset, sw, W, ow);
          if (x1 > x0) visit({ n, y, tap: i * fw + j, iy, x0, x1, ix0: x0 * sw + offset });
        }
      }
    }
    afterImage?.(n);
  }
}

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

function depthwiseBackpropInput({ inputs, backend, attrs }: KernelArgs): Info {
  const b = backend as WasmBackend;
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  const a = attrs as unknown as DepthwiseAttrs & { inputShape: [number, number, number, number] };
  const c = depthwiseInfo(a.inputShape, filter.shape, a, 'DepthwiseConv2dNativeBackpropInput');
  const { inChannels: cin, outChannels: cout, inHeight: H, inWidth: W, outHeight: oh, outWidth: ow, strideWidth: sw } = c;
  const mult = cout / cin;
  const out = b.makeOutput(a.inputShape, 'float32');
  const dx = b.typedArrayFromHeap(out) as Float32Array;
  dx.fill(0);
  const fma = mult === 1 ? simdFma(b) : null;
  if (fma) {
    const dxAt = addressOf(b, out);
    const yAt = addressOf(b, dy);
    const wAt = addressOf(b, filter);
    const row = 4 * cout;
    forEachTapRun(c, (r) =>
      fma(dxAt + ((r.n * H + r.iy) * W + r.ix0) * row, sw * row, yAt + ((r.n * oh + r.y) * ow + r.x0) * row, row, wAt + r.tap * row, 0, r.x1 - r.x0, cout),
    );
    return out;
  }
  const yv = b.typedArrayFromHeap(dy) as Float32Array;
  const wv = b.typedArrayFromHeap(filter) as Float32Array;
  // Scatter form, value by value: each dy value adds into the kh*kw inputs it was computed from.
  forEachTapRun(c, (r) => {
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

// ---------------------------------------------------------------------------------------------------------------
// BatchNormalization gradient (a gradient, not a kernel: it applies on every backend, with the same values)
//
// tfjs' own FusedBatchNorm gradient tiles 1/sqrt(var + eps) to the full activation shape and reduces over
// batch x rows x columns with Sum (a transpose first, on wasm): most of a MobileNetV2 training step. Broadcasting
// the per-channel factor and taking column sums as ones[1, M] . t[M, C] (one matmul) gives the same values.

const COLUMN_DOT = 'ZerovarColumnDot';

/** sum over rows of a * b (b absent: of a), per channel: [C]. One SIMD pass over the heap on wasm. */
function columnSums(t: tf.Tensor, channels: number, times?: tf.Tensor): tf.Tensor1D {
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

const SCALE_CHANNELS = 'ZerovarScaleChannels';

/** x * a with a per-channel a ([C]): one SIMD pass on wasm (scaleShift with a zero shift), tf.mul elsewhere. */
function scaleChannels(x: tf.Tensor, a: tf.Tensor1D): tf.Tensor {
  if (tf.getBackend() === BACKEND && tf.getKernel(SCALE_CHANNELS, BACKEND) && x.dtype === 'float32' && x.rank >= 2) {
    return tf.engine().runKernel(SCALE_CHANNELS, { x, a }, {}) as tf.Tensor;
  }
  return tf.mul(x, a);
}

function scaleChannelsKernel({ inputs, backend }: KernelArgs): Info {
  const b = backend as WasmBackend;
  const { x, a } = inputs as { x: Info; a: Info };
  const c = a.shape[0];
  const fns = simd(b);
  const out = b.makeOutput(x.shape, 'float32');
  const zero = b.makeOutput([c], 'float32');
  (b.typedArrayFromHeap(zero) as Float32Array).fill(0);
  const rows = x.shape.reduce((p, q) => p * q, 1) / c;
  if (fns) {
    fns.scaleShift(addressOf(b, out), addressOf(b, x), addressOf(b, a), addressOf(b, zero), rows, c);
  } else {
    const o = b.typedArrayFromHeap(out) as Float32Array;
    const xv = b.typedArrayFromHeap(x) as Float32Array;
    const av = b.typedArrayFromHeap(a) as Float32Array;
    for (let i = 0; i < o.length; i++) o[i] = xv[i] * av[i % c];
  }
  free(b, zero);
  return out;
}

let batchNormGradientRegistered = false;

function registerBatchNormGradient(): void {
  if (batchNormGradientRegistered) return;
  const original = tf.getGradient('FusedBatchNorm');
  if (!original) return;
  tf.registerGradient({
    kernelName: 'FusedBatchNorm',
    inputsToSave: ['x', 'mean', 'variance', 'scale'],
    gradFunc: (dy, saved, attrs) => {
      const [x, mean, variance, scale] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor | undefined];
      const dyT = dy as tf.Tensor;
      // Per-channel statistics over the last axis (what tf.layers uses); anything else: tfjs' own gradient.
      const channels = x.shape[x.shape.length - 1];
      if (mean.rank !== 1 || mean.shape[0] !== channels || x.rank < 2) return original.gradFunc(dy, saved, attrs);
      const eps = (attrs as { varianceEpsilon: number }).varianceEpsilon;
      const inv = tf.rsqrt(tf.add(variance, eps));
      const factor = scale ? tf.mul(inv, scale) : inv;
      // The column sums of dy serve the offset, scale, mean and variance gradients: computed once, here (tensors
      // made outside the thunks live until the end of the backward pass).
      const sumDy = columnSums(dyT, channels);
      return {
        x: () => scaleChannels(dyT, factor as tf.Tensor1D),
        mean: () => tf.neg(tf.mul(sumDy, factor)),
        variance: () => tf.mul(tf.mul(tf.sub(columnSums(dyT, channels, x), tf.mul(mean, sumDy)), factor), tf.mul(tf.square(inv), -0.5)),
        scale: () => tf.mul(tf.sub(columnSums(dyT, channels, x), tf.mul(mean, sumDy)), inv),
        offset: () => tf.clone(sumDy),
      };
    },
  });
  batchNormGradientRegistered = true;
}

// ---------------------------------------------------------------------------------------------------------------
// ClipByValue gradient (ReLU6): tfjs builds it from four full-size comparisons and a select; on wasm one pass
// over the heap does it. Other backends keep tfjs' own gradient.

const CLIP_GRAD = 'ZerovarClipByValueGrad';

function clipGrad({ inputs, backend, attrs }: KernelArgs): Info {
  const b = backend as WasmBackend;
  const { x, dy } = inputs as { x: Info; dy: Info };
  const { clipValueMin: lo, clipValueMax: hi } = attrs as { clipValueMin: number; clipValueMax: number };
  const out = b.makeOutput(x.shape, 'float32');
  const n = x.shape.reduce((p, q) => p * q, 1);
  // SIMD over whole groups of four (f32 bounds: the comparisons happen in float32 either way), JS for the rest.
  const fns = simd(b);
  const vectorEnd = fns ? n - (n % 4) : 0;
  if (fns && vectorEnd) fns.clipMask(addressOf(b, out), addressOf(b, x), addressOf(b, dy), 4 * vectorEnd, lo, hi);
  const o = b.typedArrayFromHeap(out) as Float32Array;
  const xv = b.typedArrayFromHeap(x) as Float32Array;
  const g = b.typedArrayFromHeap(dy) as Float32Array;
  for (let i = vectorEnd; i < n; i++) {
    const v = xv[i];
    o[i] = v >= lo && v <= hi ? g[i] : 0;
  }
  return out;
}

/** Smallest positive float32: for float32 values, x > 0 exactly when x >= this. */
const F32_MIN_POSITIVE = 2 ** -149;

let clipGradientRegistered = false;

function registerClipGradient(): void {
  if (clipGradientRegistered) return;
  const clip = tf.getGradient('ClipByValue');
  const relu = tf.getGradient('Relu');
  const relu6 = tf.getGradient('Relu6');
  if (!clip || !relu || !relu6) return;
  if (!tf.getKernel(CLIP_GRAD, BACKEND)) tf.registerKernel({ kernelName: CLIP_GRAD, backendName: BACKEND, kernelFunc: clipGrad as unknown as tf.KernelFunc });
  // On wasm with float32 data, dx = lo <= x <= hi ? dy : 0 in one SIMD pass; elsewhere tfjs' own gradient.
  const maskGradient = (kernelName: string, original: tf.GradConfig, bounds: (attrs: tf.NamedAttrMap) => tf.NamedAttrMap) =>
    tf.registerGradient({
      kernelName,
      inputsToSave: ['x'],
      gradFunc: (dy, saved, attrs) => {
        const [x] = saved as [tf.Tensor];
        const dyT = dy as tf.Tensor;
        if (tf.getBackend() !== BACKEND || x.dtype !== 'float32' || dyT.dtype !== 'float32') return original.gradFunc(dy, saved, attrs);
        return { x: () => tf.engine().runKernel(CLIP_GRAD, { x, dy: dyT }, bounds(attrs)) as tf.Tensor };
      },
    });
  maskGradient('ClipByValue', clip, (attrs) => attrs);
  // ReLU: tfjs multiplies dy by cast(step(x)), three full-size passes; the same mask is x in [2^-149, inf].
  // (A NaN activation gives 0 here where tfjs gives NaN.)
  maskGradient('Relu', relu, () => ({ clipValueMin: F32_MIN_POSITIVE, clipValueMax: Infinity }));
  // ReLU6 as one op (the training forward's, see finetune.ts): tfjs' mask is 0 < x <= 6.
  maskGradient('Relu6', relu6, () => ({ clipValueMin: F32_MIN_POSITIVE, clipValueMax: 6 }));
  clipGradientRegistered = true;
}

// ---------------------------------------------------------------------------------------------------------------
// BatchNormalization forward (inference mode: mean and variance given). The backend's kernel takes a modulo, a
// square root and a division per value; as x * a + b with per-channel a = scale / sqrt(var + eps) and
// b = offset - mean * a it is one SIMD pass. Anything but per-channel float32 statistics: the backend's kernel.

let builtinBatchNorm: Kernel | null = null;

function batchNorm(args: KernelArgs): Info {
  const b = args.backend as WasmBackend;
  const { x, mean, variance, offset, scale } = args.inputs as Record<string, Info | undefined>;
  const eps = (args.attrs as { varianceEpsilon: number }).varianceEpsilon;
  const c = x!.shape[x!.shape.length - 1];
  const perChannel = (t: Info | undefined) => !t || (t.shape.length === 1 && t.shape[0] === c && t.dtype === 'float32');
  const fns = simd(b);
  if (!fns || x!.dtype !== 'float32' || x!.shape.length < 2 || ![mean, variance, offset, scale].every(perChannel) || !mean || !variance) {
    return builtinBatchNorm!(args);
  }
  const out = b.makeOutput(x!.shape, 'float32');
  const ab = b.makeOutput([2, c], 'float32');
  const m = b.typedArrayFromHeap(mean) as Float32Array;
  const v = b.typedArrayFromHeap(variance) as Float32Array;
  const g = scale ? (b.typedArrayFromHeap(scale) as Float32Array) : null;
  const o = offset ? (b.typedArrayFromHeap(offset) as Float32Array) : null;
  const abv = b.typedArrayFromHeap(ab) as Float32Array;
  for (let ch = 0; ch < c; ch++) {
    const a = (g ? g[ch] : 1) / Math.sqrt(v[ch] + eps);
    abv[ch] = a;
    abv[c + ch] = (o ? o[ch] : 0) - m[ch] * a;
  }
  const abAt = addressOf(b, ab);
  const rows = x!.shape.reduce((p, q) => p * q, 1) / c;
  fns.scaleShift(addressOf(b, out), addressOf(b, x!), abAt, abAt + 4 * c, rows, c);
  free(b, ab);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Slice (the gradient of every zero padding): copies runs of contiguous values instead of the backend's per-value
// walk. Numeric dtypes; strings go to the backend's kernel.

let builtinSlice: Kernel | null = null;

function slice(args: KernelArgs): Info {
  const b = args.backend as WasmBackend;
  const { x } = args.inputs as { x: Info };
  const rank = x.shape.length;
  const a = args.attrs as { begin: number | number[]; size: number | number[] };
  if (x.dtype === 'string' || rank === 0) return builtinSlice!(args);
  const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tf.TensorInfo as never, a.begin, a.size);
  const out = b.makeOutput(size, x.dtype);
  if (size.some((d) => d === 0)) return out;
  // Trailing dimensions taken whole join into one run with the last partial one.
  let d = rank - 1;
  let inner = 1;
  while (d > 0 && begin[d] === 0 && size[d] === x.shape[d]) inner *= x.shape[d--];
  const run = size[d] * inner;
  const strides = x.shape.map((_, i) => x.shape.slice(i + 1).reduce((p, q) => p * q, 1));
  const src = b.typedArrayFromHeap(x);
  const dst = b.typedArrayFromHeap(out);
  const idx = new Array<number>(d).fill(0);
  for (let o = 0; o < dst.length; o += run) {
    let at = begin[d] * strides[d];
    for (let i = 0; i < d; i++) at += (begin[i] + idx[i]) * strides[i];
    dst.set(src.subarray(at, at + run), o);
    for (let i = d - 1; i >= 0 && ++idx[i] === size[i]; i--) idx[i] = 0; // odometer over the outer dimensions
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Identity: the engine clones every tensor it saves for the backward pass, and the wasm backend's Identity copies
// the data (a tenth of a MobileNetV2 training step); the cpu backend shares it under a reference count instead,
// as here. Sharing is safe because no wasm kernel writes into its inputs.

let builtinIdentity: Kernel | null = null;

function share(b: WasmBackend, x: Info): Info {
  b.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

function sharedIdentity(args: KernelArgs): Info {
  const { x } = args.inputs as { x: Info };
  return x.dtype === 'string' ? builtinIdentity!(args) : share(args.backend as WasmBackend, x);
}

// Cast to the dtype a tensor already has (tfjs' own ReLU gradient and layers do it): shared, like Identity.
let builtinCast: Kernel | null = null;

function sharedCast(args: KernelArgs): Info {
  const { x } = args.inputs as { x: Info };
  const same = x.dtype !== 'string' && (args.attrs as { dtype: string }).dtype === x.dtype;
  return same ? share(args.backend as WasmBackend, x) : builtinCast!(args);
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * Registers the kernels above for the wasm backend (once; later calls return the same list) and returns the tfjs
 * kernel names now served by this module. It also replaces the BatchNormalization gradient (for every backend:
 * same values, without the full-size tiling) and, on wasm, the ClipByValue, Relu and Relu6 gradients. Call after
 * the wasm backend is registered (importing '@tensorflow/tfjs-backend-wasm' is enough; it need not be active yet).
 */
export function registerWasmKernels(): string[] {
  if (registered) return [...registered];
  const names: string[] = [];
  const add = (kernelName: string, kernelFunc: Kernel): void => {
    const previous = tf.getKernel(kernelName, BACKEND);
    if (previous) tf.unregisterKernel(kernelName, BACKEND);
    // The replaced kernel's setup (binding its wasm function) must still run when the backend starts later.
    tf.registerKernel({ kernelName, backendName: BACKEND, kernelFunc: kernelFunc as unknown as tf.KernelFunc, setupFunc: previous?.setupFunc });
    names.push(kernelName);
  };
  const builtin = tf.getKernel('Conv2DBackpropInput', BACKEND);
  if (builtin) {
    // Keep the backend's kernel for the general case; only 1x1 stride-1 convs are rerouted through the matmul.
    builtinConv2dBackpropInput = builtin.kernelFunc as unknown as Kernel;
    add('Conv2DBackpropInput', conv2dBackpropInput);
  }
  add('Conv2DBackpropFilter', conv2dBackpropFilter);
  const identity = tf.getKernel('Identity', BACKEND);
  if (identity) {
    builtinIdentity = identity.kernelFunc as unknown as Kernel;
    add('Identity', sharedIdentity);
  }
  const bn = tf.getKernel('FusedBatchNorm', BACKEND);
  if (bn) {
    builtinBatchNorm = bn.kernelFunc as unknown as Kernel;
    add('FusedBatchNorm', batchNorm);
  }
  const sliceKernel = tf.getKernel('Slice', BACKEND);
  if (sliceKernel) {
    builtinSlice = sliceKernel.kernelFunc as unknown as Kernel;
    add('Slice', slice);
  }
  const cast = tf.getKernel('Cast', BACKEND);
  if (cast) {
    builtinCast = cast.kernelFunc as unknown as Kernel;
    add('Cast', sharedCast);
  }
  add('DepthwiseConv2dNativeBackpropFilter', depthwiseBackpropFilter);
  add('DepthwiseConv2dNativeBackpropInput', depthwiseBackpropInput);
  // Helper kernel of the BatchNormalization gradient below (not a tfjs kernel name; not in the returned list).
  if (!tf.getKernel(COLUMN_DOT, BACKEND)) tf.registerKernel({ kernelName: COLUMN_DOT, backendName: BACKEND, kernelFunc: columnDot as unknown as tf.KernelFunc });
  if (!tf.getKernel(SCALE_CHANNELS, BACKEND)) tf.registerKernel({ kernelName: SCALE_CHANNELS, backendName: BACKEND, kernelFunc: scaleChannelsKernel as unknown as tf.KernelFunc });
  registerBatchNormGradient();
  registerClipGradient();
  registered = names;
  return [...names];
}
