// Which model the panel opens on: among the bundles of one two-class task (the task most of them share, COVID vs
// Normal for the released ones), the one that does best on external data (the macro ROC AUC each bundle records
// in `metrics.external`), since the test split comes from the same sources as the training set and flatters a
// model that learned those sources' quirks. Without figures to compare, a raw bundle (the plainest model), else
// the first one listed. The user can still switch; the panel shows the one line that says why this one.
import type { ModelEntry, ModelVariant } from './modelIndex.js';

export interface ModelChoice {
  /** The chosen bundle's id. */
  id: string;
  variant?: ModelVariant;
  /** One line for the panel, e.g. "masked model by default: external AUC 0.63 vs 0.58 (ieee8023)". */
  reason: string;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Two AUCs written so they differ where they do (two digits, three when two read the same). */
function pair(a: number, b: number): [string, string] {
  const digits = a.toFixed(2) === b.toFixed(2) ? 3 : 2;
  return [a.toFixed(digits), b.toFixed(digits)];
}

/** The usable two-class bundles of the task most two-class bundles share (the first such task listed on a tie). */
export function comparisonGroup(models: readonly ModelEntry[]): ModelEntry[] {
  const binary = models.filter((m) => !m.error && m.classes?.length === 2 && m.task);
  const count = new Map<string, number>();
  for (const m of binary) count.set(m.task!, (count.get(m.task!) ?? 0) + 1);
  let task: string | undefined;
  for (const [t, n] of count) if (task === undefined || n > count.get(task)!) task = t;
  return binary.filter((m) => m.task === task);
}

const choice = (m: ModelEntry, reason: string): ModelChoice => ({ id: m.id, ...(m.variant ? { variant: m.variant } : {}), reason });

/**
 * Compares the group's bundles on the external sets all of them record with a defined AUC (their mean AUC when
 * several); a tie goes to a raw bundle, then to the first listed. Fewer than two bundles to compare, or no common
 * set, keeps a raw bundle.
 */
export function chooseDefaultModel(models: readonly ModelEntry[]): ModelChoice {
  const group = comparisonGroup(models);
  const aucOf = (m: ModelEntry, k: string) => m.external?.[k]?.auc;
  const common = group.length < 2 ? [] : Object.keys(group[0].external ?? {})
    .filter((k) => group.every((m) => typeof aucOf(m, k) === 'number'))
    .sort();
  if (common.length === 0) {
    const usable = models.filter((m) => !m.error);
    const pool = group.length ? group : usable.length ? usable : models;
    const fallback = pool.find((m) => m.variant === 'raw') ?? pool[0];
    if (!fallback) return { id: 'raw', variant: 'raw', reason: 'no model bundles are listed' };
    return choice(fallback, `${fallback.id} model by default: no external figures to compare the models on`);
  }
  const scored = group
    .map((m, order) => ({ m, order, auc: mean(common.map((k) => aucOf(m, k) as number)) }))
    .sort((a, b) => b.auc - a.auc || Number(b.m.variant === 'raw') - Number(a.m.variant === 'raw') || a.order - b.order);
  const [best, next] = scored;
  const [a, b] = pair(best.auc, next.auc);
  return choice(best.m, `${best.m.id} model by default: external AUC ${a} vs ${b} (${common.join(', ')})`);
}
