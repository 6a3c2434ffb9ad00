// The host's model index on a temporary models folder: a real bundle (the released four-class one), a small
// valid one, a broken manifest, a bundle that lacks a listed file, a folder and a file that are not bundles; the
// index served at /zerovar/models/index.json (404 without a models folder), read back by the viewer's parser; and
// the released folder's index giving the viewer its default (the masked model, better on external data).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseDefaultModel } from '../../extension/src/modelChoice.js';
import { parseModelIndex, type ModelIndex } from '../../extension/src/modelIndex.js';
import { MODEL_INDEX_PATH, modelIndexReader } from '../../scripts/host/model-index.js';
import { startHost, type RunningHost } from '../../scripts/host/server.js';
import { devManifest } from '../helpers/bundle-fixture.js';
import { projectRoot } from '../helpers/shared.js';

/** Bytes of every file under `dir`. */
function folderBytes(dir: string): number {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile())
    .reduce((n, d) => n + statSync(join(d.parentPath, d.name)).size, 0);
}

let dir = '';
let devBytes = 0;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'zerovar-index-'));
  // The released four-class bundle, as it is (its README is not part of the bundle).
  cpSync(join(projectRoot, 'models', 'raw-4class'), join(dir, 'raw-4class'), { recursive: true });
  rmSync(join(dir, 'raw-4class', 'README.md'), { force: true });
  // A small valid two-class bundle with an external figure.
  mkdirSync(join(dir, 'dev', 'model'), { recursive: true });
  writeFileSync(join(dir, 'dev', 'model', 'model.json'), '{"modelTopology":{}}');
  const dev = devManifest();
  dev.positiveClass = 'COVID';
  dev.metrics.external = { ieee8023: { dataset: 'ieee8023-covid-chestxray', n: 10, accuracy: 0.8, auc: 0.61 } };
  writeFileSync(join(dir, 'dev', 'manifest.json'), JSON.stringify(dev));
  devBytes = folderBytes(join(dir, 'dev'));
  // A manifest that is not JSON, and a valid one whose listed model file is absent.
  mkdirSync(join(dir, 'broken'));
  writeFileSync(join(dir, 'broken', 'manifest.json'), '{"format": "zerovar-bundle",');
  mkdirSync(join(dir, 'incomplete'));
  writeFileSync(join(dir, 'incomplete', 'manifest.json'), JSON.stringify(devManifest()));
  // Not bundles: a folder without a manifest, a plain file.
  mkdirSync(join(dir, 'notes'));
  writeFileSync(join(dir, 'notes', 'x.txt'), 'x');
  writeFileSync(join(dir, 'README.md'), '# models');
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe('the models folder\'s index', () => {
  test('every bundle folder, by id; a broken one listed with its error; folders without a manifest left out', () => {
    const index = modelIndexReader(dir)();
    assert.equal(index.format, 'zerovar-model-index');
    assert.equal(index.version, 1);
    assert.deepEqual(index.models.map((m) => m.id), ['broken', 'dev', 'incomplete', 'raw-4class']);
    const [broken, dev, incomplete, four] = index.models;
    assert.equal(broken?.url, '/zerovar/models/broken/');
    assert.match(broken?.error ?? '', /^manifest\.json is not valid JSON/);
    assert.equal(broken?.variant, undefined);
    assert.deepEqual(dev, {
      id: 'dev', url: '/zerovar/models/dev/', name: 'dev', variant: 'raw', classes: ['COVID', 'Normal'], positiveClass: 'COVID',
      task: 'COVID vs Normal', external: { ieee8023: { auc: 0.61 } }, bytes: devBytes,
    });
    assert.deepEqual(incomplete, { id: 'incomplete', url: '/zerovar/models/incomplete/', error: 'missing file model/model.json (listed in manifest.json)' });
    assert.equal(four?.task, '4 classes: COVID, Lung_Opacity, Normal, Viral Pneumonia');
    assert.equal(four?.variant, 'raw');
    assert.equal(four?.external, undefined, 'the four-class bundle records no external figures');
    assert.equal(four?.bytes, folderBytes(join(dir, 'raw-4class')), 'the manifest and every file it lists');
  });

  test('a bundle copied in or fixed while the host runs is listed at once', () => {
    const read = modelIndexReader(dir);
    assert.ok(read().models.find((m) => m.id === 'broken')?.error);
    cpSync(join(dir, 'dev', 'model'), join(dir, 'broken', 'model'), { recursive: true });
    writeFileSync(join(dir, 'broken', 'manifest.json'), JSON.stringify({ ...devManifest(), name: 'fixed' }));
    assert.equal(read().models.find((m) => m.id === 'broken')?.name, 'fixed');
    cpSync(join(dir, 'dev'), join(dir, 'dev-copy'), { recursive: true });
    assert.ok(read().models.some((m) => m.id === 'dev-copy' && !m.error));
    writeFileSync(join(dir, 'broken', 'manifest.json'), '{"format": "zerovar-bundle",');
    rmSync(join(dir, 'broken', 'model'), { recursive: true });
    rmSync(join(dir, 'dev-copy'), { recursive: true });
  });

  describe('served by the host', () => {
    let host: RunningHost | undefined;
    let bare: RunningHost | undefined;
    before(async () => {
      const empty = join(dir, 'notes');
      host = await startHost({ ohifDist: empty, appConfig: '', bundleDir: empty, modelsDir: dir, port: 0 });
      bare = await startHost({ ohifDist: empty, appConfig: '', bundleDir: empty, port: 0 });
    });
    after(async () => {
      await host?.close();
      await bare?.close();
    });
    test('GET /zerovar/models/index.json, as the viewer reads it; 404 without a models folder', async () => {
      const r = await fetch(`${host!.url}${MODEL_INDEX_PATH}`);
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
      assert.equal(r.headers.get('cross-origin-resource-policy'), 'same-origin');
      const json = (await r.json()) as ModelIndex;
      assert.deepEqual(parseModelIndex(json, MODEL_INDEX_PATH), json.models, 'the viewer\'s parser keeps every field');
      // The bundle files are still served beside the index.
      assert.equal((await fetch(`${host!.url}/zerovar/models/dev/model/model.json`)).status, 200);
      assert.equal((await fetch(`${bare!.url}${MODEL_INDEX_PATH}`)).status, 404);
    });
  });
});

