// Conv2DBackpropInput for the wasm backend: 1x1 stride-1 convs (most of a MobileNet's) as one matmul with the
// transposed filter on the backend's XNNPACK path; everything else goes to the backend's own kernel.
import * as tf from '@tensorflow/tfjs';
import { isPlainPointwise } from './conv_util.js';
import { builtinKernel, free, matmul, transpose2d, view, wasmKernel, type Info, type KernelArgs, type Pad, type Rounding, type WasmBackend } from './shared.js';

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
  }
  return builtinKernel('Conv2DBackpropInput')(args);
}

export const conv2DBackpropInputConfig = wasmKernel('Conv2DBackpropInput', conv2dBackpropInput, { wrapsBuiltin: true });
