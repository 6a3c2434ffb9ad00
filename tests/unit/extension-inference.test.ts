// The viewer extension's plain logic, outside a browser: image guards, model facts from a trainer-made manifest,
// the inference configuration, availability checks and the worker client's request / response matching.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assessImage } from '../../extension/src/displayedImage.js';
import { formatBytes, modelFacts, removedText } from '../../extension/src/modelFacts.js';
import { checkAvailability, inferenceConfig, parseBackends } from '../../extension/src/models.js';
import { InferenceClient, InferenceError, type WorkerLike } from '../../extension/src/inferenceClient.js';
import type { ClassifyResult, WorkerRequest, WorkerResponse } from '../../extension/src/inferenceProtocol.js';
import { parseManifest, validateManifest, type BundleManifest } from '../../trainer/src/model/bundle.js';
import { devManifest, recordedFigures, twoClassMetrics } from '../helpers/bundle-fixture.js';
import { projectRoot } from '../helpers/shared.js';

const chestDx = { modality: 'DX', bodyPart: 'CHEST', photometric: 'MONOCHROME2', samplesPerPixel: 1, numberOfFrames: 1 };

describe('image guards', () => {
  test('a chest radiograph passes without warnings', () => {
    assert.deepEqual(assessImage(chestDx), { error: undefined, warnings: [] });
    assert.deepEqual(assessImage({ ...chestDx, modality: 'cr', bodyPart: 'PORT CHEST' }).warnings, []);
    assert.deepEqual(assessImage({ ...chestDx, bodyPart: undefined }).warnings, [], 'an absent body part is no reason to warn');
  });
  test('another modality or body part warns but may still run', () => {
    const ct = assessImage({ ...chestDx, modality: 'CT' });
    assert.equal(ct.error, undefined);
    assert.match(ct.warnings.join(), /Modality CT is not a radiograph/);
    const knee = assessImage({ ...chestDx, bodyPart: 'KNEE' });
    assert.equal(knee.error, undefined);
    assert.match(knee.warnings.join(), /Body part "KNEE" is not the chest/);
  });
  test('multi-frame and colour images cannot be classified', () => {
    assert.match(assessImage({ ...chestDx, numberOfFrames: 12 }).error ?? '', /multi-frame image \(12 frames\)/);
    assert.match(assessImage({ ...chestDx, photometric: 'RGB', samplesPerPixel: 3 }).error ?? '', /Colour images \(RGB, 3 samples/);
    assert.match(assessImage({ ...chestDx, photometric: 'PALETTE COLOR' }).error ?? '', /Colour images/);
  });
});

describe('model facts', () => {
  const manifest: BundleManifest = devManifest();
  manifest.pruning = { ...recordedFigures().pruning, unitsBefore: 7170, unitsAfter: 7017, paramsBefore: 496482, paramsAfter: 475162, compressedParams: 300000, compressedUnits: 7000 };
  manifest.metrics = { ...manifest.metrics, compressed: { ...twoClassMetrics(0.75), auc: { perClass: {}, macro: 0.73 } } };

  test('are read from the manifest', () => {
    assert.doesNotThrow(() => validateManifest(JSON.parse(JSON.stringify(manifest))), 'the fixture is a valid manifest');
    const f = modelFacts(manifest, 2_900_000);
    assert.equal(f.k, 3);
    assert.equal(f.testAccuracy, 0.75);
    assert.equal(f.testAuc, 0.73);
    assert.equal(f.classifier, 'logistic');
    // The network the bundle carries, after surgery and selection, not the surgery's own figure.
    assert.equal(f.paramsAfter, 300000);
    assert.equal(f.createdAt, '2026-01-02T03:04:05.000Z');
    assert.equal(removedText(f.unitsBefore, f.unitsAfter), '170 of 7,170 (2.4 %)');
    assert.equal(removedText(f.paramsBefore, f.paramsAfter), '196,482 of 496,482 (39.6 %)');
    assert.equal(formatBytes(f.bundleBytes), '2.9 MB');
  });
  test('facts a bundle does not record give undefined', () => {
    // The unpruned reference bundle records no surgery, an undefined AUC is stored as null.
    const bare: BundleManifest = {
      ...manifest,
      createdAt: '',
      pruning: { unpruned: true, paramsAfter: 500000 },
      metrics: { ...manifest.metrics, compressed: { ...manifest.metrics.compressed, auc: { perClass: {}, macro: null } } },
    };
    const f = modelFacts(bare, 10);
    assert.equal(f.unitsBefore, undefined);
    assert.equal(f.paramsBefore, undefined);
    assert.equal(f.paramsAfter, 500000);
    assert.equal(f.testAuc, undefined);
    assert.equal(f.createdAt, undefined);
    assert.equal(removedText(f.paramsBefore, f.paramsAfter), undefined);
    assert.equal(removedText(undefined, 3), undefined);
  });
  test('the released bundles give their recorded figures', async () => {
    const raw = parseManifest(new Uint8Array(await readFile(join(projectRoot, 'models', 'raw', 'manifest.json'))));
    const f = modelFacts(raw, 1);
    assert.equal(f.k, raw.features.selected.length);
    assert.equal(f.classifier, raw.metrics.deployed);
    assert.equal(f.unitsBefore, 8066);
    assert.ok(f.unitsAfter !== undefined && f.unitsAfter < 8066);
    assert.equal(f.testAccuracy, raw.metrics.compressed.accuracy);
  });
  test("the parameters after are what each released bundle's model.json carries", async () => {
    for (const name of ['raw', 'masked', 'raw-3class', 'raw-4class']) {
      const dir = join(projectRoot, 'models', name);
      const m = parseManifest(new Uint8Array(await readFile(join(dir, 'manifest.json'))));
      const json = JSON.parse(await readFile(join(dir, 'model', 'model.json'), 'utf8')) as { weightsManifest: { weights: { shape: number[] }[] }[] };
      const carried = json.weightsManifest.flatMap((g) => g.weights).reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);
      const f = modelFacts(m, 1);
      assert.equal(f.paramsAfter, carried, name);
      assert.ok((f.paramsBefore ?? 0) > carried, name);
    }
  });
});

