// `zerovar predict` end to end on a tiny bundle (with an out-of-distribution guard and a temperature calibration)
// and a folder of PNG and DICOM files with a corrupt file and a text file among them: the JSON and CSV outputs,
// the attention overlays, the exit codes; and evaluate's ECE and flagged fraction. Heavy: each run starts the CLI.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { PNG } from 'pngjs';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import { fsFetcher, writeBundle, type BundleManifestDraft } from '../../trainer/src/io/bundle-fs.js';
import { BundleModel } from '../../trainer/src/model/inference.js';
import { encodeOodGuard, fitOodGuard, oodGuardHeader } from '../../trainer/src/model/ood.js';
import { fitClassifier } from '../../trainer/src/train/classifiers.js';
import { readGreyImage } from '../../trainer/src/data/decode.js';
import { resizeGrey } from '../../trainer/src/image/pixels.js';
import { evaluateBundle } from '../../trainer/src/train/evaluate.js';
import { expectedCalibrationError } from '../../trainer/src/stats/calibration.js';
import type { PredictResult } from '../../trainer/src/train/predict.js';
import { buildDicom } from '../helpers/dicom-writer.js';
import { recordedFigures } from '../helpers/bundle-fixture.js';
import { projectRoot } from '../helpers/shared.js';

const cli = join(projectRoot, 'trainer', 'bin', 'zerovar.mjs');
let root: string;
let guarded: string;
let plain: string;
let tampered: string;
let input: string;
let dataset: string;

/** A deterministic 0..1 generator, so the fixture is the same on every run. */
function lcg(seed: number): () => number {
  let a = seed;
  return () => (a = (a * 1103515245 + 12345) % 2147483648) / 2147483648;
}

function pngBytes(w: number, h: number, seed: number): Buffer {
  const png = new PNG({ width: w, height: h });
  const rand = lcg(seed);
  for (let i = 0; i < w * h; i++) {
    const v = Math.round(255 * (0.5 * rand() + (0.5 * (i % w)) / w));
    png.data[4 * i] = png.data[4 * i + 1] = png.data[4 * i + 2] = v;
    png.data[4 * i + 3] = 255;
  }
  return PNG.sync.write(png);
}

