// The viewer's wasm kernel list: registerInferenceKernels() registers forward kernels only (no gradient, so other
// backends are untouched), and Grad-CAM on wasm with just those gives the cpu backend's maps, on a small model and
// on a released bundle. This file never calls initBackend (which registers the training list): each test file
// runs in its own process, so the registries start as tfjs leaves them.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { fsFetcher } from '../../trainer/src/io/bundle-fs.js';
import { GradCAM } from '../../trainer/src/model/gradcam.js';
import { BundleModel } from '../../trainer/src/model/inference.js';
import { registerInferenceKernels, registerTrainingKernels } from '../../trainer/src/runtime/wasm/register.js';
import { simdModuleBytes } from '../../trainer/src/runtime/wasm/simd_module.js';
import { values } from '../helpers/values.js';

const INFERENCE = ['Cast', 'FusedBatchNorm', 'Identity', 'Slice'];
const GRADIENTS = ['FusedBatchNorm', 'ClipByValue', 'Relu', 'Relu6'];
/** Kernels only the training list registers: the gradient kernels and the replaced gradients' helpers. */
const TRAINING_ONLY = [
  'Conv2DBackpropFilter',
  'DepthwiseConv2dNativeBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
  'ZerovarColumnDot',
  'ZerovarScaleChannels',
  'ZerovarClipByValueGrad',
  'ZerovarBatchNormRelu',
  'ZerovarBatchNormReluGrad',
];

const tfjsGradients = new Map(GRADIENTS.map((k) => [k, tf.getGradient(k)]));
const builtinConv2dBackpropInput = tf.getKernel('Conv2DBackpropInput', 'wasm')?.kernelFunc;
const builtinPadV2 = tf.getKernel('PadV2', 'wasm')?.kernelFunc;

before(async () => {
  assert.ok(await tf.setBackend('wasm'), 'the wasm backend initialises');
  await tf.ready();
});

test("the SIMD module's bytes are the pinned ones: a change to them is deliberate (wasm-simd-listing checks them against the listing)", () => {
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  // Pinned again when scaleShiftClip and scaleShiftClipBack (the fused BatchNorm + ReLU) joined the five routines.
  assert.equal(sha(simdModuleBytes(false)), 'deacfcf100c85e4e71278be02a1b5653d945e2f85df75bb8fabcb1d62428cd32');
  assert.equal(sha(simdModuleBytes(true)), '708c946420cad8f35cadd9ff770a5ccb970e58871ac9bfee765135bc4fb2da8d');
  assert.ok(WebAssembly.validate(simdModuleBytes(false)));
});

test('the inference list registers forward kernels only, once: no gradient changes, no gradient kernel', () => {
  assert.ok(tfjsGradients.get('FusedBatchNorm'), "tfjs' own BatchNorm gradient is registered to begin with");
  const names = registerInferenceKernels();
  assert.deepEqual([...names].sort(), INFERENCE);
  const funcs = INFERENCE.map((k) => tf.getKernel(k, 'wasm')?.kernelFunc);
  assert.deepEqual(registerInferenceKernels().sort(), INFERENCE);
  INFERENCE.forEach((k, i) => assert.equal(tf.getKernel(k, 'wasm')?.kernelFunc, funcs[i], `${k} is not registered twice`));
  for (const k of GRADIENTS) assert.equal(tf.getGradient(k), tfjsGradients.get(k), `the ${k} gradient is tfjs' own`);
  for (const k of TRAINING_ONLY) assert.equal(tf.getKernel(k, 'wasm'), undefined, `${k} is not registered`);
  assert.equal(tf.getGradient('ZerovarBatchNormRelu'), undefined, 'no gradient of the fused BatchNorm + ReLU');
  assert.equal(tf.getKernel('Conv2DBackpropInput', 'wasm')?.kernelFunc, builtinConv2dBackpropInput, "the backend's own Conv2DBackpropInput");
  assert.equal(tf.getKernel('PadV2', 'wasm')?.kernelFunc, builtinPadV2, "the backend's own PadV2 (the trainer's shares rows across its kernel pool)");
});

