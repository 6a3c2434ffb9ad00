import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import { GradCAM, splitAtLayer, upsampleCam } from '../../trainer/src/model/gradcam.js';
import { camToRgba, jet } from '../../trainer/src/image/colormap.js';

before(async () => {
  await initBackend();
});

/** A seeded pseudo-random stream so the "random" weights are the same on every run. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

/**
 * 8x8 grey input -> 1x1 conv "conv" with channel 0 = relu(x) (brightness) and channel 1 = relu(1 - x)
 * (darkness) -> GAP -> Dense (identity) -> softmax. Class 0 is "bright", class 1 is "dark".
 */
function quadrantModel(): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 1] });
  const conv = tf.layers.conv2d({ filters: 2, kernelSize: 1, activation: 'relu', name: 'conv' });
  const gap = tf.layers.globalAveragePooling2d({ name: 'gap' });
  const dense = tf.layers.dense({ units: 2, name: 'logits' });
  const soft = tf.layers.activation({ activation: 'softmax', name: 'probs' });
  const out = soft.apply(dense.apply(gap.apply(conv.apply(input)))) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  conv.setWeights([tf.tensor4d([1, -1], [1, 1, 1, 2]), tf.tensor1d([0, 1])]);
  dense.setWeights([tf.tensor2d([[1, 0], [0, 1]]), tf.tensor1d([0, 0])]);
  return model;
}

function quadrantImage(): tf.Tensor4D {
  const px = new Float32Array(64);
  for (let y = 0; y < 4; y++) for (let x = 4; x < 8; x++) px[y * 8 + x] = 1; // top-right quadrant is bright
  return tf.tensor4d(px, [1, 8, 8, 1]);
}

function quadrantMeans(cam: Float32Array, w: number, h: number): number[] {
  const sums = [0, 0, 0, 0];
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) sums[(y < h / 2 ? 0 : 2) + (x < w / 2 ? 0 : 1)] += cam[y * w + x];
  return sums.map((s) => s / ((w * h) / 4));
}

test('the Grad-CAM of the class whose evidence sits in one quadrant peaks in that quadrant', () => {
  const model = quadrantModel();
  const cam = new GradCAM(model, 'conv');
  const img = quadrantImage();
  const r = cam.compute(img, { classIndex: 0 });
  assert.equal(r.width, 8);
  assert.equal(r.height, 8);
  assert.equal(r.classIndex, 0);
  assert.equal(r.scores.length, 2);
  const q = quadrantMeans(r.cam, 8, 8); // [top-left, top-right, bottom-left, bottom-right]
  assert.ok(Math.abs(q[1] - 1) < 1e-6, `top-right mean ${q[1]}`);
  for (const i of [0, 2, 3]) assert.ok(q[i] < 1e-6, `quadrant ${i} mean ${q[i]}`);
  // The "dark" class attends everywhere but the bright quadrant.
  const dark = cam.compute(img, { classIndex: 1 });
  const qd = quadrantMeans(dark.cam, 8, 8);
  assert.ok(qd[1] < 1e-6 && qd[0] > 0.99 && qd[2] > 0.99 && qd[3] > 0.99, `dark class quadrants ${qd}`);
  // Default target: the argmax class. 3/4 of the image is dark, so class 1 wins.
  assert.equal(cam.compute(img).classIndex, 1);
  cam.dispose();
  img.dispose();
  model.dispose();
});

