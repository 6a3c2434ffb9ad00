// The kernels' SIMD work as tasks over a range [lo, hi) of independent pieces (rows, images, blocks of rows), so
// that the kernel pool can hand slices of one kernel to other threads on the same shared heap (parallel.ts). A task
// reads only numbers (heap addresses in bytes, sizes, a packed geometry) and writes only its own pieces' outputs:
// every output value is computed by one thread, in the same order as with one thread, so the results do not
// depend on how the range is sliced. Reductions across pieces (the sum over images or row blocks of a filter
// gradient) are not tasks: each piece leaves its float32 partial in its own slot, and the calling thread adds the
// slots up in order (sumSlots). Free of tfjs: the pool's workers import this file.
import type { Heap } from './simd.js';
import { forEachTapRun, GEOMETRY_LENGTH, unpackGeometry } from './tap_runs.js';

/** A task's numbers: a plain array on the calling thread, the pool's parameter block on a worker. */
export type Params = readonly number[] | Float64Array;

export type Task = (h: Heap, p: Params, lo: number, hi: number) => void;

const floats = (h: Heap) => new Float32Array(h.memory.buffer);

/**
 * outerBlocks [slots, narrowAt, wideAt, rows, narrow, wide, block]: for each block k of `block` rows, slot k
 * (narrow x wide floats) = x^T y over those rows, x the narrow side and y the wide one (1x1 filter gradients).
 */
function outerBlocks(h: Heap, p: Params, lo: number, hi: number): void {
  const [slots, nAt, wAt, rows, narrow, wide, block] = p;
  const size = narrow * wide;
  const f = floats(h);
  for (let k = lo; k < hi; k++) {
    const slot = slots + 4 * k * size;
    f.fill(0, slot / 4, slot / 4 + size);
    const r0 = k * block;
    h.simd.outerAcc(slot, nAt + 4 * r0 * narrow, 4 * narrow, wAt + 4 * r0 * wide, 4 * wide, Math.min(block, rows - r0), narrow, wide);
  }
}

/**
 * stemImages [slots, xAt, dyAt, cin, cout, ...geometry]: for each image n, slot n (taps x cin x cout floats) = the
 * filter gradient of a k x k conv over that image, x^T dy along every tap run (cout a multiple of 4).
 */
function stemImages(h: Heap, p: Params, lo: number, hi: number): void {
  const [slots, xAt, dyAt, cin, cout] = p;
  const g = unpackGeometry(p, 5);
  const { inHeight: H, inWidth: W, outHeight: oh, outWidth: ow } = g;
  const size = g.filterHeight * g.filterWidth * cin * cout;
  const f = floats(h);
  for (let n = lo; n < hi; n++) {
    const slot = slots + 4 * n * size;
    f.fill(0, slot / 4, slot / 4 + size);
    forEachTapRun(
      g,
      (r) => {
        const xAddr = xAt + 4 * ((r.n * H + r.iy) * W + r.ix0) * cin;
        const yAddr = dyAt + 4 * ((r.n * oh + r.y) * ow + r.x0) * cout;
        h.simd.outerAcc(slot + 4 * r.tap * cin * cout, xAddr, 4 * g.strideWidth * cin, yAddr, 4 * cout, r.x1 - r.x0, cin, cout);
      },
      undefined,
      n,
      n + 1,
    );
  }
}

/**
 * depthwiseFilterImages [slots, xAt, dyAt, channels, ...geometry]: for each image n, slot n (taps x channels
 * floats) = the depthwise filter gradient over that image, x * dy along every tap run (diagAcc in registers when
 * the channels come in fours, fma otherwise).
 */
