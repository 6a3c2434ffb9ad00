// The guard-and-calibration step on a small bundle: fitted from its splits, written into the bundle without
// touching its other files, read back by the same BundleModel the viewer uses, which then flags what lies off
// the training images, keeps every prediction's class and refuses a guard that does not fit its network.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import { amendBundle, fsFetcher, writeBundle } from '../../trainer/src/io/bundle-fs.js';
import { BundleError } from '../../trainer/src/model/bundle.js';
import { BundleModel } from '../../trainer/src/model/inference.js';
import type { GreyImage } from '../../trainer/src/image/pixels.js';
import { fitClassifier } from '../../trainer/src/train/classifiers.js';
import type { ClassifierJSON } from '../../trainer/src/model/classifiers.js';
import { guardStep, OOD_GUARD_PATH } from '../../trainer/src/train/guard-step.js';
import { mulberry32 } from '../../trainer/src/data/rng.js';
import { recordedFigures } from '../helpers/bundle-fixture.js';

let root: string;
before(async () => {
  await initBackend();
  root = await mkdtemp(join(tmpdir(), 'zerovar-guard-test-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const SIZE = 16;

/** Chest-like test images: a bright field with two darker "lungs" whose depth depends on the class, plus noise. */
function image(label: number, r: () => number): GreyImage {
  const data = new Uint8Array(SIZE * SIZE);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const lung = y > 3 && y < 13 && ((x > 2 && x < 7) || (x > 9 && x < 14));
      data[y * SIZE + x] = Math.round((lung ? 90 + 40 * label : 200) + 20 * (r() - 0.5));
    }
  }
  return { width: SIZE, height: SIZE, data };
}

function split(n: number, seed: number): { images: GreyImage[]; labels: number[] } {
  const r = mulberry32(seed);
  const labels = Array.from({ length: n }, (_, i) => i % 2);
  return { images: labels.map((l) => image(l, r)), labels };
}

function network(): tf.LayersModel {
  const input = tf.input({ shape: [SIZE, SIZE, 3] });
  const conv = tf.layers.conv2d({ filters: 6, kernelSize: 3, activation: 'relu', name: 'last_conv', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }).apply(input);
  const gap = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(conv);
  const fc2 = tf.layers.dense({ units: 5, activation: 'relu', name: 'fc2', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }).apply(gap) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: fc2 });
}

test('the guard and calibration are fitted, written beside the untouched bundle, and used by BundleModel', async () => {
  const model = network();
  const train = split(80, 1);
  const val = split(40, 2);
  const test_ = split(40, 3);
  const dir = join(root, 'bundle');
  // A first bundle with a placeholder classifier gives the features the real one is fitted on.
  const spec = { size: SIZE, channels: 3 as const, normalization: 'mobilenet' as const, resize: 'stretch' as const };
  const draft = (deployed: ClassifierJSON) => ({
    name: 'guard test',
    variant: 'raw' as const,
    classes: ['COVID', 'Normal'],
    positiveClass: 'COVID',
    input: spec,
    backbone: { name: 'tiny', weights: 'random' },
    model: { gradcamLayer: 'last_conv', featuresLayer: 'fc2', outputs: ['fc2'] },
    features: { selected: [0, 1, 2, 3, 4], total: 5, protocol: 'validation' as const },
    classifier: { deployed },
    ...recordedFigures(),
  });
  const features = (imgs: GreyImage[]) => {
    const x = tf.tensor4d(
      imgs.flatMap((g) => Array.from(g.data, (v) => [v / 127.5 - 1, v / 127.5 - 1, v / 127.5 - 1]).flat()),
      [imgs.length, SIZE, SIZE, 3],
    );
    const f = (model.predict(x) as tf.Tensor2D).arraySync();
    x.dispose();
    return f;
  };
  const clf = fitClassifier('logistic', features(train.images), train.labels);
  await writeBundle(dir, draft(clf), model);
  await writeFile(join(dir, 'README.md'), 'how this bundle was made\n');
  const before = await BundleModel.load(fsFetcher(dir));
  const plain = before.classifyBatch(test_.images);
  assert.equal(plain[0].ood, undefined, 'a bundle without a guard gives no verdict');

  const offDistribution = Array.from({ length: 6 }, (_, i) => ({ width: SIZE, height: SIZE, data: new Uint8Array(SIZE * SIZE).fill(i % 2 ? 0 : 255) }));
  const r = guardStep(before, { train, val, test: test_, outOfDistribution: { flat: offDistribution }, components: 3, synthetic: 2 });
  before.dispose();
  assert.ok(Math.abs(r.ood.flagged.validation - 0.05) <= 0.03, `validation flagged ${r.ood.flagged.validation}`);
  assert.equal(r.ood.flagged.sets?.flat, 1, 'flat fields are flagged');
  assert.ok((r.ood.auroc?.flat ?? 0) > 0.95);
  assert.deepEqual(Object.keys(r.scores).sort(), ['flat', 'synthetic-checker', 'synthetic-flat', 'synthetic-gradient', 'synthetic-noise', 'synthetic-text', 'test', 'validation']);
  assert.equal(r.reliability.before.reduce((n, b) => n + b.count, 0), test_.images.length);

  const manifest = await amendBundle(dir, { [OOD_GUARD_PATH]: r.guardBytes }, (m) => ({ ...m, ood: r.ood, calibration: r.calibration }));
  assert.ok(OOD_GUARD_PATH in manifest.files);
  assert.equal(await readFile(join(dir, 'README.md'), 'utf8'), 'how this bundle was made\n', 'files beside the bundle are kept');

  const bm = await BundleModel.load(fsFetcher(dir));
  const guarded = bm.classifyBatch(test_.images);
  guarded.forEach((p, i) => {
    assert.equal(p.classIndex, plain[i].classIndex, 'calibration never changes the predicted class');
    assert.ok(Math.abs(p.probabilities[0] + p.probabilities[1] - 1) < 1e-9);
    assert.ok(p.ood && Number.isFinite(p.ood.score) && p.ood.threshold === r.ood.threshold);
  });
  const flagged = bm.classifyBatch(offDistribution).filter((p) => p.ood?.flagged).length;
  assert.equal(flagged, offDistribution.length);
  bm.dispose();

  // A guard whose shape does not fit the network is refused at load, naming the field.
  await amendBundle(dir, {}, (m) => ({ ...m, ood: { ...r.ood, dims: 7 } }));
  await assert.rejects(BundleModel.load(fsFetcher(dir)), (e: unknown) => e instanceof BundleError && e.code === 'invalid-field' && /manifest\.ood/.test(e.message));
  model.dispose();
});
