// WebGPU for tfjs in Node: Dawn (the `webgpu` package) provides navigator.gpu, tfjs-backend-webgpu runs on it.
//
// Order of adapters: a hardware one, asked for the default way (Vulkan on Linux, Metal, D3D12). Only when there is
// none and software is allowed, two software routes that exist to exercise the WebGPU code path on machines
// without a GPU (both are slower than the wasm backend):
//   1. Dawn's OpenGL ES backend on Mesa's llvmpipe (EGL, surfaceless; a "compatibility" feature-level adapter);
//   2. Dawn's Vulkan backend on the SwiftShader ICD that Debian's chromium ships.
// Dawn and the tfjs WebGPU backend are imported dynamically, so runs on wasm or cpu never load them.
import * as tf from '@tensorflow/tfjs';
import { existsSync, readdirSync } from 'node:fs';

export interface WebGPUInfo {
  /** Vendor / architecture / device / description, as far as the adapter tells. */
  adapter: string;
  /** A CPU implementation of WebGPU (llvmpipe, SwiftShader, lavapipe, a fallback adapter). */
  software: boolean;
}

export interface WebGPUOptions {
  /** Accept a software adapter when no hardware one exists (default: env ZEROVAR_WEBGPU_SOFTWARE=1). */
  allowSoftware?: boolean;
}

/** Where Debian's chromium keeps its SwiftShader Vulkan driver manifest. */
export const SWIFTSHADER_ICDS = ['/usr/lib/chromium/vk_swiftshader_icd.json'];

/** Debian packages the llvmpipe route needs: Dawn opens the unversioned libEGL.so (from libegl-dev). */
export const LLVMPIPE_PACKAGES = 'libegl-dev libegl-mesa0 libgl1-mesa-dri';

const SOFTWARE_NAMES = /llvmpipe|softpipe|swiftshader|lavapipe|\bswrast|basic render/i;

type DawnModule = { create(flags: string[]): GPU; globals: object };

interface Chosen {
  gpu: GPU; // kept referenced: the Dawn instance must outlive the device
  adapter: GPUAdapter;
  device: GPUDevice;
  info: WebGPUInfo;
}

let chosen: Chosen | null = null;
let lastProblems: string[] = [];

/** Why the last initWebGPUBackend() found no usable adapter (empty after a success). */
export function webgpuProblems(): string[] {
  return [...lastProblems];
}

/** The adapter initWebGPUBackend() set up, if any. */
export function currentWebGPU(): WebGPUInfo | null {
  return chosen ? { ...chosen.info } : null;
}

export function softwareFromEnv(): boolean {
  return process.env.ZEROVAR_WEBGPU_SOFTWARE === '1';
}

function describe(adapter: GPUAdapter): WebGPUInfo {
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  const parts = [info?.vendor, info?.architecture, info?.device, info?.description]
    .map((s) => (s ?? '').trim())
    .filter((s, i, all) => s !== '' && all.indexOf(s) === i);
  const adapterName = parts.join(' / ') || 'unnamed adapter';
  const fallback =
    (info as (GPUAdapterInfo & { isFallbackAdapter?: boolean }) | undefined)?.isFallbackAdapter === true ||
    (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return { adapter: adapterName, software: fallback || SOFTWARE_NAMES.test(adapterName) };
}

/** Runs `fn` with some environment variables set, then restores them (Dawn reads them while it probes). */
async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

interface Candidate {
  gpu: GPU;
  adapter: GPUAdapter;
}

async function hardwareAdapter(dawn: DawnModule): Promise<Candidate | null> {
  const gpu = dawn.create([]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  return adapter ? { gpu, adapter } : null;
}

async function llvmpipeAdapter(dawn: DawnModule): Promise<Candidate | null> {
  // Without a display, Mesa's EGL must be told to use its surfaceless platform.
  const env: Record<string, string> = process.env.EGL_PLATFORM ? {} : { EGL_PLATFORM: 'surfaceless' };
  return withEnv(env, async () => {
    const gpu = dawn.create(['backend=opengles']);
    // OpenGL ES only offers the "compatibility" feature level (the option is newer than some GPU typings).
    const adapter = await gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions);
    return adapter ? { gpu, adapter } : null;
  });
}

async function swiftshaderAdapter(dawn: DawnModule, icd: string): Promise<Candidate | null> {
  return withEnv({ VK_ICD_FILENAMES: icd }, async () => {
    const gpu = dawn.create([]);
    const adapter = await gpu.requestAdapter();
    return adapter ? { gpu, adapter } : null;
  });
}

/** Same limits as tfjs-backend-webgpu asks for itself: the adapter's, so large tensors and workgroups fit. */
async function openDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const l = adapter.limits;
  const requiredFeatures: GPUFeatureName[] = adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
  return adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    },
  });
}

/** tfjs-backend-webgpu refuses to start without navigator.gpu; Node 20 has no navigator, Node 21+ has one. */
function exposeGpu(dawn: DawnModule, gpu: GPU): void {
  const g = globalThis as Record<string, unknown>;
  // GPUBufferUsage, GPUMapMode, GPUTextureUsage, ...: the constants tfjs reads as globals.
  for (const [k, v] of Object.entries(dawn.globals)) if (!(k in g)) g[k] = v;
  const nav = g.navigator as Record<string, unknown> | undefined;
  if (nav) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true, writable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
}

/** The message of a synchronous read that cannot work (exported so callers can recognise it). */
export const SYNC_READ_MESSAGE =
  'a synchronous read (dataSync, arraySync, getWeights, a move to another backend) of a tensor computed on ' +
  "WebGPU is impossible in Node: Dawn maps GPU buffers only asynchronously. Read it with 'await tensor.data()' " +
  '(or readOnHost() first, after which synchronous reads of those tensors work)';

