// Which model the panel opens on: the variant that does best on external data (the macro ROC AUC each bundle
// records in `metrics.external`), since the test split comes from the same sources as the training set and
// flatters a model that learned those sources' quirks. Raw when there is nothing to compare. The user can still
// switch; the panel shows the one line that says why this one.
import type { ModelVariant } from './models.js';

/** A bundle's external figures as its manifest records them (by set name; only the macro AUC matters here). */
export type ExternalAucs = Record<string, { auc: number | null }>;

export interface ModelChoice {
  variant: ModelVariant;
  /** One line for the panel, e.g. "masked model by default: external AUC 0.63 vs 0.58 (ieee8023)". */
  reason: string;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Two AUCs written so they differ where they do (two digits, three when two read the same). */
function pair(a: number, b: number): [string, string] {
  const digits = a.toFixed(2) === b.toFixed(2) ? 3 : 2;
  return [a.toFixed(digits), b.toFixed(digits)];
}

/**
 * Compares raw and masked on the external sets both record with a defined AUC (their mean AUC when several);
 * a tie, a missing bundle or no common set keeps raw.
 */
export function chooseDefaultModel(external: Partial<Record<ModelVariant, ExternalAucs | undefined>>): ModelChoice {
  const raw = external.raw ?? {};
  const masked = external.masked ?? {};
  const common = Object.keys(raw)
    .filter((k) => typeof raw[k]?.auc === 'number' && typeof masked[k]?.auc === 'number')
    .sort();
  if (common.length === 0) return { variant: 'raw', reason: 'raw model by default: no external figures to compare the models on' };
  const r = mean(common.map((k) => raw[k]?.auc as number));
  const m = mean(common.map((k) => masked[k]?.auc as number));
  const sets = common.join(', ');
  if (m > r) {
    const [a, b] = pair(m, r);
    return { variant: 'masked', reason: `masked model by default: external AUC ${a} vs ${b} (${sets})` };
  }
  const [a, b] = pair(r, m);
  return { variant: 'raw', reason: `raw model by default: external AUC ${a} vs ${b} (${sets})` };
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

/** Reads a bundle's external figures from its manifest; undefined when the bundle is missing or unreadable. */
export async function fetchExternalAucs(modelUrl: string, fetchFn: typeof fetch = fetch): Promise<ExternalAucs | undefined> {
  try {
    const r = await fetchFn(`${modelUrl.endsWith('/') ? modelUrl : `${modelUrl}/`}manifest.json`);
    return r.ok ? externalAucs(await r.json()) : undefined;
  } catch {
    return undefined;
  }
}
