// The viewer's side of the out-of-distribution guard and calibration, as plain logic: how a calibrated
// probability is written, the model facts read from a manifest with a guard, a calibration and external figures
// (and from one without), the operating point of a two-class and of a four-class bundle, and when a result is
// withheld.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  calibrationText, externalText, formatProbability, formatScore, guardText, oodVerdictText, operatingPointText,
} from '../../extension/src/display.js';
import { modelFacts } from '../../extension/src/modelFacts.js';
import { resultWithheld } from '../../extension/src/useClassification.js';
import { parseManifest, validateManifest, type BundleManifest } from '../../trainer/src/model/bundle.js';
import { devManifest, twoClassMetrics } from '../helpers/bundle-fixture.js';
import { projectRoot } from '../helpers/shared.js';

describe('probability display', () => {
  test('whole percent in between, ">99 %" and "<1 %" at the ends, never "100 %" or "0 %"', () => {
    assert.equal(formatProbability(0.5), '50 %');
    assert.equal(formatProbability(0.974), '97 %');
    assert.equal(formatProbability(0.9949), '99 %');
    assert.equal(formatProbability(0.995), '>99 %');
    assert.equal(formatProbability(1), '>99 %');
    assert.equal(formatProbability(0.005), '1 %');
    assert.equal(formatProbability(0.0049), '<1 %');
    assert.equal(formatProbability(0), '<1 %');
    assert.equal(formatProbability(Number.NaN), '–');
    for (let p = 0; p <= 1; p += 0.001) assert.doesNotMatch(formatProbability(p), /^(100|0) %$/, `p = ${p}`);
  });
  test('guard scores: thousands separated, small ones with three digits', () => {
    assert.equal(formatScore(2110.7158), '2,111');
    assert.equal(formatScore(5569.2), '5,569');
    assert.equal(formatScore(12.345), '12.3');
  });
});

function manifestWith(extra: Partial<BundleManifest>): BundleManifest {
  const base: BundleManifest = { ...devManifest({ 'model/model.json': '0'.repeat(64), 'ood/guard.bin': '1'.repeat(64) }), positiveClass: 'COVID' };
  const compressed = twoClassMetrics(0.9);
  compressed.perClass.COVID.recall = 0.97;
  compressed.perClass.Normal.recall = 0.98;
  base.metrics = { ...base.metrics, compressed };
  return { ...base, ...extra };
}

const guarded = manifestWith({
  ood: {
    method: 'mahalanobis-ppca', path: 'ood/guard.bin', input: 'unmasked', layer: 'out_relu', dims: 8, classes: 2, components: 2,
    residualVariance: 0.1, threshold: 2110.7, acceptance: 0.95, flagged: { validation: 0.05, test: 0.0483 },
  },
  calibration: {
    calibration: { method: 'temperature', temperature: 1.9256 }, cvEce: { none: 0.033, temperature: 0.012 },
    testEce: { before: 0.0125, after: 0.0206 },
  },
});
guarded.metrics = {
  ...guarded.metrics,
  external: {
    ieee8023: { dataset: 'ieee8023-covid-chestxray', n: 446, accuracy: 0.8475, auc: 0.5761, covidSensitivity: 0.8759, specificity: 0.2105 },
  },
};

