import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import { registerTrainingKernels } from '../../trainer/src/runtime/wasm/register.js';
import { BATCH_NORM_RELU, batchNormRelu } from '../../trainer/src/runtime/wasm/BatchNormRelu.js';
import { mobileNetV2 } from '../../trainer/src/model/mobilenet-v2.js';
import { runGraphFrom } from '../../trainer/src/model/graph-run.js';
import { fineTune, missingGradientKernels } from '../../trainer/src/train/finetune.js';
import { nativeKernels } from '../../trainer/src/runtime/native-kernels.js';
import { useNativeKernels } from '../../trainer/src/runtime/wasm/shared.js';
import { values } from '../helpers/values.js';

const NOT_BUILT = 'the OpenBLAS addon is not built: npm run build:native (it needs g++ and libopenblas-dev, which .ci/run installs)';

const NAMES = [
  'PadV2',
  'Conv2D',
  'FusedConv2D',
  'Conv2DBackpropFilter',
  'Conv2DBackpropInput',
  'DepthwiseConv2dNativeBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
  'DepthwiseConv2dNative',
  'FusedBatchNorm',
  'Slice',
  'Identity',
  'Cast',
];

before(async () => {
  assert.equal(await initBackend('wasm'), 'wasm');
});

type Kind = 'conv' | 'depthwise';
interface Case {
  kind: Kind;
  x: [number, number, number, number];
  filter: [number, number, number, number];
  stride: number;
  /** Explicit: [[0, 0], [top, bottom], [left, right], [0, 0]], as the training forward passes a zero padding. */
  pad: 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
}

/** dL/dx and dL/dfilter of sum(conv(x, filter) * r) on the given backend (r: fixed random weights). */
async function gradients(backend: string, c: Case): Promise<{ y: Float32Array; dx: Float32Array; dw: Float32Array; leaked: number }> {
  await tf.setBackend(backend);
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const x = tf.tensor4d(values(size(c.x), 1), c.x);
  const w = tf.tensor4d(values(size(c.filter), 2), c.filter);
  const conv = (xx: tf.Tensor, ww: tf.Tensor) =>
    c.kind === 'conv'
      ? tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.stride, c.pad)
      : tf.depthwiseConv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.stride, c.pad);
  const yt = conv(x, w);
  const [outShape, y] = [yt.shape, (await yt.data()) as Float32Array];
  yt.dispose();
  const r = tf.tensor(values(size(outShape), 3), outShape);
  const before = tf.engine().backend.numDataIds();
  const [dx, dw] = tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(conv(xx, ww), r)))([x, w]);
  const out = { dx: (await dx!.data()) as Float32Array, dw: (await dw!.data()) as Float32Array };
  tf.dispose([dx!, dw!]);
  const leaked = tf.engine().backend.numDataIds() - before;
  tf.dispose([x, w, r]);
  return { ...out, y, leaked };
}

function relativeError(got: Float32Array, want: Float32Array): number {
  assert.equal(got.length, want.length);
  let diff = 0;
  let mag = 0;
  for (let i = 0; i < got.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    mag = Math.max(mag, Math.abs(want[i]));
  }
  assert.ok(mag > 0, 'reference gradient is all zeros');
  return diff / mag;
}

