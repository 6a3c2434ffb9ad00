// The lung segmenter on the real ieee8023 image / mask pairs of ../shared: patient-grouped pairs, a short training run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import type { GreyImage } from '../../trainer/src/image/pixels.js';
import {
  buildSegmenter,
  segmentLungs,
} from '../../trainer/src/model/segmenter.js';
import {
  evaluateSegmenter,
  loadPairs,
  loadSegmenter,
  quickDice,
  saveSegmenter,
  segmentationPairs,
  segmenterFiles,
  splitPairs,
  trainSegmenter,
} from '../../trainer/src/train/segmenter.js';
import { DEFAULT_REFINEMENT } from '../../trainer/src/model/segmenter.js';
import { DEFAULT_SEGMENTER_TRAINING } from '../../trainer/src/train/options.js';
import { sharedPath } from '../helpers/shared.js';

let work: string;

before(async () => {
  await initBackend();
  work = mkdtempSync(join(tmpdir(), 'zerovar-segmenter-'));
});

after(() => rmSync(work, { recursive: true, force: true }));

const count = (m: GreyImage) => m.data.reduce((n, v) => n + (v > 127 ? 1 : 0), 0);

test('ieee8023 pairs carry patient ids; the split never shares a patient', async () => {
  const pairs = await segmentationPairs(sharedPath('data', 'ieee8023-covid-chestxray'));
  assert.equal(pairs.length, 192);
  assert.ok(pairs.every((p) => p.patientId && p.mask.endsWith('_mask.png')));
  const s = splitPairs(pairs, 42);
  assert.equal(s.train.length + s.val.length + s.test.length, 192);
  const ids = (xs: typeof pairs) => new Set(xs.map((p) => p.patientId));
  const [tr, va, te] = [ids(s.train), ids(s.val), ids(s.test)];
  for (const id of te) assert.ok(!tr.has(id) && !va.has(id), `patient ${id} in two splits`);
  for (const id of va) assert.ok(!tr.has(id));
  assert.ok(s.test.length >= 25 && s.train.length >= 100);
});

test('a short training run on 16 real pairs at 64 px beats the untrained net; save, load, evaluate', async () => {
  const pairs = await segmentationPairs(sharedPath('data', 'ieee8023-covid-chestxray'));
  const s = splitPairs(pairs, 42);
  const size = 64;
  const train = await loadPairs(s.train.slice(0, 16), size);
  const held = await loadPairs(s.test.slice(0, 8), size);
  const untrained = buildSegmenter({ inputSize: size, filters: [8, 16, 32], seed: 42 });
  const before = quickDice(untrained, held);
  untrained.dispose();
  const t0 = performance.now();
  const r = await trainSegmenter(train, held, {
    ...DEFAULT_SEGMENTER_TRAINING,
    inputSize: size,
    filters: [8, 16, 32],
    epochs: 10,
    batchSize: 4,
    learningRate: 3e-3,
  });
  const seconds = (performance.now() - t0) / 1000;
  const afterDice = quickDice(r.model, held);
  assert.equal(r.history.length, 10);
  assert.ok(r.history.at(-1)!.loss < r.history[0].loss, `loss fell: ${r.history.map((h) => h.loss.toFixed(3)).join(' ')}`);
  assert.ok(afterDice > before + 0.2 && afterDice > 0.55, `held-out Dice ${before.toFixed(3)} -> ${afterDice.toFixed(3)} (${seconds.toFixed(1)} s)`);
  assert.ok(Math.abs(afterDice - r.bestValDice) < 1e-9, 'the best epoch weights are the ones kept');

  // Saved and reloaded, it predicts the same; the bundle files list model.json and its weights.
  const dir = join(work, 'seg');
  await saveSegmenter(r.model, dir, { kind: 'zerovar-lung-segmenter', inputSize: size, filters: [8, 16, 32], refinement: { ...DEFAULT_REFINEMENT } });
  const loaded = await loadSegmenter(dir);
  assert.equal(loaded.meta.inputSize, size);
  assert.equal(quickDice(loaded.model, held), afterDice);
  const files = await segmenterFiles(dir);
  assert.deepEqual(Object.keys(files).sort(), ['segmenter/model.json', 'segmenter/weights.bin']);

  // Full-resolution evaluation with post-processing, and the figure.
  const figure = join(work, 'fig.png');
  const ev = await evaluateSegmenter(loaded.model, s.test.slice(0, 4), loaded.meta.refinement, { path: figure, rows: 2 });
  assert.equal(ev.n, 4);
  assert.ok(ev.dice > 0.5 && ev.iou > 0.3 && ev.iou <= ev.dice, `Dice ${ev.dice}, IoU ${ev.iou}`);
  assert.ok(readFileSync(figure).subarray(1, 4).toString() === 'PNG');
  // segmentLungs answers at the image's own size, 0 or 255.
  const img = held.images[0];
  const big: GreyImage = { width: 100, height: 80, data: new Uint8Array(8000).fill(120) };
  const mask = segmentLungs(loaded.model, big);
  assert.equal(mask.width, 100);
  assert.equal(mask.height, 80);
  assert.ok(mask.data.every((v) => v === 0 || v === 255));
  assert.ok(count(segmentLungs(loaded.model, img)) > 0);
  r.model.dispose();
  loaded.model.dispose();
});