/** Stem conv + BN + ReLU6, a depthwise block, a 1x1 conv + BN + ReLU6 ("out_relu"), then the bundles' head. */
function smallModel(): tf.LayersModel {
  const input = tf.input({ shape: [16, 16, 3] });
  let h = tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', useBias: false }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization({}).apply(h) as tf.SymbolicTensor;
  h = tf.layers.reLU({ maxValue: 6 }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]] }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'valid', useBias: false }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization({}).apply(h) as tf.SymbolicTensor;
  h = tf.layers.conv2d({ filters: 12, kernelSize: 1, useBias: false }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization({}).apply(h) as tf.SymbolicTensor;
  h = tf.layers.reLU({ maxValue: 6, name: 'out_relu' }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
  h = tf.layers.dense({ units: 6, activation: 'relu', name: 'fc1' }).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 3, activation: 'softmax', name: 'fc2' }).apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  // Fixed weights with BN statistics away from the identity, so the affine pass is exercised.
  model.weights.forEach((w, i) => {
    const shape = w.shape as number[];
    const v = tf.tensor(values(shape.reduce((p, q) => p * q, 1), 31 + i), shape);
    const name = w.originalName;
    w.write(/moving_variance/.test(name) ? v.abs().add(0.5) : /gamma/.test(name) ? v.add(1) : v.mul(0.8));
  });
  return model;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

test('Grad-CAM on wasm with only the inference kernels gives the cpu map (a small MobileNet-like model)', async () => {
  registerInferenceKernels();
  const model = smallModel();
  const input = tf.tensor4d(values(16 * 16 * 3, 7), [1, 16, 16, 3]);
  const on = async (backend: string) => {
    await tf.setBackend(backend);
    const cam = new GradCAM(model, 'out_relu');
    try {
      return [0, 1, 2].map((classIndex) => cam.compute(input, { classIndex }));
    } finally {
      cam.dispose();
    }
  };
  try {
    const wasm = await on('wasm');
    const cpu = await on('cpu');
    wasm.forEach((w, i) => {
      const c = cpu[i];
      assert.deepEqual([w.width, w.height], [7, 7]);
      assert.ok(c.cam.some((v) => v > 0), `class ${i}: the reference map is not all zeros`);
      assert.ok(maxDiff(w.cam, c.cam) <= 1e-4, `class ${i}: maps differ by ${maxDiff(w.cam, c.cam)}`);
      assert.ok(maxDiff(w.scores, c.scores) <= 1e-5, `class ${i}: scores differ by ${maxDiff(w.scores, c.scores)}`);
    });
  } finally {
    await tf.setBackend('wasm');
    input.dispose();
    model.dispose();
  }
});

test('a released bundle classifies and explains on wasm with only the inference kernels as on cpu', async () => {
  registerInferenceKernels();
  const bundle = await BundleModel.load(fsFetcher(join(import.meta.dirname, '../../models/raw')));
  const size = 96;
  const image = { width: size, height: size, data: Uint8Array.from({ length: size * size }, (_, i) => (((i % size) * 3 + Math.floor(i / size) * 5) % 256)) };
  const on = async (backend: string) => {
    await tf.setBackend(backend);
    return { prediction: bundle.classify(image), explanations: [0, 1].map((c) => bundle.explain(image, c)) };
  };
  try {
    const wasm = await on('wasm');
    const cpu = await on('cpu');
    assert.equal(wasm.prediction.classIndex, cpu.prediction.classIndex);
    assert.ok(maxDiff(wasm.prediction.probabilities, cpu.prediction.probabilities) <= 1e-4, 'probabilities');
    assert.ok(cpu.explanations.some((e) => e.cam.some((v) => v > 0)), 'the reference maps are not all zeros');
    cpu.explanations.forEach((c, i) => {
      const w = wasm.explanations[i];
      assert.ok(maxDiff(w.cam, c.cam) <= 1e-3, `class ${i}: maps differ by ${maxDiff(w.cam, c.cam)}`);
    });
  } finally {
    await tf.setBackend('wasm');
    bundle.dispose();
  }
});

// Last: it changes the registries for the rest of this process.
test('the training list adds the gradient kernels and replaces the gradients (what the inference list leaves alone)', () => {
  const names = registerTrainingKernels();
  assert.deepEqual(
    [...names].sort(),
    [...INFERENCE, 'PadV2', 'Conv2DBackpropFilter', 'Conv2DBackpropInput', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput', 'Conv2D', 'FusedConv2D', 'DepthwiseConv2dNative'].sort(),
  );
  for (const k of GRADIENTS) assert.notEqual(tf.getGradient(k), tfjsGradients.get(k), `the ${k} gradient is replaced`);
  for (const k of TRAINING_ONLY) assert.ok(tf.getKernel(k, 'wasm'), `${k} is registered`);
  assert.deepEqual([...registerTrainingKernels()].sort(), [...names].sort());
  assert.deepEqual(registerInferenceKernels().sort(), INFERENCE);
});
