// The benchmark's page: a blank same-origin document whose script starts the viewer's own inference worker (the
// webpack-built chunk under /zerovar/chunks/) and talks to it with the extension's message protocol. A cold
// measurement gets a fresh worker per bundle; warm ones share a worker that alternates between the bundles (and
// also time each classification without the out-of-distribution guard, for its share of the time). The
// script is plain JavaScript text, not a bundled module: it only posts messages, and keeping it out of webpack
// leaves the extension's build untouched.
import type { BackendName, ClassifyResult, InitResult } from '../../extension/src/inferenceProtocol.js';

interface WorkerTarget {
  /** URL of the worker chunk, e.g. /zerovar/chunks/zerovar-inference.1234abcd.js */
  workerUrl: string;
  /** Folder of tfjs-backend-wasm's binaries (the extension's default: /zerovar/). */
  wasmPath: string;
  backend: BackendName;
}

interface ImageSource {
  /** The 8-bit grey test image (raw bytes, width * height) served by the host. */
  imageUrl: string;
  width: number;
  height: number;
  /** Longest side of the returned attention map (the panel asks for 256). */
  camSize: number;
}

/** A fresh worker: init, then one classify + Grad-CAM request on a bundle it has never seen. */
export interface ColdRequest extends WorkerTarget, ImageSource {
  /** Bundle folder URL ending in '/'. */
  modelUrl: string;
}

/**
 * One worker holding every bundle: after a first (discarded) request each, classify + Grad-CAM requests go to the
 * bundles in turn, so a machine's changing load weighs on all of them alike.
 */
export interface WarmRequest extends WorkerTarget, ImageSource {
  modelUrls: string[];
  /** Requests per bundle. */
  count: number;
  /** Stop early (after at least 3 per bundle) once the warm requests have taken this long. */
  budgetMs: number;
}

/** One classify request: what the worker reports and the round trip seen by the page. */
export type Timed = Omit<ClassifyResult, 'attention' | 'facts'> & { wallMs: number; camPixels: number };

export type ColdResult =
  | { ok: true; init: InitResult; initWallMs: number; cold: Timed }
  | { ok: false; stage: 'init' | 'classify'; error: string };

export type WarmResult = { ok: true; warm: Record<string, Timed[]> } | { ok: false; stage: 'init' | 'classify'; error: string };

/** Initialises the worker's backend only (fetches and compiles the worker and the wasm binary once). */
export type WarmupRequest = WorkerTarget;

const PAGE_SCRIPT = String.raw`
'use strict';
function startWorker(workerUrl) {
  const worker = new Worker(workerUrl, { type: 'module', name: 'zerovar-inference' });
  const pending = new Map();
  let nextId = 1;
  worker.onmessage = (e) => {
    const p = pending.get(e.data.id);
    if (!p) return;
    pending.delete(e.data.id);
    if (e.data.ok) p.resolve(e.data.result);
    else p.reject(Object.assign(new Error(e.data.error.message), { name: e.data.error.name }));
  };
  worker.onerror = (e) => {
    e.preventDefault();
    const err = new Error('the inference worker stopped: ' + (e.message || 'its script failed to load or crashed'));
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  const request = (body, transfer) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      worker.postMessage(Object.assign({}, body, { id }), transfer || []);
    });
  return { request, terminate: () => worker.terminate() };
}
const describe = (e) => (e && e.name ? e.name + ': ' : '') + (e && e.message ? e.message : String(e));

async function open(o) {
  const image = new Uint8Array(await (await fetch(o.imageUrl)).arrayBuffer());
  if (image.length !== o.width * o.height) return { ok: false, stage: 'init', error: 'the test image has ' + image.length + ' bytes' };
  const w = startWorker(o.workerUrl);
  let init;
  const t0 = performance.now();
  try {
    init = await w.request({ type: 'init', backends: [o.backend], wasmPath: o.wasmPath });
  } catch (e) {
    w.terminate();
    return { ok: false, stage: 'init', error: describe(e) };
  }
  const initWallMs = performance.now() - t0;
  // Each request transfers (consumes) its pixel buffer, as the panel does: copy before the clock starts.
  // timeUnguarded: the worker also classifies without the guard; that extra time is kept out of the round trip.
  const classify = async (modelUrl, timeUnguarded) => {
    const data = image.slice();
    const t1 = performance.now();
    const r = await w.request(
      { type: 'classify', modelUrl, image: { width: o.width, height: o.height, data }, explain: true, camSize: o.camSize, timeUnguarded: !!timeUnguarded },
      [data.buffer],
    );
    const wallMs = performance.now() - t1 - (r.unguardedMs || 0);
    const camPixels = r.attention ? r.attention.cam.length : 0;
    delete r.attention;
    delete r.facts;
    return Object.assign(r, { wallMs, camPixels });
  };
  return { ok: true, init, initWallMs, classify, terminate: w.terminate };
}

window.zerovarBench = {
  async warmup(o) {
    const w = startWorker(o.workerUrl);
    try {
      const init = await w.request({ type: 'init', backends: [o.backend], wasmPath: o.wasmPath });
      return { ok: true, init };
    } catch (e) {
      return { ok: false, error: describe(e) };
    } finally {
      w.terminate();
    }
  },
  async cold(o) {
    const session = await open(o);
    if (!session.ok) return session;
    try {
      const cold = await session.classify(o.modelUrl);
      return { ok: true, init: session.init, initWallMs: session.initWallMs, cold };
    } catch (e) {
      return { ok: false, stage: 'classify', error: describe(e) };
    } finally {
      session.terminate();
    }
  },
  async warm(o) {
    const session = await open(o);
    if (!session.ok) return session;
    try {
      const warm = {};
      for (const url of o.modelUrls) {
        await session.classify(url);
        warm[url] = [];
      }
      const started = performance.now();
      for (let i = 0; i < o.count; i++) {
        if (i >= 3 && performance.now() - started > o.budgetMs) break;
        for (const url of o.modelUrls) warm[url].push(await session.classify(url, true));
      }
      return { ok: true, warm };
    } catch (e) {
      return { ok: false, stage: 'classify', error: describe(e) };
    } finally {
      session.terminate();
    }
  },
};
`;

/** The page's HTML (served at the host's root). */
export const PAGE_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>zerovar viewer benchmark</title></head>
<body><script>${PAGE_SCRIPT}</script></body></html>
`;

/** Expression for `page.evaluate` (a string, so nothing of this process's compiled code reaches the page). */
export const coldExpression = (r: ColdRequest) => `window.zerovarBench.cold(${JSON.stringify(r)})`;
export const warmExpression = (r: WarmRequest) => `window.zerovarBench.warm(${JSON.stringify(r)})`;
export const warmupExpression = (r: WarmupRequest) => `window.zerovarBench.warmup(${JSON.stringify(r)})`;
