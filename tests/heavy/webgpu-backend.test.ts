// The trainer's WebGPU path, on a software adapter (Mesa llvmpipe through Dawn's OpenGL ES backend, or
// SwiftShader): gradients match the cpu backend's and fine-tuning through convs stays on WebGPU.
// node's test runner gives every test file its own process, so this file's backend choice is its own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { backendInfo, initBackend, trainingBackend } from '../../trainer/src/runtime/backend.js';
import { initWebGPUBackend, readOnHost, SYNC_READ_MESSAGE, webgpuProblems } from '../../trainer/src/runtime/webgpu.js';
import { fineTune, missingGradientKernels } from '../../trainer/src/train/finetune.js';
import { resolveSplitLayer, splitGraph } from '../../trainer/src/model/graph-run.js';
import { SeededRng } from '../../trainer/src/data/rng.js';

// No GPU in CI: the software adapters stand in for one (.ci/run installs what they need).
process.env.ZEROVAR_WEBGPU_SOFTWARE = '1';

let work: string;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'zerovar-webgpu-'));
  // Throws with what is missing (packages, drivers) when no adapter can be had: that must fail, not skip.
  assert.equal(await initBackend('webgpu'), 'webgpu');
});

after(() => rmSync(work, { recursive: true, force: true }));

