// The inference Web Worker: message plumbing around the backend selector (WebGPU, then WebGL, then wasm, then
// cpu; backendSelector.ts) and the model cache (each bundle loaded once, every file checksum-verified by the
// trainer's reader; modelCache.ts). It probes the backends with tfjs and answers classify requests with the
// calibrated prediction, the out-of-distribution guard's verdict, when asked the Grad-CAM map of the predicted
// class (not for a flagged image unless shown anyway), and for a masked bundle the lung mask it classified within
// (segmented once per image: maskCache.ts). All model code is the trainer's own browser-safe code.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import {
  BundleError,
  httpFetcher,
  type FetchBytes,
  upsampleCam,
  BundleModel,
  type GreyImage,
  resizeMask,
  registerInferenceKernels,
} from '@zerovar/trainer/browser';
import type {
  BackendName, ClassifyRequest, ClassifyResult, InitRequest, InitResult, WorkerError, WorkerRequest, WorkerResponse,
} from './inferenceProtocol.js';
import { BackendSelector, isSoftwareRenderer, type ProbeReport, type RendererInfo } from './backendSelector.js';
import { MaskCache } from './maskCache.js';
import { ModelCache } from './modelCache.js';
import { modelFacts, type ModelFacts } from './modelFacts.js';

interface WorkerScope {
  onmessage: ((e: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: WorkerResponse, transfer?: Transferable[]): void;
}
const scope = self as unknown as WorkerScope;

/** Bundle URL -> loaded model; a failed load is forgotten so a fixed bundle can be retried. */
const models = new ModelCache<LoadedModel>(({ model }) => model.dispose());

/** The lung masks of the last few images classified with a masked bundle, by model and exact pixels. */
const masks = new MaskCache();

/** A loaded bundle, its facts and its identity (the manifest's SHA-256; the manifest lists every file's checksum). */
interface LoadedModel { model: BundleModel; facts: ModelFacts; sha256: string }

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * The kernels a MobileNet runs, fused as tfjs-layers fuses them (conv + bias + ReLU6, depthwise conv + bias,
 * batch norm, pooling, matmul + bias), on fixed data big enough to take the backends' vectorised paths.
 */
async function probeOps(): Promise<Float32Array> {
  const out = tf.tidy(() => {
    const fill = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));
    // An input of a model's size (>100 kB): WebGPU on a software adapter fails to upload such buffers.
    const x = tf.tensor4d(fill(64 * 64 * 8, (i) => Math.sin(i * 0.37)), [1, 64, 64, 8]);
    const w = tf.tensor4d(fill(3 * 3 * 8 * 16, (i) => 0.2 * Math.cos(i * 0.11)), [3, 3, 8, 16]);
    const b = tf.tensor1d(fill(16, (i) => 0.05 * (i - 8)));
    const dw = tf.tensor4d(fill(3 * 3 * 16, (i) => Math.sin(i * 0.53)), [3, 3, 16, 1]);
    const pw = tf.tensor4d(fill(16 * 32, (i) => 0.1 * Math.cos(i * 0.7)), [1, 1, 16, 32]);
    let y = tf.fused.conv2d({ x, filter: w, strides: 2, pad: 'same', bias: b, activation: 'relu6' });
    y = tf.fused.depthwiseConv2d({ x: y, filter: dw, strides: 1, pad: 'same', bias: b, activation: 'relu6' });
    y = tf.fused.conv2d({ x: y, filter: pw, strides: 1, pad: 'valid' });
    y = tf.batchNorm(y, tf.scalar(0.1), tf.scalar(1.5), tf.scalar(0.2), tf.scalar(0.9), 1e-3) as tf.Tensor4D;
    const pooled = tf.mean(y, [1, 2]) as tf.Tensor2D;
    const m = tf.fused.matMul({ a: pooled, b: tf.tensor2d(fill(32 * 5, (i) => 0.1 * (i - 80)), [32, 5]), bias: tf.tensor1d([1, 2, 3, 4, 5]), activation: 'relu' });
    return tf.concat([tf.reshape(y, [-1]), tf.reshape(m, [-1])]);
  });
  try {
    return (await out.data()) as Float32Array;
  } finally {
    out.dispose();
  }
}

let reference: Float32Array | null = null;