test('Grad-CAM equals a hand computation (mean gradient x activations, ReLU, normalise)', () => {
  const rand = lcg(7);
  const H = 4, W = 4, K = 3, C = 2; // input 4x4x1, 2x2 valid conv -> 3x3xK, dense K -> C (linear scores)
  const kernel = Array.from({ length: 2 * 2 * K }, rand); // [kh, kw, 1, K]
  const bias = Array.from({ length: K }, () => rand() * 0.2);
  const dense = Array.from({ length: K * C }, () => rand() * 2); // [K, C]
  const x = Array.from({ length: H * W }, () => rand() + 0.5);

  const input = tf.input({ shape: [H, W, 1] });
  const conv = tf.layers.conv2d({ filters: K, kernelSize: 2, activation: 'relu', name: 'c' });
  const gap = tf.layers.globalAveragePooling2d({});
  const fc = tf.layers.dense({ units: C });
  const model = tf.model({ inputs: input, outputs: fc.apply(gap.apply(conv.apply(input))) as tf.SymbolicTensor });
  conv.setWeights([tf.tensor4d(kernel, [2, 2, 1, K]), tf.tensor1d(bias)]);
  fc.setWeights([tf.tensor2d(dense, [K, C]), tf.zeros([C])]);

  // By hand: activations of the valid 2x2 conv, then score_c = mean_ij(A) . dense[:, c], so the gradient of
  // score_c with respect to A_k(i, j) is dense[k, c] / 9 everywhere and its spatial mean is the same.
  const oh = H - 1, ow = W - 1;
  const acts = new Float64Array(oh * ow * K);
  for (let i = 0; i < oh; i++)
    for (let j = 0; j < ow; j++)
      for (let k = 0; k < K; k++) {
        let s = bias[k];
        for (let di = 0; di < 2; di++)
          for (let dj = 0; dj < 2; dj++) s += x[(i + di) * W + (j + dj)] * kernel[(di * 2 + dj) * K + k];
        acts[(i * ow + j) * K + k] = Math.max(0, s);
      }
  const gc = new GradCAM(model, 'c');
  const xt = tf.tensor4d(x, [1, H, W, 1]);
  for (let c = 0; c < C; c++) {
    const expected = new Float64Array(oh * ow);
    for (let p = 0; p < oh * ow; p++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += (dense[k * C + c] / (oh * ow)) * acts[p * K + k];
      expected[p] = Math.max(0, s);
    }
    const max = Math.max(...expected);
    assert.ok(max > 0, 'the hand-made case must have some positive evidence');
    const got = gc.compute(xt, { classIndex: c });
    assert.equal(got.cam.length, oh * ow);
    for (let p = 0; p < oh * ow; p++) {
      assert.ok(Math.abs(got.cam[p] - expected[p] / max) < 1e-5, `class ${c} pixel ${p}: ${got.cam[p]} vs ${expected[p] / max}`);
    }
  }
  gc.dispose();
  xt.dispose();
  model.dispose();
});

test('gradients flow through a custom score function, and the map follows the target class', () => {
  // The model ends at its features (like the bundle's featuresLayer); a linear scorer plays the classifier.
  const rand = lcg(11);
  const input = tf.input({ shape: [6, 6, 2] });
  const conv = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'last_conv' });
  const feats = tf.layers.dense({ units: 5, activation: 'relu', name: 'features' });
  const flat = tf.layers.flatten({});
  const model = tf.model({ inputs: input, outputs: feats.apply(flat.apply(conv.apply(input))) as tf.SymbolicTensor });
  conv.setWeights([tf.tensor4d(Array.from({ length: 3 * 3 * 2 * 4 }, rand), [3, 3, 2, 4]), tf.fill([4], 0.1)]);
  feats.setWeights([tf.tensor2d(Array.from({ length: 144 * 5 }, rand), [144, 5]), tf.fill([5], 0.5)]);
  // Class 0 leans on the first features, class 2 on the last ones: different evidence, different maps.
  const wLin = tf.tensor2d([[3, 0, 0], [2, 1, 0], [1, 1, 1], [0, 1, 2], [0, 0, 3]], [5, 3]);
  const bLin = tf.tensor1d([0.1, -0.2, 0.3]);
  const score = (f: tf.Tensor): tf.Tensor2D => tf.add(tf.matMul(f as tf.Tensor2D, wLin), bLin) as tf.Tensor2D;

  const xt = tf.tensor4d(Array.from({ length: 72 }, () => rand() + 0.5), [1, 6, 6, 2]);
  const gc = new GradCAM(model, 'last_conv');
  const before = tf.memory().numTensors;
  const r0 = gc.compute(xt, { score, classIndex: 0 });
  const r1 = gc.compute(xt, { score, classIndex: 2 });
  assert.equal(tf.memory().numTensors, before, 'compute must not leak tensors');

  // The scores are those of the linear scorer on the model's features.
  const expected = tf.tidy(() => score(model.predict(xt) as tf.Tensor).dataSync());
  r0.scores.forEach((s, i) => assert.ok(Math.abs(s - expected[i]) < 1e-4, `score ${i}: ${s} vs ${expected[i]}`));
  const max0 = Math.max(...r0.cam);
  const max1 = Math.max(...r1.cam);
  assert.ok(max0 === 1 && max1 === 1, `both maps carry evidence (max ${max0}, ${max1})`);
  const diff = r0.cam.reduce((m, v, i) => Math.max(m, Math.abs(v - r1.cam[i])), 0);
  assert.ok(diff > 0.05, `maps of different classes differ (max diff ${diff})`);
  const beforeDispose = tf.tidy(() => (model.predict(xt) as tf.Tensor).dataSync());
  const held = tf.memory().numTensors;
  gc.dispose();
  assert.ok(tf.memory().numTensors < held, 'dispose frees the head copy');
  const afterDispose = tf.tidy(() => (model.predict(xt) as tf.Tensor).dataSync());
  assert.deepEqual(Array.from(afterDispose), Array.from(beforeDispose), 'the original model is untouched by dispose');
  [xt, wLin, bLin].forEach((t) => t.dispose());
  model.dispose();
});

