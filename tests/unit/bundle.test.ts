import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import { fsFetcher, writeBundle, type BundleManifestDraft } from '../../trainer/src/io/bundle-fs.js';
import {
  BundleError,
  httpFetcher,
  loadBundleModel,
  parseManifest,
  readBundle,
  sha256,
  sha256Hex,
  type BundleErrorCode,
  type BundleManifest,
} from '../../trainer/src/model/bundle.js';
import { CLASSIFIER_KINDS, type ClassifierJSON } from '../../trainer/src/model/classifiers.js';
import { fitClassifier } from '../../trainer/src/train/classifiers.js';
import { recordedFigures } from '../helpers/bundle-fixture.js';
import { projectRoot } from '../helpers/shared.js';

let root: string;
before(async () => {
  await initBackend();
  root = await mkdtemp(join(tmpdir(), 'zerovar-bundle-test-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function tinyModel(): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 3] });
  const conv = tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', name: 'last_conv' }).apply(input);
  const gap = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(conv);
  const fc = tf.layers.dense({ units: 6, activation: 'relu', name: 'fc2' }).apply(gap);
  const out = tf.layers.dense({ units: 2, activation: 'softmax', name: 'probs' }).apply(fc) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

function draft(): BundleManifestDraft {
  return {
    name: 'tiny test bundle',
    variant: 'raw',
    classes: ['COVID', 'Normal'],
    positiveClass: 'COVID',
    input: { size: 8, channels: 3, normalization: 'mobilenet', resize: 'stretch' },
    backbone: { name: 'tiny', weights: 'random' },
    model: { gradcamLayer: 'last_conv', featuresLayer: 'fc2', outputs: ['probs'] },
    features: { selected: [0, 2, 5], total: 6, protocol: 'validation' },
    classifier: { deployed: tinyClassifier() },
    ...recordedFigures(),
  };
}

/** A binary logistic regression on the three selected features. */
function tinyClassifier(): ClassifierJSON {
  return {
    kind: 'logistic',
    nClasses: 2,
    nFeatures: 3,
    scaler: { mean: [0, 0, 0], scale: [1, 1, 1] },
    logistic: { weights: [[0.5, -0.25, 1]], intercept: [0.1] },
  };
}

let counter = 0;
async function freshBundle(extra?: Record<string, Uint8Array>): Promise<{ dir: string; model: tf.LayersModel }> {
  const dir = join(root, `bundle-${counter++}`);
  const model = tinyModel();
  await writeBundle(dir, draft(), model, extra);
  return { dir, model };
}

async function rewriteManifest(dir: string, edit: (m: BundleManifest) => void): Promise<void> {
  const m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as BundleManifest;
  edit(m);
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(m));
}

/** Sets a dotted path in manifest JSON to any value, valid or not (the test's deliberate way round the types). */
function setPath(json: unknown, path: string, value: unknown): void {
  const keys = path.split('.');
  const last = keys.pop() as string;
  let at = json as Record<string, unknown>;
  for (const k of keys) at = at[k] as Record<string, unknown>;
  if (value === undefined) delete at[last];
  else at[last] = value;
}

/** Asserts that `promise` rejects with a BundleError of `code` whose message matches `message`. */
async function rejectsWith(promise: Promise<unknown>, code: BundleErrorCode, message: RegExp | string): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof BundleError, `expected a BundleError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

test('sha256 matches node:crypto, both through WebCrypto and the built-in fallback', async () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 1000]) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 255);
    const expected = createHash('sha256').update(bytes).digest('hex');
    assert.equal(await sha256Hex(bytes), expected, `WebCrypto, ${n} bytes`);
    assert.equal(Buffer.from(sha256(bytes)).toString('hex'), expected, `fallback, ${n} bytes`);
  }
});

test('round trip: a written bundle reads back verified and predicts exactly the same', async () => {
  const { dir, model } = await freshBundle({ 'segmenter/notes.txt': new TextEncoder().encode('extra file') });
  const entries = (await readdir(root)).filter((e) => e.includes('.tmp-') || e.includes('.old-'));
  assert.deepEqual(entries, [], 'no temporary folders are left behind');

  const bundle = await readBundle(fsFetcher(dir));
  assert.equal(bundle.manifest.format, 'zerovar-bundle');
  assert.equal(bundle.manifest.formatVersion, 1);
  assert.equal(bundle.manifest.model.path, 'model/model.json');
  assert.deepEqual(Object.keys(bundle.manifest.files).sort(), ['model/model.json', 'model/weights.bin', 'segmenter/notes.txt']);
  assert.ok(!Number.isNaN(Date.parse(bundle.manifest.createdAt)));
  assert.deepEqual(bundle.manifest.features.selected, [0, 2, 5]);
  assert.equal(new TextDecoder().decode(bundle.files.get('segmenter/notes.txt')), 'extra file');

  const loaded = await loadBundleModel(bundle);
  const x = tf.randomUniform([3, 8, 8, 3], -1, 1, 'float32', 5);
  const [a, b] = tf.tidy(() => [(model.predict(x) as tf.Tensor).dataSync(), (loaded.predict(x) as tf.Tensor).dataSync()]);
  assert.deepEqual(Array.from(b), Array.from(a));
  x.dispose();

  // Writing again over an existing bundle replaces it whole.
  await writeBundle(dir, { ...draft(), name: 'second' }, model);
  const again = await readBundle(fsFetcher(dir));
  assert.equal(again.manifest.name, 'second');
  assert.ok(!('segmenter/notes.txt' in again.manifest.files));
});

test('a tampered weights byte is refused, naming model/weights.bin', async () => {
  const { dir } = await freshBundle();
  const path = join(dir, 'model', 'weights.bin');
  const bytes = await readFile(path);
  bytes[Math.floor(bytes.length / 2)] ^= 1;
  await writeFile(path, bytes);
  await rejectsWith(readBundle(fsFetcher(dir)), 'checksum', /checksum mismatch for model\/weights\.bin/);
});

test('a removed file is refused, naming it', async () => {
  const { dir } = await freshBundle();
  await unlink(join(dir, 'model', 'weights.bin'));
  await rejectsWith(readBundle(fsFetcher(dir)), 'missing-file', /missing file model\/weights\.bin/);
  // No manifest at all: there is no bundle there, which a viewer reports differently from a broken one.
  await rejectsWith(readBundle(fsFetcher(join(root, 'no-such-bundle'))), 'not-found', /missing file manifest\.json/);
  // A fetcher failing for another reason than absence is a file that could not be read, not "no bundle".
  const failing = async (): Promise<Uint8Array> => {
    throw new Error('connection reset');
  };
  await rejectsWith(readBundle(failing), 'missing-file', 'missing file manifest.json: connection reset');
});

test('an unknown format version or format is refused with a clear message', async () => {
  const { dir } = await freshBundle();
  await rewriteManifest(dir, (m) => {
    m.formatVersion = 99;
  });
  await rejectsWith(readBundle(fsFetcher(dir)), 'unsupported-version', 'bundle format version 99 is not supported (this reader supports 1)');
  await rewriteManifest(dir, (m) => {
    m.formatVersion = 1;
    setPath(m, 'format', 'something-else');
  });
  await rejectsWith(readBundle(fsFetcher(dir)), 'invalid-field', /not a zerovar-bundle manifest \(format: "something-else"\)/);
});

test('a garbage manifest is refused', async () => {
  const { dir } = await freshBundle();
  await writeFile(join(dir, 'manifest.json'), '{"format": "zerovar-bundle", "formatVer');
  await assert.rejects(readBundle(fsFetcher(dir)), (e: unknown) => e instanceof BundleError && /not valid JSON/.test(e.message));
  await writeFile(join(dir, 'manifest.json'), '[1, 2, 3]');
  await assert.rejects(readBundle(fsFetcher(dir)), /must hold a JSON object/);
  await writeFile(join(dir, 'manifest.json'), JSON.stringify({ format: 'zerovar-bundle', formatVersion: 1 }));
  await rejectsWith(readBundle(fsFetcher(dir)), 'invalid-field', 'manifest.name: expected a string');
});

test('model files that the manifest does not list, and paths leaving the bundle, are refused', async () => {
  const { dir } = await freshBundle();
  // model.json names a second shard; model.json's own checksum is updated so only the listing is wrong.
  const modelJsonPath = join(dir, 'model', 'model.json');
  const json = JSON.parse(await readFile(modelJsonPath, 'utf8')) as tf.io.ModelJSON;
  json.weightsManifest[0].paths.push('extra.bin');
  const text = JSON.stringify(json);
  await writeFile(modelJsonPath, text);
  await writeFile(join(dir, 'model', 'extra.bin'), new Uint8Array(4));
  await rewriteManifest(dir, (m) => {
    m.files['model/model.json'] = createHash('sha256').update(text).digest('hex');
  });
  await rejectsWith(readBundle(fsFetcher(dir)), 'invalid-field', /model file model\/extra\.bin .* is not listed/);

  const other = await freshBundle();
  await rewriteManifest(other.dir, (m) => {
    m.files['../outside.bin'] = '0'.repeat(64);
  });
  await assert.rejects(readBundle(fsFetcher(other.dir)), /invalid bundle path "\.\.\/outside\.bin"/);
  await rewriteManifest(other.dir, (m) => {
    delete m.files['../outside.bin'];
    delete m.files['model/model.json'];
  });
  await rejectsWith(readBundle(fsFetcher(other.dir)), 'invalid-field', 'manifest.files: model/model.json (model.path) is not listed');
});

test('writeBundle leaves nothing behind when it fails', async () => {
  const dir = join(root, 'failing');
  await assert.rejects(writeBundle(dir, draft(), tinyModel(), { '../escape.txt': new Uint8Array(1) }), /invalid bundle path/);
  const left = (await readdir(root)).filter((e) => e.startsWith('failing'));
  assert.deepEqual(left, []);
});

test('httpFetcher reads a bundle over HTTP; a 404 is a missing file, or no bundle when it is the manifest', async () => {
  const { dir } = await freshBundle();
  const server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').replace(/^\/bundles\/tiny\//, ''));
    if (path.startsWith('broken/')) return void res.writeHead(500).end('server error');
    readFile(join(dir, path)).then(
      (bytes) => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(bytes),
      () => res.writeHead(404).end('not found'),
    );
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/bundles/tiny`;
    const bundle = await readBundle(httpFetcher(base));
    assert.equal(bundle.manifest.name, 'tiny test bundle');
    assert.equal(bundle.files.size, 2);
    await unlink(join(dir, 'model', 'model.json'));
    await rejectsWith(readBundle(httpFetcher(`${base}/`)), 'missing-file', /missing file model\/model\.json: HTTP 404/);
    await rejectsWith(readBundle(httpFetcher(`${base}/nothing-here`)), 'not-found', /missing file manifest\.json: HTTP 404/);
    await rejectsWith(readBundle(httpFetcher(`${base}/broken`)), 'missing-file', /missing file manifest\.json: HTTP 500/);
  } finally {
    await new Promise((ok) => server.close(ok));
  }
});

