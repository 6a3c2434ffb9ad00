// `zerovar evaluate --record NAME`: keeps a bundle's figures on external data in its own manifest, so the viewer's
// model facts and the bundle's README can show them beside the test split's (which come from the same sources as
// the training data and flatter the model).
import { basename } from 'node:path';
import { amendBundle } from '../io/bundle-fs.js';
import type { BundleManifest, ExternalMetrics } from '../model/manifest.js';
import type { EvaluateResult } from './evaluate.js';

export function externalMetrics(r: EvaluateResult, positiveClass: string | undefined): ExternalMetrics {
  const m = r.metrics;
  const out: ExternalMetrics = {
    dataset: basename(r.dataset),
    n: r.n,
    accuracy: m.accuracy,
    auc: Number.isFinite(m.auc.macro) ? m.auc.macro : null,
  };
  if (m.covidSensitivity !== undefined) out.covidSensitivity = m.covidSensitivity;
  const other = r.classes.length === 2 ? r.classes.find((c) => c !== positiveClass) : undefined;
  if (positiveClass && other) out.specificity = m.perClass[other].recall;
  return out;
}

/** Writes `r` into the bundle's manifest as metrics.external[name] (every other file unchanged). */
export async function recordExternal(bundle: string, name: string, r: EvaluateResult): Promise<BundleManifest> {
  return amendBundle(bundle, {}, (m) => ({
    ...m,
    metrics: { ...m.metrics, external: { ...(m.metrics.external ?? {}), [name]: externalMetrics(r, m.positiveClass) } },
  }));
}