function depthwiseFilterImages(h: Heap, p: Params, lo: number, hi: number): void {
  const [slots, xAt, yAt, c] = p;
  const g = unpackGeometry(p, 4);
  const { inHeight: H, inWidth: W, outHeight: oh, outWidth: ow } = g;
  const size = g.filterHeight * g.filterWidth * c;
  const row = 4 * c;
  const f = floats(h);
  for (let n = lo; n < hi; n++) {
    const slot = slots + 4 * n * size;
    f.fill(0, slot / 4, slot / 4 + size);
    forEachTapRun(
      g,
      (r) => {
        const xAddr = xAt + ((r.n * H + r.iy) * W + r.ix0) * row;
        const yAddr = yAt + ((r.n * oh + r.y) * ow + r.x0) * row;
        if (c % 4 === 0) h.simd.diagAcc(slot + r.tap * row, xAddr, g.strideWidth * row, yAddr, row, r.x1 - r.x0, c);
        else h.simd.fma(slot + r.tap * row, 0, xAddr, g.strideWidth * row, yAddr, row, r.x1 - r.x0, c);
      },
      undefined,
      n,
      n + 1,
    );
  }
}

/**
 * depthwiseInputRows [dxAt, dyAt, filterAt, channels, ...geometry]: input rows [lo, hi) of the batch (row
 * n * inHeight + iy) of a depthwise conv's input gradient, zeroed, then dy * filter added along every tap run that
 * lands in them, in the runs' order.
 */
function depthwiseInputRows(h: Heap, p: Params, lo: number, hi: number): void {
  const [dxAt, yAt, wAt, c] = p;
  const g = unpackGeometry(p, 4);
  const { inHeight: H, inWidth: W, outHeight: oh, outWidth: ow } = g;
  const row = 4 * c;
  floats(h).fill(0, (dxAt + lo * W * row) / 4, (dxAt + hi * W * row) / 4);
  forEachTapRun(
    g,
    (r) => {
      const inRow = r.n * H + r.iy;
      if (inRow < lo || inRow >= hi) return;
      h.simd.fma(dxAt + (inRow * W + r.ix0) * row, g.strideWidth * row, yAt + ((r.n * oh + r.y) * ow + r.x0) * row, row, wAt + r.tap * row, 0, r.x1 - r.x0, c);
    },
    undefined,
    Math.floor(lo / H),
    Math.ceil(hi / H),
  );
}

/**
 * columnBlocks [slots, aAt, bAt, bStep, rows, channels, block]: for each block k of `block` rows, slot k
 * (channels floats) = the per-channel sum of a * b over those rows (b's rows bStep bytes apart: 0 for a row of
 * ones).
 */
function columnBlocks(h: Heap, p: Params, lo: number, hi: number): void {
  const [slots, aAt, bAt, bStep, rows, c, block] = p;
  const f = floats(h);
  for (let k = lo; k < hi; k++) {
    const slot = slots + 4 * k * c;
    f.fill(0, slot / 4, slot / 4 + c);
    const r0 = k * block;
    h.simd.fma(slot, 0, aAt + 4 * r0 * c, 4 * c, bAt + r0 * bStep, bStep, Math.min(block, rows - r0), c);
  }
}

/** scaleShiftRows [outAt, xAt, aAt, bAt, channels]: rows [lo, hi) of out = x * a + b, a and b per channel. */
function scaleShiftRows(h: Heap, p: Params, lo: number, hi: number): void {
  const [outAt, xAt, aAt, bAt, c] = p;
  h.simd.scaleShift(outAt + 4 * lo * c, xAt + 4 * lo * c, aAt, bAt, hi - lo, c);
}

/**
 * scaleShiftClipRows [outAt, xAt, aAt, bAt, channels, lo, hi]: rows [lo, hi) of out = min(max(x * a + b, lo), hi),
 * a and b per channel (a multiple of 4 channels).
 */
function scaleShiftClipRows(h: Heap, p: Params, lo: number, hi: number): void {
  const [outAt, xAt, aAt, bAt, c, min, max] = p;
  h.simd.scaleShiftClip(outAt + 4 * lo * c, xAt + 4 * lo * c, aAt, bAt, hi - lo, c, min, max);
}

