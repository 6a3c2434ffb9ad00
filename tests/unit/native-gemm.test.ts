// The OpenBLAS matrix products of the training kernels (trainer/native/gemm.cc): built at install, right, the
// same bits on any thread count, refusing operands outside the heap, and a MobileNetV2 training step on them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import { matrixProductsLine, nativeGemm } from '../../trainer/src/runtime/native-gemm.js';
import { nativeGemmInUse, useNativeGemm } from '../../trainer/src/runtime/wasm/shared.js';
import { mobileNetV2 } from '../../trainer/src/model/mobilenet-v2.js';
import { runGraphFrom } from '../../trainer/src/model/graph-run.js';
import { values } from '../helpers/values.js';

const NOT_BUILT = 'the OpenBLAS addon is not built: npm run build:native (it needs g++ and libopenblas-dev, which .ci/run installs)';

function addon() {
  const { addon: a, why } = nativeGemm();
  assert.ok(a, `${NOT_BUILT} (${why})`);
  return a;
}

before(async () => {
  assert.equal(await initBackend('wasm'), 'wasm');
});

after(() => addon().threads(1));

/** C = op(A) op(B) in float64, from the stored operands. */
function reference(a: Float32Array, b: Float32Array, m: number, n: number, k: number, ta: boolean, tb: boolean): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
      c[i * n + j] = s;
    }
  }
  return c;
}

// Tall C (bands of rows), short C with a long sum (chunks of the sum), and shapes with remainders of both.
const SHAPES: Array<[number, number, number]> = [
  [300, 17, 24],
  [1000, 40, 9],
  [24, 9000, 16],
  [5, 8193, 3],
  [130, 30, 130],
];

test('the addon is built, and the trainer uses it on wasm', () => {
  addon();
  assert.ok(nativeGemmInUse(), 'initBackend hands the addon to the kernels');
  assert.match(matrixProductsLine(1), /^OpenBLAS [\d.]+ .*on 1 thread$/);
});

for (const [m, k, n] of SHAPES) {
  test(`products match float64 and give the same bits on 1, 2 and 3 threads: [${m}x${k}] x [${k}x${n}], each operand stored either way`, () => {
    const g = addon();
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        const a = values(m * k, 1 + m);
        const b = values(k * n, 2 + n);
        const heap = new Float32Array(7 + m * k + k * n + m * n); // odd offsets: nothing assumes alignment
        const [ao, bo, co] = [7, 7 + m * k, 7 + m * k + k * n];
        heap.set(a, ao);
        heap.set(b, bo);
        const want = reference(a, b, m, n, k, ta, tb);
        let first: Float32Array | null = null;
        for (const threads of [1, 2, 3]) {
          g.threads(threads);
          heap.fill(NaN, co);
          g.sgemm(heap, ao, bo, co, m, n, k, ta, tb);
          const got = heap.slice(co, co + m * n);
          let err = 0;
          let mag = 0;
          got.forEach((v, i) => ((err = Math.max(err, Math.abs(v - want[i]))), (mag = Math.max(mag, Math.abs(want[i])))));
          assert.ok(err <= 1e-5 * mag * Math.sqrt(k), `transA ${ta} transB ${tb}, ${threads} threads: error ${err} of ${mag}`);
          if (first) assert.deepEqual(got, first, `transA ${ta} transB ${tb}: ${threads} threads changed bits`);
          first ??= got;
        }
      }
    }
    g.threads(1);
  });
}

test('operands outside the heap, and wrong arguments, are refused before anything is written', () => {
  const g = addon();
  const heap = new Float32Array(100).fill(1);
  assert.throws(() => g.sgemm(heap, 0, 50, 90, 4, 4, 4, false, false), /out of the heap's bounds/); // C would end at 106
  assert.throws(() => g.sgemm(heap, -1, 50, 0, 2, 2, 2, false, false), /out of the heap's bounds/);
  assert.throws(() => g.sgemm(heap, 0, 0, 0, 0, 2, 2, false, false), /out of the heap's bounds/);
  assert.throws(() => g.sgemm(new Float64Array(100) as unknown as Float32Array, 0, 10, 20, 2, 2, 2, false, false), /Float32Array/);
  assert.throws(() => (g.sgemm as unknown as (...a: unknown[]) => void)(heap, 0, 10), /9 arguments/);
  assert.throws(() => g.threads(0), /threads takes a count/);
  assert.ok(heap.every((v) => v === 1), 'nothing was written');
});

test('a MobileNetV2 training step on the native products: the same bits on 1 and 2 threads, XNNPACK\'s values to 1e-4', () => {
  const g = addon();
  const model = mobileNetV2(0.35, 64);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const x = tf.tensor4d(values(2 * 64 * 64 * 3, 9), [2, 64, 64, 3]);
  const labels = tf.tensor2d([[1, 0], [0, 1]]);
  const step = (): Float32Array[] => {
    const r = tf.variableGrads(() => {
      const [probs] = runGraphFrom([model.outputs[0]], new Map([[model.inputs[0].id, x]]), true);
      return tf.losses.softmaxCrossEntropy(labels, tf.log(tf.clipByValue(probs!, 1e-7, 1))) as tf.Scalar;
    }, vars);
    const out = [r.value.dataSync() as Float32Array, ...vars.map((v) => r.grads[v.name].dataSync() as Float32Array)];
    tf.dispose([r.value, ...Object.values(r.grads)]);
    return out;
  };
  try {
    g.threads(1);
    const one = step();
    g.threads(2);
    const two = step();
    one.forEach((v, i) => assert.deepEqual(two[i], v, `tensor ${i} differs between 1 and 2 threads`));
    useNativeGemm(null);
    const xnn = step();
    one.forEach((v, i) => {
      let [err, mag] = [0, 0];
      v.forEach((e, j) => ((err = Math.max(err, Math.abs(e - xnn[i][j]))), (mag = Math.max(mag, Math.abs(xnn[i][j])))));
      assert.ok(err <= 1e-4 * Math.max(mag, 1e-6), `tensor ${i}: ${err} of ${mag}`);
    });
  } finally {
    g.threads(1);
    useNativeGemm(g);
    tf.dispose([x, labels]);
    model.dispose();
  }
});