describe('the released models folder', () => {
  test('raw, masked, raw-3class and raw-4class are listed with their tasks; the default is the one with the higher recorded external AUC', () => {
    const models = parseModelIndex(modelIndexReader(join(projectRoot, 'models'))(), MODEL_INDEX_PATH);
    assert.deepEqual(models.map((m) => [m.id, m.variant, m.task, m.error]), [
      ['masked', 'masked', 'COVID vs Normal', undefined],
      ['raw', 'raw', 'COVID vs Normal', undefined],
      ['raw-3class', 'raw', '3 classes: COVID, Normal, Viral Pneumonia', undefined],
      ['raw-4class', 'raw', '4 classes: COVID, Lung_Opacity, Normal, Viral Pneumonia', undefined],
    ]);
    const c = chooseDefaultModel(models);
    const auc = (id: string) => {
      const m = JSON.parse(readFileSync(join(projectRoot, 'models', id, 'manifest.json'), 'utf8')) as { metrics: { external: { ieee8023: { auc: number } } } };
      return m.metrics.external.ieee8023.auc;
    };
    const [raw, masked] = [auc('raw'), auc('masked')];
    const winner = masked > raw ? 'masked' : 'raw';
    assert.equal(c.id, winner);
    const digits = raw.toFixed(2) === masked.toFixed(2) ? 3 : 2;
    const [a, b] = winner === 'masked' ? [masked, raw] : [raw, masked];
    assert.equal(c.reason, `${winner} model by default: external AUC ${a.toFixed(digits)} vs ${b.toFixed(digits)} (ieee8023)`);
  });
});