test('an invalid classifier does not type-check, and is refused at parse naming the field', async () => {
  const bad: BundleManifestDraft = {
    ...draft(),
    // @ts-expect-error: not a classifier the classifiers module can read (the point of typing the manifest)
    classifier: { kind: 'svm', params: { kernel: 'poly' } },
  };
  const { dir } = await freshBundle();
  await rewriteManifest(dir, (m) => setPath(m, 'classifier', bad.classifier));
  await rejectsWith(readBundle(fsFetcher(dir)), 'invalid-field', 'manifest.classifier.deployed: expected an object');
  await rewriteManifest(dir, (m) => setPath(m, 'classifier', { deployed: { kind: 'svm', params: { kernel: 'poly' } } }));
  await rejectsWith(readBundle(fsFetcher(dir)), 'invalid-field',
    'manifest.classifier.deployed.kind: expected "svm-poly" or "svm-rbf" or "svm-linear" or "logistic" or "knn" or "random-forest"');
});

test('every manifest field is validated, with its path in the message', async () => {
  const { dir } = await freshBundle();
  const good = await readFile(join(dir, 'manifest.json'), 'utf8');
  const cases: [path: string, value: unknown, message: string][] = [
    ['classifier.deployed.scaler.mean', 'zeros', 'manifest.classifier.deployed.scaler.mean: expected an array of numbers'],
    ['classifier.deployed.scaler.scale', [1, 1], 'manifest.classifier.deployed.scaler: expected mean and scale of 3 values (nFeatures)'],
    ['classifier.deployed.nFeatures', 4, 'manifest.classifier.deployed.scaler: expected mean and scale of 4 values (nFeatures)'],
    ['classifier.deployed.logistic.weights', [[1, 2]], 'manifest.classifier.deployed.logistic.weights: expected rows of 3 values'],
    ['classifier.deployed.logistic.intercept', undefined, 'manifest.classifier.deployed.logistic.intercept: expected an array of numbers'],
    ['classifier.deployed.nClasses', 3, 'manifest.classifier.deployed.logistic.weights: expected 3 rows'],
    ['classifier.explainer', { kind: 'knn' }, 'manifest.classifier.explainer.nClasses: expected a positive integer'],
    ['features.selected', [0, 2], 'manifest.classifier.deployed.nFeatures: expected 2 (the number of features.selected), got 3'],
    ['features.selected', [0, 'two', 5], 'manifest.features.selected: expected an array of integers'],
    ['classes', ['COVID'], 'manifest.classes: expected at least two class names'],
    ['positiveClass', 'Flu', 'manifest.positiveClass: expected one of the classes, got "Flu"'],
    ['variant', 'lungs', 'manifest.variant: expected "raw" or "masked"'],
    ['input.size', 0, 'manifest.input.size: expected a positive integer'],
    ['input.normalization', 'tf', 'manifest.input.normalization: expected "mobilenet" or "caffe"'],
    ['model.gradcamLayer', 7, 'manifest.model.gradcamLayer: expected a string'],
    ['pruning.layers', [{ name: 'x', type: 'Dense', unitsBefore: 2 }], 'manifest.pruning.layers[0].unitsAfter: expected a number'],
    ['pruning.removedPerLayer', { fc2: 'one' }, 'manifest.pruning.removedPerLayer["fc2"]: expected a number'],
    ['pruning', { unpruned: false, paramsAfter: 3 }, 'manifest.pruning.unpruned: expected true'],
    ['pruning.compressedUnits', 'many', 'manifest.pruning.compressedUnits: expected a number'],
    ['pruning.thresholdRule', 'sometimes', 'manifest.pruning.thresholdRule: expected "auto" or "fixed"'],
    ['pruning.thresholdSweep', [{ threshold: 0 }], 'manifest.pruning.thresholdSweep[0].unitsRemoved: expected a number'],
    ['metrics.compressed.auc.macro', 'high', 'manifest.metrics.compressed.auc.macro: expected a number'],
    ['metrics.deployed', 'svm', 'manifest.metrics.deployed: expected "svm-poly" or "svm-rbf" or "svm-linear" or "logistic" or "knn" or "random-forest"'],
    ['metrics.classifiers', { knn: { accuracy: 1 } }, 'manifest.metrics.classifiers.knn.perClass: expected an object'],
    ['provenance.layout', 'tree', 'manifest.provenance.layout: expected "flat" or "kaggle" or "csv"'],
    ['provenance.split', { train: 1, val: 1 }, 'manifest.provenance.split.test: expected a number'],
    ['training.freezeBackbone', 'yes', 'manifest.training.freezeBackbone: expected true or false'],
    ['segmenter', { path: 'model/model.json', inputSize: 16, threshold: 0.5 }, 'manifest.segmenter.refinement: expected an object'],
    ['files.model/weights.bin', 'abc', 'manifest.files["model/weights.bin"]: expected a sha256 hex digest'],
  ];
  for (const [path, value, message] of cases) {
    const m = JSON.parse(good) as unknown;
    if (path.startsWith('files.')) (m as BundleManifest).files[path.slice('files.'.length)] = value as string;
    else setPath(m, path, value);
    const bytes = new TextEncoder().encode(JSON.stringify(m));
    assert.throws(() => parseManifest(bytes), (e: unknown) => {
      assert.ok(e instanceof BundleError, path);
      assert.equal(e.code, 'invalid-field', path);
      assert.equal(e.message, message, path);
      return true;
    });
  }
  // Optional fields may be absent, an undefined AUC is stored as null, and the unpruned reference's pruning
  // figures are only its size.
  const m = JSON.parse(good) as BundleManifest;
  setPath(m, 'training', undefined);
  setPath(m, 'positiveClass', undefined);
  setPath(m, 'metrics.compressed.auc.macro', null);
  setPath(m, 'pruning', { unpruned: true, paramsAfter: 42 });
  const parsed = parseManifest(new TextEncoder().encode(JSON.stringify(m)));
  assert.equal(parsed.metrics.compressed.auc.macro, null);
  assert.deepEqual(parsed.pruning, { unpruned: true, paramsAfter: 42 });
});

