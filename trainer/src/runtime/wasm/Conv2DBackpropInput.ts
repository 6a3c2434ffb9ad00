// Conv2DBackpropInput for the wasm backend: 1x1 stride-1 convs (most of a MobileNet's) as one matrix product with
// the transposed filter (OpenBLAS's where it is in use, else XNNPACK's), and stride-1 convs with symmetric padding (the segmenter's 3x3 'same' convs) as a forward
// conv with the flipped filter, both on the backend's XNNPACK path; everything else goes to the backend's own
// kernel, whose backprop loop is 5-10x slower than a forward conv.
import * as tf from '@tensorflow/tfjs';
import { isPlainPointwise } from './conv_util.js';
import { builtinKernel, free, gemm, kernelOf, view, wasmKernel, type Info, type KernelArgs, type Pad, type Rounding, type WasmBackend } from './shared.js';

function conv2dBackpropInput(args: KernelArgs): Info {
  const { inputs, backend, attrs } = args;
  const b = backend as WasmBackend;
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  const a = attrs as { strides: number | [number, number]; pad: Pad; dataFormat?: string; dimRoundingMode?: Rounding; inputShape: [number, number, number, number] };
  const channelsLast = a.dataFormat === undefined || a.dataFormat === 'NHWC';
  if (channelsLast) {
    const c = tf.backend_util.computeConv2DInfo(a.inputShape, filter.shape as [number, number, number, number], a.strides, 1, a.pad, a.dimRoundingMode);
    if (isPlainPointwise(c)) {
      // dx = dy W^T, the filter [Cin, Cout] read transposed.
      const dx = gemm(b, dy, filter, c.batchSize * c.inHeight * c.inWidth, c.outChannels, c.inChannels, { transB: true });
      return view(dx, a.inputShape);
    }
    const p = c.padInfo;
    if (c.strideHeight === 1 && c.strideWidth === 1 && 2 * p.top === c.filterHeight - 1 && p.top === p.bottom && 2 * p.left === c.filterWidth - 1 && p.left === p.right) {
      // dx is the 'same' forward conv of dy with the flipped, transposed filter.
      const fT = kernelOf('Transpose')({ inputs: { x: filter }, backend: b, attrs: { perm: [0, 1, 3, 2] } });
      const flipped = kernelOf('Reverse')({ inputs: { x: fT }, backend: b, attrs: { dims: [0, 1] } });
      const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1, dimRoundingMode: undefined };
      const dx = kernelOf('Conv2D')({ inputs: { x: dy, filter: flipped }, backend: b, attrs });
      free(b, fT, flipped);
      return dx;
    }
  }
  return builtinKernel('Conv2DBackpropInput')(args);
}

export const conv2DBackpropInputConfig = wasmKernel('Conv2DBackpropInput', conv2dBackpropInput, { wrapsBuiltin: true });
