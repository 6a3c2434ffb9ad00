// How the panel writes numbers and model facts: a calibrated probability with no more precision than it has
// (">99 %" rather than "100.0 %", whole percent otherwise), the test split's and external figures, the
// operating point, the out-of-distribution guard and the calibration, the guard's verdict on an image, and how a
// model of the choice list is named (its id, raw or lung-masked, its task).
// Pure functions, so the wording is unit-tested rather than read off screenshots.
import type { CalibrationFacts, ExternalFacts, GuardFacts, OperatingPoint } from './modelFacts.js';
import type { ModelEntry, ModelVariant } from './modelIndex.js';
import type { Availability } from './models.js';

/** A calibrated probability: whole percent, ">99 %" at 0.995 and above, "<1 %" below 0.005. */
export function formatProbability(p: number): string {
  if (!Number.isFinite(p)) return '–';
  if (p >= 0.995) return '>99 %';
  if (p < 0.005) return '<1 %';
  return `${Math.round(100 * p)} %`;
}

/** A measured fraction (accuracy, sensitivity) with one decimal: "97.5 %". */
export const formatFraction = (f: number): string => `${(100 * f).toFixed(1)} %`;

/** A guard score or threshold: whole numbers with thousands separators ("2,111"), small ones with 3 digits. */
export function formatScore(s: number): string {
  if (!Number.isFinite(s)) return String(s);
  return Math.abs(s) >= 100 ? Math.round(s).toLocaleString('en-US') : s.toPrecision(3);
}

/**
 * "COVID when its probability ≥ 50 %: test sensitivity 97.0 %, specificity 98.0 %"; for more classes
 * "the most probable of 4 classes: test recall COVID 96.0 %, Lung_Opacity 78.8 %, …".
 */
export function operatingPointText(op: OperatingPoint | undefined): string | undefined {
  if (!op) return undefined;
  if (op.kind === 'argmax') {
    const recall = op.recall.map((r) => `${r.className} ${formatFraction(r.recall)}`).join(', ');
    return `the most probable of ${op.recall.length} classes: test recall ${recall}`;
  }
  return `${op.positiveClass} when its probability ≥ ${Math.round(100 * op.threshold)} %: ` +
    `test sensitivity ${formatFraction(op.sensitivity)}, specificity ${formatFraction(op.specificity)}`;
}

/** "accuracy 84.8 %, AUC 0.576, sensitivity 87.6 %, specificity 21.1 % (446 images)". */
export function externalText(e: ExternalFacts): string {
  const parts = [`accuracy ${formatFraction(e.accuracy)}`];
  if (e.auc !== undefined) parts.push(`AUC ${e.auc.toFixed(3)}`);
  if (e.sensitivity !== undefined) parts.push(`sensitivity ${formatFraction(e.sensitivity)}`);
  if (e.specificity !== undefined) parts.push(`specificity ${formatFraction(e.specificity)}`);
  return `${parts.join(', ')} (${e.n.toLocaleString('en-US')} images)`;
}

/** What the guard does, or that there is none. */
export function guardText(g: GuardFacts | undefined): string {
  if (!g) return 'no out-of-distribution guard: answers for any image';
  return `flags ${formatFraction(g.testFlagged)} of test images (accepts ${Math.round(100 * g.acceptance)} % of validation; limit ${formatScore(g.threshold)})`;
}

/** "temperature scaling (T 1.93), test ECE 0.021 (0.012 before)", or "none". */
export function calibrationText(c: CalibrationFacts | undefined): string {
  if (!c || c.method === 'none') return c ? `none (test ECE ${c.testEceAfter.toFixed(3)})` : 'none recorded';
  const t = c.temperature === undefined ? '' : ` (T ${c.temperature.toFixed(2)})`;
  return `temperature scaling${t}, test ECE ${c.testEceAfter.toFixed(3)} (${c.testEceBefore.toFixed(3)} before)`;
}

/** The guard's verdict on one image, as the panel says it. */
export function oodVerdictText(ood: { score: number; threshold: number; flagged: boolean }): string {
  const figures = `out-of-distribution score ${formatScore(ood.score)}, limit ${formatScore(ood.threshold)}`;
  return ood.flagged
    ? `This image does not look like the frontal chest radiographs the model was trained on (${figures}).`
    : `Looks like the frontal chest radiographs the model was trained on (${figures}).`;
}

/** What a variant classifies: "raw (whole image)" or "lung-masked (lungs only)". */
export function variantText(variant: ModelVariant): string {
  return variant === 'masked' ? 'lung-masked (lungs only)' : 'raw (whole image)';
}

/**
 * A model as the choice list names it: "raw-4class · raw · 4 classes: COVID, …", "masked · lung-masked · COVID
 * vs Normal", and why it cannot be run when it cannot.
 */
export function modelOptionText(m: ModelEntry, availability: Availability | undefined): string {
  const parts = [m.id];
  if (m.variant) parts.push(m.variant === 'masked' ? 'lung-masked' : 'raw');
  if (m.task) parts.push(m.task);
  const why = m.error ? ' — not usable' : availability === 'missing' ? ' — not available' : '';
  return parts.join(' · ') + why;
}