/** Small model with the layer kinds MobileNets train: conv, depthwise conv, BatchNorm, ReLU6, Dense (no bias before a BatchNorm: its gradient is 0). */
function smallModel(seed: number, side: number): tf.LayersModel {
  const init = (k: number) => tf.initializers.glorotUniform({ seed: seed + k });
  const x = tf.input({ shape: [side, side, 3] });
  let h = tf.layers.conv2d({ name: 'c_s2_same', filters: 6, kernelSize: 3, strides: 2, padding: 'same', useBias: false, kernelInitializer: init(1) }).apply(x) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization({ name: 'bn1', gammaInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: seed + 2 }) }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.reLU({ maxValue: 6 }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.depthwiseConv2d({ name: 'dw_s1_valid', kernelSize: 3, strides: 1, padding: 'valid', useBias: false, depthwiseInitializer: init(3) }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization({ name: 'bn2' }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.reLU({ maxValue: 6 }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.conv2d({ name: 'c_s1_same', filters: 8, kernelSize: 1, padding: 'same', activation: 'relu', kernelInitializer: init(4) }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.depthwiseConv2d({ name: 'dw_s2_same', kernelSize: 3, strides: 2, padding: 'same', depthwiseInitializer: init(5) }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.conv2d({ name: 'c_s2_valid', filters: 8, kernelSize: 3, strides: 2, padding: 'valid', kernelInitializer: init(6) }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
  h = tf.layers.dense({ name: 'fc1', units: 6, activation: 'relu', kernelInitializer: init(7) }).apply(h) as tf.SymbolicTensor;
  const y = tf.layers.dense({ name: 'out', units: 3, activation: 'softmax', kernelInitializer: init(8) }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: y });
}

function randomInputs(n: number, side: number, seed: number): Float32Array[] {
  const rng = new SeededRng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: side * side * 3 }, () => 2 * rng.next() - 1));
}

/** Gradients of the cross-entropy w.r.t. every trainable weight, BatchNorm in training mode, on `backend`. */
async function gradients(backend: string, model: tf.LayersModel, x: Float32Array[], y: number[], side: number): Promise<Map<string, Float32Array>> {
  assert.ok(await tf.setBackend(backend));
  assert.equal(tf.getBackend(), backend);
  const out = new Map<string, Float32Array>();
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { grads, value } = tf.tidy(() => {
    const xs = tf.tensor4d(x.flatMap((a) => [...a]), [x.length, side, side, 3]);
    const labels = tf.oneHot(tf.tensor1d(y, 'int32'), 3);
    return tf.variableGrads(() => {
      const p = model.apply(xs, { training: true }) as tf.Tensor;
      return tf.losses.softmaxCrossEntropy(labels, tf.log(tf.clipByValue(p, 1e-7, 1))) as tf.Scalar;
    }, vars);
  });
  assert.equal(tf.getBackend(), backend);
  assert.ok(Number.isFinite((await value.data())[0]));
  for (const [i, w] of model.trainableWeights.entries()) {
    const g = grads[vars[i].name];
    assert.ok(g, `no gradient for ${w.name}`);
    out.set(w.name, (await g.data()) as Float32Array);
  }
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

test('initBackend("webgpu") reports a software adapter when ZEROVAR_WEBGPU_SOFTWARE=1', () => {
  const info = backendInfo();
  assert.equal(info.name, 'webgpu');
  assert.equal(info.software, true, `adapter not recognised as software: ${info.adapter}`);
  assert.match(info.adapter ?? '', /llvmpipe|swiftshader/i);
  assert.equal(tf.getBackend(), 'webgpu');
});

test('a synchronous read of a tensor computed on WebGPU fails with a clear message; readOnHost makes it work', async () => {
  assert.equal(tf.getBackend(), 'webgpu');
  const t = tf.matMul(tf.ones([2, 3]), tf.ones([3, 2]));
  assert.throws(() => t.dataSync(), (e: Error) => e.message === SYNC_READ_MESSAGE);
  await readOnHost([t]);
  assert.deepEqual([...t.dataSync()], [3, 3, 3, 3]);
  t.dispose();
});

test('training-step gradients through conv, depthwise conv, BatchNorm and Dense match the cpu backend', async () => {
  const side = 15;
  const model = smallModel(11, side);
  const x = randomInputs(4, side, 5);
  const y = [0, 1, 2, 1];
  // Layer shapes check that the strides and paddings are the ones named.
  const spatial = (name: string) => model.getLayer(name).outputShape.slice(1, 3).join('x');
  assert.deepEqual(['c_s2_same', 'dw_s1_valid', 'dw_s2_same', 'c_s2_valid'].map(spatial), ['8x8', '6x6', '3x3', '1x1']);
  assert.deepEqual(missingGradientKernels(model.layers, 'webgpu'), []);
  const gpu = await gradients('webgpu', model, x, y, side);
  // Moving the weights to another backend reads them synchronously: download them first.
  await readOnHost();
  const cpu = await gradients('cpu', model, x, y, side);
  await tf.setBackend('webgpu');
  assert.equal(gpu.size, model.trainableWeights.length);
  let worst = 0;
  for (const [name, c] of cpu) {
    const g = gpu.get(name)!;
    assert.equal(g.length, c.length);
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < c.length; i++) {
      scale = Math.max(scale, Math.abs(c[i]));
      diff = Math.max(diff, Math.abs(c[i] - g[i]));
    }
    assert.ok(scale > 1e-6, `${name}: gradient is zero on cpu, the comparison would prove nothing`);
    worst = Math.max(worst, diff / scale);
    assert.ok(diff <= 3e-4 * scale + 1e-7, `${name}: max |webgpu - cpu| = ${diff} for max |grad| ${scale}`);
  }
  console.log(`webgpu vs cpu gradients: worst max|diff| / max|grad| = ${worst.toExponential(2)}`);
});

test('fineTune trains through a conv layer on webgpu, without falling back to cpu', async () => {
  assert.ok(await tf.setBackend('webgpu'));
  const side = 15;
  const model = smallModel(21, side);
  const x = randomInputs(8, side, 9);
  const y = [0, 1, 2, 0, 1, 2, 0, 1];
  const opts = {
    epochs: 2,
    batchSize: 4,
    learningRate: 1e-2,
    seed: 1,
    freezeBackbone: false,
    trainableFrom: 'c_s1_same',
    checkpointDir: join(work, 'ckpt'),
    resume: false,
  };
  const split = splitGraph(model, resolveSplitLayer(model, opts));
  assert.ok(split.trainableLayers.some((l) => l.getClassName() === 'DepthwiseConv2D'));
  const kernel = () => model.getLayer('c_s1_same').getWeights()[0].data() as Promise<Float32Array>;
  const before = (await kernel()).slice();
  const logs: string[] = [];
  const r = await fineTune(model, { train: { x, y }, val: { x: x.slice(0, 4), y: y.slice(0, 4) } }, { ...opts, log: (l) => logs.push(l) });
  assert.equal(r.trainBackend, 'webgpu', logs.join('\n'));
  assert.equal(tf.getBackend(), 'webgpu');
  assert.ok(!logs.some((l) => /switching to the cpu/.test(l)), logs.join('\n'));
  assert.equal(r.history.length, 2);
  for (const h of r.history) assert.ok(Number.isFinite(h.loss) && h.loss > 0, `loss ${h.loss}`);
  const after = await kernel();
  const moved = after.reduce((m, v, i) => Math.max(m, Math.abs(v - before[i])), 0);
  assert.ok(moved > 1e-4, `the conv kernel did not change (max change ${moved})`);
});

test('the pipeline way: the work on wasm, fine-tuning alone on webgpu, trained weights back on wasm', async () => {
  assert.equal(await initBackend('auto'), 'wasm', 'auto keeps the synchronous work on wasm');
  const gpu = await trainingBackend('webgpu');
  assert.equal(gpu.name, 'webgpu');
  assert.equal(gpu.software, true);
  assert.equal(tf.getBackend(), 'wasm', 'choosing the training backend leaves the current one current');
  const side = 15;
  const model = smallModel(5, side);
  const x = randomInputs(8, side, 3);
  const y = [0, 1, 2, 0, 1, 2, 0, 1];
  const before = model.getLayer('c_s1_same').getWeights()[0].dataSync().slice();
  const logs: string[] = [];
  const r = await fineTune(
    model,
    { train: { x, y }, val: { x: x.slice(0, 4), y: y.slice(0, 4) } },
    { epochs: 1, batchSize: 4, microBatchSize: 3, learningRate: 1e-2, seed: 2, freezeBackbone: false, checkpointDir: join(work, 'ckpt-back'), resume: false, backend: gpu.name, log: (l) => logs.push(l) },
  );
  assert.equal(r.trainBackend, 'webgpu', logs.join('\n'));
  assert.ok(logs.some((l) => /training on the webgpu backend/.test(l)), logs.join('\n'));
  assert.equal(tf.getBackend(), 'wasm', "the caller's backend is restored");
  // Synchronous reads work again (getWeights, dataSync): the trained values came back to the host.
  const after = model.getLayer('c_s1_same').getWeights()[0].dataSync();
  assert.ok(after.some((v, i) => Math.abs(v - before[i]) > 1e-5), 'the conv kernel was trained');
  const batch = tf.stack(x.map((a) => tf.tensor3d(a, [side, side, 3])));
  const out = model.predict(batch) as tf.Tensor;
  batch.dispose();
  assert.equal(out.shape[0], 8);
  assert.ok(Array.from(out.dataSync()).every(Number.isFinite));
  out.dispose();
});

test('auto never settles on a software adapter, even with ZEROVAR_WEBGPU_SOFTWARE=1', async () => {
  const strict = await initWebGPUBackend({ allowSoftware: false });
  if (strict) assert.equal(strict.software, false);
  else assert.ok(webgpuProblems().length > 0, 'no adapter and no reason given');
  const name = await initBackend('auto');
  assert.ok(['wasm', 'cpu'].includes(name));
  const train = await trainingBackend('auto');
  assert.notEqual(train.software, true, JSON.stringify(train));
  assert.equal(await initBackend('webgpu'), 'webgpu'); // the software adapter is still there when asked for
});
