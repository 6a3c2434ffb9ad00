// The threaded-SIMD wasm build under Node: each run is a fresh child process (the backend's build is chosen once
// per process), which prepares N threads, runs a small conv model forward and backward, prints the results as
// JSON and must then exit by itself (pthread workers must not keep it alive).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { prepareWasmThreads, wasmThreadCount } from '../../trainer/src/runtime/wasm-threads.js';
import { registerTrainingKernels, wasmSimdKernelsBound } from '../../trainer/src/runtime/wasm/register.js';
import { values } from '../helpers/values.js';

const CHILD = 'ZEROVAR_WASM_THREADS_CHILD';

interface ChildResult {
  prepared: boolean;
  backend: string;
  threads: number;
  /** pthread workers running (the XNNPACK pool's threads besides the main one). */
  running: number;
  /** The project's SIMD gradient routines bound to the (shared, in the threaded build) heap. */
  simd: boolean;
  output: number[];
  grads: number[][];
}

async function child(threads: number): Promise<ChildResult> {
  const prepared = await prepareWasmThreads(threads);
  if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend failed to initialise');
  await tf.ready();
  registerTrainingKernels();
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [24, 24, 8], filters: 32, kernelSize: 3, padding: 'same', activation: 'relu' }),
      tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }),
      tf.layers.conv2d({ filters: 24, kernelSize: 1, activation: 'relu' }),
      tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({ units: 3 }),
    ],
  });
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  vars.forEach((v, i) => v.assign(tf.tensor(values(v.size, 11 + i), v.shape).mul(0.3)));
  const x = tf.tensor4d(values(6 * 24 * 24 * 8, 1), [6, 24, 24, 8]);
  const r = tf.tensor2d(values(6 * 3, 2), [6, 3]);
  const output = Array.from(tf.tidy(() => model.predict(x) as tf.Tensor).dataSync());
  const { grads } = tf.variableGrads(() => tf.sum(tf.mul(model.apply(x) as tf.Tensor, r)) as tf.Scalar, vars);
  const gradValues = vars.map((v) => Array.from(grads[v.name].dataSync()));
  const pthread = (tf.backend() as unknown as { wasm?: { PThread?: { runningWorkers: unknown[] } } }).wasm?.PThread;
  return {
    prepared,
    backend: tf.getBackend(),
    threads: wasmThreadCount(),
    simd: wasmSimdKernelsBound(),
    running: pthread?.runningWorkers.length ?? 0,
    output,
    grads: gradValues,
  };
}

function run(threads: number): ChildResult {
  const file = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], {
    env: { ...process.env, [CHILD]: String(threads) },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.signal, null, `child with ${threads} threads did not exit by itself (${r.signal}): ${r.stderr}`);
  assert.equal(r.status, 0, `child with ${threads} threads failed: ${r.stderr}`);
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line, `child with ${threads} threads printed no result: ${r.stdout} ${r.stderr}`);
  return JSON.parse(line) as ChildResult;
}

function maxAbsDiff(a: number[], b: number[]): number {
  assert.equal(a.length, b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

const childThreads = Number(process.env[CHILD] ?? 0);
if (childThreads > 0) {
  console.log(JSON.stringify(await child(childThreads)));
} else {
  test('threaded wasm build in Node: >1 thread, same outputs and gradients as one thread, the process exits', () => {
    const one = run(1);
    const two = run(2);
    assert.equal(one.prepared, false);
    assert.equal(one.threads, 1);
    assert.equal(two.prepared, true);
    assert.equal(two.backend, 'wasm');
    assert.equal(two.threads, 2);
    assert.ok(two.running >= 1, `no pthread worker is running (${two.running})`);
    assert.equal(two.simd, true, "the SIMD gradient routines bind to the threaded build's shared heap");
    assert.equal(one.simd, true);
    const scale = Math.max(...one.output.map(Math.abs));
    assert.ok(scale > 0, 'reference output is all zeros');
    assert.ok(maxAbsDiff(two.output, one.output) <= 1e-5 * scale, `outputs differ by ${maxAbsDiff(two.output, one.output)}`);
    assert.equal(two.grads.length, one.grads.length);
    one.grads.forEach((g, i) => {
      const gScale = Math.max(...g.map(Math.abs));
      assert.ok(gScale > 0, `reference gradient ${i} is all zeros`);
      const d = maxAbsDiff(two.grads[i], g);
      assert.ok(d <= 1e-4 * gScale, `gradient ${i} differs by ${d} (scale ${gScale})`);
    });
  });

  test('prepareWasmThreads(1) keeps the single-threaded build', async () => {
    // In this process the backend may already exist; the call must not throw and, for 1 thread, says false.
    assert.equal(await prepareWasmThreads(1), false);
    assert.equal(tf.env().get('WASM_HAS_MULTITHREAD_SUPPORT'), false);
  });
}
