// DepthwiseConv2dNative for the wasm backend where the native addon runs its tasks (Node, the trainer): output rows
// as the addon's depthwiseForwardRows task, shared across its threads, where XNNPACK's kernel runs on one thread of
// the single-threaded build. Without the addon (the viewer, a machine without a compiler), with a channel
// multiplier or other than float32 NHWC data: the backend's own kernel.
import { depthwiseInfo, isChannelsLast, type DepthwiseAttrs } from './conv_util.js';
import { hasNativeTask, runNativeTask } from './parallel.js';
import { addressOf, builtinKernel, wasmKernel, type Info, type KernelArgs, type WasmBackend } from './shared.js';
import { heapMemory } from './simd.js';
import { packGeometry, tapGeometry } from './tap_runs.js';

const TASK = 'depthwiseForwardRows';

function depthwiseConv2d(args: KernelArgs): Info {
  const b = args.backend as WasmBackend;
  const { x, filter } = args.inputs as { x: Info; filter: Info };
  const a = args.attrs as unknown as DepthwiseAttrs;
  const memory = heapMemory(b);
  if (!hasNativeTask(TASK) || !memory || !isChannelsLast(a.dataFormat) || x.dtype !== 'float32' || filter.dtype !== 'float32' || filter.shape[3] !== 1) {
    return builtinKernel('DepthwiseConv2dNative')(args);
  }
  const c = depthwiseInfo(x.shape, filter.shape, a, 'DepthwiseConv2dNative');
  const out = b.makeOutput([c.batchSize, c.outHeight, c.outWidth, c.outChannels], 'float32');
  const rows = c.batchSize * c.outHeight;
  const work = rows * c.outWidth * c.outChannels * (2 * c.filterHeight * c.filterWidth + 1);
  runNativeTask(memory, TASK, [addressOf(b, out), addressOf(b, x), addressOf(b, filter), c.outChannels, ...packGeometry(tapGeometry(c))], rows, work);
  return out;
}

export const depthwiseConv2dNativeConfig = wasmKernel('DepthwiseConv2dNative', depthwiseConv2d, { wrapsBuiltin: true });