const CASES: Case[] = [
  // 1x1 convs: the matmul route (stride 1) and the im2col route (stride 2 subsamples).
  { kind: 'conv', x: [3, 7, 9, 5], filter: [1, 1, 5, 6], stride: 1, pad: 'same' },
  { kind: 'conv', x: [3, 5, 7, 9], filter: [1, 1, 9, 4], stride: 1, pad: 'valid' }, // more inputs than outputs: x is transposed, dy packed
  { kind: 'conv', x: [2, 9, 11, 3], filter: [1, 1, 3, 20], stride: 1, pad: 'same' }, // direct SIMD path: 16 + 4 columns
  { kind: 'conv', x: [4, 30, 30, 12], filter: [1, 1, 12, 8], stride: 1, pad: 'valid' }, // direct SIMD path, swapped, two row blocks
  { kind: 'conv', x: [2, 9, 7, 8], filter: [1, 1, 8, 3], stride: 2, pad: 'valid' },
  // 3x3 convs: im2col + matmul for the filter, the backend's own kernel for the input.
  { kind: 'conv', x: [3, 7, 9, 5], filter: [3, 3, 5, 6], stride: 1, pad: 'same' },
  { kind: 'conv', x: [3, 7, 9, 5], filter: [3, 3, 5, 6], stride: 2, pad: 'same' },
  { kind: 'conv', x: [2, 8, 11, 3], filter: [3, 3, 3, 4], stride: 2, pad: 'valid' },
  { kind: 'conv', x: [2, 6, 5, 4], filter: [3, 2, 4, 5], stride: 1, pad: 'valid' },
  // Direct SIMD accumulation of filter gradients (cout a multiple of 4, few input channels): padding on every side.
  { kind: 'conv', x: [2, 9, 8, 3], filter: [3, 3, 3, 20], stride: 2, pad: 'same' },
  { kind: 'conv', x: [3, 7, 6, 2], filter: [3, 3, 2, 8], stride: 1, pad: 'same' },
  { kind: 'conv', x: [1, 10, 10, 5], filter: [5, 3, 5, 4], stride: 1, pad: 'valid' },
  // Stride-1 'same' input gradients as forward convs of the flipped filter (odd sides); an even side keeps the backend's.
  { kind: 'conv', x: [2, 9, 10, 5], filter: [5, 3, 5, 4], stride: 1, pad: 'same' },
  { kind: 'conv', x: [2, 8, 7, 4], filter: [2, 3, 4, 5], stride: 1, pad: 'same' },
  // Depthwise: channel counts with and without a SIMD-width remainder, multiplier 2 on the plain-JS route.
  { kind: 'depthwise', x: [3, 7, 9, 5], filter: [3, 3, 5, 1], stride: 1, pad: 'same' },
  { kind: 'depthwise', x: [3, 7, 9, 8], filter: [3, 3, 8, 1], stride: 2, pad: 'same' },
  { kind: 'depthwise', x: [2, 9, 8, 12], filter: [3, 3, 12, 1], stride: 2, pad: 'valid' },
  { kind: 'depthwise', x: [2, 6, 7, 7], filter: [3, 3, 7, 1], stride: 1, pad: 'valid' },
  { kind: 'depthwise', x: [2, 8, 8, 3], filter: [3, 3, 3, 2], stride: 2, pad: 'same' },
  { kind: 'depthwise', x: [2, 7, 7, 6], filter: [1, 1, 6, 1], stride: 1, pad: 'same' },
  { kind: 'depthwise', x: [2, 6, 5, 20], filter: [3, 3, 20, 1], stride: 1, pad: 'same' }, // register sums: 16 + 4 channels
  // Channels in eights: the forward's and the stride-1 input gradient's sums in vector lanes (8 to 32 channels a
  // pass, several columns at a time inside the image, one at a time at its edges; tiny images are all edge).
  { kind: 'depthwise', x: [2, 7, 11, 24], filter: [3, 3, 24, 1], stride: 1, pad: 'same' },
  { kind: 'depthwise', x: [2, 9, 10, 40], filter: [3, 3, 40, 1], stride: 1, pad: 'valid' },
  { kind: 'depthwise', x: [1, 9, 13, 32], filter: [5, 5, 32, 1], stride: 1, pad: 'same' },
  { kind: 'depthwise', x: [3, 2, 2, 16], filter: [3, 3, 16, 1], stride: 1, pad: 'same' },
  { kind: 'depthwise', x: [2, 5, 1, 8], filter: [3, 3, 8, 1], stride: 1, pad: 'same' },
  { kind: 'depthwise', x: [2, 6, 9, 56], filter: [3, 2, 56, 1], stride: 1, pad: [[0, 0], [2, 0], [0, 3], [0, 0]] },
  // Explicit padding (a zero padding folded into a 'valid' conv): MobileNetV2's stride-2 blocks and its stem (RGB into
  // 16 channels, the stem's register sums).
  { kind: 'depthwise', x: [2, 9, 8, 16], filter: [3, 3, 16, 1], stride: 2, pad: [[0, 0], [0, 1], [0, 1], [0, 0]] },
  { kind: 'depthwise', x: [2, 8, 7, 12], filter: [3, 3, 12, 1], stride: 2, pad: [[0, 0], [1, 0], [2, 1], [0, 0]] },
  { kind: 'conv', x: [2, 9, 8, 3], filter: [3, 3, 3, 16], stride: 2, pad: 'same' },
  { kind: 'conv', x: [2, 8, 9, 3], filter: [3, 3, 3, 8], stride: 1, pad: 'same' },
  { kind: 'conv', x: [2, 9, 9, 3], filter: [3, 3, 3, 24], stride: 2, pad: 'valid' },
  { kind: 'conv', x: [2, 11, 10, 3], filter: [3, 3, 3, 32], stride: 2, pad: 'same' }, // MobileNetV2 1.0's stem
  { kind: 'conv', x: [2, 10, 9, 3], filter: [3, 3, 3, 16], stride: 2, pad: [[0, 0], [0, 1], [0, 1], [0, 0]] },
];

