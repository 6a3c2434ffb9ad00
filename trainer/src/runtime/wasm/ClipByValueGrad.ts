// ZerovarClipByValueGrad, the helper kernel of the ClipByValue / Relu / Relu6 gradients (ClipByValue_grad.ts;
// not a tfjs kernel name): dx = lo <= x <= hi ? dy : 0 in one SIMD pass over the heap (clipMask), JS for the tail.
import { addressOf, wasmKernel, type Info, type KernelArgs, type WasmBackend } from './shared.js';
import { runTask } from './parallel.js';
import { simdHeap } from './simd.js';

export const CLIP_GRAD = 'ZerovarClipByValueGrad';

function clipGrad({ inputs, backend, attrs }: KernelArgs): Info {
  const b = backend as WasmBackend;
  const { x, dy } = inputs as { x: Info; dy: Info };
  const { clipValueMin: lo, clipValueMax: hi } = attrs as { clipValueMin: number; clipValueMax: number };
  const out = b.makeOutput(x.shape, 'float32');
  const n = x.shape.reduce((p, q) => p * q, 1);
  // SIMD over whole groups of four (f32 bounds: the comparisons happen in float32 either way), JS for the rest.
  const heap = simdHeap(b);
  const vectorEnd = heap ? n - (n % 4) : 0;
  if (heap && vectorEnd) runTask(heap, 'clipMaskQuads', [addressOf(b, out), addressOf(b, x), addressOf(b, dy), lo, hi], vectorEnd / 4, 3 * vectorEnd);
  const o = b.typedArrayFromHeap(out) as Float32Array;
  const xv = b.typedArrayFromHeap(x) as Float32Array;
  const g = b.typedArrayFromHeap(dy) as Float32Array;
  for (let i = vectorEnd; i < n; i++) {
    const v = xv[i];
    o[i] = v >= lo && v <= hi ? g[i] : 0;
  }
  return out;
}

export const clipByValueGradConfig = wasmKernel(CLIP_GRAD, clipGrad);
