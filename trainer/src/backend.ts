// Chooses the tfjs backend for Node: WebGPU on a real GPU (through Dawn), else wasm (SIMD, fastest on CPU here),
// else the pure-JS cpu backend.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmGradientKernels } from './train/wasm-grad-kernels.js';
import { initWebGPUBackend, mayHaveGpu, softwareFromEnv, webgpuProblems, type WebGPUInfo } from './backend-webgpu.js';

export type BackendName = 'auto' | 'wasm' | 'cpu' | 'webgpu';

export interface BackendInfo {
  name: string;
  /** The WebGPU adapter, when the backend is webgpu. */
  adapter?: string;
  software?: boolean;
}

let info: BackendInfo | null = null;

/** What initBackend chose (before it ran: just tfjs's current backend); the report records it. */
export function backendInfo(): BackendInfo {
  return info && info.name === tf.getBackend() ? { ...info } : { name: tf.getBackend() };
}

function chose(name: string, gpu?: WebGPUInfo): string {
  info = gpu ? { name, adapter: gpu.adapter, software: gpu.software } : { name };
  return name;
}

async function initCpuBackend(b: 'wasm' | 'cpu'): Promise<boolean> {
  try {
    if (!(await tf.setBackend(b))) return false;
    await tf.ready();
    if (b === 'wasm') registerWasmGradientKernels(); // training through convs stays on wasm
    return tf.getBackend() === b;
  } catch {
    return false;
  }
}

/**
 * Makes a tfjs backend current and returns its name.
 * - 'webgpu': WebGPU or an error naming what is missing. A hardware adapter; a software one (llvmpipe,
 *   SwiftShader) only with ZEROVAR_WEBGPU_SOFTWARE=1, for testing the WebGPU path.
 * - 'auto': a hardware WebGPU adapter if there is one, else wasm, else cpu. A software WebGPU adapter is never
 *   chosen here: it runs the shaders on the CPU and is slower than wasm.
 */
export async function initBackend(name: BackendName = 'auto'): Promise<string> {
  if (name === 'webgpu') {
    const gpu = await initWebGPUBackend();
    if (!gpu) {
      const hint = softwareFromEnv() ? '' : '; set ZEROVAR_WEBGPU_SOFTWARE=1 to accept a software adapter (slow, for testing)';
      throw new Error(`--backend webgpu: no WebGPU adapter: ${webgpuProblems().join('; ')}${hint}`);
    }
    return chose('webgpu', gpu);
  }
  if (name === 'auto' && mayHaveGpu()) {
    // Dawn is only loaded where a GPU device exists, so CPU-only machines never pay for (or hear from) it.
    const gpu = await initWebGPUBackend({ allowSoftware: false }).catch(() => null);
    if (gpu) return chose('webgpu', gpu);
  }
  const order: ('wasm' | 'cpu')[] = name === 'auto' ? ['wasm', 'cpu'] : [name];
  for (const b of order) if (await initCpuBackend(b)) return chose(b);
  throw new Error(`no tfjs backend could be initialised (tried ${order.join(', ')})`);
}
