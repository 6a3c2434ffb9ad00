// The backend selector's measured choice: software GPU renderers skipped before they are initialised, a hardware
// GPU taken, an unknown renderer timed against wasm (the faster one wins and is activated again), and the reason
// the panel shows. Fake probes and renderer inspections; no tfjs.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BackendSelector, isSoftwareRenderer, type RendererInfo } from '../../extension/src/backendSelector.js';
import type { BackendName } from '../../extension/src/inferenceProtocol.js';

const ALL: BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];

function fakes(o: { renderers: Partial<Record<BackendName, RendererInfo>>; warm: Partial<Record<BackendName, number>>; broken?: Partial<Record<BackendName, string>> }) {
  const probed: BackendName[] = [];
  const activated: BackendName[] = [];
  const selector = new BackendSelector({
    probe: async (name) => {
      probed.push(name);
      const why = o.broken?.[name];
      if (why) throw new Error(why);
      return { warmMs: o.warm[name] ?? 1 };
    },
    inspect: async (name) => o.renderers[name],
    activate: async (name) => void activated.push(name),
  });
  return { selector, probed, activated };
}

describe('software renderers', () => {
  test('SwiftShader, llvmpipe and Microsoft Basic Render Driver are software; hardware GPUs are not', () => {
    for (const s of ['ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero) (0x0000C0DE)), SwiftShader driver)',
      'llvmpipe (LLVM 15.0.6, 256 bits)', 'ANGLE (Microsoft, Microsoft Basic Render Driver Direct3D11 vs_5_0 ps_5_0)', 'google swiftshader']) {
      assert.equal(isSoftwareRenderer(s), true, s);
    }
    for (const s of ['ANGLE (NVIDIA, NVIDIA GeForce RTX 3060 Direct3D11 vs_5_0 ps_5_0, D3D11)', 'Mesa Intel(R) UHD Graphics 620 (KBL GT2)',
      'AMD Radeon Pro 5500M OpenGL Engine', 'nvidia ampere']) {
      assert.equal(isSoftwareRenderer(s), false, s);
    }
  });
});

describe('measured backend choice', () => {
  test('a software WebGL and a software WebGPU are skipped without being initialised; wasm is taken and the reason says so', async () => {
    const { selector, probed } = fakes({
      renderers: { webgpu: { renderer: 'google swiftshader', software: true }, webgl: { renderer: 'ANGLE (SwiftShader Device)', software: true } },
      warm: { wasm: 3 },
    });
    const r = await selector.select(ALL);
    assert.equal(r.backend, 'wasm');
    assert.deepEqual(probed, ['wasm'], 'neither GPU backend was initialised');
    assert.equal(r.skipped.length, 2);
    assert.match(r.skipped[1] ?? '', /^webgl: software renderer \(ANGLE \(SwiftShader Device\)\)/);
    assert.match(r.why, /WebGL renders in software here \(ANGLE \(SwiftShader Device\)\).*wasm answers sooner/);
  });

  test('a hardware GPU that passes the check is taken at once', async () => {
    const { selector, probed } = fakes({ renderers: { webgpu: undefined, webgl: { renderer: 'NVIDIA GeForce', software: false } }, warm: {}, broken: { webgpu: 'no adapter' } });
    const r = await selector.select(ALL);
    assert.equal(r.backend, 'webgl');
    assert.deepEqual(probed, ['webgpu', 'webgl']);
    assert.match(r.why, /hardware GPU \(NVIDIA GeForce\)/);
  });

  test('an unknown renderer is timed against wasm: the faster one wins and is activated again', async () => {
    const slow = fakes({ renderers: {}, warm: { webgl: 40, wasm: 4 }, broken: { webgpu: 'no adapter' } });
    const r = await slow.selector.select(ALL);
    assert.equal(r.backend, 'wasm');
    assert.deepEqual(slow.probed, ['webgpu', 'webgl', 'wasm'], 'cpu is not probed once wasm passed');
    assert.match(r.why, /fastest on a warm-up \(webgl 40 ms, wasm 4\.0 ms\)/);
    assert.deepEqual(slow.activated, [], 'wasm was the last one probed: nothing to activate');
    const fast = fakes({ renderers: {}, warm: { webgl: 2, wasm: 9 }, broken: { webgpu: 'no adapter' } });
    const f = await fast.selector.select(ALL);
    assert.equal(f.backend, 'webgl');
    assert.deepEqual(fast.activated, ['webgl'], 'webgl is made active again after wasm was probed');
  });

  test('a GPU that fails the reference check is not taken even if it would be faster', async () => {
    const { selector } = fakes({ renderers: {}, warm: { webgpu: 0.5, wasm: 5 }, broken: { webgpu: 'wrong results on a test computation', webgl: 'did not initialise' } });
    const r = await selector.select(ALL);
    assert.equal(r.backend, 'wasm');
    assert.deepEqual(r.skipped, ['webgpu: wrong results on a test computation', 'webgl: did not initialise']);
  });
});