describe('model facts with a guard, a calibration and external figures', () => {
  test('the fixture is a valid manifest', () => {
    assert.doesNotThrow(() => validateManifest(JSON.parse(JSON.stringify(guarded))));
  });
  test('operating point: the positive class at 50 % (argmax of two), with the test sensitivity and specificity', () => {
    const f = modelFacts(guarded, 1);
    assert.deepEqual(f.operatingPoint, { kind: 'threshold', positiveClass: 'COVID', threshold: 0.5, sensitivity: 0.97, specificity: 0.98 });
    assert.equal(operatingPointText(f.operatingPoint), 'COVID when its probability ≥ 50 %: test sensitivity 97.0 %, specificity 98.0 %');
  });
  test('external figures beside the test split\'s', () => {
    const f = modelFacts(guarded, 1);
    assert.equal(f.external.length, 1);
    assert.equal(externalText(f.external[0]), 'accuracy 84.8 %, AUC 0.576, sensitivity 87.6 %, specificity 21.1 % (446 images)');
  });
  test('the guard and the calibration', () => {
    const f = modelFacts(guarded, 1);
    assert.deepEqual(f.guard, { testFlagged: 0.0483, acceptance: 0.95, threshold: 2110.7 });
    assert.equal(guardText(f.guard), 'flags 4.8 % of test images (accepts 95 % of validation; limit 2,111)');
    assert.equal(calibrationText(f.calibration), 'temperature scaling (T 1.93), test ECE 0.021 (0.013 before)');
  });
  test('a bundle without them: no guard said plainly, no external figures, no calibration', () => {
    const f = modelFacts(manifestWith({}), 1);
    assert.equal(f.guard, undefined);
    assert.equal(guardText(f.guard), 'no out-of-distribution guard: answers for any image');
    assert.deepEqual(f.external, []);
    assert.equal(f.calibration, undefined);
    assert.equal(calibrationText(f.calibration), 'none recorded');
  });
  test('more than two classes: the most probable class, with each class\'s test recall; none when a class has no figures', () => {
    const four = manifestWith({ classes: ['COVID', 'Lung_Opacity', 'Normal', 'Viral Pneumonia'], positiveClass: undefined });
    assert.equal(modelFacts(four, 1).operatingPoint, undefined, 'the test figures name two of the four classes');
    assert.equal(operatingPointText(undefined), undefined);
    const recall = (r: number) => ({ precision: r, recall: r, f1: r, support: 10 });
    four.metrics.compressed.perClass = { COVID: recall(0.96), Lung_Opacity: recall(0.7875), Normal: recall(0.95), 'Viral Pneumonia': recall(0.9958) };
    const f = modelFacts(four, 1);
    assert.equal(f.task, '4 classes: COVID, Lung_Opacity, Normal, Viral Pneumonia');
    assert.deepEqual(f.operatingPoint, {
      kind: 'argmax',
      recall: [{ className: 'COVID', recall: 0.96 }, { className: 'Lung_Opacity', recall: 0.7875 }, { className: 'Normal', recall: 0.95 }, { className: 'Viral Pneumonia', recall: 0.9958 }],
    });
    assert.equal(operatingPointText(f.operatingPoint),
      'the most probable of 4 classes: test recall COVID 96.0 %, Lung_Opacity 78.8 %, Normal 95.0 %, Viral Pneumonia 99.6 %');
  });
  test('the released four-class bundle: its task and every class\'s recall', async () => {
    const m = parseManifest(new Uint8Array(await readFile(join(projectRoot, 'models', 'raw-4class', 'manifest.json'))));
    const f = modelFacts(m, 1);
    assert.equal(f.task, '4 classes: COVID, Lung_Opacity, Normal, Viral Pneumonia');
    assert.equal(f.operatingPoint?.kind, 'argmax');
    assert.match(operatingPointText(f.operatingPoint) ?? '',
      /^the most probable of 4 classes: test recall COVID [\d.]+ %, Lung_Opacity [\d.]+ %, Normal [\d.]+ %, Viral Pneumonia [\d.]+ %$/);
  });
  test('the released raw bundle: its recorded guard, calibration and ieee8023 figures', async () => {
    const raw = parseManifest(new Uint8Array(await readFile(join(projectRoot, 'models', 'raw', 'manifest.json'))));
    const f = modelFacts(raw, 1);
    assert.equal(f.guard?.testFlagged, raw.ood?.flagged.test);
    assert.equal(f.calibration?.method, raw.calibration?.calibration.method);
    assert.equal(f.external.find((e) => e.name === 'ieee8023')?.auc, raw.metrics.external?.ieee8023?.auc ?? undefined);
    assert.ok((f.external[0]?.auc ?? 1) < (f.testAuc ?? 0), 'external AUC is below the test split\'s');
  });
});

describe('the guard\'s verdict in the panel', () => {
  test('a flagged image says so with its score and the limit', () => {
    assert.equal(oodVerdictText({ score: 5569.2, threshold: 2110.7, flagged: true }),
      'This image does not look like the frontal chest radiographs the model was trained on (out-of-distribution score 5,569, limit 2,111).');
    assert.match(oodVerdictText({ score: 1168, threshold: 2110.7, flagged: false }), /^Looks like the frontal chest radiographs/);
  });
  test('a flagged result is withheld until shown anyway; an accepted or unguarded one never', () => {
    const flagged = { ood: { score: 3000, threshold: 2000, flagged: true } };
    assert.equal(resultWithheld(flagged, false), true);
    assert.equal(resultWithheld(flagged, true), false);
    assert.equal(resultWithheld({ ood: { score: 1000, threshold: 2000, flagged: false } }, false), false);
    assert.equal(resultWithheld({}, false), false);
  });
});
