// The register lists of the wasm kernels, shared by the trainer (Node) and the viewer's inference worker (browser):
// - inference: forward kernels that classification and Grad-CAM run (BatchNorm as one affine SIMD pass, Slice as
//   copies of contiguous runs, Identity and same-dtype Cast shared under a reference count instead of copied).
//   Grad-CAM differentiates only the head after the explained layer (pooling and dense layers in every bundle the
//   trainer makes), through ops whose gradients tfjs and the wasm backend already have: it needs nothing more.
// - training: that, plus the gradient kernels the backend lacks (conv filters, depthwise convs) or runs slowly
//   (1x1 conv inputs), 1x1 convs on OpenBLAS and depthwise convs on the native tasks where the addon is built
//   (Node), PadV2 as row copies the kernel pool can share (tasks.ts), replacements of the costliest
//   tfjs gradients (BatchNorm, ReLU/ReLU6 masks), and the training forward's BatchNorm + ReLU as one kernel with
//   a one-pass gradient. The gradients are registered with tf.registerGradient, which applies to every backend;
//   each file says why that is safe.
// Each kernel is a tf.KernelConfig in a file named after it; the SIMD routines are in simd_module.ts.
import * as tf from '@tensorflow/tfjs';
import { adamConfig } from './Adam.js';
import { batchNormReluConfig } from './BatchNormRelu.js';
import { batchNormReluGradConfig } from './BatchNormRelu_grad.js';
import { batchNormReluGradConfig as batchNormReluGradKernel } from './BatchNormReluGrad.js';
import { clipByValueGradConfig } from './ClipByValueGrad.js';
import { maskGradConfigs } from './ClipByValue_grad.js';
import { columnDotConfig } from './ColumnDot.js';
import { conv2DConfig } from './Conv2D.js';
import { conv2DBackpropFilterConfig } from './Conv2DBackpropFilter.js';
import { conv2DBackpropInputConfig } from './Conv2DBackpropInput.js';
import { depthwiseConv2dNativeConfig } from './DepthwiseConv2dNative.js';
import { depthwiseConv2dNativeBackpropFilterConfig } from './DepthwiseConv2dNativeBackpropFilter.js';
import { depthwiseConv2dNativeBackpropInputConfig } from './DepthwiseConv2dNativeBackpropInput.js';
import { fusedBatchNormConfig } from './FusedBatchNorm.js';
import { fusedConv2DConfig } from './FusedConv2D.js';
import { fusedBatchNormGradConfig } from './FusedBatchNorm_grad.js';
import { castConfig, identityConfig } from './Identity.js';
import { padV2Config } from './PadV2.js';
import { scaleChannelsConfig } from './ScaleChannels.js';
import { BACKEND, rememberBuiltin, type Kernel, type WasmBackend, type WasmKernelConfig } from './shared.js';
import { simd } from './simd.js';
import { sliceConfig } from './Slice.js';

/** Whether the hand-assembled SIMD routines run on the current wasm backend's heap (else JS loops stand in). */
export function wasmSimdKernelsBound(): boolean {
  return tf.getBackend() === BACKEND && simd(tf.backend() as unknown as WasmBackend) !== null;
}

/** Forward kernels: classification and Grad-CAM. */
const INFERENCE_KERNELS: WasmKernelConfig[] = [fusedBatchNormConfig, sliceConfig, identityConfig, castConfig];

/** Gradient kernels, for training, PadV2, whose rows the trainer's kernel pool shares, and the convs the native addon takes. */
const TRAINING_KERNELS: WasmKernelConfig[] = [
  padV2Config,
  conv2DBackpropInputConfig,
  conv2DBackpropFilterConfig,
  depthwiseConv2dNativeBackpropFilterConfig,
  depthwiseConv2dNativeBackpropInputConfig,
  conv2DConfig,
  fusedConv2DConfig,
  depthwiseConv2dNativeConfig,
];

/**
 * Helper kernels of the replaced gradients, the training forward's BatchNorm + ReLU with its gradient's kernel,
 * and the fused Adam update (not tfjs kernel names; not in the returned lists).
 */
const GRADIENT_HELPER_KERNELS: WasmKernelConfig[] = [columnDotConfig, scaleChannelsConfig, clipByValueGradConfig, batchNormReluConfig, batchNormReluGradKernel, adamConfig];

let inference: string[] | null = null;
let training: string[] | null = null;

/** Registers `configs` for wasm in place of the backend's kernels of the same names; returns the names registered. */
function registerAll(configs: WasmKernelConfig[]): string[] {
  const names: string[] = [];
  for (const { kernelName, kernelFunc, wrapsBuiltin } of configs) {
    const previous = tf.getKernel(kernelName, BACKEND);
    if (wrapsBuiltin) {
      if (!previous) continue; // nothing to fall back to: the backend's build lacks the kernel, keep it lacking
      rememberBuiltin(kernelName, previous.kernelFunc as unknown as Kernel);
    }
    if (previous) tf.unregisterKernel(kernelName, BACKEND);
    // The replaced kernel's setup (binding its wasm function) must still run when the backend starts later.
    tf.registerKernel({ kernelName, backendName: BACKEND, kernelFunc, setupFunc: previous?.setupFunc });
    names.push(kernelName);
  }
  return names;
}

/** The helper kernels and the replaced gradients (each keeps tfjs' own gradient for the cases it does not cover). */
function registerGradients(): void {
  for (const config of GRADIENT_HELPER_KERNELS) {
    const { kernelName, backendName, kernelFunc } = config;
    if (!tf.getKernel(kernelName, BACKEND)) tf.registerKernel({ kernelName, backendName, kernelFunc });
  }
  const batchNorm = tf.getGradient('FusedBatchNorm');
  if (batchNorm) tf.registerGradient(fusedBatchNormGradConfig(batchNorm));
  const clip = tf.getGradient('ClipByValue');
  const relu = tf.getGradient('Relu');
  const relu6 = tf.getGradient('Relu6');
  if (clip && relu && relu6) for (const config of maskGradConfigs({ clip, relu, relu6 })) tf.registerGradient(config);
  tf.registerGradient(batchNormReluGradConfig);
}

/**
 * Registers the inference kernels for the wasm backend (once; later calls return the same list) and returns the
 * tfjs kernel names now served by them. Registers no gradient: other backends are untouched. Call after the wasm
 * backend is registered (importing '@tensorflow/tfjs-backend-wasm' is enough; it need not be active yet).
 */
export function registerInferenceKernels(): string[] {
  inference ??= registerAll(INFERENCE_KERNELS);
  return [...inference];
}

/**
 * Registers the inference and training kernels for the wasm backend and replaces the BatchNorm, ClipByValue, Relu
 * and Relu6 gradients (once; later calls return the same list); returns the tfjs kernel names now served by this
 * folder's kernels. For the trainer; the same preconditions as registerInferenceKernels.
 */
export function registerTrainingKernels(): string[] {
  const forward = registerInferenceKernels();
  if (!training) {
    training = registerAll(TRAINING_KERNELS);
    registerGradients();
  }
  return [...forward, ...training];
}