test('registers the missing conv gradient kernels for wasm, once', () => {
  const names = registerTrainingKernels();
  assert.deepEqual([...names].sort(), [...NAMES].sort());
  assert.deepEqual(registerTrainingKernels().sort(), [...NAMES].sort());
  for (const n of NAMES) assert.ok(tf.getKernel(n, 'wasm'), `${n} is registered for wasm`);
});

test('Identity on wasm shares the data under a reference count: the clone outlives its source', () => {
  const a = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
  const before = tf.memory().numDataBuffers;
  const b = tf.clone(a);
  assert.equal(tf.memory().numDataBuffers, before, 'no second copy of the data');
  a.dispose();
  assert.deepEqual(Array.from(b.dataSync()), [1, 2, 3, 4, 5, 6]);
  // Writing through an op makes new data; the clone is untouched by the source's variable updates too.
  const v = tf.variable(tf.tensor1d([1, 2]));
  const saved = tf.clone(v);
  v.assign(tf.tensor1d([7, 8]));
  assert.deepEqual(Array.from(saved.dataSync()), [1, 2]);
  assert.deepEqual(Array.from(v.dataSync()), [7, 8]);
  tf.dispose([b, v, saved]);
  const s = tf.clone(tf.tensor1d(['x', 'y'], 'string'));
  assert.deepEqual(s.arraySync(), ['x', 'y']);
  // Cast to the same dtype shares too; to another dtype converts.
  const f = tf.tensor1d([1.5, -2.5]);
  const buffers = tf.memory().numDataBuffers;
  const same = tf.cast(f, 'float32');
  assert.equal(tf.memory().numDataBuffers, buffers);
  const ints = tf.cast(f, 'int32');
  assert.equal(ints.dtype, 'int32');
  assert.deepEqual(Array.from(ints.dataSync()), [1, -2]);
  f.dispose();
  assert.deepEqual(Array.from(same.dataSync()), [1.5, -2.5]);
  tf.dispose([same, ints, s]);
});

// Every case runs on the native addon (its OpenBLAS products and compiled tasks: the default where it is built)
// and on the wasm kernels alone (XNNPACK's products and the SIMD routines, as in the browser).
const KERNELS = ['native', 'wasm'] as const;

for (const c of CASES) for (const kernels of KERNELS) {
  const label = `${c.kind} x=[${c.x}] filter=[${c.filter}] stride ${c.stride} ${typeof c.pad === 'string' ? c.pad : JSON.stringify(c.pad)} (${kernels} kernels)`;
  test(`gradients on wasm match the cpu backend: ${label}`, async () => {
    const { addon } = nativeKernels();
    if (kernels === 'native') assert.ok(addon, NOT_BUILT);
    useNativeKernels(kernels === 'native' ? addon : null);
    try {
      const wasm = await gradients('wasm', c);
      const cpu = await gradients('cpu', c);
      assert.ok(relativeError(wasm.y, cpu.y) <= 1e-5, `output relative error ${relativeError(wasm.y, cpu.y)}`);
      assert.ok(relativeError(wasm.dx, cpu.dx) <= 1e-5, `dx relative error ${relativeError(wasm.dx, cpu.dx)}`);
      assert.ok(relativeError(wasm.dw, cpu.dw) <= 1e-5, `dfilter relative error ${relativeError(wasm.dw, cpu.dw)}`);
      assert.equal(wasm.leaked, 0, 'the wasm kernels free their intermediate buffers');
    } finally {
      useNativeKernels(addon);
      await tf.setBackend('wasm');
    }
  });
}

test('gradients agree at MobileNet-like sizes (batch 4, 32x32, 48 channels)', async () => {
  try {
    for (const c of [
      { kind: 'depthwise', x: [4, 32, 32, 48], filter: [3, 3, 48, 1], stride: 2, pad: 'same' },
      { kind: 'conv', x: [4, 32, 32, 48], filter: [1, 1, 48, 16], stride: 1, pad: 'same' },
    ] as Case[]) {
      const wasm = await gradients('wasm', c);
      const cpu = await gradients('cpu', c);
      assert.ok(relativeError(wasm.dx, cpu.dx) <= 1e-4, `${c.kind} dx`);
      assert.ok(relativeError(wasm.dw, cpu.dw) <= 1e-4, `${c.kind} dfilter`);
    }
  } finally {
    await tf.setBackend('wasm');
  }
});

