// Convolution geometry shared by the conv and depthwise gradient kernels: NHWC checks, the 1x1 stride-1 case
// that is a plain matmul, and the depthwise conv's ConvInfo (the runs of a filter tap the SIMD routines sweep:
// tap_runs.ts).
import * as tf from '@tensorflow/tfjs';
import type { ConvInfo, Pad, Rounding } from './shared.js';

/** Whether a conv's data format attribute means NHWC (absent: the default, NHWC). */
export function isChannelsLast(dataFormat: unknown): boolean {
  return dataFormat === undefined || dataFormat === 'NHWC' || dataFormat === 'channelsLast';
}

export function requireChannelsLast(dataFormat: unknown, kernel: string): void {
  if (!isChannelsLast(dataFormat)) {
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
