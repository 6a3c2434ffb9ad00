import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import type { GreyImage } from '../../trainer/src/image/pixels.js';
import {
  buildSegmenter,
  diceScore,
  fillHoles,
  iouScore,
  keepLargestComponents,
  lungMaskedImage,
  maskOverlap,
  massInsideMask,
  refineLungMask,
} from '../../trainer/src/model/segmenter.js';
import {
  augmentPair,
  diceBceLoss,
  saveSegmenter,
  segmenterFiles,
  trainingForward,
} from '../../trainer/src/train/segmenter.js';
import { DEFAULT_REFINEMENT } from '../../trainer/src/model/segmenter.js';
import { fsFetcher, writeBundle, type BundleManifestDraft } from '../../trainer/src/io/bundle-fs.js';
import { BundleError } from '../../trainer/src/model/bundle.js';
import { recordedFigures } from '../helpers/bundle-fixture.js';
import { BundleModel } from '../../trainer/src/model/inference.js';
import { fitClassifier } from '../../trainer/src/train/classifiers.js';

let work: string;

before(async () => {
  await initBackend();
  work = mkdtempSync(join(tmpdir(), 'zerovar-segmenter-'));
});

after(() => rmSync(work, { recursive: true, force: true }));

/** A w x h 0/255 mask with the given filled rectangles [x0, y0, x1, y1) (x1, y1 exclusive). */
function rects(w: number, h: number, boxes: [number, number, number, number][]): GreyImage {
  const data = new Uint8Array(w * h);
  for (const [x0, y0, x1, y1] of boxes) for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) data[y * w + x] = 255;
  return { width: w, height: h, data };
}

const count = (m: GreyImage) => m.data.reduce((n, v) => n + (v > 127 ? 1 : 0), 0);

test('refineLungMask keeps the two lungs, drops specks and a third blob, fills holes and dilates', () => {
  const w = 100;
  // Two "lungs" (20x40 and 18x40), a third blob of 100 px (above the speck floor, 10% of 800: only the
  // two-component rule removes it) and a 2x2 speck.
  const m = rects(w, w, [
    [10, 20, 30, 60],
    [60, 20, 78, 60],
    [40, 80, 50, 90],
    [90, 5, 92, 7],
  ]);
  // A hole inside the first lung.
  for (let y = 35; y < 40; y++) for (let x = 15; x < 20; x++) m.data[y * w + x] = 0;
  const prob = { width: w, height: w, data: Float32Array.from(m.data, (v) => v / 255) };
  const plain = refineLungMask(prob, { dilation: 0 });
  assert.equal(count(plain), 20 * 40 + 18 * 40, 'two lungs with the hole filled, nothing else');
  assert.equal(plain.data[37 * w + 17], 255, 'hole filled');
  assert.equal(plain.data[85 * w + 45], 0, 'third blob removed');
  assert.equal(plain.data[6 * w + 91], 0, 'speck removed');
  const dilated = refineLungMask(prob, { dilation: 0.01 });
  assert.equal(count(dilated), 22 * 42 + 20 * 42, 'a 1 px square dilation grows each box by one pixel on every side');
  const noFill = refineLungMask(prob, { dilation: 0, fillHoles: false });
  assert.equal(count(noFill), 20 * 40 + 18 * 40 - 25);
  // Threshold on probabilities.
  const faint = { width: w, height: w, data: Float32Array.from(m.data, (v) => (v ? 0.4 : 0)) };
  assert.equal(count(refineLungMask(faint)), 0);
  assert.ok(count(refineLungMask(faint, { threshold: 0.3, dilation: 0 })) > 0);
});

test('keepLargestComponents uses 8-connectivity and the size floor', () => {
  const w = 20;
  const m = rects(w, w, [
    [0, 0, 5, 5], // 25
    [5, 5, 8, 8], // 9, touches the first diagonally: one component of 34
    [12, 12, 20, 20], // 64
    [0, 15, 3, 18], // 9
  ]);
  const bin = Uint8Array.from(m.data, (v) => (v ? 1 : 0));
  const two = keepLargestComponents(bin, w, w, 2);
  assert.equal(two.reduce((a, b) => a + b, 0), 34 + 64);
  const floor = keepLargestComponents(bin, w, w, 2, 0.6);
  assert.equal(floor.reduce((a, b) => a + b, 0), 64, 'a component under 60% of the largest is dropped');
  const ring = rects(7, 7, [[1, 1, 6, 6]]);
  for (let y = 2; y < 5; y++) for (let x = 2; x < 5; x++) ring.data[y * 7 + x] = 0;
  const filled = fillHoles(Uint8Array.from(ring.data, (v) => (v ? 1 : 0)), 7, 7);
  assert.equal(filled.reduce((a, b) => a + b, 0), 25);
});

