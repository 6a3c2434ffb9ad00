// The inference Web Worker: picks a tfjs backend (WebGPU, then WebGL, then wasm, then cpu), loads each model bundle
// once (every file checksum-verified by the trainer's reader) and answers classify requests with the prediction
// and, when asked, the Grad-CAM map of the predicted class. All model code is the trainer's own browser-safe code.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { httpFetcher, type FetchBytes } from '../../trainer/src/model/bundle.js';
import { upsampleCam } from '../../trainer/src/model/gradcam.js';
import { BundleModel } from '../../trainer/src/model/inference.js';
import type {
  BackendName, ClassifyRequest, ClassifyResult, InitRequest, InitResult, WorkerError, WorkerRequest, WorkerResponse,
} from './inferenceProtocol.js';
import { modelFacts, type ModelFacts } from './modelFacts.js';

interface WorkerScope {
  onmessage: ((e: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: WorkerResponse, transfer?: Transferable[]): void;
}
const scope = self as unknown as WorkerScope;

let backendReady: Promise<InitResult> | null = null;
/** Bundle URL -> loaded model; a failed load is forgotten so a fixed bundle can be retried. */
const models = new Map<string, Promise<{ model: BundleModel; facts: ModelFacts }>>();

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Initialises `name` and proves it computes: a backend can register and still fail on its first kernel. */
async function tryBackend(name: BackendName): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error('did not initialise');
  await tf.ready();
  const t = tf.tidy(() => tf.add(tf.tensor1d([1, 2, 3]), tf.scalar(1)));
  const v = await t.data();
  t.dispose();
  if (v[0] !== 2 || v[1] !== 3 || v[2] !== 4) throw new Error(`a test addition gave ${Array.from(v)}`);
}

function init(req: InitRequest): Promise<InitResult> {
  backendReady ??= (async () => {
    const t0 = performance.now();
    setWasmPaths(req.wasmPath);
    // The threaded wasm build starts its pthreads with importScripts() of the main script, which a bundled ES
    // module worker cannot serve; the single-threaded SIMD build needs nothing of the kind.
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    const skipped: string[] = [];
    for (const name of req.backends) {
      try {
        await tryBackend(name);
        return { backend: name, skipped, ms: performance.now() - t0 };
      } catch (e) {
        skipped.push(`${name}: ${errorText(e)}`);
      }
    }
    throw new Error(`no tfjs backend works in this browser (${skipped.join('; ')})`);
  })();
  // A failed selection may succeed later (e.g. a GPU that was busy): do not cache the failure.
  backendReady.catch(() => {
    backendReady = null;
  });
  return backendReady;
}

function loadModel(url: string): Promise<{ model: BundleModel; facts: ModelFacts }> {
  let entry = models.get(url);
  if (!entry) {
    const fetchHttp = httpFetcher(url);
    let bytes = 0;
    const counting: FetchBytes = async (path) => {
      const b = await fetchHttp(path);
      bytes += b.length;
      return b;
    };
    entry = BundleModel.load(counting).then((model) => ({ model, facts: modelFacts(model.manifest, bytes) }));
    models.set(url, entry);
    entry.catch(() => models.delete(url));
  }
  return entry;
}

async function classify(req: ClassifyRequest): Promise<{ result: ClassifyResult; transfer: Transferable[] }> {
  const { backend } = await (backendReady ?? Promise.reject(new Error('the worker was not initialised')));
  const cold = !models.has(req.modelUrl);
  const t0 = performance.now();
  const { model, facts } = await loadModel(req.modelUrl);
  const t1 = performance.now();
  const prediction = model.classify(req.image);
  const t2 = performance.now();
  let attention: ClassifyResult['attention'];
  if (req.explain) {
    const e = model.explain(req.image, prediction.classIndex);
    const { width: iw, height: ih } = req.image;
    const scale = req.camSize / Math.max(iw, ih);
    const w = Math.max(1, Math.round(iw * scale));
    const h = Math.max(1, Math.round(ih * scale));
    attention = { cam: upsampleCam(e.cam, e.width, e.height, w, h), width: w, height: h, classIndex: e.classIndex, className: e.className };
  }
  const t3 = performance.now();
  const result: ClassifyResult = {
    backend,
    probabilities: Array.from(prediction.probabilities),
    classIndex: prediction.classIndex,
    className: prediction.className,
    classes: [...model.classes],
    facts,
    cold,
    loadMs: cold ? t1 - t0 : 0,
    classifyMs: t2 - t1,
    explainMs: req.explain ? t3 - t2 : 0,
    attention,
  };
  return { result, transfer: attention ? [attention.cam.buffer] : [] };
}

function toWorkerError(e: unknown): WorkerError {
  const name = e instanceof Error ? e.name : 'Error';
  const message = errorText(e);
  // The reader reports a manifest it cannot fetch as "missing file manifest.json: HTTP 404 …".
  const missing = name === 'BundleError' && /missing file manifest\.json: HTTP 404/.test(message);
  return missing ? { name, message, missing } : { name, message };
}

scope.onmessage = async (e) => {
  const req = e.data;
  try {
    if (req.type === 'init') {
      scope.postMessage({ id: req.id, ok: true, result: await init(req) });
    } else if (req.type === 'classify') {
      const { result, transfer } = await classify(req);
      scope.postMessage({ id: req.id, ok: true, result }, transfer);
    } else {
      throw new Error(`unknown request ${(req as { type?: string }).type}`);
    }
  } catch (err) {
    scope.postMessage({ id: req.id, ok: false, error: toWorkerError(err) });
  }
};