describe('inference configuration', () => {
  test('defaults, app-config overrides and the URL backend list', () => {
    const d = inferenceConfig(undefined, '');
    assert.equal(d.models, undefined, 'no configured models: the host\'s index (or the built-in ones) decide');
    assert.deepEqual(d.backends, ['webgpu', 'webgl', 'wasm', 'cpu']);
    const c = inferenceConfig({ zerovar: { models: { raw: '/r', masked: '/m' }, backends: ['wasm', 'bogus'] } }, '');
    assert.deepEqual(c.models, { raw: '/r/', masked: '/m/' });
    assert.deepEqual(c.backends, ['wasm']);
    assert.deepEqual(inferenceConfig(undefined, '?zerovarBackends=webgl,wasm').backends, ['webgl', 'wasm']);
    assert.equal(parseBackends('nothing,valid'), undefined);
  });
  test('availability: 200 -> available, 404 -> missing, network failure -> error', async () => {
    const answer = (status: number) => (async () => new Response(null, { status })) as unknown as typeof fetch;
    assert.equal(await checkAvailability('/a/', answer(200)), 'available');
    assert.equal(await checkAvailability('/a/', answer(404)), 'missing');
    assert.equal(await checkAvailability('/a/', answer(500)), 'error');
    const broken = (async () => {
      throw new TypeError('network');
    }) as unknown as typeof fetch;
    assert.equal(await checkAvailability('/a/', broken), 'error');
  });
});

