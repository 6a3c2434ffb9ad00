// The matrix-multiply ceiling of the trainer benchmark (trainer.bench.ts), in a process of its own: single-thread
// float32 GEMM throughput of the tfjs wasm backend (XNNPACK's kernels, 128-bit SIMD) on the shapes MobileNetV2's
// pointwise convolutions take. Half or more of a training step is such products (forward, input gradient and
// filter gradient of every 1x1 conv), so their speed against PyTorch's (torch_gemm.py) bounds what any kernel
// work in the project can reach against PyTorch. Prints one JSON line.
//
//   node --import tsx tests/bench/gemm-case.ts '[[m, k, n], ...]'
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import { nativeKernels } from '../../trainer/src/runtime/native-kernels.js';
import { gemm, type Info, type WasmBackend } from '../../trainer/src/runtime/wasm/shared.js';

export interface GemmResult {
  m: number;
  k: number;
  n: number;
  ms: number;
  gflops: number;
  /** The OpenBLAS addon's products (the trainer's where it is built), on 1 and 2 threads. */
  blasGflops?: number;
  blas2Gflops?: number;
}

async function main(): Promise<void> {
  const shapes = JSON.parse(process.argv[2] ?? '[]') as [number, number, number][];
  await initBackend('wasm', { threads: 1 });
  const out: GemmResult[] = [];
  for (const [m, k, n] of shapes) {
    const a = tf.randomUniform([m, k], -1, 1, 'float32', 1);
    const b = tf.randomUniform([k, n], -1, 1, 'float32', 2);
    const once = () => {
      const c = tf.matMul(a, b);
      c.dataSync();
      c.dispose();
    };
    once(); // warm-up
    // About half a second of products per shape.
    const reps = Math.max(3, Math.min(50, Math.round(2.5e9 / (2 * m * k * n))));
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) once();
    const ms = (performance.now() - t0) / reps;
    const gflops = (t: number) => (2 * m * k * n) / t / 1e6;
    // The same product through the trainer's gemm on the addon, where it is built.
    const addon = nativeKernels().addon;
    const blas = (threads: number): number | undefined => {
      if (!addon) return undefined;
      addon.threads(threads);
      const be = tf.backend() as unknown as WasmBackend & { disposeData(id: object): boolean };
      const run = () => be.disposeData(gemm(be, a as unknown as Info, b as unknown as Info, m, k, n).dataId);
      run();
      const t1 = performance.now();
      for (let i = 0; i < reps; i++) run();
      addon.threads(1);
      return gflops((performance.now() - t1) / reps);
    };
    out.push({ m, k, n, ms, gflops: gflops(ms), blasGflops: blas(1), blas2Gflops: blas(2) });
    a.dispose();
    b.dispose();
  }
  console.log(JSON.stringify({ ok: true, backend: tf.getBackend(), results: out }));
}

await main();
