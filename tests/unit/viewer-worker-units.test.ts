// The inference worker's two units, outside a browser: the backend selector (order, fallbacks, a failure retried,
// runtime drops) with fake probes, and the model cache (one load per bundle, shared by concurrent requests,
// failures retried, disposal on clear).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BackendSelector } from '../../extension/src/backendSelector.js';
import { ModelCache } from '../../extension/src/modelCache.js';
import type { BackendName } from '../../extension/src/inferenceProtocol.js';

const ALL: BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];

/** A probe that fails for the names in `broken` (with a reason) and records every call. */
function fakeProbe(broken: Partial<Record<BackendName, string>>) {
  const calls: BackendName[] = [];
  const probe = async (name: BackendName) => {
    calls.push(name);
    const why = broken[name];
    if (why) throw new Error(why);
  };
  return { calls, probe };
}

describe('backend selector', () => {
  test('takes the first backend whose probe passes, in order, and says why the others were skipped', async () => {
    const { calls, probe } = fakeProbe({ webgpu: 'no adapter', webgl: 'wrong results' });
    const selector = new BackendSelector(probe);
    const r = await selector.select(ALL);
    assert.equal(r.backend, 'wasm');
    assert.deepEqual(r.skipped, ['webgpu: no adapter', 'webgl: wrong results']);
    assert.deepEqual(calls, ['webgpu', 'webgl', 'wasm'], 'cpu is never probed once wasm works');
    assert.equal((await selector.current()).backend, 'wasm');
  });

  test('selects once: later calls share the answer and prepare runs once', async () => {
    const { calls, probe } = fakeProbe({});
    const selector = new BackendSelector(probe);
    let prepared = 0;
    const [a, b] = await Promise.all([selector.select(ALL, () => prepared++), selector.select(['cpu'], () => prepared++)]);
    assert.equal(a, b);
    assert.equal(a.backend, 'webgpu');
    assert.deepEqual(calls, ['webgpu']);
    assert.equal(prepared, 1);
  });

  test('no working backend rejects with every reason, and the failure is not cached', async () => {
    const broken: Partial<Record<BackendName, string>> = { wasm: 'no SIMD', cpu: 'out of memory' };
    const { calls, probe } = fakeProbe(broken);
    const selector = new BackendSelector(probe);
    await assert.rejects(selector.select(['wasm', 'cpu']), /no tfjs backend works in this browser \(wasm: no SIMD; cpu: out of memory\)/);
    await assert.rejects(selector.current(), /not initialised/);
    delete broken.cpu;
    assert.equal((await selector.select(['wasm', 'cpu'])).backend, 'cpu', 'a later call tries again');
    assert.deepEqual(calls, ['wasm', 'cpu', 'wasm', 'cpu']);
  });

  test('current() before any selection rejects', async () => {
    await assert.rejects(new BackendSelector(fakeProbe({}).probe).current(), /the worker was not initialised/);
  });

  test('a backend dropped at runtime gives way to the next one; the drop is reported from then on', async () => {
    const { calls, probe } = fakeProbe({});
    const selector = new BackendSelector(probe);
    let prepared = 0;
    assert.equal((await selector.select(ALL, () => prepared++)).backend, 'webgpu');
    let freed = 0;
    assert.equal(await selector.drop('webgpu', 'outputs differ', () => freed++), true);
    const next = await selector.current();
    assert.equal(next.backend, 'webgl');
    assert.deepEqual(next.skipped, ['webgpu: outputs differ']);
    assert.deepEqual(selector.droppedAtRuntime(), ['webgpu: outputs differ']);
    assert.equal(freed, 1, 'what lived on the dropped backend is freed');
    assert.equal(prepared, 2, 'the new selection is prepared like the first');
    assert.deepEqual(calls, ['webgpu', 'webgl']);
  });

  test('the last backend cannot be dropped: nothing changes, nothing is freed', async () => {
    const selector = new BackendSelector(fakeProbe({}).probe);
    await selector.select(['wasm']);
    let freed = 0;
    assert.equal(await selector.drop('wasm', 'kernel failed', () => freed++), false);
    assert.equal(freed, 0);
    assert.deepEqual(selector.droppedAtRuntime(), []);
    assert.equal((await selector.current()).backend, 'wasm');
  });

  test('a drop whose remaining backends all fail rejects', async () => {
    const { probe } = fakeProbe({ cpu: 'broken' });
    const selector = new BackendSelector(probe);
    await selector.select(['wasm', 'cpu']);
    await assert.rejects(selector.drop('wasm', 'kernel failed'), /cpu: broken/);
  });
});

describe('model cache', () => {
  test('loads each key once; concurrent requests share the load', async () => {
    const cache = new ModelCache<string>();
    let loads = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const load = async () => {
      loads++;
      await gate;
      return `model ${loads}`;
    };
    assert.equal(cache.has('/raw/'), false);
    const a = cache.get('/raw/', load);
    const b = cache.get('/raw/', load);
    assert.equal(cache.has('/raw/'), true, 'a loading bundle counts as present');
    release();
    assert.deepEqual(await Promise.all([a, b]), ['model 1', 'model 1']);
    assert.equal(await cache.get('/raw/', load), 'model 1');
    assert.equal(await cache.get('/masked/', load), 'model 2', 'another key loads on its own');
    assert.equal(loads, 2);
  });

  test('a failed load is forgotten and retried on the next request', async () => {
    const cache = new ModelCache<string>();
    let attempt = 0;
    const load = async () => {
      attempt++;
      if (attempt === 1) throw new Error('checksum mismatch');
      return 'fixed';
    };
    const first = cache.get('/raw/', load);
    const second = cache.get('/raw/', load);
    await assert.rejects(first, /checksum mismatch/);
    await assert.rejects(second, /checksum mismatch/, 'a request during the failing load shares its failure');
    assert.equal(cache.has('/raw/'), false);
    assert.equal(await cache.get('/raw/', load), 'fixed');
    assert.equal(attempt, 2);
  });

  test('a loader that throws synchronously is a failed load too', async () => {
    const cache = new ModelCache<string>();
    await assert.rejects(cache.get('/x/', () => {
      throw new Error('bad url');
    }), /bad url/);
    assert.equal(cache.has('/x/'), false);
  });

  test('clear disposes what loaded and forces a new load', async () => {
    const disposed: string[] = [];
    const cache = new ModelCache<string>((v) => disposed.push(v));
    let n = 0;
    const load = async () => `m${++n}`;
    await cache.get('/raw/', load);
    const failing = cache.get('/bad/', async () => {
      throw new Error('404');
    });
    await assert.rejects(failing);
    cache.clear();
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(disposed, ['m1'], 'only loaded values are disposed');
    assert.equal(cache.has('/raw/'), false);
    assert.equal(await cache.get('/raw/', load), 'm2');
  });
});
