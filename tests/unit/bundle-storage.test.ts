// How a bundle stores its numbers: quantized network weights (float16, uint8) load through the verified reader
// within their bound, the classifier's large arrays in a binary file read back exactly, a tampered array file is
// refused, bundles with the arrays inline still load, wrong references are named, and amendBundle keeps (or,
// asked to, changes) the storage.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import { amendBundle, fsFetcher, writeBundle, type BundleManifestDraft } from '../../trainer/src/io/bundle-fs.js';
import { BundleError, loadBundleModel, readBundle, type BundleErrorCode } from '../../trainer/src/model/bundle.js';
import { classifierFromJSON, type ClassifierJSON } from '../../trainer/src/model/classifiers.js';
import { decodeFloat16, encodeFloat16 } from '../../trainer/src/model/quantize.js';
import { BundleModel } from '../../trainer/src/model/inference.js';
import type { GreyImage } from '../../trainer/src/image/pixels.js';
import { recordedFigures } from '../helpers/bundle-fixture.js';

let root: string;
let counter = 0;
before(async () => {
  await initBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'zerovar-storage-test-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const K = 3;
const SV = 40;

function tinyModel(seed: number): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 3] });
  const init = (s: number) => tf.initializers.randomNormal({ mean: 0, stddev: 0.5, seed: seed + s });
  const conv = tf.layers.conv2d({ filters: 8, kernelSize: 3, activation: 'relu', name: 'last_conv', kernelInitializer: init(1) }).apply(input);
  const gap = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(conv);
  // 8 x 160 = 1280 kernel values: large enough to be stored as uint8 codes.
  const fc = tf.layers.dense({ units: 160, activation: 'relu', name: 'fc1', kernelInitializer: init(2) }).apply(gap);
  const out = tf.layers.dense({ units: K, name: 'fc2', kernelInitializer: init(3) }).apply(fc) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

/** An RBF SVM on the K features with SV support vectors (float32 values, so float32 storage is exact). */
function svmClassifier(): ClassifierJSON {
  const f = (i: number) => Math.fround(Math.sin(i * 1.7) * 0.8);
  return {
    kind: 'svm-rbf',
    nClasses: 2,
    nFeatures: K,
    scaler: { mean: [0.1, -0.2, 0.05], scale: [1, 2, 0.5] },
    svm: {
      kernel: 'rbf',
      degree: 3,
      gamma: 0.5,
      coef0: 0,
      labels: [0, 1],
      nSV: [SV / 2, SV / 2],
      supportVectors: Array.from({ length: SV }, (_, r) => Array.from({ length: K }, (_, c) => f(r * K + c))),
      dualCoef: [Array.from({ length: SV }, (_, r) => Math.fround((r < SV / 2 ? 1 : -1) * (0.5 + (r % 7) / 10)))],
      rho: [0.1],
      probA: [-1.2],
      probB: [0.05],
    },
  };
}

function draft(classifier: ClassifierJSON = svmClassifier()): BundleManifestDraft {
  return {
    name: 'storage test bundle',
    variant: 'raw',
    classes: ['COVID', 'Normal'],
    positiveClass: 'COVID',
    input: { size: 8, channels: 3, normalization: 'mobilenet', resize: 'stretch' },
    backbone: { name: 'tiny', weights: 'random' },
    model: { gradcamLayer: 'last_conv', featuresLayer: 'fc2', outputs: ['fc2'] },
    features: { selected: [0, 1, 2], total: K, protocol: 'validation' },
    classifier: { deployed: classifier },
    ...recordedFigures(),
  };
}

function grey(seed: number): GreyImage {
  const data = new Uint8Array(64);
  for (let i = 0; i < 64; i++) data[i] = (i * 37 + seed * 101) % 256;
  return { width: 8, height: 8, data };
}

