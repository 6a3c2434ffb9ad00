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
  readBundle,
  sha256,
  sha256Hex,
  type BundleManifest,
} from '../../trainer/src/model/bundle.js';

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
    classifier: { kind: 'svm', params: { kernel: 'poly' } },
    pruning: { unitsBefore: 10, unitsAfter: 8 },
    metrics: { accuracy: 0.5 },
    provenance: { dataset: 'synthetic' },
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
  await assert.rejects(readBundle(fsFetcher(dir)), (e: unknown) => {
    assert.ok(e instanceof BundleError);
    assert.match(e.message, /checksum mismatch for model\/weights\.bin/);
    return true;
  });
});

test('a removed file is refused, naming it', async () => {
  const { dir } = await freshBundle();
  await unlink(join(dir, 'model', 'weights.bin'));
  await assert.rejects(readBundle(fsFetcher(dir)), (e: unknown) => {
    assert.ok(e instanceof BundleError);
    assert.match(e.message, /missing file model\/weights\.bin/);
    return true;
  });
  await assert.rejects(readBundle(fsFetcher(join(root, 'no-such-bundle'))), /missing file manifest\.json/);
});

test('an unknown format version or format is refused with a clear message', async () => {
  const { dir } = await freshBundle();
  await rewriteManifest(dir, (m) => {
    m.formatVersion = 2;
  });
  await assert.rejects(readBundle(fsFetcher(dir)), (e: unknown) => {
    assert.ok(e instanceof BundleError);
    assert.equal(e.message, 'bundle format version 2 is not supported (this reader supports 1)');
    return true;
  });
  await rewriteManifest(dir, (m) => {
    m.formatVersion = 1;
    (m as { format: string }).format = 'something-else';
  });
  await assert.rejects(readBundle(fsFetcher(dir)), /not a zerovar-bundle manifest \(format: "something-else"\)/);
});

test('a garbage manifest is refused', async () => {
  const { dir } = await freshBundle();
  await writeFile(join(dir, 'manifest.json'), '{"format": "zerovar-bundle", "formatVer');
  await assert.rejects(readBundle(fsFetcher(dir)), (e: unknown) => e instanceof BundleError && /not valid JSON/.test(e.message));
  await writeFile(join(dir, 'manifest.json'), '[1, 2, 3]');
  await assert.rejects(readBundle(fsFetcher(dir)), /must hold a JSON object/);
  await writeFile(join(dir, 'manifest.json'), JSON.stringify({ format: 'zerovar-bundle', formatVersion: 1 }));
  await assert.rejects(readBundle(fsFetcher(dir)), /classes must list/);
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
  await assert.rejects(readBundle(fsFetcher(dir)), (e: unknown) => {
    assert.ok(e instanceof BundleError);
    assert.match(e.message, /model file model\/extra\.bin .* is not listed/);
    return true;
  });

  const other = await freshBundle();
  await rewriteManifest(other.dir, (m) => {
    m.files['../outside.bin'] = '0'.repeat(64);
  });
  await assert.rejects(readBundle(fsFetcher(other.dir)), /invalid bundle path "\.\.\/outside\.bin"/);
  await rewriteManifest(other.dir, (m) => {
    delete m.files['../outside.bin'];
    delete m.files['model/model.json'];
  });
  await assert.rejects(readBundle(fsFetcher(other.dir)), /model\/model\.json is not listed in files/);
});

test('writeBundle leaves nothing behind when it fails', async () => {
  const dir = join(root, 'failing');
  await assert.rejects(writeBundle(dir, draft(), tinyModel(), { '../escape.txt': new Uint8Array(1) }), /invalid bundle path/);
  const left = (await readdir(root)).filter((e) => e.startsWith('failing'));
  assert.deepEqual(left, []);
});

test('httpFetcher reads a bundle over HTTP, and a 404 is reported as a missing file', async () => {
  const { dir } = await freshBundle();
  const server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').replace(/^\/bundles\/tiny\//, ''));
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
    await assert.rejects(readBundle(httpFetcher(`${base}/`)), /missing file model\/model\.json: HTTP 404/);
  } finally {
    await new Promise((ok) => server.close(ok));
  }
});