function zerovar(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  await initBackend();
  root = await mkdtemp(join(tmpdir(), 'zerovar-predict-'));
  const x = tf.input({ shape: [16, 16, 3] });
  const conv = tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', name: 'last_conv', kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }).apply(x);
  const gap = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(conv);
  const fc2 = tf.layers.dense({ units: 4, name: 'fc2', kernelInitializer: tf.initializers.glorotUniform({ seed: 6 }) }).apply(gap) as tf.SymbolicTensor;
  const model = tf.model({ inputs: x, outputs: fc2 });
  const rand = lcg(7);
  const X = Array.from({ length: 20 }, (_, i) => [0, 1, 2, 3].map(() => rand() + (i % 2)));
  const y = X.map((_, i) => i % 2);
  // The guard's numbers from random 4-channel features: what matters here is that its verdict reaches the output.
  const guard = fitOodGuard('last_conv', X.map((r) => r.map((v) => v * 0.2)), y, X.slice(0, 10).map((r) => r.map((v) => v * 0.2)));
  const base: BundleManifestDraft = {
    name: 'predict test bundle',
    variant: 'raw',
    classes: ['COVID', 'Normal'],
    positiveClass: 'COVID',
    input: { size: 16, channels: 3, normalization: 'mobilenet', resize: 'stretch' },
    backbone: { name: 'tiny', weights: 'random' },
    model: { gradcamLayer: 'last_conv', featuresLayer: 'fc2', outputs: ['fc2'] },
    features: { selected: [0, 1, 2, 3], total: 4, protocol: 'validation' },
    classifier: { deployed: fitClassifier('logistic', X, y, { seed: 1 }) },
    ...recordedFigures(),
    calibration: { calibration: { method: 'temperature', temperature: 2.5 }, cvEce: { none: 0.1, temperature: 0.05 }, testEce: { before: 0.1, after: 0.05 } },
  };
  guarded = join(root, 'guarded');
  await writeBundle(
    guarded,
    { ...base, ood: { method: 'mahalanobis-ppca', path: 'ood.bin', input: 'unmasked', ...oodGuardHeader(guard), flagged: { validation: 0.05, test: 0.05 } } },
    model,
    { 'ood.bin': encodeOodGuard(guard) },
  );
  plain = join(root, 'plain');
  await writeBundle(plain, { ...base, name: 'plain' }, model);
  tampered = join(root, 'tampered');
  await cp(guarded, tampered, { recursive: true });
  const w = await readFile(join(tampered, 'model', 'weights.bin'));
  w[0] ^= 1;
  await writeFile(join(tampered, 'model', 'weights.bin'), w);
  model.dispose();

  input = join(root, 'in');
  await mkdir(join(input, 'nested', 'deep'), { recursive: true });
  await writeFile(join(input, 'a.png'), pngBytes(24, 20, 1));
  await writeFile(join(input, 'x, "quoted".png'), pngBytes(18, 18, 2));
  await writeFile(join(input, 'nested', 'deep', 'c.png'), pngBytes(32, 30, 3));
  const samples = Array.from({ length: 20 * 18 }, (_, i) => (i * 97) % 4096);
  await writeFile(join(input, 'nested', 'scan.dcm'), buildDicom({ rows: 18, columns: 20, samples, bitsStored: 12, windowCenter: '2048', windowWidth: '4096' }));
  await writeFile(join(input, 'nested', 'IM0002'), buildDicom({ rows: 18, columns: 20, samples, bitsStored: 12, photometric: 'MONOCHROME1' }));
  await writeFile(join(input, 'broken.png'), pngBytes(16, 16, 4).subarray(0, 60));
  await writeFile(join(input, 'notes.txt'), 'not an image');

  dataset = join(root, 'ds');
  for (const [k, c] of ['COVID', 'Normal'].entries()) {
    await mkdir(join(dataset, c), { recursive: true });
    for (let i = 0; i < 4; i++) await writeFile(join(dataset, c, `${i}.png`), pngBytes(20, 20, 10 * k + i));
  }
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

const scoredNames = ['a.png', 'nested/IM0002', 'nested/deep/c.png', 'nested/scan.dcm', 'x, "quoted".png'];

test('predict --json: every image scored with calibrated probabilities by class name and the guard verdict; the corrupt file skipped', async () => {
  const att = join(root, 'attention');
  const r = zerovar('predict', '--bundle', guarded, '--input', input, '--json', '--attention', att);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as PredictResult;
  assert.equal(out.bundle, guarded);
  assert.deepEqual(out.classes, ['COVID', 'Normal']);
  assert.equal(out.guard, true);
  assert.deepEqual(out.results.map((x) => x.file), scoredNames.map((n) => join(input, n)), 'sorted, recursive, DICOM by content');
  for (const x of out.results) {
    assert.deepEqual(Object.keys(x.probabilities), ['COVID', 'Normal']);
    const sum = x.probabilities.COVID + x.probabilities.Normal;
    assert.ok(Math.abs(sum - 1) < 1e-9, `${x.file}: probabilities sum to ${sum}`);
    assert.equal(x.predicted, x.probabilities.COVID >= x.probabilities.Normal ? 'COVID' : 'Normal');
    assert.equal(typeof x.oodScore, 'number');
    assert.equal(typeof x.oodThreshold, 'number');
    assert.equal(x.outOfDistribution, !((x.oodScore as number) <= (x.oodThreshold as number)));
  }
  assert.deepEqual(out.skipped.map((s) => s.file), [join(input, 'broken.png')]);
  assert.match(out.skipped[0].reason, /PNG/);
  assert.equal(out.ignored, 1, 'notes.txt');
  assert.match(r.stderr, /skipped .*broken\.png/);
  assert.match(r.stderr, /predict 6\/6 \(100%\)/);

  // The same answer as the library gives in process: the calibrated probabilities and the verdict, exactly.
  const bm = await BundleModel.load(fsFetcher(guarded));
  try {
    for (const name of ['a.png', 'nested/scan.dcm']) {
      const p = bm.classify(await readGreyImage(join(input, name)));
      const got = out.results.find((x) => x.file === join(input, name));
      assert.deepEqual(got?.probabilities, { COVID: p.probabilities[0], Normal: p.probabilities[1] });
      assert.equal(got?.oodScore, p.ood?.score);
      assert.equal(got?.outOfDistribution, p.ood?.flagged);
      const raw = bm.uncalibrated(bm.features([await readGreyImage(join(input, name))]))[0];
      assert.notEqual(raw[0], p.probabilities[0], 'the temperature is applied');
    }
  } finally {
    bm.dispose();
  }

  // One overlay per scored image, mirroring the folders, at the image's own size.
  const sizes: Record<string, [number, number]> = {
    'a.png': [24, 20],
    'nested/IM0002.png': [20, 18],
    'nested/deep/c.png': [32, 30],
    'nested/scan.png': [20, 18],
    'x, "quoted".png': [18, 18],
  };
  for (const [name, [w, h]] of Object.entries(sizes)) {
    const path = join(att, name);
    assert.ok(existsSync(path), `${name} written`);
    const png = PNG.sync.read(await readFile(path));
    assert.deepEqual([png.width, png.height], [w, h], name);
  }
  assert.deepEqual(out.results.map((x) => x.attention), Object.keys(sizes).map((n) => join(att, n)));
});

test('predict --csv --out: a header with a column per class, one RFC 4180 row per file, nothing on stdout', async () => {
  const file = join(root, 'out', 'scores.csv');
  const r = zerovar('predict', '--bundle', guarded, '--input', input, '--csv', '--out', file, '--quiet');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '');
  const lines = (await readFile(file, 'utf8')).split('\r\n');
  assert.equal(lines[0], 'file,predicted,p_COVID,p_Normal,outOfDistribution,oodScore,oodThreshold');
  assert.equal(lines.length, 1 + scoredNames.length + 1);
  assert.equal(lines.at(-1), '');
  const quoted = lines.find((l) => l.includes('quoted'));
  assert.ok(quoted?.startsWith(`"${join(input, 'x, ""quoted"".png')}",`), quoted);
  const json = JSON.parse(zerovar('predict', '--bundle', guarded, '--input', join(input, 'a.png'), '--json', '--quiet').stdout) as PredictResult;
  const a = json.results[0];
  assert.equal(lines[1], [a.file, a.predicted, a.probabilities.COVID, a.probabilities.Normal, a.outOfDistribution, a.oodScore, a.oodThreshold].join(','));
});