for (const c of [6, 8]) {
  test(`BatchNormalization and ReLU6 gradients (replaced for speed) match the cpu backend: ${c} channels${c % 4 ? '' : ', the one-pass kernel on wasm'}`, async () => {
    // Trainable BN scale/offset in inference mode, as fine-tuning runs it, between convs; ReLU6 is a clip to [0, 6].
    const gradsOn = async (backend: string) => {
      await tf.setBackend(backend);
      const x = tf.tensor4d(values(3 * 7 * 9 * 5, 4), [3, 7, 9, 5]).mul(4) as tf.Tensor4D;
      const w = tf.tensor4d(values(3 * 3 * 5 * c, 5), [3, 3, 5, c]);
      const mean = tf.tensor1d(values(c, 6));
      const variance = tf.tensor1d(values(c, 7)).abs().add(0.5) as tf.Tensor1D;
      const gamma = tf.tensor1d(values(c, 8)).add(1.5) as tf.Tensor1D;
      const beta = tf.tensor1d(values(c, 9));
      const r = tf.tensor(values(3 * 7 * 9 * c, 10), [3, 7, 9, c]);
      const f = (ww: tf.Tensor, g: tf.Tensor, bb: tf.Tensor, m: tf.Tensor, v: tf.Tensor) =>
        tf.sum(tf.mul(tf.clipByValue(tf.batchNorm4d(tf.conv2d(x, ww as tf.Tensor4D, 1, 'same'), m as tf.Tensor1D, v as tf.Tensor1D, bb as tf.Tensor1D, g as tf.Tensor1D, 1e-3), 0, 6), r));
      let gs: tf.Tensor[] = [];
      const kernels = (await tf.profile(() => void (gs = tf.grads(f)([w, gamma, beta, mean, variance])))).kernels.map((k) => k.name);
      const out = await Promise.all(gs.map((g) => g.data() as Promise<Float32Array>));
      tf.dispose([x, w, mean, variance, gamma, beta, r, ...gs]);
      return { out, kernels };
    };
    try {
      const wasm = await gradsOn('wasm');
      const cpu = await gradsOn('cpu');
      ['filter', 'gamma', 'beta', 'mean', 'variance'].forEach((name, i) => {
        const e = relativeError(wasm.out[i], cpu.out[i]);
        assert.ok(e <= 1e-5, `${name}: relative error ${e}`);
      });
      // Channels in fours: the BatchNorm's gradient is one kernel call, not the column sums and the scaling.
      const onePass = wasm.kernels.includes('ZerovarBatchNormReluGrad') && !wasm.kernels.includes('ZerovarColumnDot');
      assert.equal(onePass, c % 4 === 0, wasm.kernels.join(' '));
    } finally {
      await tf.setBackend('wasm');
    }
  });
}