/**
 * Initialises `name` and proves it computes correctly: a backend can register and still fail on its first kernel,
 * or (seen with WebGPU on a software adapter) give wrong numbers. The check compares with the cpu backend.
 */
async function tryBackend(name: BackendName): Promise<ProbeReport> {
  if (!reference) {
    if (!(await tf.setBackend('cpu'))) throw new Error('the cpu reference backend did not initialise');
    reference = await probeOps();
  }
  // Without an adapter tfjs's WebGPU factory fails on it (a TypeError in the console); say so plainly instead.
  if (name === 'webgpu' && !(await gpuAdapter())) throw new Error('no WebGPU adapter (navigator.gpu offers none)');
  if (!(await tf.setBackend(name))) throw new Error('did not initialise');
  await tf.ready();
  // The trainer's wasm kernels: BatchNorm alone was most of a MobileNetV2 forward pass on the backend's own.
  if (name === 'wasm') registerInferenceKernels();
  const got = await probeOps();
  let scale = 0;
  let err = 0;
  for (let i = 0; i < reference.length; i++) {
    scale = Math.max(scale, Math.abs(reference[i]));
    err = Math.max(err, Math.abs(got[i] - reference[i]));
  }
  if (got.length !== reference.length || !(err <= 1e-3 * Math.max(1, scale))) {
    throw new Error(`wrong results on a test computation (max error ${err.toPrecision(3)})`);
  }
  // The first run compiled the kernels (or shaders): the second one is what a warm request pays per kernel.
  const t0 = performance.now();
  await probeOps();
  return { warmMs: performance.now() - t0 };
}

interface GpuAdapterInfo { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean }
interface GpuAdapter { info?: GpuAdapterInfo; isFallbackAdapter?: boolean; requestAdapterInfo?: () => Promise<GpuAdapterInfo> }

/** The browser's WebGPU adapter, or null where there is none (no navigator.gpu, or no adapter behind it). */
async function gpuAdapter(): Promise<GpuAdapter | null> {
  const gpu = (self.navigator as unknown as { gpu?: { requestAdapter(): Promise<GpuAdapter | null> } }).gpu;
  return (await gpu?.requestAdapter().catch(() => null)) ?? null;
}

/**
 * A GPU backend's renderer, read without initialising the backend: WebGPU's adapter info, WebGL's unmasked
 * renderer (WEBGL_debug_renderer_info). Undefined when the browser does not tell (the selector then times it).
 */
async function inspectRenderer(name: BackendName): Promise<RendererInfo | undefined> {
  if (name === 'webgpu') {
    const adapter = await gpuAdapter();
    if (!adapter) return undefined; // the probe fails and says why
    const info = adapter.info ?? (await adapter.requestAdapterInfo?.()) ?? {};
    const renderer = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
    if (adapter.isFallbackAdapter || info.isFallbackAdapter) return { renderer: renderer || 'fallback adapter', software: true };
    return renderer ? { renderer, software: isSoftwareRenderer(renderer) } : undefined;
  }
  if (name === 'webgl') {
    if (typeof OffscreenCanvas === 'undefined') return undefined;
    const canvas = new OffscreenCanvas(1, 1);
    const gl = (canvas.getContext('webgl2') ?? canvas.getContext('webgl')) as WebGLRenderingContext | null;
    if (!gl) return undefined;
    try {
      const ext = gl.getExtension('WEBGL_debug_renderer_info');
      const renderer = ext ? String(gl.getParameter(ext.UNMASKED_RENDERER_WEBGL)) : '';
      return renderer ? { renderer, software: isSoftwareRenderer(renderer) } : undefined;
    } finally {
      gl.getExtension('WEBGL_lose_context')?.loseContext();
    }
  }
  return undefined;
}

const selector = new BackendSelector({
  probe: tryBackend,
  inspect: inspectRenderer,
  activate: async (name) => {
    if (!(await tf.setBackend(name))) throw new Error(`${name} did not initialise again`);
  },
});

function init(req: InitRequest): Promise<InitResult> {
  return selector.select(req.backends, () => {
    setWasmPaths(req.wasmPath);
    // The threaded wasm build starts its pthreads with importScripts() of the main script, which a bundled ES
    // module worker cannot serve; the single-threaded SIMD build needs nothing of the kind.
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  });
}

