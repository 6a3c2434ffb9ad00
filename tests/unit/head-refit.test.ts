import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../../trainer/src/data/rng.js';
import type { GreyImage } from '../../trainer/src/image/pixels.js';
import { ImageSet, predictRows } from '../../trainer/src/train/images.js';
import { refitHead, refitReference } from '../../trainer/src/train/head-refit.js';
import { choleskySolve, ridgeToward } from '../../trainer/src/stats/ridge.js';

function randomMatrix(rows: number, cols: number, seed: number): Float64Array {
  const rand = mulberry32(seed);
  return Float64Array.from({ length: rows * cols }, () => rand() * 2 - 1);
}

/** A^T A + eps I for a random A: symmetric positive definite. */
function spd(m: number, seed: number): Float64Array {
  const A = randomMatrix(m + 3, m, seed);
  const G = new Float64Array(m * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) {
    let s = i === j ? 1e-3 : 0;
    for (let r = 0; r < m + 3; r++) s += A[r * m + i] * A[r * m + j];
    G[i * m + j] = s;
  }
  return G;
}

test('choleskySolve: G X = B for a positive definite G, several right-hand sides; refuses an indefinite G', () => {
  const m = 7;
  const p = 3;
  const G = spd(m, 1);
  const B = randomMatrix(m, p, 2);
  const X = choleskySolve(G, m, B, p);
  for (let i = 0; i < m; i++) for (let c = 0; c < p; c++) {
    let s = 0;
    for (let k = 0; k < m; k++) s += G[i * m + k] * X[k * p + c];
    assert.ok(Math.abs(s - B[i * p + c]) < 1e-9, `row ${i} column ${c}: ${s} against ${B[i * p + c]}`);
  }
  assert.throws(() => choleskySolve(Float64Array.from([1, 2, 2, 1]), 2, Float64Array.from([1, 1]), 1), /not positive definite/);
  assert.throws(() => choleskySolve(G, m, B, p + 1), /expected/);
});

test('ridgeToward: a strong ridge stays at the prior, a weak one is the least-squares solution', () => {
  const m = 5;
  const p = 2;
  const G = spd(m, 3);
  const Wtrue = randomMatrix(m, p, 4);
  const C = new Float64Array(m * p); // C = G Wtrue: the normal equations of an exact fit
  for (let i = 0; i < m; i++) for (let c = 0; c < p; c++) for (let k = 0; k < m; k++) C[i * p + c] += G[i * m + k] * Wtrue[k * p + c];
  const W0 = randomMatrix(m, p, 5);
  const weak = ridgeToward(G, C, W0, m, p, 1e-10);
  const strong = ridgeToward(G, C, W0, m, p, 1e10);
  for (let i = 0; i < m * p; i++) {
    assert.ok(Math.abs(weak[i] - Wtrue[i]) < 1e-6, `weak ${i}`);
    assert.ok(Math.abs(strong[i] - W0[i]) < 1e-6, `strong ${i}`);
  }
  assert.throws(() => ridgeToward(G, C, W0, m, p, 0), /lambda/);
});

// A 2x2 px grey image -> Flatten -> fc1 (6 ReLU units, all but unit 4 always on) -> fc2 (3, always on) -> logits (2). fc1's
// unit 5 is exactly unit 0 + unit 1, so once it is removed the units kept beside it can stand in for it.
function headModel(fc1Units: number): tf.LayersModel {
  const input = tf.input({ shape: [2, 2, 3], name: 'input' });
  const flat = tf.layers.flatten({ name: 'flatten' }).apply(input) as tf.SymbolicTensor;
  const fc1 = tf.layers.dense({ units: fc1Units, activation: 'relu', name: 'fc1' }).apply(flat) as tf.SymbolicTensor;
  const fc2 = tf.layers.dense({ units: 3, activation: 'relu', name: 'fc2' }).apply(fc1) as tf.SymbolicTensor;
  const logits = tf.layers.dense({ units: 2, name: 'logits' }).apply(fc2) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: tf.layers.activation({ activation: 'softmax', name: 'predictions' }).apply(logits) as tf.SymbolicTensor });
}

const W1 = [
  [1, 0, 0, 0, 0.5, 1],
  [0, 1, 0, 0, 0.5, 1],
  [0, 0, 1, 0, -0.5, 0],
  [0, 0, 0, 1, 0.5, 0],
]; // pixel (channel 0) -> fc1 unit; unit 5 = unit 0 + unit 1 before the biases
const B1 = [5, 5, 5, 5, 0, 10]; // unit 4 fires on about half the images: not a linear function of the others
const W2 = [
  [1, -1, 0.5],
  [0.5, 1, -1],
  [-1, 0.5, 1],
  [1, 1, 1],
  [0.5, -0.5, 0.5],
  [2, -1, 1.5],
];
const B2 = [30, 30, 30];
const W3 = [[1, -1], [-1, 1], [0.5, 0.5]];