test('BatchNorm + ReLU as one op on wasm: values and all five gradients match the two ops on the cpu backend, capped and not', async () => {
  // 2 x 300 rows (more than one 256-row block of sums) x 12 channels; values spread so the mask cuts at 0 and at 6.
  const shape = [2, 15, 20, 12];
  const n = shape.reduce((a, b) => a * b, 1);
  const on = async (backend: string, max: number, fused: boolean) => {
    await tf.setBackend(backend);
    const x = tf.tensor(values(n, 31), shape).mul(6);
    const mean = tf.tensor1d(values(12, 32));
    const variance = tf.tensor1d(values(12, 33)).abs().add(0.5) as tf.Tensor1D;
    const scale = tf.tensor1d(values(12, 34)).add(1.5) as tf.Tensor1D;
    const offset = tf.tensor1d(values(12, 35)).add(1);
    const r = tf.tensor(values(n, 36), shape);
    const f = (xx: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, o: tf.Tensor) => {
      const p = { mean: m as tf.Tensor1D, variance: v as tf.Tensor1D, scale: g as tf.Tensor1D, offset: o as tf.Tensor1D, varianceEpsilon: 1e-3 };
      const y = fused ? batchNormRelu(xx, p, max) : undefined;
      assert.ok(!fused || y, 'the fused op runs on wasm');
      const out = y ?? tf.clipByValue(tf.batchNorm(xx, p.mean, p.variance, p.offset, p.scale, 1e-3), 0, max);
      return tf.sum(tf.mul(out, r));
    };
    const value = f(x, mean, variance, scale, offset);
    const gs = tf.grads(f)([x, mean, variance, scale, offset]);
    const out = { value: (await value.data())[0], grads: await Promise.all(gs.map((g) => g.data() as Promise<Float32Array>)) };
    tf.dispose([x, mean, variance, scale, offset, r, value, ...gs]);
    return out;
  };
  try {
    for (const max of [6, Infinity]) {
      const wasm = await on('wasm', max, true);
      const cpu = await on('cpu', max, false);
      assert.ok(Math.abs(wasm.value - cpu.value) <= 1e-4 * Math.abs(cpu.value), `max ${max}: value ${wasm.value} against ${cpu.value}`);
      ['x', 'mean', 'variance', 'scale', 'offset'].forEach((name, i) => {
        const e = relativeError(wasm.grads[i], cpu.grads[i]);
        assert.ok(e <= 1e-5, `max ${max}, ${name}: relative error ${e}`);
      });
      // The mask did cut: some x gradients are zero, some are not.
      const zeros = wasm.grads[0].filter((v) => v === 0).length;
      assert.ok(zeros > n / 10 && zeros < n, `max ${max}: ${zeros} of ${n} x gradients are zero`);
    }
    await tf.setBackend('wasm');
    // Channels not in fours, or another backend: no fused op (the caller runs the two ops).
    const odd = tf.ones([2, 3, 3, 5]);
    const p5 = { mean: tf.zeros([5]), variance: tf.ones([5]), scale: tf.ones([5]), offset: tf.zeros([5]), varianceEpsilon: 1e-3 } as const;
    assert.equal(batchNormRelu(odd, p5 as never, 6), undefined);
    tf.dispose([odd, ...Object.values(p5).filter((t): t is tf.Tensor => t instanceof tf.Tensor)]);
  } finally {
    await tf.setBackend('wasm');
  }
});

test('the training forward runs each BatchNorm + ReLU6 of MobileNetV2 as one op, with the gradients of the layers one by one', async () => {
  const model = mobileNetV2(0.35, 64);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  // Random BN statistics and parameters, so that the masks cut and no gradient is trivially zero.
  model.weights.forEach((w, i) => {
    const v = w.read() as tf.Variable;
    if (/moving_variance|gamma/.test(v.name)) v.assign(tf.randomUniform(v.shape, 0.5, 1.5, 'float32', i));
    else if (/moving_mean|beta/.test(v.name)) v.assign(tf.randomUniform(v.shape, -0.3, 0.3, 'float32', i));
    else if (v.name.includes('kernel')) v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', i));
  });
  const x = tf.tensor(values(2 * 64 * 64 * 3, 40), [2, 64, 64, 3]);
  const labels = tf.tensor2d([[1, 0], [0, 1]]);
  const step = () =>
    tf.variableGrads(() => {
      const [probs] = runGraphFrom([model.outputs[0]], new Map([[model.inputs[0].id, x]]), true);
      return tf.losses.softmaxCrossEntropy(labels, tf.log(tf.clipByValue(probs!, 1e-7, 1))) as tf.Scalar;
    }, vars);
  const kernels = (await tf.profile(() => tf.dispose(Object.values(step().grads)))).kernels.map((k) => k.name);
  const pairs = model.layers.filter((l) => l.getClassName() === 'ReLU').length;
  assert.equal(kernels.filter((k) => k === BATCH_NORM_RELU).length, pairs, 'one fused op per BatchNorm + ReLU6');
  assert.ok(!kernels.includes('Relu6'), 'no ReLU6 left on its own');
  const fused = step();
  const config = tf.getKernel(BATCH_NORM_RELU, 'wasm')!;
  tf.unregisterKernel(BATCH_NORM_RELU, 'wasm');
  let apart: ReturnType<typeof step>;
  try {
    apart = step();
  } finally {
    tf.registerKernel(config);
  }
  assert.equal(fused.value.dataSync()[0], apart.value.dataSync()[0], 'the loss is the same bits');
  for (const v of vars) {
    const e = relativeError(fused.grads[v.name].dataSync() as Float32Array, apart.grads[v.name].dataSync() as Float32Array);
    assert.ok(e <= 1e-4, `${v.name}: relative error ${e}`);
  }
  tf.dispose([x, labels, fused.value, apart.value, ...Object.values(fused.grads), ...Object.values(apart.grads)]);
  model.dispose();
});

