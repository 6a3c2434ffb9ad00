// The runs of a filter tap along an output row, which the conv and depthwise gradient kernels sweep in place with
// the SIMD routines. Free of tfjs: the kernel pool's workers walk the same runs, from the geometry packed into
// a task's numeric parameters.
import type { ConvInfo } from './shared.js';

/** What the runs depend on: ConvInfo's sizes, strides, dilations and leading padding. */
export interface TapGeometry {
  batchSize: number;
  inHeight: number;
  inWidth: number;
  outHeight: number;
  outWidth: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  dilationHeight: number;
  dilationWidth: number;
  padTop: number;
  padLeft: number;
}

const FIELDS = [
  'batchSize', 'inHeight', 'inWidth', 'outHeight', 'outWidth', 'filterHeight', 'filterWidth',
  'strideHeight', 'strideWidth', 'dilationHeight', 'dilationWidth', 'padTop', 'padLeft',
] as const satisfies readonly (keyof TapGeometry)[];

/** Numbers a packed geometry takes in a task's parameters. */
export const GEOMETRY_LENGTH = FIELDS.length;

export function tapGeometry(c: ConvInfo): TapGeometry {
  return { ...c, padTop: c.padInfo.top, padLeft: c.padInfo.left };
}

export function packGeometry(g: TapGeometry): number[] {
  return FIELDS.map((f) => g[f]);
}

/** The geometry packed at `p[at...]`. */
export function unpackGeometry(p: ArrayLike<number>, at: number): TapGeometry {
  const g = {} as TapGeometry;
  FIELDS.forEach((f, i) => (g[f] = p[at + i]));
  return g;
}

/** Output columns [x0, x1) whose input column x * stride + offset falls inside [0, width). */
function validColumns(offset: number, stride: number, width: number, outWidth: number): [number, number] {
  const x0 = Math.max(0, Math.ceil(-offset / stride));
  const x1 = Math.min(outWidth, Math.floor((width - 1 - offset) / stride) + 1);
  return [x0, x1];
}

/** One run of a filter tap along an output row: output pixels [x0, x1) of row y meet input row iy from column ix0. */
export interface TapRun {
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
 * Every (image, output row, filter tap) with the output columns whose input lies inside the image, for images
 * [n0, n1) (default: all): along such a run the input pixels are evenly spaced (stride), so a SIMD routine can
 * sweep it in place. `afterImage` runs once an image is done.
 */
export function forEachTapRun(g: TapGeometry, visit: (run: TapRun) => void, afterImage?: (n: number) => void, n0 = 0, n1 = g.batchSize): void {
  const { filterHeight: fh, filterWidth: fw, inHeight: H, inWidth: W, outHeight: oh, outWidth: ow } = g;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = g;
  for (let n = n0; n < n1; n++) {
    for (let y = 0; y < oh; y++) {
      for (let i = 0; i < fh; i++) {
        const iy = y * sh - g.padTop + i * dh;
        if (iy < 0 || iy >= H) continue;
        for (let j = 0; j < fw; j++) {
          const offset = j * dw - g.padLeft;
          const [x0, x1] = validColumns(offset, sw, W, ow);
          if (x1 > x0) visit({ n, y, tap: i * fw + j, iy, x0, x1, ix0: x0 * sw + offset });
        }
      }
    }
    afterImage?.(n);
  }
}
