// Conv2D for the wasm backend where the OpenBLAS products are in use: 1x1 stride-1 convs as one native product
// (FusedConv2D.ts says why), the rest on the backend's own kernel.
import { pointwiseConv, type ConvAttrs } from './FusedConv2D.js';
import { builtinKernel, wasmKernel, type Info, type KernelArgs, type WasmBackend } from './shared.js';

function conv2d(args: KernelArgs): Info {
  const { x, filter } = args.inputs as { x: Info; filter: Info };
  return pointwiseConv(args.backend as WasmBackend, x, filter, args.attrs as unknown as ConvAttrs) ?? builtinKernel('Conv2D')(args);
}

export const conv2DConfig = wasmKernel('Conv2D', conv2d, { wrapsBuiltin: true });