test('the training forward folds each zero padding into the conv that reads it: no pad or slice, the layers\' loss and gradients', async () => {
  const model = mobileNetV2(0.35, 64);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  model.weights.forEach((w, i) => {
    const v = w.read() as tf.Variable;
    if (v.name.includes('kernel')) v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', i));
  });
  const x = tf.tensor(values(2 * 64 * 64 * 3, 41), [2, 64, 64, 3]);
  const labels = tf.tensor2d([[1, 0], [0, 1]]);
  const step = (forward: () => tf.Tensor) =>
    tf.variableGrads(() => tf.losses.softmaxCrossEntropy(labels, tf.log(tf.clipByValue(forward(), 1e-7, 1))) as tf.Scalar, vars);
  const training = () => runGraphFrom([model.outputs[0]], new Map([[model.inputs[0].id, x]]), true)[0];
  const layers = () => model.apply(x, { training: false }) as tf.Tensor;
  const kernelsOf = async (forward: () => tf.Tensor) => (await tf.profile(() => tf.dispose(Object.values(step(forward).grads)))).kernels.map((k) => k.name);
  const pads = model.layers.filter((l) => l.getClassName() === 'ZeroPadding2D').length;
  assert.ok(pads >= 2, 'the model has zero paddings');
  assert.equal((await kernelsOf(layers)).filter((k) => k === 'PadV2').length, pads, 'the layers pad');
  const folded = await kernelsOf(training);
  assert.ok(!folded.includes('PadV2') && !folded.includes('Slice'), `no pad or slice left: ${folded.filter((k) => k === 'PadV2' || k === 'Slice').join(', ')}`);
  const a = step(training);
  const b = step(layers);
  const la = a.value.dataSync()[0];
  const lb = b.value.dataSync()[0];
  assert.ok(Math.abs(la - lb) <= 1e-5 * Math.abs(lb), `loss ${la} against ${lb}`);
  for (const v of vars) {
    const e = relativeError(a.grads[v.name].dataSync() as Float32Array, b.grads[v.name].dataSync() as Float32Array);
    assert.ok(e <= 1e-4, `${v.name}: relative error ${e}`);
  }
  tf.dispose([x, labels, a.value, b.value, ...Object.values(a.grads), ...Object.values(b.grads)]);
  model.dispose();
});

test('ReLU6 (clip and one-op) and ReLU gradients on wasm: bounds, NaN, SIMD body and scalar tail agree with the cpu backend', async () => {
  const edge = [-1, 0, -0, 1e-30, 0.5, 6, 6.000001, 7, NaN, 3, -1e-30, 5.999999, Infinity, -Infinity];
  const xs = Array.from({ length: 4 * 9 + 3 }, (_, i) => edge[i % edge.length]); // 39: a tail of 3
  const dys = xs.map((_, i) => i + 1);
  const gradOn = async (backend: string) => {
    await tf.setBackend(backend);
    const x = tf.tensor1d(xs);
    const dy = tf.tensor1d(dys);
    const [clip] = tf.grads((t: tf.Tensor) => tf.mul(tf.clipByValue(t, 0, 6), 1))([x], dy);
    const [relu] = tf.grads((t: tf.Tensor) => tf.mul(tf.relu(t), 1))([x], dy);
    const [relu6] = tf.grads((t: tf.Tensor) => tf.mul(tf.relu6(t), 1))([x], dy);
    const out = { clip: Array.from(await clip!.data()), relu: Array.from(await relu!.data()), relu6: Array.from(await relu6!.data()) };
    tf.dispose([x, dy, clip!, relu!, relu6!]);
    return out;
  };
  try {
    const wasm = await gradOn('wasm');
    const cpu = await gradOn('cpu');
    assert.deepEqual(wasm.clip, cpu.clip);
    assert.deepEqual(wasm.clip.slice(0, 14), [0, 2, 3, 4, 5, 6, 0, 0, 0, 10, 0, 12, 0, 0]);
    // ReLU: x > 0 passes (0 and -0 do not); a NaN activation gets 0 on wasm, NaN from tfjs' own gradient.
    const nan = xs.map((v) => Number.isNaN(v));
    assert.deepEqual(wasm.relu.filter((_, i) => !nan[i]), cpu.relu.filter((_, i) => !nan[i]));
    assert.deepEqual(wasm.relu.slice(0, 14), [0, 0, 0, 4, 5, 6, 7, 8, 0, 10, 0, 12, 13, 0]);
    // ReLU6 as one op: 0 < x <= 6 passes.
    assert.deepEqual(wasm.relu6.filter((_, i) => !nan[i]), cpu.relu6.filter((_, i) => !nan[i]));
    assert.deepEqual(wasm.relu6.slice(0, 14), [0, 0, 0, 4, 5, 6, 0, 0, 0, 10, 0, 12, 0, 0]);
  } finally {
    await tf.setBackend('wasm');
  }
});