test('Dice and IoU of known overlaps', () => {
  const a = rects(10, 10, [[0, 0, 4, 5]]); // 20 px
  const b = rects(10, 10, [[2, 0, 6, 5]]); // 20 px, 10 shared
  assert.equal(diceScore(a, b), (2 * 10) / 40);
  assert.equal(iouScore(a, b), 10 / 30);
  assert.deepEqual(maskOverlap(a, a), { dice: 1, iou: 1 });
  assert.deepEqual(maskOverlap(rects(4, 4, []), rects(4, 4, [])), { dice: 1, iou: 1 });
  assert.equal(diceScore(a, rects(10, 10, [[6, 6, 9, 9]])), 0);
  assert.throws(() => diceScore(a, rects(5, 5, [])), /differ in size/);
});

test('lungMaskedImage blanks outside the (resized) mask and keeps the lungs as they were', () => {
  const img: GreyImage = { width: 8, height: 8, data: Uint8Array.from({ length: 64 }, (_, i) => 100 + i) };
  const mask = rects(4, 4, [[0, 0, 2, 4]]); // left half, at half the resolution
  const out = lungMaskedImage(img, mask);
  for (let y = 0; y < 8; y++) {
    for (let x = 0; x < 8; x++) assert.equal(out.data[y * 8 + x], x < 4 ? img.data[y * 8 + x] : 0, `pixel ${x},${y}`);
  }
});

test('massInsideMask: the share of attention inside the lungs', () => {
  const mask = rects(224, 224, [[0, 0, 112, 224]]);
  const left = Float32Array.from({ length: 49 }, (_, i) => (i % 7 < 3 ? 1 : 0));
  const right = Float32Array.from({ length: 49 }, (_, i) => (i % 7 > 3 ? 1 : 0));
  assert.ok(massInsideMask(left, 7, 7, mask) > 0.9);
  assert.ok(massInsideMask(right, 7, 7, mask) < 0.1);
  const flat = new Float32Array(49).fill(1);
  assert.ok(Math.abs(massInsideMask(flat, 7, 7, mask) - 0.5) < 0.01);
  assert.ok(Number.isNaN(massInsideMask(new Float32Array(49), 7, 7, mask)));
});

test('augmentPair: no-op settings are the identity, a forced flip mirrors image and mask together', () => {
  const img: GreyImage = { width: 6, height: 4, data: Uint8Array.from({ length: 24 }, (_, i) => i * 10) };
  const mask = rects(6, 4, [[0, 0, 2, 4]]);
  const none = { flip: 0, scale: 0, shift: 0, rotate: 0, brightness: 0, contrast: 0 };
  const [i0, m0] = augmentPair(img, mask, Math.random, none);
  assert.deepEqual(i0.data, img.data);
  assert.deepEqual(m0.data, mask.data);
  const [i1, m1] = augmentPair(img, mask, Math.random, { ...none, flip: 1 });
  for (let y = 0; y < 4; y++) {
    for (let x = 0; x < 6; x++) {
      assert.equal(i1.data[y * 6 + x], img.data[y * 6 + 5 - x]);
      assert.equal(m1.data[y * 6 + x], mask.data[y * 6 + 5 - x]);
    }
  }
});

test('the training forward pass (the shared graph run, convs on the wasm kernels) gives the autodiff gradients', () => {
  const m = buildSegmenter({ inputSize: 16, filters: [3, 5, 6], seed: 3 });
  const x = tf.randomNormal([2, 16, 16, 1], 0, 1, 'float32', 7) as tf.Tensor4D;
  const y = tf.cast(tf.greater(tf.randomUniform([2, 16, 16, 1], 0, 1, 'float32', 8), 0.6), 'float32') as tf.Tensor4D;
  const vars = m.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const ref = tf.variableGrads(() => diceBceLoss(y, m.apply(x) as tf.Tensor4D), vars);
  const fast = tf.variableGrads(() => diceBceLoss(y, trainingForward(m, x)), vars);
  assert.ok(Math.abs(ref.value.dataSync()[0] - fast.value.dataSync()[0]) < 1e-5);
  assert.equal(Object.keys(fast.grads).length, vars.length);
  for (const k of Object.keys(ref.grads)) {
    const scale = tf.max(tf.abs(ref.grads[k])).dataSync()[0];
    const diff = tf.max(tf.abs(tf.sub(ref.grads[k], fast.grads[k]))).dataSync()[0];
    assert.ok(diff <= 1e-4 * Math.max(1, scale), `${k}: max |diff| ${diff} (scale ${scale})`);
  }
  tf.dispose([x, y, ref.value, fast.value, ...Object.values(ref.grads), ...Object.values(fast.grads)]);
  m.dispose();
});