/** Gives up the current backend for the next one in the list (its models go with it); false when none is left. */
async function dropBackend(current: BackendName, why: string): Promise<boolean> {
  // The loaded models live on the backend being given up.
  return selector.drop(current, why, () => {
    models.clear();
    masks.clear();
  });
}

/** A fixed, structured test image of the model's input size. */
function probeImage(size: number): GreyImage {
  const data = new Uint8Array(size * size);
  for (let i = 0; i < data.length; i++) data[i] = (((i % size) * 7 + Math.floor(i / size) * 3) % 200) + ((i * 13) % 56);
  return { width: size, height: size, data };
}

/**
 * On a GPU backend, the loaded model's features for a test image are compared with the cpu backend's: small
 * kernel tests can pass while a whole model comes out wrong (seen with WebGPU on a software adapter).
 */
async function verifyModel(model: BundleModel, backend: BackendName): Promise<void> {
  if (backend === 'cpu' || backend === 'wasm') return;
  const probe = probeImage(model.spec.size);
  const got = model.features([probe])[0];
  await tf.setBackend('cpu');
  let ref: Float32Array;
  try {
    ref = model.features([probe])[0];
  } finally {
    await tf.setBackend(backend);
  }
  let scale = 0;
  let err = 0;
  for (let i = 0; i < ref.length; i++) {
    scale = Math.max(scale, Math.abs(ref[i]));
    err = Math.max(err, Math.abs(got[i] - ref[i]));
  }
  if (!(err <= 1e-2 * Math.max(1, scale))) {
    throw new BackendMismatch(`the model's outputs differ from the cpu backend's (max error ${err.toPrecision(3)} of ${scale.toPrecision(3)})`);
  }
}

class BackendMismatch extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackendMismatch';
  }
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

function loadModel(url: string, backend: BackendName): Promise<LoadedModel> {
  return models.get(url, () => {
    const fetchHttp = httpFetcher(url);
    let bytes = 0;
    let manifest: Uint8Array | undefined;
    const counting: FetchBytes = async (path) => {
      const b = await fetchHttp(path);
      bytes += b.length;
      if (path === 'manifest.json') manifest = b; // the bundle reader's first file
      return b;
    };
    return BundleModel.load(counting).then(async (model) => {
      try {
        await verifyModel(model, backend);
      } catch (e) {
        model.dispose();
        throw e;
      }
      return { model, facts: modelFacts(model.manifest, bytes), sha256: manifest ? await sha256Hex(manifest) : '' };
    });
  });
}

interface GpuErrorScopes {
  pushErrorScope(filter: 'validation' | 'out-of-memory' | 'internal'): void;
  popErrorScope(): Promise<{ message: string } | null>;
}

/**
 * Runs `fn` inside WebGPU error scopes when the backend is WebGPU: a failed buffer creation there is reported
 * asynchronously and would otherwise leave garbage in the results instead of an exception.
 */
async function gpuChecked<T>(backend: BackendName, fn: () => Promise<T>): Promise<T> {
  const device = backend === 'webgpu' ? (tf.backend() as unknown as { device?: GpuErrorScopes }).device : undefined;
  if (!device) return fn();
  const filters = ['validation', 'out-of-memory', 'internal'] as const;
  for (const f of filters) device.pushErrorScope(f);
  let value: T | undefined;
  let thrown: unknown;
  try {
    value = await fn();
  } catch (e) {
    thrown = e;
  }
  const errors = [];
  for (let i = 0; i < filters.length; i++) errors.push(await device.popErrorScope());
  const first = errors.find((e) => e);
  if (thrown) throw thrown;
  if (first) throw new Error(`WebGPU reported an error: ${first.message}`);
  return value as T;
}

/** Classifies on the chosen backend; a backend failure (not a bundle problem) moves on to the next backend. */
async function classifyWithFallback(req: ClassifyRequest): Promise<{ result: ClassifyResult; transfer: Transferable[] }> {
  for (;;) {
    const { backend } = await selector.current();
    try {
      return await gpuChecked(backend, () => classify(req));
    } catch (e) {
      if (e instanceof Error && e.name === 'BundleError') throw e;
      if (!(await dropBackend(backend, errorText(e)))) throw e;
    }
  }
}

