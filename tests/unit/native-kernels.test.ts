// The training kernels' native addon (trainer/native/): built at install; its OpenBLAS products right and the same
// bits on any thread count; products and compiled tasks refusing operands outside the heap; and a MobileNetV2
// training step on the whole addon, the same bits on its 1 and 2 threads, with every kind of task shared.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import { matrixProductsLine, nativeKernels } from '../../trainer/src/runtime/native-kernels.js';
import { slicedTaskRuns } from '../../trainer/src/runtime/wasm/parallel.js';
import { nativeGemmInUse, useNativeKernels } from '../../trainer/src/runtime/wasm/shared.js';
import { mobileNetV2 } from '../../trainer/src/model/mobilenet-v2.js';
import { runGraphFrom } from '../../trainer/src/model/graph-run.js';
import { values } from '../helpers/values.js';

const NOT_BUILT = 'the native addon is not built: npm run build:native (it needs g++ and libopenblas-dev, which .ci/run installs)';

function addon() {
  const { addon: a, why } = nativeKernels();
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
  assert.throws(() => (g.sgemm as unknown as (...a: unknown[]) => void)(heap, 0, 10, 20, 2, 2, 2, 1, 0), /booleans/);
  assert.throws(() => g.threads(0), /threads takes a count/);
  // The compiled tasks check every operand they would touch (addresses in bytes, as the wasm kernels pass them).
  const task = (name: string) => g.tasks().indexOf(name);
  const p = (...v: number[]) => Float64Array.from(v);
  assert.throws(() => g.run(heap, task('clipMaskQuads'), p(4 * 96, 0, 0, 0, 6), 2, 1), /out of the heap's bounds/); // 8 floats from 96
  assert.throws(() => g.run(heap, task('clipMaskQuads'), p(2, 0, 0, 0, 6), 1, 1), /out of the heap's bounds/); // not float-aligned
  assert.throws(() => g.run(heap, task('clipMaskQuads'), p(0, 0, 0), 1, 1), /too few parameters/);
  assert.throws(() => g.run(heap, g.tasks().length, p(0, 0, 0, 0, 6), 1, 1), /no such task/);
  // A depthwise filter gradient whose input (2 x 4 x 4 x 4 floats) would run past the heap's end.
  const geometry = [2, 4, 4, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1];
  assert.throws(() => g.run(heap, task('depthwiseFilterImages'), p(0, 0, 0, 4, ...geometry), 2, 2), /out of the heap's bounds/);
  assert.throws(() => g.run(heap, task('depthwiseFilterImages'), p(0, 0, 0, 1, ...geometry.map((v, i) => (i === 7 ? 0 : v))), 1, 1), /bad geometry/); // stride 0
  assert.ok(heap.every((v) => v === 1), 'nothing was written');
});

test('a MobileNetV2 training step on the native kernels: the same bits on 1 and 2 threads, the wasm kernels\' values to 1e-3', () => {
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
    useNativeKernels(g, 1);
    const one = step();
    const before = slicedTaskRuns();
    useNativeKernels(g, 2);
    const two = step();
    const after = slicedTaskRuns();
    one.forEach((v, i) => assert.deepEqual(two[i], v, `tensor ${i} differs between 1 and 2 threads`));
    for (const t of ['depthwiseFilterImages', 'depthwiseInputRows', 'depthwiseForwardRows', 'scaleShiftClipRows', 'scaleShiftClipGradBlocks']) {
      assert.ok((after[t] ?? 0) > (before[t] ?? 0), `${t} was shared across the addon's 2 threads`);
    }
    useNativeKernels(null);
    const wasm = step();
    // Sums in another order move values by an ulp, and now and then one across a ReLU6's edge (seen: one of 12,288
    // values, which moved one BatchNorm offset's gradient by 3.5 % of its largest): so the whole gradient is
    // compared, by its relative L2 error, and the loss to 1e-6. A wrong tap, row or product would move far more.
    assert.ok(Math.abs(one[0][0] - wasm[0][0]) <= 1e-6 * Math.abs(wasm[0][0]), `loss ${one[0][0]} against ${wasm[0][0]}`);
    let [diff, norm] = [0, 0];
    one.slice(1).forEach((v, i) => v.forEach((e, j) => ((diff += (e - wasm[i + 1][j]) ** 2), (norm += wasm[i + 1][j] ** 2))));
    assert.ok(Math.sqrt(diff / norm) <= 1e-3, `gradients' relative L2 error ${Math.sqrt(diff / norm)}`);
  } finally {
    useNativeKernels(g, 1);
    tf.dispose([x, labels]);
    model.dispose();
  }
});
