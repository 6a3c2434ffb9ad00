// The fine-tune's Adam (train/adam.ts): each variable's update as one kernel call on wasm, on the native addon or
// in JS without it, with the same bits as tfjs's AdamOptimizer and its state.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import { nativeKernels } from '../../trainer/src/runtime/native-kernels.js';
import { useNativeKernels } from '../../trainer/src/runtime/wasm/shared.js';
import { adam } from '../../trainer/src/train/adam.js';
import { values } from '../helpers/values.js';

before(async () => {
  assert.equal(await initBackend('wasm'), 'wasm');
  assert.ok(nativeKernels().addon, 'the native addon is not built: npm run build:native (g++ and libopenblas-dev, which .ci/run installs)');
});

// A 1-value bias, a filter, a tensor of more than one task block (2^14 values), and one never given a gradient.
const SHAPES = [[1], [3, 3, 8, 1], [130, 300], [7]];

/** Four steps of `opt` from the same start and gradients: each variable's value and moments after each step. */
async function train(opt: tf.Optimizer, tag: string): Promise<{ states: Float32Array[][]; kernels: string[] }> {
  const vars = SHAPES.map((s, i) => tf.variable(tf.tensor(values(s.reduce((p, q) => p * q, 1), 20 + i), s), true, `${tag}_${i}`));
  const states: Float32Array[][] = [];
  let kernels: string[] = [];
  for (let step = 0; step < 4; step++) {
    const grads: tf.NamedTensorMap = {};
    vars.slice(0, 3).forEach((v, i) => (grads[v.name] = tf.tensor(values(v.size, 100 * step + i), v.shape).mul(step === 2 ? 1e-6 : 1)));
    // Step 2's gradients are tiny: the moments' decay and the bias correction dominate.
    const run = () => opt.applyGradients(grads);
    if (step === 3) kernels = (await tf.profile(run)).kernels.map((k) => k.name);
    else run();
    tf.dispose(Object.values(grads));
    const moments = (opt as unknown as { accumulatedFirstMoment: Array<{ variable: tf.Variable }>; accumulatedSecondMoment: Array<{ variable: tf.Variable }> });
    states.push([
      ...vars.map((v) => v.dataSync() as Float32Array),
      ...moments.accumulatedFirstMoment.slice(0, 3).map((m) => m.variable.dataSync() as Float32Array),
      ...moments.accumulatedSecondMoment.slice(0, 3).map((m) => m.variable.dataSync() as Float32Array),
    ]);
  }
  tf.dispose(vars);
  return { states, kernels };
}

test("the fused Adam gives tfjs's Adam's bits, one kernel call per variable, and its state for checkpoints", async () => {
  const want = await train(tf.train.adam(1e-2), 'tfjs');
  const fused = adam(1e-2);
  const got = await train(fused, 'fused');
  got.states.forEach((s, step) => s.forEach((t, i) => assert.deepEqual(t, want.states[step][i], `step ${step}, tensor ${i}`)));
  assert.equal(got.kernels.filter((k) => k === 'ZerovarAdam').length, 3, got.kernels.join(' '));
  assert.ok(got.kernels.length <= 3 + 2 + 2, `kernel calls in one update: ${got.kernels.length} (${got.kernels.join(' ')})`);
  assert.ok(want.kernels.length >= 14 * 3, `tfjs's own update: ${want.kernels.length} kernel calls`);
  // What a checkpoint saves: the iteration count and the moments under tfjs's names.
  const w = await fused.getWeights();
  assert.equal(w[0].name, 'iter');
  assert.equal((await w[0].tensor.data())[0], 4);
  assert.deepEqual(w.slice(1).map((x) => x.name).sort(), ['fused_0/m', 'fused_0/v', 'fused_1/m', 'fused_1/v', 'fused_2/m', 'fused_2/v']);
  assert.equal(fused.getClassName(), 'Adam');
});

test("without the native addon the fused update runs in JS, with tfjs's bits still", async () => {
  const { addon } = nativeKernels();
  try {
    useNativeKernels(null);
    const want = await train(tf.train.adam(1e-2), 'plainA');
    const got = await train(adam(1e-2), 'plainB');
    got.states.forEach((s, step) => s.forEach((t, i) => assert.deepEqual(t, want.states[step][i], `step ${step}, tensor ${i}`)));
    assert.equal(got.kernels.filter((k) => k === 'ZerovarAdam').length, 3, got.kernels.join(' '));
  } finally {
    useNativeKernels(addon, 1);
  }
});