test('BatchNorm forward on wasm (one SIMD affine pass) matches the cpu backend, with and without scale / offset', async () => {
  const cases: Array<{ shape: number[]; scale: boolean; offset: boolean }> = [
    { shape: [3, 7, 9, 5], scale: true, offset: true }, // 5 channels: a vector of 4 and a scalar tail per row
    { shape: [2, 4, 4, 16], scale: true, offset: false },
    { shape: [11, 6], scale: false, offset: true },
    { shape: [1, 3, 3, 3], scale: false, offset: false },
  ];
  const on = async (backend: string, c: (typeof cases)[number]) => {
    await tf.setBackend(backend);
    const ch = c.shape.at(-1)!;
    const x = tf.tensor(values(c.shape.reduce((p, q) => p * q, 1), 21), c.shape).mul(3);
    const mean = tf.tensor1d(values(ch, 22));
    const variance = tf.tensor1d(values(ch, 23)).abs().add(0.1) as tf.Tensor1D;
    const offset = c.offset ? tf.tensor1d(values(ch, 24)) : undefined;
    const scale = c.scale ? (tf.tensor1d(values(ch, 25)).add(1.2) as tf.Tensor1D) : undefined;
    const y = tf.batchNorm(x, mean, variance, offset, scale, 1e-3);
    const out = Array.from(await y.data());
    tf.dispose([x, mean, variance, y, ...(offset ? [offset] : []), ...(scale ? [scale] : [])]);
    return out;
  };
  try {
    for (const c of cases) {
      const wasm = await on('wasm', c);
      const cpu = await on('cpu', c);
      const scale = Math.max(...cpu.map(Math.abs));
      const worst = wasm.reduce((m, v, i) => Math.max(m, Math.abs(v - cpu[i])), 0);
      assert.ok(worst <= 1e-6 * scale, `[${c.shape}]: max diff ${worst} for max |y| ${scale}`);
    }
  } finally {
    await tf.setBackend('wasm');
  }
});

test('Slice on wasm copies runs: every begin / size pattern, ranks 1 to 5, float and int, equals the cpu backend', async () => {
  const cases: Array<{ shape: number[]; begin: number[]; size: number[]; dtype: 'float32' | 'int32' }> = [
    { shape: [2, 9, 9, 6], begin: [0, 0, 0, 0], size: [2, 8, 8, 6], dtype: 'float32' }, // a zero padding's gradient
    { shape: [2, 9, 9, 6], begin: [1, 1, 2, 3], size: [1, 7, 5, 2], dtype: 'float32' },
    { shape: [2, 9, 9, 6], begin: [0, 3, 0, 0], size: [2, 4, 9, 6], dtype: 'int32' },
    { shape: [2, 9, 9, 6], begin: [1, 0, 0, 0], size: [1, 9, 9, 6], dtype: 'float32' },
    { shape: [10], begin: [3], size: [4], dtype: 'int32' },
    { shape: [4, 5], begin: [1, 0], size: [2, -1], dtype: 'float32' },
    { shape: [2, 3, 4, 5, 6], begin: [1, 1, 0, 2, 1], size: [1, 2, 4, 3, 5], dtype: 'float32' },
    { shape: [3, 4], begin: [0, 0], size: [0, 4], dtype: 'float32' },
  ];
  const on = async (backend: string, c: (typeof cases)[number]) => {
    await tf.setBackend(backend);
    const n = c.shape.reduce((p, q) => p * q, 1);
    const x = tf.tensor(Array.from({ length: n }, (_, i) => (c.dtype === 'int32' ? i - 7 : i * 0.5 - 3)), c.shape, c.dtype);
    const y = tf.slice(x, c.begin, c.size);
    const out = { shape: y.shape, dtype: y.dtype, values: Array.from(await y.data()) };
    tf.dispose([x, y]);
    return out;
  };
  try {
    for (const c of cases) assert.deepEqual(await on('wasm', c), await on('cpu', c), JSON.stringify(c));
  } finally {
    await tf.setBackend('wasm');
  }
});