async function classify(req: ClassifyRequest): Promise<{ result: ClassifyResult; transfer: Transferable[] }> {
  const { backend, why } = await selector.current();
  const cold = !models.has(req.modelUrl);
  const t0 = performance.now();
  const { model, facts, sha256 } = await loadModel(req.modelUrl, backend);
  const t1 = performance.now();
  // A masked bundle: segment once here, so the mask can be returned and the model classifies and explains the
  // very image it was masked into. Its guard still looks at the unmasked original (a CT slice must be refused
  // before the segmenter has a say); a raw bundle's guard reads the classifier's own pass.
  // A second run on the same pixels with the same model reuses its mask (maskCache.ts).
  const { image, lungMask, cached: segmentCached } = masks.input(model, req.image);
  const tSeg = performance.now();
  const prediction = model.masked ? model.classify(image, { premasked: true, unmasked: [req.image] }) : model.classify(image);
  const t2 = performance.now();
  // Without `unmasked`, a premasked image skips the guard: the same classification, unguarded, for the bench.
  let unguardedMs: number | undefined;
  if (req.timeUnguarded) {
    const u0 = performance.now();
    model.classify(image, { premasked: true });
    unguardedMs = performance.now() - u0;
  }
  const tExplain = performance.now();
  const { width: iw, height: ih } = req.image;
  const scale = req.camSize / Math.max(iw, ih);
  const w = Math.max(1, Math.round(iw * scale));
  const h = Math.max(1, Math.round(ih * scale));
  // A flagged image gets no attention map unless the user asked to see it anyway: nothing to overlay by mistake.
  const explain = req.explain && (!prediction.ood?.flagged || req.showAnyway === true);
  let attention: ClassifyResult['attention'];
  if (explain) {
    const e = model.explain(image, prediction.classIndex, { premasked: true });
    attention = { cam: upsampleCam(e.cam, e.width, e.height, w, h), width: w, height: h, classIndex: e.classIndex, className: e.className, method: e.method };
  }
  const t3 = performance.now();
  const lung = lungMask ? { mask: resizeMask(lungMask, w, h).data, width: w, height: h } : undefined;
  const result: ClassifyResult = {
    backend,
    backendWhy: why,
    bundleSha256: sha256,
    skipped: selector.droppedAtRuntime(),
    probabilities: Array.from(prediction.probabilities),
    classIndex: prediction.classIndex,
    className: prediction.className,
    classes: [...model.classes],
    facts,
    cold,
    loadMs: cold ? t1 - t0 : 0,
    classifyMs: t2 - t1,
    explainMs: explain ? t3 - tExplain : 0,
    segmentMs: lungMask ? tSeg - t1 : 0,
    segmentCached: lungMask ? segmentCached : undefined,
    ood: prediction.ood ? { ...prediction.ood } : undefined,
    unguardedMs,
    attention,
    lungMask: lung,
  };
  const transfer: Transferable[] = [];
  if (attention) transfer.push(attention.cam.buffer);
  if (lung) transfer.push(lung.mask.buffer);
  return { result, transfer };
}

function toWorkerError(e: unknown): WorkerError {
  const name = e instanceof Error ? e.name : 'Error';
  const message = errorText(e);
  if (e instanceof BundleError) {
    switch (e.code) {
      case 'not-found':
        // No manifest at the URL: the panel shows "model not available" rather than a broken bundle.
        return { name, message, missing: true };
      case 'missing-file':
      case 'checksum':
      case 'unsupported-version':
      case 'invalid-field':
        return { name, message };
    }
  }
  return { name, message };
}

scope.onmessage = async (e) => {
  const req = e.data;
  try {
    if (req.type === 'init') {
      scope.postMessage({ id: req.id, ok: true, result: await init(req) });
    } else if (req.type === 'classify') {
      const { result, transfer } = await classifyWithFallback(req);
      scope.postMessage({ id: req.id, ok: true, result }, transfer);
    } else {
      throw new Error(`unknown request ${(req as { type?: string }).type}`);
    }
  } catch (err) {
    scope.postMessage({ id: req.id, ok: false, error: toWorkerError(err) });
  }
};