/**
 * scaleShiftClipGradBlocks [dxAt, dzAt, xAt, aAt, bAt, slots, rows, channels, block, lo, hi]: for each block k of
 * `block` rows, those rows of dx = g * a with g = dz where lo <= x * a + b <= hi (else 0), and slot k (2 x
 * channels floats) = the per-channel sums of g and of g * x over them.
 */
function scaleShiftClipGradBlocks(h: Heap, p: Params, lo: number, hi: number): void {
  const [dxAt, dzAt, xAt, aAt, bAt, slots, rows, c, block, min, max] = p;
  const f = floats(h);
  for (let k = lo; k < hi; k++) {
    const slot = slots + 8 * k * c;
    f.fill(0, slot / 4, slot / 4 + 2 * c);
    const at = 4 * k * block * c;
    h.simd.scaleShiftClipBack(dxAt + at, dzAt + at, xAt + at, aAt, bAt, slot, Math.min(block, rows - k * block), c, min, max);
  }
}

/** clipMaskQuads [outAt, xAt, dyAt, lo, hi]: groups of four [lo, hi) of out = lo <= x <= hi ? dy : 0. */
function clipMaskQuads(h: Heap, p: Params, lo: number, hi: number): void {
  const [outAt, xAt, yAt, min, max] = p;
  h.simd.clipMask(outAt + 16 * lo, xAt + 16 * lo, yAt + 16 * lo, 16 * (hi - lo), min, max);
}

/**
 * padRows [outAt, xAt, value, d, inner, inLen, outLen, before, then (inDim, outDim, before) for each dim < d]:
 * output rows [lo, hi) of a constant padding, d the last padded dimension and a row the output along it (times
 * `inner` values of the unpadded dimensions after it): the input row copied in place, `value` around it, or a
 * row of `value` where the row lies in the padding of an outer dimension.
 */
function padRows(h: Heap, p: Params, lo: number, hi: number): void {
  const [outAt, xAt, value, d, inner, inLen, outLen, before] = p;
  const f = floats(h);
  const outRow = outLen * inner;
  const inRow = inLen * inner;
  const head = before * inner;
  for (let r = lo; r < hi; r++) {
    const o = outAt / 4 + r * outRow;
    let rest = r;
    let src = 0;
    let stride = 1;
    let inside = true;
    for (let i = d - 1; i >= 0 && inside; i--) {
      const [inDim, outDim, b] = [p[8 + 3 * i], p[9 + 3 * i], p[10 + 3 * i]];
      const c = rest % outDim;
      rest = (rest - c) / outDim;
      inside = c >= b && c - b < inDim;
      src += (c - b) * stride;
      stride *= inDim;
    }
    if (!inside) {
      f.fill(value, o, o + outRow);
      continue;
    }
    f.fill(value, o, o + head);
    f.copyWithin(o + head, xAt / 4 + src * inRow, xAt / 4 + (src + 1) * inRow);
    f.fill(value, o + head + inRow, o + outRow);
  }
}

export const TASKS = {
  padRows,
  outerBlocks,
  stemImages,
  depthwiseFilterImages,
  depthwiseInputRows,
  columnBlocks,
  scaleShiftRows,
  clipMaskQuads,
  scaleShiftClipRows,
  scaleShiftClipGradBlocks,
} satisfies Record<string, Task>;

export type TaskName = keyof typeof TASKS;

/** The tasks in a fixed order: the pool names a task to its workers by its index here. */
export const TASK_NAMES = Object.keys(TASKS) as TaskName[];

/** Most numbers a task takes (the pool's parameter block holds this many). */
export const MAX_TASK_PARAMS = 8 + GEOMETRY_LENGTH;

/** Slots (blocks x size float32 partials) added up in order in float64, as the kernels always summed them. */
export function sumSlots(f: Float32Array, blocks: number, size: number): Float64Array {
  const acc = new Float64Array(size);
  for (let k = 0; k < blocks; k++) {
    const o = k * size;
    for (let i = 0; i < size; i++) acc[i] += f[o + i];
  }
  return acc;
}
