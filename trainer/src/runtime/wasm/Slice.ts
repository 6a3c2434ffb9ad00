// Slice for the wasm backend (the gradient of every zero padding, and slices in inference): copies runs of
// contiguous values instead of the backend's per-value walk. Numeric dtypes; strings go to the backend's kernel.
import * as tf from '@tensorflow/tfjs';
import { builtinKernel, wasmKernel, type Info, type KernelArgs, type WasmBackend } from './shared.js';

function slice(args: KernelArgs): Info {
  const b = args.backend as WasmBackend;
  const { x } = args.inputs as { x: Info };
  const rank = x.shape.length;
  const a = args.attrs as { begin: number | number[]; size: number | number[] };
  if (x.dtype === 'string' || rank === 0) return builtinKernel('Slice')(args);
  const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tf.TensorInfo as never, a.begin, a.size);
  const out = b.makeOutput(size, x.dtype);
  if (size.some((d) => d === 0)) return out;
  // Trailing dimensions taken whole join into one run with the last partial one.
  let d = rank - 1;
  let inner = 1;
  while (d > 0 && begin[d] === 0 && size[d] === x.shape[d]) inner *= x.shape[d--];
  const run = size[d] * inner;
  const strides = x.shape.map((_, i) => x.shape.slice(i + 1).reduce((p, q) => p * q, 1));
  const src = b.typedArrayFromHeap(x);
  const dst = b.typedArrayFromHeap(out);
  const idx = new Array<number>(d).fill(0);
  for (let o = 0; o < dst.length; o += run) {
    let at = begin[d] * strides[d];
    for (let i = 0; i < d; i++) at += (begin[i] + idx[i]) * strides[i];
    dst.set(src.subarray(at, at + run), o);
    for (let i = d - 1; i >= 0 && ++idx[i] === size[i]; i--) idx[i] = 0; // odometer over the outer dimensions
  }
  return out;
}

export const sliceConfig = wasmKernel('Slice', slice, { wrapsBuiltin: true });