/** A fake worker that answers from a handler, out of order when asked to. */
class FakeWorker implements WorkerLike {
  onmessage: ((e: MessageEvent<WorkerResponse>) => void) | null = null;
  onerror: ((e: ErrorEvent) => void) | null = null;
  terminated = false;
  received: { msg: WorkerRequest; transfer: Transferable[] }[] = [];
  constructor(private readonly handle: (msg: WorkerRequest) => WorkerResponse | undefined) {}
  postMessage(message: unknown, transfer: Transferable[]): void {
    const msg = message as WorkerRequest;
    this.received.push({ msg, transfer });
    const reply = this.handle(msg);
    if (reply) queueMicrotask(() => this.onmessage?.({ data: reply } as MessageEvent<WorkerResponse>));
  }
  terminate(): void {
    this.terminated = true;
  }
}

describe('inference client', () => {
  const config = inferenceConfig(undefined, '?zerovarBackends=wasm');
  const image = () => ({ width: 2, height: 2, data: Uint8Array.of(1, 2, 3, 4) });

  test('initialises once, matches answers to requests by id, transfers the image buffer', async () => {
    let inits = 0;
    const worker = new FakeWorker((m) => {
      if (m.type === 'init') {
        inits++;
        assert.deepEqual(m.backends, ['wasm']);
        return { id: m.id, ok: true, result: { backend: 'wasm', skipped: [], why: 'first in the order', ms: 1 } };
      }
      if (m.type !== 'classify') return undefined;
      const result = { className: m.modelUrl, probabilities: [m.image.data[0] / 10] } as unknown as ClassifyResult;
      return { id: m.id, ok: true, result };
    });
    const client = new InferenceClient(config, () => worker);
    const a = image();
    const [r1, r2] = await Promise.all([client.classify('/one/', a), client.classify('/two/', { ...image(), data: Uint8Array.of(7, 0, 0, 0) })]);
    assert.equal(r1.className, '/one/');
    assert.equal(r2.className, '/two/');
    assert.deepEqual(r2.probabilities, [0.7]);
    assert.equal(inits, 1, 'the backend is chosen once');
    const sent = worker.received.find((r) => r.msg.type === 'classify')!;
    assert.deepEqual(sent.transfer, [a.data.buffer], 'the pixels are transferred, not copied');
  });

  test('worker errors keep their name; a missing bundle is flagged; a crashed worker fails pending requests', async () => {
    let fail: 'bundle' | 'missing' | 'crash' = 'bundle';
    let worker!: FakeWorker;
    const client = new InferenceClient(config, () => {
      worker = new FakeWorker((m) => {
        if (m.type === 'init') return { id: m.id, ok: true, result: { backend: 'wasm', skipped: [], why: 'first in the order', ms: 1 } };
        if (fail === 'crash') {
          queueMicrotask(() => worker.onerror?.({ message: 'boom', preventDefault() {} } as unknown as ErrorEvent));
          return undefined;
        }
        return fail === 'bundle'
          ? { id: m.id, ok: false, error: { name: 'BundleError', message: 'checksum mismatch for model/weights.bin' } }
          : { id: m.id, ok: false, error: { name: 'BundleError', message: 'missing file manifest.json: HTTP 404', missing: true } };
      });
      return worker;
    });
    await assert.rejects(client.classify('/m/', image()), (e: unknown) => {
      assert.ok(e instanceof InferenceError);
      assert.equal(e.name, 'BundleError');
      assert.equal(e.missing, false);
      return /checksum mismatch/.test(e.message);
    });
    fail = 'missing';
    await assert.rejects(client.classify('/m/', image()), (e: unknown) => e instanceof InferenceError && e.missing);
    fail = 'crash';
    const first = worker;
    await assert.rejects(client.classify('/m/', image()), /the inference worker stopped: boom/);
    assert.ok(first.terminated, 'the crashed worker is terminated');
    fail = 'bundle';
    await assert.rejects(client.classify('/m/', image()), /checksum mismatch/);
    assert.notEqual(worker, first, 'the next request starts a fresh worker');
  });
});
