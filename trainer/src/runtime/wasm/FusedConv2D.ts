// FusedConv2D for the wasm backend where the OpenBLAS products are in use (Node, native-kernels.ts): a 1x1 stride-1
// conv without bias or activation (every pointwise conv of a MobileNet: BatchNorm follows) is one [N*H*W, Cin] x
// [Cin, Cout] product, faster on OpenBLAS than XNNPACK's conv (npm run bench -- trainer). Everything else, and
// every conv where the products are XNNPACK's, goes to the backend's own kernel. Conv2D.ts does the same for the
// plain op.
import * as tf from '@tensorflow/tfjs';
import { isChannelsLast, isPlainPointwise } from './conv_util.js';
import { builtinKernel, gemm, nativeGemmInUse, view, wasmKernel, type Info, type KernelArgs, type Pad, type Rounding, type WasmBackend } from './shared.js';

export interface ConvAttrs {
  strides: number | [number, number];
  pad: Pad;
  dataFormat?: string;
  dilations?: number | [number, number];
  dimRoundingMode?: Rounding;
}

/** The conv as one native product, or null where that does not apply (not 1x1 stride 1 NHWC, dilated, no addon). */
export function pointwiseConv(b: WasmBackend, x: Info, filter: Info, a: ConvAttrs): Info | null {
  const channelsLast = isChannelsLast(a.dataFormat);
  const d = a.dilations ?? 1;
  const dilated = Array.isArray(d) ? d.some((v) => v !== 1) : d !== 1;
  if (!nativeGemmInUse() || !channelsLast || dilated || x.dtype !== 'float32') return null;
  const c = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filter.shape as [number, number, number, number], a.strides, 1, a.pad, a.dimRoundingMode);
  if (!isPlainPointwise(c)) return null;
  const y = gemm(b, x, filter, c.batchSize * c.inHeight * c.inWidth, c.inChannels, c.outChannels);
  return view(y, [c.batchSize, c.outHeight, c.outWidth, c.outChannels]);
}

function fusedConv2d(args: KernelArgs): Info {
  const { x, filter, bias, preluActivationWeights } = args.inputs as { x: Info; filter: Info; bias?: Info; preluActivationWeights?: Info };
  const a = args.attrs as unknown as ConvAttrs & { activation?: string };
  const plain = (a.activation === undefined || a.activation === 'linear') && !bias && !preluActivationWeights;
  return (plain && pointwiseConv(args.backend as WasmBackend, x, filter, a)) || builtinKernel('FusedConv2D')(args);
}

export const fusedConv2DConfig = wasmKernel('FusedConv2D', fusedConv2d, { wrapsBuiltin: true });