/** The channel-0 rows of a kernel over the flattened 2x2x3 input (the other channels 0). */
function flatKernel(rows: number[][]): tf.Tensor2D {
  const units = rows[0].length;
  const k = new Float32Array(12 * units);
  rows.forEach((r, px) => r.forEach((w, u) => (k[px * 3 * units + u] = w)));
  return tf.tensor2d(k, [12, units]);
}

function images(n: number, seed: number): ImageSet {
  const rand = mulberry32(seed);
  const imgs: GreyImage[] = [];
  const samples = [];
  for (let i = 0; i < n; i++) {
    imgs.push({ width: 2, height: 2, data: Uint8Array.from({ length: 4 }, () => Math.floor(rand() * 256)) });
    samples.push({ path: `img-${seed}-${i}.png`, className: i % 2 ? 'B' : 'A', label: i % 2 });
  }
  return new ImageSet(samples, imgs, { size: 2, normalization: 'mobilenet' });
}

test('refitHead: a removed unit the kept ones span is refitted away; a layer that already matches keeps its folded weights', () => {
  const original = headModel(6);
  original.getLayer('fc1').setWeights([flatKernel(W1), tf.tensor1d(B1)]);
  original.getLayer('fc2').setWeights([tf.tensor2d(W2), tf.tensor1d(B2)]);
  original.getLayer('logits').setWeights([tf.tensor2d(W3), tf.tensor1d([0, 0])]);
  const sets = { train: images(64, 1), val: images(32, 2) };

  // fc1's unit 5 removed, its training mean folded into fc2's bias: the mean fold's own surgery.
  const fc1Out = tf.model({ inputs: original.inputs, outputs: original.getLayer('fc1').output as tf.SymbolicTensor });
  const a = predictRows(fc1Out, sets.train)[0];
  const mean5 = a.reduce((s, r) => s + r[5], 0) / a.length;
  const pruned = headModel(5);
  pruned.getLayer('fc1').setWeights([flatKernel(W1.map((r) => r.slice(0, 5))), tf.tensor1d(B1.slice(0, 5))]);
  pruned.getLayer('fc2').setWeights([tf.tensor2d(W2.slice(0, 5)), tf.tensor1d(B2.map((b, j) => b + mean5 * W2[5][j]))]);
  pruned.getLayer('logits').setWeights([tf.tensor2d(W3), tf.tensor1d([0, 0])]);

  const logitsOf = (m: tf.LayersModel, set: ImageSet) =>
    predictRows(tf.model({ inputs: m.inputs, outputs: m.getLayer('logits').output as tf.SymbolicTensor }), set)[0];
  const gap = (m: tf.LayersModel) => {
    const [x, y] = [logitsOf(original, sets.val), logitsOf(m, sets.val)];
    return Math.max(...x.map((r, i) => Math.max(...[...r].map((v, c) => Math.abs(v - y[i][c])))));
  };
  const before = gap(pruned);
  assert.ok(before > 0.05, `the mean fold alone moves the logits (${before})`);

  const reference = refitReference(original, sets);
  const tensors = tf.memory().numTensors;
  const report = refitHead(pruned, reference, sets, { fc1: [5] }, [1e-8]);
  assert.equal(tf.memory().numTensors, tensors, 'no tensor left behind');
  assert.deepEqual(report.map((r) => r.layer), ['fc1', 'fc2', 'logits']);
  assert.equal(report[0].ridge, null, 'fc1 lost no input: its folded weights are already exact');
  assert.equal(report[1].ridge, 1e-8);
  assert.ok(report[1].valErrorFolded > 1e-3 && report[1].valError < 1e-6, `fc2: ${report[1].valErrorFolded} -> ${report[1].valError}`);
  const after = gap(pruned);
  assert.ok(after < 1e-3, `refitted logits within 1e-3 of the unpruned network's (${after}, was ${before})`);
  assert.ok(pruned.getLayer('fc1').getWeights()[0].dataSync().every((v, i) => v === flatKernel(W1.map((r) => r.slice(0, 5))).dataSync()[i]));

  assert.throws(() => refitHead(pruned, refitReference(original, sets), sets, { fc1: [4, 5] }), /keeps 5 units, the plan 4/);
});
