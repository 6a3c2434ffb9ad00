// PadV2 (every ZeroPadding2D: MobileNetV2 pads before each stride-2 depthwise conv) for the wasm backend, in the
// trainer: row by row, the input row copied in place between runs of the constant (padRows in tasks.ts), so the
// kernel pool can share the rows; the values are the backend's own. Anything but float32 data of rank 1 to 5 with
// non-negative paddings: the backend's kernel. The viewer keeps the backend's kernel (it has no pool).
import { runTask } from './parallel.js';
import { addressOf, builtinKernel, wasmKernel, type Info, type KernelArgs, type WasmBackend } from './shared.js';
import { simdHeap } from './simd.js';

/** Dimensions before the last padded one that padRows' parameters hold (MAX_TASK_PARAMS). */
const MAX_OUTER_DIMS = 4;

function padV2(args: KernelArgs): Info {
  const b = args.backend as WasmBackend;
  const { x } = args.inputs as { x: Info };
  const { paddings, constantValue } = args.attrs as { paddings: [number, number][]; constantValue: number };
  const shape = x.shape;
  let d = shape.length - 1;
  while (d >= 0 && paddings[d][0] === 0 && paddings[d][1] === 0) d--;
  const heap = simdHeap(b);
  const size = shape.reduce((p, q) => p * q, 1);
  if (!heap || x.dtype !== 'float32' || d < 0 || d > MAX_OUTER_DIMS || size === 0 || paddings.some(([p, q]) => p < 0 || q < 0)) {
    return builtinKernel('PadV2')(args);
  }
  const outShape = shape.map((n, i) => paddings[i][0] + n + paddings[i][1]);
  const out = b.makeOutput(outShape, 'float32');
  const inner = shape.slice(d + 1).reduce((p, q) => p * q, 1);
  const outer = Array.from({ length: d }, (_, i) => [shape[i], outShape[i], paddings[i][0]]).flat();
  const params = [addressOf(b, out), addressOf(b, x), constantValue, d, inner, shape[d], outShape[d], paddings[d][0], ...outer];
  const rows = outShape.slice(0, d).reduce((p, q) => p * q, 1);
  runTask(heap, 'padRows', params, rows, rows * outShape[d] * inner);
  return out;
}

export const padV2Config = wasmKernel('PadV2', padV2, { wrapsBuiltin: true });