test('every kind of classifier the trainer fits validates as a manifest classifier', async () => {
  const { dir } = await freshBundle();
  const good = await readFile(join(dir, 'manifest.json'), 'utf8');
  const X = Array.from({ length: 24 }, (_, i) => [i % 2, (i * 7) % 5, (i * 3) % 4].map((v, j) => v + 0.1 * j + (i % 3)));
  for (const classes of [['COVID', 'Normal'], ['COVID', 'Normal', 'Viral']]) {
    const y = X.map((_, i) => i % classes.length);
    for (const kind of CLASSIFIER_KINDS) {
      const deployed = fitClassifier(kind, X, y, { seed: 1, probability: true });
      const m = JSON.parse(good) as BundleManifest;
      m.classes = classes;
      m.classifier = { deployed, explainer: fitClassifier('logistic', X, y, { seed: 1 }) };
      m.metrics.deployed = kind;
      const parsed = parseManifest(new TextEncoder().encode(JSON.stringify(m)));
      assert.equal(parsed.classifier.deployed.kind, kind, `${kind}, ${classes.length} classes`);
    }
  }
});

test('the released bundles parse, validate and verify', async () => {
  for (const variant of ['raw', 'masked'] as const) {
    const dir = join(projectRoot, 'models', variant);
    const manifest = parseManifest(new Uint8Array(await readFile(join(dir, 'manifest.json'))));
    assert.equal(manifest.variant, variant);
    assert.equal(manifest.classifier.deployed.nFeatures, manifest.features.selected.length);
    assert.equal(manifest.metrics.deployed, manifest.classifier.deployed.kind);
    assert.ok(!('unpruned' in manifest.pruning) && manifest.pruning.unitsAfter < manifest.pruning.unitsBefore);
    assert.equal(Boolean(manifest.segmenter), variant === 'masked');
    const bundle = await readBundle(fsFetcher(dir));
    assert.deepEqual([...bundle.files.keys()].sort(), Object.keys(manifest.files).sort());
  }
});
