// ZerovarAdam, a training kernel (not a tfjs kernel name): one variable's Adam update (tfjs's AdamOptimizer,
// applyGradients) in one pass, on the native addon's adamBlocks task, where tfjs's optimizer makes fourteen kernel
// calls per variable: a MobileNetV2 fine-tune step had 2,200 of them beside its forward and backward 1,141, each
// an engine round trip over a few values. Each op of the update is rounded as its kernel rounds it, so the new
// value and moments are the same bits. Without the addon the kernel runs the same ops in JS, still faster than
// tfjs's fourteen calls (npm run bench -- trainer ends with the three figures).
import { runNativeTask } from './parallel.js';
import { addressOf, wasmKernel, type Info, type Kernel, type KernelArgs, type WasmBackend } from './shared.js';
import { heapMemory } from './simd.js';

export const ADAM = 'ZerovarAdam';
const TASK = 'adamBlocks';
/** Values per piece of the task: enough to be worth a thread. */
const BLOCK = 1 << 14;

export interface AdamAttrs {
  beta1: number;
  beta2: number;
  epsilon: number;
  learningRate: number;
  /** 1 - beta1^t and 1 - beta2^t, as tfjs computes them in float32 from its accumulated powers. */
  oneMinusAccBeta1: number;
  oneMinusAccBeta2: number;
}

/** Outputs [new value, new first moment, new second moment]. */
function adam({ inputs, backend, attrs }: KernelArgs): Info[] {
  const b = backend as WasmBackend;
  const { value, m, v, g } = inputs as Record<string, Info>;
  const a = attrs as unknown as AdamAttrs;
  const memory = heapMemory(b);
  const count = value.shape.reduce((p, q) => p * q, 1);
  const outs = [0, 1, 2].map(() => b.makeOutput(value.shape, 'float32'));
  const f = Math.fround;
  const [b1, ob1, b2, ob2, oab1, oab2, eps, rate] = [a.beta1, 1 - a.beta1, a.beta2, 1 - a.beta2, a.oneMinusAccBeta1, a.oneMinusAccBeta2, a.epsilon, -a.learningRate].map(f);
  const params = [value, m, v, g, ...outs].map((t) => addressOf(b, t));
  params.push(count, BLOCK, b1, ob1, b2, ob2, oab1, oab2, eps, rate);
  if (memory && runNativeTask(memory, TASK, params, Math.ceil(count / BLOCK), 14 * count)) return outs;
  // Without the addon (the tests of the wasm paths): the same ops in JS. Each is a double op on float32 values
  // rounded once to float32, which for + - * / and sqrt is the float32 op's own rounding.
  const [x, mv, vv, gv, nx, nm, nv] = [value, m, v, g, ...outs].map((t) => b.typedArrayFromHeap(t) as Float32Array);
  for (let i = 0; i < count; i++) {
    const gi = gv[i];
    const mNew = f(f(mv[i] * b1) + f(gi * ob1));
    const vNew = f(f(vv[i] * b2) + f(f(gi * gi) * ob2));
    const step = f(f(mNew / oab1) / f(f(Math.sqrt(f(vNew / oab2))) + eps));
    nm[i] = mNew;
    nv[i] = vNew;
    nx[i] = f(step * rate) + x[i];
  }
  return outs;
}

export const adamConfig = wasmKernel(ADAM, adam as unknown as Kernel);