async function rejectsWith(promise: Promise<unknown>, code: BundleErrorCode, message: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof BundleError, `expected a BundleError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
}

const dirFor = (name: string) => join(root, `${name}-${counter++}`);

test('classifier arrays in a binary file round-trip exactly (float32), the manifest keeps references', async () => {
  const dir = dirFor('f32');
  const clf = svmClassifier();
  await writeBundle(dir, draft(clf), tinyModel(1));
  const stored = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
  assert.deepEqual(stored.classifier.deployed.svm.supportVectors, { binary: 'classifier/deployed.bin', dtype: 'float32', offset: 0, shape: [SV, K] });
  assert.deepEqual(stored.classifier.deployed.scaler.mean, [0.1, -0.2, 0.05], 'a handful of numbers stays inline');
  assert.ok(Array.isArray(stored.classifier.deployed.svm.dualCoef), `${SV} values stay inline`);
  const bundle = await readBundle(fsFetcher(dir));
  assert.ok('classifier/deployed.bin' in bundle.manifest.files);
  assert.equal(bundle.classifierArrays, 'float32');
  assert.deepEqual(bundle.manifest.classifier.deployed, clf);
  const x = [[0.3, -0.1, 0.9], [-1, 0.5, 0]];
  assert.deepEqual(classifierFromJSON(bundle.manifest.classifier.deployed).predictProba(x), classifierFromJSON(clf).predictProba(x));
});

test('a tampered classifier array file fails its checksum; a wrong or unlisted reference is named', async () => {
  const dir = dirFor('tamper');
  await writeBundle(dir, draft(), tinyModel(2));
  const good = await readFile(join(dir, 'manifest.json'), 'utf8');
  const bin = join(dir, 'classifier', 'deployed.bin');
  const bytes = await readFile(bin);
  bytes[5] ^= 1;
  await writeFile(bin, bytes);
  await rejectsWith(readBundle(fsFetcher(dir)), 'checksum', /checksum mismatch for classifier\/deployed\.bin/);
  bytes[5] ^= 1;
  await writeFile(bin, bytes);

  const edit = async (change: (sv: Record<string, unknown>) => void) => {
    const m = JSON.parse(good);
    change(m.classifier.deployed.svm.supportVectors);
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(m));
  };
  const at = 'manifest\\.classifier\\.deployed\\.svm\\.supportVectors';
  await edit((sv) => (sv.binary = 'classifier/other.bin'));
  await rejectsWith(readBundle(fsFetcher(dir)), 'invalid-field', new RegExp(`^${at}\\.binary: classifier/other\\.bin is not listed in manifest\\.files$`));
  await edit((sv) => (sv.shape = [SV - 1, K]));
  await rejectsWith(readBundle(fsFetcher(dir)), 'invalid-field', new RegExp(`^${at}: expected ${SV} rows \\(the sum of nSV\\)$`));
  await edit((sv) => (sv.shape = [SV, K + 1]));
  await rejectsWith(readBundle(fsFetcher(dir)), 'invalid-field', new RegExp(`^${at}: expected rows of ${K} values$`));
  await edit((sv) => (sv.shape = [SV * K]));
  await rejectsWith(readBundle(fsFetcher(dir)), 'invalid-field', new RegExp(`^${at}\\.shape: expected \\[rows, columns\\]`));
  await edit((sv) => (sv.dtype = 'int8'));
  await rejectsWith(readBundle(fsFetcher(dir)), 'invalid-field', new RegExp(`^${at}\\.dtype: expected "float64" or "float32" or "float16"$`));
  await edit((sv) => (sv.offset = 8));
  await rejectsWith(readBundle(fsFetcher(dir)), 'invalid-field', new RegExp(`^${at}: ${SV * K} float32 values at byte 8 reach past the end of classifier/deployed\\.bin`));
  await edit((sv) => (sv.binary = '../escape.bin'));
  await rejectsWith(readBundle(fsFetcher(dir)), 'invalid-field', new RegExp(`^${at}\\.binary: invalid bundle path`));
});

test('an old-format bundle (arrays inline) still loads, and amendBundle keeps each layout', async () => {
  const clf = svmClassifier();
  const old = dirFor('inline');
  await writeBundle(old, draft(clf), tinyModel(3), {}, { classifierArrays: 'inline' });
  const stored = JSON.parse(await readFile(join(old, 'manifest.json'), 'utf8'));
  assert.ok(Array.isArray(stored.classifier.deployed.svm.supportVectors));
  const bundle = await readBundle(fsFetcher(old));
  assert.equal(bundle.classifierArrays, null);
  assert.deepEqual(bundle.manifest.classifier.deployed, clf);
  const bm = await BundleModel.load(fsFetcher(old));
  assert.equal(bm.classifyBatch([grey(1)]).length, 1);
  bm.dispose();
  await amendBundle(old, {}, (m) => ({ ...m, name: 'renamed' }));
  assert.ok(Array.isArray(JSON.parse(await readFile(join(old, 'manifest.json'), 'utf8')).classifier.deployed.svm.supportVectors));

  const packed = dirFor('packed');
  await writeBundle(packed, draft(clf), tinyModel(3));
  const before = await readFile(join(packed, 'classifier', 'deployed.bin'));
  await amendBundle(packed, {}, (m) => ({ ...m, name: 'renamed' }));
  assert.deepEqual(await readFile(join(packed, 'classifier', 'deployed.bin')), before, 'the array file is rewritten byte for byte');
  const again = await readBundle(fsFetcher(packed));
  assert.equal(again.manifest.name, 'renamed');
  assert.deepEqual(again.manifest.classifier.deployed, clf);

  // Asked to, amendBundle moves the arrays inline (and drops the file) or to another dtype.
  await amendBundle(packed, {}, (m) => m, { classifierArrays: 'inline' });
  const inlined = await readBundle(fsFetcher(packed));
  assert.equal(inlined.classifierArrays, null);
  assert.ok(!('classifier/deployed.bin' in inlined.manifest.files));
  await amendBundle(packed, {}, (m) => m, { classifierArrays: 'float16' });
  const half = await readBundle(fsFetcher(packed));
  assert.equal(half.classifierArrays, 'float16');
  const sv = (half.manifest.classifier.deployed as Extract<ClassifierJSON, { svm: unknown }>).svm.supportVectors.flat();
  const want = (clf as Extract<ClassifierJSON, { svm: unknown }>).svm.supportVectors.flat();
  assert.deepEqual(sv, Array.from(decodeFloat16(encodeFloat16(want))));
});

for (const [dtype, bound] of [['float16', 2e-2], ['uint8', 0.2]] as const) {
  test(`weights written as ${dtype} load through readBundle and BundleModel, close to the float32 network`, async () => {
    const model = tinyModel(4);
    const dir = dirFor(dtype);
    await writeBundle(dir, draft(), model, {}, { weightsDtype: dtype });
    const json = JSON.parse(await readFile(join(dir, 'model', 'model.json'), 'utf8'));
    const kinds = json.weightsManifest[0].weights.map((w: { name: string; quantization?: { dtype: string } }) => `${w.name}:${w.quantization?.dtype}`);
    assert.ok(kinds.includes(`fc1/kernel:${dtype}`), kinds.join(' '));
    assert.ok(kinds.includes('fc1/bias:float16'), kinds.join(' '));
    const size = (await stat(join(dir, 'model', 'weights.bin'))).size;
    const float32 = model.countParams() * 4;
    assert.ok(size < float32 * (dtype === 'uint8' ? 0.4 : 0.51), `${size} bytes for ${float32} as float32`);

    const loaded = await loadBundleModel(await readBundle(fsFetcher(dir)));
    if (dtype === 'float16') {
      const w = model.getLayer('fc1').getWeights()[0].dataSync();
      assert.deepEqual(Array.from(loaded.getLayer('fc1').getWeights()[0].dataSync()), Array.from(decodeFloat16(encodeFloat16(w))), 'the half values exactly');
    }
    const x = tf.randomUniform([4, 8, 8, 3], -1, 1, 'float32', 9);
    const [a, b] = tf.tidy(() => [(model.predict(x) as tf.Tensor).dataSync(), (loaded.predict(x) as tf.Tensor).dataSync()]);
    const scale = Math.max(...Array.from(a, Math.abs));
    const diff = Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])));
    assert.ok(diff <= bound * scale, `${dtype}: max |diff| ${diff} for outputs up to ${scale}`);
    x.dispose();
    loaded.dispose();

    const bm = await BundleModel.load(fsFetcher(dir));
    const p = bm.classify(grey(2)).probabilities;
    assert.ok(Math.abs(p[0] + p[1] - 1) < 1e-9);
    bm.dispose();
  });
}

test('a segmenter in the bundle is quantized the same way, on writing and on re-encoding', async () => {
  const seg = tinyModel(5);
  const segDir = dirFor('seg-src');
  const { saveLayersModel } = await import('../../trainer/src/io/layers-fs.js');
  await saveLayersModel(seg, segDir);
  const files = {
    'segmenter/model.json': new Uint8Array(await readFile(join(segDir, 'model.json'))),
    'segmenter/weights.bin': new Uint8Array(await readFile(join(segDir, 'weights.bin'))),
  };
  const segInfo = { path: 'segmenter/model.json', inputSize: 8, threshold: 0.5, refinement: { threshold: 0.5, keepComponents: 2, minComponentFraction: 0.1, fillHoles: true, dilation: 0 } };
  const dir = dirFor('seg');
  await writeBundle(dir, { ...draft(), segmenter: segInfo }, tinyModel(6), files, { weightsDtype: 'float16' });
  const dtypes = async (p: string) => new Set(JSON.parse(await readFile(join(dir, p), 'utf8')).weightsManifest[0].weights.map((w: { quantization?: { dtype: string } }) => w.quantization?.dtype));
  assert.deepEqual(await dtypes('segmenter/model.json'), new Set(['float16']));
  assert.deepEqual(await dtypes('model/model.json'), new Set(['float16']));

  // Re-encoding an existing bundle: both models change, the guard-less rest is kept, and it still loads.
  await amendBundle(dir, {}, (m) => m, { weightsDtype: 'uint8' });
  assert.ok((await dtypes('segmenter/model.json')).has('uint8'));
  assert.ok((await dtypes('model/model.json')).has('uint8'));
  const bundle = await readBundle(fsFetcher(dir));
  const s = await loadBundleModel(bundle, 'segmenter/model.json');
  assert.deepEqual(s.outputs[0].shape, [null, K]);
  s.dispose();
});
