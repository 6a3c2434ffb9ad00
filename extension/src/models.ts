// Where the model bundles and the inference runtime live. By default the viewer host's model index lists the
// bundles (GET /zerovar/models/index.json: every bundle folder of its models directory); without an index the
// built-in raw and masked URLs stand in. A deployment may set its own in app-config.js:
//   window.config.zerovar = { models: { raw: 'https://…/raw/', masked: '…' }, backends: ['wasm'], wasmPath: '…' }
// (each key of `models` is a model's id, and those are the whole list; `modelIndex: URL` points at another index)
// and `?zerovarBackends=wasm,webgl` in the page URL overrides the backend order (for comparisons and tests).
import { DEFAULT_BACKENDS, type BackendName } from './inferenceProtocol.js';
import { withSlash } from './modelIndex.js';


/** The bundles used when there is no index: the released raw and masked ones, where the host serves them. */
export const DEFAULT_MODEL_URLS: Readonly<Record<string, string>> = {
  raw: '/zerovar/models/raw/',
  masked: '/zerovar/models/masked/',
};
export const DEFAULT_MODEL_INDEX = '/zerovar/models/index.json';
export const DEFAULT_WASM_PATH = '/zerovar/';

export interface InferenceConfig {
  /** A deployment's own bundles (model id -> folder URL): the whole list, no index is read. */
  models?: Record<string, string>;
  /** The model index to read when `models` is not set. */
  modelIndex: string;
  backends: BackendName[];
  wasmPath: string;
}

const isBackend = (b: string): b is BackendName => (DEFAULT_BACKENDS as readonly string[]).includes(b);

/** Backend list from a comma-separated string; unknown names are dropped, an empty result gives undefined. */
export function parseBackends(text: string | null | undefined): BackendName[] | undefined {
  const list = (text ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(isBackend);
  return list.length ? list : undefined;
}

/** The configuration from `window.config.zerovar` (if any) and the page URL, over the defaults. */
export function inferenceConfig(
  appConfig: unknown = (globalThis as { config?: unknown }).config,
  search: string = typeof location === 'undefined' ? '' : location.search,
): InferenceConfig {
  const z = (appConfig as { zerovar?: { models?: unknown; modelIndex?: unknown; backends?: unknown; wasmPath?: unknown } })?.zerovar;
  let models: Record<string, string> | undefined;
  if (typeof z?.models === 'object' && z.models !== null) {
    for (const [id, u] of Object.entries(z.models as Record<string, unknown>)) {
      if (id && typeof u === 'string' && u) (models ??= {})[id] = withSlash(u);
    }
  }
  const fromUrl = parseBackends(new URLSearchParams(search).get('zerovarBackends'));
  const fromConfig = Array.isArray(z?.backends) ? parseBackends(z.backends.join(',')) : undefined;
  return {
    ...(models ? { models } : {}),
    modelIndex: typeof z?.modelIndex === 'string' && z.modelIndex ? z.modelIndex : DEFAULT_MODEL_INDEX,
    backends: fromUrl ?? fromConfig ?? [...DEFAULT_BACKENDS],
    wasmPath: typeof z?.wasmPath === 'string' && z.wasmPath ? withSlash(z.wasmPath) : DEFAULT_WASM_PATH,
  };
}

export type Availability = 'checking' | 'available' | 'missing' | 'error';

/** Whether a bundle is installed: its manifest answers (HEAD, so nothing large is downloaded twice). */
export async function checkAvailability(modelUrl: string, fetchFn: typeof fetch = fetch): Promise<Availability> {
  try {
    const r = await fetchFn(`${withSlash(modelUrl)}manifest.json`, { method: 'HEAD', cache: 'no-store' });
    if (r.ok) return 'available';
    return r.status === 404 ? 'missing' : 'error';
  } catch {
    return 'error';
  }
}