test('a masked bundle carries its segmenter and masks what it classifies and explains', async () => {
  const input = tf.input({ shape: [16, 16, 3] });
  const conv = tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', name: 'last_conv', kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }).apply(input);
  const gap = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(conv);
  const fc2 = tf.layers.dense({ units: 4, name: 'fc2', kernelInitializer: tf.initializers.glorotUniform({ seed: 6 }) }).apply(gap) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: fc2 });
  const rand = (() => {
    let a = 7;
    return () => ((a = (a * 1103515245 + 12345) % 2147483648) / 2147483648);
  })();
  const X = Array.from({ length: 20 }, (_, i) => [0, 1, 2, 3].map(() => rand() + (i % 2)));
  const classifier = { deployed: fitClassifier('logistic', X, X.map((_, i) => i % 2), { seed: 1 }) };
  const segDir = join(work, 'bundle-seg');
  const segmenter = buildSegmenter({ inputSize: 16, filters: [2, 4], seed: 9 });
  await saveSegmenter(segmenter, segDir, { kind: 'zerovar-lung-segmenter', inputSize: 16, filters: [2, 4], refinement: { ...DEFAULT_REFINEMENT } });
  segmenter.dispose();
  const draft: BundleManifestDraft = {
    name: 'masked test bundle',
    variant: 'masked',
    classes: ['COVID', 'Normal'],
    positiveClass: 'COVID',
    input: { size: 16, channels: 3, normalization: 'mobilenet', resize: 'stretch' },
    backbone: { name: 'tiny', weights: 'random' },
    model: { gradcamLayer: 'last_conv', featuresLayer: 'fc2', outputs: ['fc2'] },
    features: { selected: [0, 1, 2, 3], total: 4, protocol: 'validation' },
    classifier,
    ...recordedFigures(),
    segmenter: { path: 'segmenter/model.json', inputSize: 16, threshold: 0.45, refinement: { ...DEFAULT_REFINEMENT, dilation: 0 } },
  };
  const dir = join(work, 'masked-bundle');
  await writeBundle(dir, draft, model, await segmenterFiles(segDir));
  const bm = await BundleModel.load(fsFetcher(dir));
  try {
    assert.equal(bm.masked, true);
    assert.equal(bm.refinement.threshold, 0.45, 'the manifest threshold wins');
    const img: GreyImage = { width: 40, height: 30, data: Uint8Array.from({ length: 1200 }, (_, i) => (i * 37) % 256) };
    const mask = bm.segment(img);
    assert.equal(mask.width, 40);
    const masked = lungMaskedImage(img, mask);
    const auto = bm.classify(img);
    const manual = bm.classify(masked, { premasked: true });
    assert.deepEqual(auto.probabilities, manual.probabilities);
    const e1 = bm.explain(img, 0);
    const e2 = bm.explain(masked, 0, { premasked: true });
    assert.deepEqual(Array.from(e1.cam), Array.from(e2.cam));
  } finally {
    bm.dispose();
  }
  // A masked bundle without its segmenter is refused.
  const bad = join(work, 'masked-no-seg');
  const { segmenter: _s, ...noSeg } = draft;
  await writeBundle(bad, noSeg, model);
  await assert.rejects(BundleModel.load(fsFetcher(bad)), (e: Error) => e instanceof BundleError && /segmenter/.test(e.message));
  model.dispose();
});

test('bias study HTML and attention figure', async () => {
  const { biasStudyHtml, writeAttentionFigure } = await import('../../trainer/src/train/bias-study.js');
  const metrics = { accuracy: 0.9, auc: { macro: 0.95 } } as unknown as import('../../trainer/src/stats/metrics.js').ClassificationMetrics;
  const att = { n: 3, meanInside: 0.42, medianInside: 0.4, masksFromDataset: 1, masksPredicted: 2 };
  const html = biasStudyHtml(
    { dataset: 'd', rows: [{ variant: 'raw', experiment: 'x-raw', test: metrics, attention: { test: att } }], figures: [] },
    [],
  );
  assert.match(html, /<td>raw<\/td><td>0\.9000<\/td><td>0\.9500<\/td><td>–<\/td><td>–<\/td><td>42\.0%<\/td>/);
  const image: GreyImage = { width: 20, height: 20, data: new Uint8Array(400).fill(128) };
  const rec = { path: 'p', image, mask: rects(20, 20, [[2, 2, 18, 18]]), cams: [new Float32Array(4).fill(1), new Float32Array(4)], camW: 2, camH: 2, inside: [1, NaN] };
  const file = join(work, 'attention.png');
  await writeAttentionFigure(file, [rec, rec], 16);
  const { PNG } = await import('pngjs');
  const png = PNG.sync.read(readFileSync(file));
  assert.equal(png.width, 3 * 16 + 4 * 4);
  assert.equal(png.height, 2 * (16 + 4) + 4);
});
