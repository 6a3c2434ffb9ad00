// The models the panel offers: the deployment's configured bundles, else the host's model index, else (no index:
// a host without one, offline) the built-in raw and masked URLs. Bundles known only by their URL are described
// from their own manifest, the way the host describes them for its index; then the default is chosen.
import { chooseDefaultModel, type ModelChoice } from './modelChoice.js';
import { describeManifest, parseModelIndex, withSlash, type ModelEntry } from './modelIndex.js';
import { DEFAULT_MODEL_URLS, type InferenceConfig } from './models.js';

export interface ModelList {
  models: ModelEntry[];
  /** Where the list came from: the deployment's configuration, the host's index, the built-in URLs. */
  source: 'config' | 'index' | 'built-in';
  choice: ModelChoice;
}

/** Entries for an id -> URL map, in its order. */
export function entriesFromUrls(urls: Readonly<Record<string, string>>): ModelEntry[] {
  return Object.entries(urls).map(([id, url]) => ({ id, url: withSlash(url) }));
}

/** The index's entries, or undefined when there is none to read (missing, unreachable, not an index, empty). */
export async function fetchModelIndex(indexUrl: string, fetchFn: typeof fetch): Promise<ModelEntry[] | undefined> {
  try {
    const r = await fetchFn(indexUrl, { cache: 'no-store' });
    if (!r.ok) return undefined;
    const models = parseModelIndex(await r.json(), indexUrl);
    return models.length ? models : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An entry completed from its bundle's manifest. A manifest that does not answer leaves the entry as it is (the
 * availability check says why it cannot run); one that is not a bundle manifest marks it unusable.
 */
export async function describeFromManifest(entry: ModelEntry, fetchFn: typeof fetch): Promise<ModelEntry> {
  let json: unknown;
  try {
    const r = await fetchFn(`${entry.url}manifest.json`);
    if (!r.ok) return entry;
    json = await r.json();
  } catch {
    return entry;
  }
  const d = describeManifest(json);
  return 'error' in d ? { ...entry, error: d.error } : { ...entry, ...d };
}

export async function loadModelList(config: InferenceConfig, fetchFn: typeof fetch): Promise<ModelList> {
  let source: ModelList['source'] = 'config';
  let models = config.models ? entriesFromUrls(config.models) : undefined;
  if (!models) {
    models = await fetchModelIndex(config.modelIndex, fetchFn);
    source = 'index';
  }
  if (!models) {
    models = entriesFromUrls(DEFAULT_MODEL_URLS);
    source = 'built-in';
  }
  if (source !== 'index') models = await Promise.all(models.map((m) => describeFromManifest(m, fetchFn)));
  return { models, source, choice: chooseDefaultModel(models) };
}
