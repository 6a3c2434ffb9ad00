// Chooses the tfjs backend for Node: wasm (SIMD, fastest on CPU here) with the pure-JS cpu backend as fallback.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmGradientKernels } from './train/wasm-grad-kernels.js';

export type BackendName = 'auto' | 'wasm' | 'cpu';

export async function initBackend(name: BackendName = 'auto'): Promise<string> {
  const order = name === 'auto' ? ['wasm', 'cpu'] : [name];
  for (const b of order) {
    try {
      if (await tf.setBackend(b)) {
        await tf.ready();
        if (b === 'wasm') registerWasmGradientKernels(); // training through convs stays on wasm
        return tf.getBackend();
      }
    } catch {
      // try the next one
    }
  }
  throw new Error(`no tfjs backend could be initialised (tried ${order.join(', ')})`);
}