test('splitAtLayer reproduces the model, leaves its graph usable, and handles a nested backbone', () => {
  const rand = lcg(3);
  const backboneIn = tf.input({ shape: [5, 5, 1] });
  const c1 = tf.layers.conv2d({ filters: 3, kernelSize: 3, activation: 'relu', name: 'b_conv1' });
  const c2 = tf.layers.conv2d({ filters: 2, kernelSize: 1, activation: 'relu', name: 'b_conv2' });
  const backbone = tf.model({ inputs: backboneIn, outputs: c2.apply(c1.apply(backboneIn)) as tf.SymbolicTensor, name: 'backbone' });
  const outer = tf.sequential({
    layers: [
      backbone,
      tf.layers.globalAveragePooling2d({ name: 'pool' }),
      tf.layers.dropout({ rate: 0.5, name: 'drop' }),
      tf.layers.dense({ units: 3, activation: 'softmax', name: 'out' }),
    ],
  });
  outer.setWeights(outer.getWeights().map((w) => tf.tensor(Array.from({ length: w.size }, rand), w.shape)));
  const xt = tf.tensor4d(Array.from({ length: 25 }, () => rand() + 0.5), [1, 5, 5, 1]);
  for (const name of ['b_conv1', 'b_conv2']) {
    const { features, head } = splitAtLayer(outer, name);
    const [a, b] = tf.tidy(() => [
      (outer.predict(xt) as tf.Tensor).dataSync(),
      (head.predict(features.predict(xt) as tf.Tensor) as tf.Tensor).dataSync(),
    ]);
    a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 1e-6, `${name}: output ${i} ${v} vs ${b[i]}`));
    head.dispose();
  }
  // The original layers were not re-applied, so their single-node outputs stay well defined.
  assert.ok(outer.getLayer('out').output);
  assert.throws(() => splitAtLayer(outer, 'nope'), /no layer named "nope"/);
  xt.dispose();
});

test('splitAtLayer refuses a part after the layer that is not a chain', () => {
  const input = tf.input({ shape: [4, 4, 1] });
  const c = tf.layers.conv2d({ filters: 2, kernelSize: 1, name: 'c' }).apply(input) as tf.SymbolicTensor;
  const p1 = tf.layers.globalAveragePooling2d({}).apply(c) as tf.SymbolicTensor;
  const p2 = tf.layers.globalMaxPooling2d({}).apply(c) as tf.SymbolicTensor;
  const out = tf.layers.add().apply([p1, p2]) as tf.SymbolicTensor;
  assert.throws(() => splitAtLayer(tf.model({ inputs: input, outputs: out }), 'c'), /not a chain/);
});