async function registerTfjsBackend(c: Chosen): Promise<boolean> {
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  // tfjs reads GPU data synchronously through an OffscreenCanvas, which Node lacks: without one, values already
  // on the host (uploaded, or read before with data()) are served and anything else fails with a clear message.
  class NodeWebGPUBackend extends WebGPUBackend {
    override readSync(dataId: object): ReturnType<InstanceType<typeof WebGPUBackend>['readSync']> {
      const d = this.tensorMap.get(dataId);
      if (typeof OffscreenCanvas === 'undefined' && d && d.values == null && d.dtype !== 'string') throw new Error(SYNC_READ_MESSAGE);
      return super.readSync(dataId);
    }
  }
  // Importing the package registers a factory that picks its own adapter; ours uses the device chosen here.
  tf.removeBackend('webgpu');
  const adapterInfo = (c.adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  // Priority below wasm's: code that never calls setBackend must not land on WebGPU by surprise.
  tf.registerBackend('webgpu', () => new NodeWebGPUBackend(c.device, adapterInfo), 1);
  const ok = await tf.setBackend('webgpu');
  await tf.ready();
  return ok && tf.getBackend() === 'webgpu';
}

/**
 * Makes tfjs's 'webgpu' backend current on a Dawn adapter: a hardware one, else (when allowed) a software one.
 * Resolves to the adapter used, or null when there is none (see webgpuProblems() for why); throws only when an
 * adapter was found but tfjs could not start on it.
 */
export async function initWebGPUBackend(opts: WebGPUOptions = {}): Promise<WebGPUInfo | null> {
  const allowSoftware = opts.allowSoftware ?? softwareFromEnv();
  if (chosen && (allowSoftware || !chosen.info.software)) {
    // The device lives for the whole process: switch back to it instead of probing again.
    if ((await tf.setBackend('webgpu')) && tf.getBackend() === 'webgpu') {
      lastProblems = [];
      return { ...chosen.info };
    }
  }
  if (chosen?.info.software && !allowSoftware) {
    lastProblems = [`only a software adapter (${chosen.info.adapter}) is available and software adapters are not allowed`];
    return null;
  }

  const problems: string[] = [];
  let dawn: DawnModule;
  try {
    dawn = (await import('webgpu')) as unknown as DawnModule;
  } catch (e) {
    lastProblems = [`the 'webgpu' package (Dawn for Node) could not be loaded: ${(e as Error).message.split('\n')[0]}`];
    return null;
  }

  let found: Candidate | null = null;
  let software: Candidate | null = null;
  try {
    const hw = await hardwareAdapter(dawn);
    if (hw && !describe(hw.adapter).software) found = hw;
    else if (hw) software = hw;
    else problems.push('no hardware WebGPU adapter (Dawn found no GPU driver)');
  } catch (e) {
    problems.push(`probing for a hardware adapter failed: ${(e as Error).message}`);
  }

  if (!found && allowSoftware) {
    if (!software) {
      try {
        software = await llvmpipeAdapter(dawn);
        if (!software) problems.push(`no OpenGL ES adapter on Mesa llvmpipe (Debian packages: ${LLVMPIPE_PACKAGES})`);
      } catch (e) {
        problems.push(`Dawn's OpenGL ES backend failed: ${(e as Error).message}`);
      }
    }
    const icd = SWIFTSHADER_ICDS.find((p) => existsSync(p));
    if (!software && icd) {
      try {
        software = await swiftshaderAdapter(dawn, icd);
        if (!software) problems.push(`SwiftShader (${icd}) gave no Vulkan adapter`);
      } catch (e) {
        problems.push(`Dawn on SwiftShader failed: ${(e as Error).message}`);
      }
    } else if (!software) {
      problems.push(`no SwiftShader Vulkan driver (${SWIFTSHADER_ICDS.join(', ')}; Debian package chromium)`);
    }
    found = software;
  } else if (!found && software) {
    problems.push(`only a software adapter (${describe(software.adapter).adapter}); software adapters are not allowed`);
  }

  if (!found) {
    lastProblems = problems;
    return null;
  }
  const device = await openDevice(found.adapter);
  const next: Chosen = { gpu: found.gpu, adapter: found.adapter, device, info: describe(found.adapter) };
  void device.lost.then((why) => {
    if (chosen === next) chosen = null;
    if (why.reason !== 'destroyed') console.error(`WebGPU device lost: ${why.message}`);
  });
  exposeGpu(dawn, found.gpu);
  if (!(await registerTfjsBackend(next))) {
    throw new Error(`tfjs could not start its WebGPU backend on ${next.info.adapter}`);
  }
  chosen = next;
  lastProblems = [];
  return { ...next.info };
}

/**
 * Downloads the values of these tensors (default: every variable) to the host, where tfjs keeps them next to
 * the GPU copy: afterwards synchronous reads of them work (getWeights, surgery, moving to wasm), until the next
 * assignment. Harmless on other backends.
 */
export async function readOnHost(tensors?: tf.Tensor[]): Promise<void> {
  const list = tensors ?? Object.values(tf.engine().state.registeredVariables);
  await Promise.all(list.filter((t) => !t.isDisposed).map((t) => t.data()));
}

/**
 * Whether a hardware GPU may exist, without loading Dawn: on Linux a GPU shows up as a device node (DRM render
 * node, NVIDIA's, WSL's /dev/dxg). Elsewhere the answer is "maybe" and the caller probes.
 */
export function mayHaveGpu(): boolean {
  if (process.platform !== 'linux') return true;
  if (existsSync('/dev/dxg') || existsSync('/dev/nvidia0')) return true;
  try {
    return readdirSync('/dev/dri').some((n) => n.startsWith('renderD'));
  } catch {
    return false;
  }
}
