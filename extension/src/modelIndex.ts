// The model index: every bundle the viewer can choose from, as the host lists them (GET /zerovar/models/index.json,
// one entry per bundle folder) or, without an index, as the extension reads them from the bundles' own manifests.
// Both sides describe a manifest with describeManifest, so the host's list and the viewer's fallback say the same
// thing. Pure and browser-safe: the host (Node) imports it too.

export type ModelVariant = 'raw' | 'masked';

/** A bundle's external figures as its manifest records them (by set name; only the macro AUC matters here). */
export type ExternalAucs = Record<string, { auc: number | null }>;

/** What a bundle's manifest says about it, in the index's words. */
export interface ModelDescription {
  name: string;
  variant: ModelVariant;
  classes: string[];
  positiveClass?: string;
  /** "COVID vs Normal", "4 classes: COVID, Lung_Opacity, Normal, Viral Pneumonia". */
  task: string;
  /** Absent when the bundle records no external figures. */
  external?: ExternalAucs;
}

/** One choosable bundle. Only id and url are certain: the rest is absent until its manifest was read. */
export interface ModelEntry extends Partial<ModelDescription> {
  /** The model's identity in the viewer: the bundle's folder name (or a deployment's configured key). */
  id: string;
  /** The bundle folder's URL, ending in '/'. */
  url: string;
  /** Bytes of manifest.json and every file it lists. */
  bytes?: number;
  /** Why the bundle cannot be used (its manifest is unreadable or invalid, a listed file is missing). */
  error?: string;
}

export const MODEL_INDEX_FORMAT = 'zerovar-model-index';
export const MODEL_INDEX_VERSION = 1;

export interface ModelIndex {
  format: typeof MODEL_INDEX_FORMAT;
  version: typeof MODEL_INDEX_VERSION;
  models: ModelEntry[];
}

export const withSlash = (u: string) => (u.endsWith('/') ? u : `${u}/`);

/** The task a bundle solves: "POSITIVE vs OTHER" for two classes, "N classes: A, B, …" otherwise. */
export function taskLabel(classes: readonly string[], positiveClass?: string): string {
  if (classes.length === 2) {
    const positive = positiveClass !== undefined && classes.includes(positiveClass) ? positiveClass : classes[0];
    return `${positive} vs ${classes.find((c) => c !== positive) ?? classes[1]}`;
  }
  return `${classes.length} classes: ${classes.join(', ')}`;
}

/** `metrics.external` of a parsed manifest.json, or undefined when it has none (or is not a manifest). */
export function externalAucs(manifest: unknown): ExternalAucs | undefined {
  const ext = (manifest as { metrics?: { external?: unknown } } | null)?.metrics?.external;
  if (typeof ext !== 'object' || ext === null) return undefined;
  const out: ExternalAucs = {};
  for (const [k, v] of Object.entries(ext as Record<string, unknown>)) {
    const auc = (v as { auc?: unknown } | null)?.auc;
    out[k] = { auc: typeof auc === 'number' && Number.isFinite(auc) ? auc : null };
  }
  return out;
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.length >= 2 && v.every((c) => typeof c === 'string');

/**
 * The index's description of a parsed manifest.json; an error when it is not a bundle manifest (the fields the
 * index needs are checked here; the bundle reader validates everything before the model is used).
 */
export function describeManifest(manifest: unknown): ModelDescription | { error: string } {
  const m = manifest as { name?: unknown; variant?: unknown; classes?: unknown; positiveClass?: unknown } | null;
  if (typeof m !== 'object' || m === null) return { error: 'manifest.json is not a JSON object' };
  if (typeof m.name !== 'string') return { error: 'manifest.name: expected a string' };
  if (m.variant !== 'raw' && m.variant !== 'masked') return { error: 'manifest.variant: expected "raw" or "masked"' };
  if (!isStrings(m.classes)) return { error: 'manifest.classes: expected two or more class names' };
  const positiveClass = typeof m.positiveClass === 'string' ? m.positiveClass : undefined;
  const external = externalAucs(manifest);
  return {
    name: m.name, variant: m.variant, classes: [...m.classes],
    ...(positiveClass === undefined ? {} : { positiveClass }),
    task: taskLabel(m.classes, positiveClass),
    ...(external === undefined ? {} : { external }),
  };
}

/** `ref` against the index's URL: absolute URLs and absolute paths as they are, relative ones beside the index. */
export function resolveUrl(ref: string, indexUrl: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(ref) || ref.startsWith('/')) return ref;
  return indexUrl.replace(/[^/]*$/, '') + ref;
}

/** One entry of a fetched index, or undefined when it lacks an id or a URL (then it is left out). */
function entryOf(v: unknown, indexUrl: string): ModelEntry | undefined {
  const e = v as Record<string, unknown> | null;
  if (typeof e !== 'object' || e === null || typeof e.id !== 'string' || !e.id || typeof e.url !== 'string' || !e.url) return undefined;
  const url = withSlash(resolveUrl(e.url, indexUrl));
  if (typeof e.error === 'string') return { id: e.id, url, error: e.error };
  // The entry holds the manifest's fields, its external AUCs under `external` rather than `metrics.external`.
  const d = describeManifest({ ...e, metrics: { external: e.external } });
  if ('error' in d) return { id: e.id, url, error: `the index's entry is incomplete (${d.error.replace(/^manifest\./, '')})` };
  const task = typeof e.task === 'string' && e.task ? e.task : d.task;
  const bytes = typeof e.bytes === 'number' && Number.isFinite(e.bytes) ? e.bytes : undefined;
  return { id: e.id, url, ...d, task, ...(bytes === undefined ? {} : { bytes }) };
}

/** The entries of an index.json (entries without an id or URL, and repeated ids, are dropped). */
export function parseModelIndex(json: unknown, indexUrl: string): ModelEntry[] {
  const list = (json as { models?: unknown } | null)?.models;
  if (!Array.isArray(list)) throw new Error('not a model index (no models list)');
  const seen = new Set<string>();
  const out: ModelEntry[] = [];
  for (const v of list) {
    const e = entryOf(v, indexUrl);
    if (!e || seen.has(e.id)) continue;
    seen.add(e.id);
    out.push(e);
  }
  return out;
}