test('upsampleCam is bilinear with aligned pixel centres', () => {
  assert.deepEqual(Array.from(upsampleCam(new Float32Array([0.25, 0.25, 0.25, 0.25]), 2, 2, 5, 3)), new Array(15).fill(0.25));
  const same = new Float32Array([0, 1, 2, 3, 4, 5]);
  assert.deepEqual(Array.from(upsampleCam(same, 3, 2, 3, 2)), Array.from(same));
  // 1x2 -> 1x4: centres at 0.25, 0.75 of the way map to -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
  assert.deepEqual(Array.from(upsampleCam(new Float32Array([0, 1]), 2, 1, 4, 1)), [0, 0.25, 0.75, 1]);
});

test('jet spans blue to red and camToRgba is transparent where attention is about zero', () => {
  const [r0, , b0] = jet(0);
  const [r1, , b1] = jet(1);
  assert.ok(b0 > 100 && r0 === 0, `jet(0) = ${jet(0)}`);
  assert.ok(r1 > 100 && b1 === 0, `jet(1) = ${jet(1)}`);
  const rgba = camToRgba(new Float32Array([0, 0.01, 0.5, 1]), 2, 2, { opacity: 0.5, threshold: 0.05 });
  assert.equal(rgba.length, 16);
  assert.equal(rgba[3], 0);
  assert.equal(rgba[7], 0);
  assert.equal(rgba[11], 128);
  assert.equal(rgba[15], 128);
  assert.deepEqual(Array.from(rgba.slice(12, 15)), jet(1));
});


test('integrated Grad-CAM: where the gradient at the activations turns negative, the path average still credits the evidence', () => {
  // conv (brightness) -> GAP -> g; class 0 scores g * (3 - g), class 1 its negative. A bright image has g = 2:
  // the score (2) is above the blank one (0) but falls with more brightness (slope -1), so plain Grad-CAM
  // weights the bright region negatively and the class-0 map is empty; averaged along the path from zero
  // activations, the slope is (3 - g) at g in (0, 2): +1 on average, and the bright region shows.
  const input = tf.input({ shape: [4, 4, 1] });
  const conv = tf.layers.conv2d({ filters: 1, kernelSize: 1, activation: 'relu', name: 'conv' });
  const gap = tf.layers.globalAveragePooling2d({ name: 'gap' });
  const model = tf.model({ inputs: input, outputs: gap.apply(conv.apply(input)) as tf.SymbolicTensor });
  conv.setWeights([tf.tensor4d([1], [1, 1, 1, 1]), tf.tensor1d([0])]);
  const score = (g: tf.Tensor): tf.Tensor2D => {
    const s = tf.mul(g, tf.sub(3, g));
    return tf.concat([s, tf.neg(s)], 1) as tf.Tensor2D;
  };
  const px = new Float32Array(16);
  for (let i = 0; i < 8; i++) px[i] = 4; // the top half at 4: g = mean = 2
  const xt = tf.tensor4d(px, [1, 4, 4, 1]);
  const plain = new GradCAM(model, 'conv');
  const integrated = new GradCAM(model, 'conv', { pathSteps: 8 });
  const p = plain.compute(xt, { score, classIndex: 0 });
  const q = integrated.compute(xt, { score, classIndex: 0 });
  assert.deepEqual(p.scores.map((s) => Math.round(s * 1e4) / 1e4), [2, -2]);
  assert.ok(p.cam.every((v) => v === 0), `plain Grad-CAM is empty here: ${Array.from(p.cam)}`);
  assert.deepEqual(Array.from(q.cam), [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0], 'the bright half, evenly');
  // Class 1 (the negative score) gets the mirror image: plain Grad-CAM credits the bright half, the path does not.
  assert.ok(plain.compute(xt, { score, classIndex: 1 }).cam.slice(0, 8).every((v) => v === 1));
  assert.ok(integrated.compute(xt, { score, classIndex: 1 }).cam.every((v) => v === 0));
  assert.throws(() => new GradCAM(model, 'conv', { pathSteps: 0 }), /pathSteps must be a positive integer/);
  plain.dispose();
  integrated.dispose();
  xt.dispose();
  model.dispose();
});
