// Convolution geometry shared by the conv and depthwise gradient kernels: NHWC checks, the 1x1 stride-1 case
// that is a plain matmul, and the runs of a filter tap along an output row that the SIMD routines sweep in place.
import * as tf from '@tensorflow/tfjs';
import type { ConvInfo, Pad, Rounding } from './shared.js';

export function requireChannelsLast(dataFormat: unknown, kernel: string): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new Error(`${kernel} on wasm: only NHWC data is supported (got ${String(dataFormat)})`);
  }
}

export function isPlainPointwise(c: ConvInfo): boolean {
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

export interface DepthwiseAttrs {
  strides: number | [number, number];
  dilations?: number | [number, number];
  pad: Pad;
  dimRoundingMode?: Rounding;
  dataFormat?: string;
}

export function depthwiseInfo(xShape: number[], filterShape: number[], a: DepthwiseAttrs, kernel: string): ConvInfo {
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
 * Every (image, output row, filter tap) with the output columns whose input lies inside the image: along such a
 * run the input pixels are evenly spaced (stride), so a SIMD routine can sweep it in place. `afterImage` runs
 * once an image is done.
 */
export function forEachTapRun(c: ConvInfo, visit: (run: TapRun) => void, afterImage?: (n: number) => void): void {
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