test('PadV2 on wasm copies rows: every padding pattern, ranks 1 to 5, any constant, equals the cpu backend bit for bit', async () => {
  const cases: Array<{ shape: number[]; paddings: [number, number][]; value?: number; dtype?: 'int32' }> = [
    { shape: [2, 8, 8, 6], paddings: [[0, 0], [0, 1], [0, 1], [0, 0]] }, // ZeroPadding2D before a stride-2 conv
    { shape: [2, 5, 7, 3], paddings: [[1, 2], [2, 0], [0, 3], [0, 0]], value: -1.5 },
    { shape: [2, 5, 7, 3], paddings: [[0, 0], [1, 1], [1, 1], [2, 1]] }, // the channels padded too: one value per run
    { shape: [10], paddings: [[3, 2]], value: 7 },
    { shape: [4, 5], paddings: [[0, 0], [0, 2]] },
    { shape: [2, 3, 4, 5, 6], paddings: [[1, 0], [0, 1], [1, 1], [0, 2], [0, 0]], value: 0.25 },
    { shape: [3, 4], paddings: [[0, 0], [0, 0]] }, // nothing padded: the backend's kernel
    { shape: [2, 3], paddings: [[1, 1], [0, 1]], dtype: 'int32' }, // int data: the backend's kernel
  ];
  const on = async (backend: string, c: (typeof cases)[number]) => {
    await tf.setBackend(backend);
    const n = c.shape.reduce((p, q) => p * q, 1);
    const x = tf.tensor(Array.from({ length: n }, (_, i) => (c.dtype ? i - 4 : Math.sin(i) * 3)), c.shape, c.dtype ?? 'float32');
    const y = tf.pad(x, c.paddings, c.value);
    const out = { shape: y.shape, dtype: y.dtype, values: Array.from(await y.data()) };
    tf.dispose([x, y]);
    return out;
  };
  try {
    for (const c of cases) assert.deepEqual(await on('wasm', c), await on('cpu', c), JSON.stringify(c));
  } finally {
    await tf.setBackend('wasm');
  }
});

test('a fine-tune step through conv and depthwise layers runs on wasm, without the cpu fallback', async () => {
  const input = tf.input({ shape: [12, 12, 3] });
  let h = tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', name: 'stem' }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization({ name: 'stem_bn' }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.reLU({ maxValue: 6 }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', name: 'dw' }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.conv2d({ filters: 16, kernelSize: 1, name: 'project' }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 2, activation: 'softmax', name: 'fc1' }).apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  assert.deepEqual(missingGradientKernels(model.layers, 'wasm'), []);

  const stemBefore = model.getLayer('stem').getWeights()[0].dataSync().slice();
  const dwBefore = model.getLayer('dw').getWeights()[0].dataSync().slice();
  const n = 8;
  const x = Array.from({ length: n }, (_, i) => values(12 * 12 * 3, 10 + i));
  const y = Array.from({ length: n }, (_, i) => i % 2);
  const dir = mkdtempSync(join(tmpdir(), 'zerovar-wasm-grad-'));
  const logs: string[] = [];
  try {
    const result = await fineTune(model, { train: { x, y }, val: { x, y } }, {
      epochs: 1,
      batchSize: 4,
      learningRate: 1e-2,
      seed: 1,
      freezeBackbone: false,
      checkpointDir: dir,
      resume: false,
      log: (l) => logs.push(l),
    });
    assert.equal(result.trainBackend, 'wasm', logs.join('\n'));
    assert.ok(!logs.some((l) => /switching to the cpu/.test(l)), logs.join('\n'));
    assert.ok(Number.isFinite(result.history[0].loss));
    assert.equal(tf.getBackend(), 'wasm');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Both conv kinds were trained: their filters moved.
  const moved = (a: Float32Array | Int32Array | Uint8Array, b: typeof a) => a.some((v, i) => v !== b[i]);
  assert.ok(moved(stemBefore, model.getLayer('stem').getWeights()[0].dataSync()), 'stem conv filter changed');
  assert.ok(moved(dwBefore, model.getLayer('dw').getWeights()[0].dataSync()), 'depthwise filter changed');
  model.dispose();
});
