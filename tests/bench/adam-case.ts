// The optimizer-update figure of the trainer benchmark (trainer.bench.ts), in a process of its own: one Adam
// update over every trainable variable of MobileNetV2 0.35 (224 px), on the wasm backend, by tfjs's AdamOptimizer
// (the baseline: fourteen kernel calls per variable) and by the fine-tune's fused Adam (train/adam.ts: one call
// per variable) on the native addon and, with the addon left out, in JS. The median of 9 updates after 3 warm-up
// ones. Prints one JSON line.
//
//   node --import tsx tests/bench/adam-case.ts
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import { mobileNetV2 } from '../../trainer/src/model/mobilenet-v2.js';
import { nativeKernels } from '../../trainer/src/runtime/native-kernels.js';
import { useNativeKernels } from '../../trainer/src/runtime/wasm/shared.js';
import { adam } from '../../trainer/src/train/adam.js';
import { median } from './trainer-case.js';

export interface AdamResult {
  ok: boolean;
  error?: string;
  variables?: number;
  values?: number;
  tfjsMs?: number;
  /** The fused update on the addon (absent where it is not built). */
  fusedMs?: number;
  fusedJsMs?: number;
}

async function main(): Promise<AdamResult> {
  await initBackend('wasm', { threads: 1 });
  const model = mobileNetV2(0.35, 224);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const grads = vars.map((v, i) => ({ name: v.name, tensor: tf.randomNormal(v.shape, 0, 1e-2, 'float32', i) }));
  const time = (opt: tf.Optimizer): number => {
    for (let i = 0; i < 3; i++) opt.applyGradients(grads);
    const times: number[] = [];
    for (let i = 0; i < 9; i++) {
      const t0 = performance.now();
      opt.applyGradients(grads);
      vars[0].dataSync(); // the update is done
      times.push(performance.now() - t0);
    }
    return median(times);
  };
  const addon = nativeKernels().addon;
  const tfjsMs = time(tf.train.adam(1e-4));
  const fusedMs = addon ? time(adam(1e-4)) : undefined;
  useNativeKernels(null);
  const fusedJsMs = time(adam(1e-4));
  return { ok: true, variables: vars.length, values: vars.reduce((p, v) => p + v.size, 0), tfjsMs, fusedMs, fusedJsMs };
}

try {
  console.log(JSON.stringify(await main()));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String((e as Error).message ?? e).split('\n')[0] }));
}