test('predict with a bundle without a guard: outOfDistribution null, said once on stderr', () => {
  const r = zerovar('predict', '--bundle', plain, '--input', join(input, 'a.png'), join(input, 'nested'), '--json');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as PredictResult;
  assert.equal(out.guard, false);
  assert.equal(out.results.length, 4);
  for (const x of out.results) assert.deepEqual([x.outOfDistribution, x.oodScore, x.oodThreshold], [null, null, null]);
  assert.equal(r.stderr.match(/no out-of-distribution guard/g)?.length, 1, r.stderr);
  const table = zerovar('predict', '--bundle', plain, '--input', join(input, 'a.png'), '--quiet');
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^file\s+predicted\s+p\s+out of distribution\n.*a\.png\s+(COVID|Normal)\s+0\.\d{3}\s+-\n$/);
});

test('predict exits non-zero when nothing could be scored, and when the bundle is missing or tampered with', () => {
  const none = zerovar('predict', '--bundle', guarded, '--input', join(input, 'broken.png'), join(input, 'notes.txt'), join(root, 'nowhere'), '--json');
  assert.notEqual(none.code, 0);
  const out = JSON.parse(none.stdout) as PredictResult;
  assert.deepEqual(out.results, []);
  assert.deepEqual(out.skipped.map((s) => s.file).sort(), [join(input, 'broken.png'), join(input, 'notes.txt'), join(root, 'nowhere')].sort());
  assert.match(none.stderr, /no image could be scored/);

  const bad = zerovar('predict', '--bundle', tampered, '--input', input, '--json');
  assert.notEqual(bad.code, 0);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /checksum mismatch/);
  const missing = zerovar('predict', '--bundle', join(root, 'no-bundle'), '--input', input);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /manifest\.json/);
});

test('evaluate reports the ECE of the calibrated probabilities and the fraction the guard flags (null without a guard)', async () => {
  const r = await evaluateBundle({ bundle: guarded, dataset, mapping: '', backend: 'auto' });
  assert.equal(r.n, 8);
  assert.ok(r.ece >= 0 && r.ece <= 1, String(r.ece));
  const bm = await BundleModel.load(fsFetcher(guarded));
  let flagged = 0;
  const probs: number[][] = [];
  const raw: number[][] = [];
  try {
    for (const c of ['COVID', 'Normal']) {
      for (let i = 0; i < 4; i++) {
        const img = resizeGrey(await readGreyImage(join(dataset, c, `${i}.png`)), 16, 16);
        const p = bm.classify(img);
        if (p.ood?.flagged) flagged++;
        probs.push(p.probabilities);
        raw.push(bm.uncalibrated(bm.features([img]))[0]);
      }
    }
  } finally {
    bm.dispose();
  }
  assert.equal(r.flagged, flagged / 8);
  const y = [0, 0, 0, 0, 1, 1, 1, 1];
  assert.equal(r.ece, expectedCalibrationError(probs, y));
  assert.notEqual(r.ece, expectedCalibrationError(raw, y), 'measured after calibration');
  const p = await evaluateBundle({ bundle: plain, dataset, mapping: '', backend: 'auto' });
  assert.equal(p.flagged, null);
  assert.equal(p.ece, r.ece, 'the same calibrated probabilities');
});
