// Where the model bundles and the inference runtime live. Defaults match the viewer host (bundles served from the
// project's models/ folder at /zerovar/models/<variant>/); a deployment may override them in app-config.js:
//   window.config.zerovar = { models: { raw: 'https://…/raw/', masked: '…' }, backends: ['wasm'], wasmPath: '…' }
// and `?zerovarBackends=wasm,webgl` in the page URL overrides the backend order (for comparisons and tests).
import { DEFAULT_BACKENDS, type BackendName } from './inferenceProtocol.js';

export type ModelVariant = 'raw' | 'masked';
export const VARIANTS: readonly ModelVariant[] = ['raw', 'masked'];

export const DEFAULT_MODEL_URLS: Readonly<Record<ModelVariant, string>> = {
  raw: '/zerovar/models/raw/',
  masked: '/zerovar/models/masked/',
};
export const DEFAULT_WASM_PATH = '/zerovar/';

export interface InferenceConfig {
  models: Record<ModelVariant, string>;
  backends: BackendName[];
  wasmPath: string;
}

const withSlash = (u: string) => (u.endsWith('/') ? u : `${u}/`);
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
  const z = (appConfig as { zerovar?: { models?: Partial<Record<ModelVariant, string>>; backends?: unknown; wasmPath?: unknown } })
    ?.zerovar;
  const models = { ...DEFAULT_MODEL_URLS };
  for (const v of VARIANTS) {
    const u = z?.models?.[v];
    if (typeof u === 'string' && u) models[v] = withSlash(u);
  }
  const fromUrl = parseBackends(new URLSearchParams(search).get('zerovarBackends'));
  const fromConfig = Array.isArray(z?.backends) ? parseBackends(z.backends.join(',')) : undefined;
  return {
    models,
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
