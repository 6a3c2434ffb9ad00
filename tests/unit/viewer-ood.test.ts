// The viewer's side of the out-of-distribution guard and calibration, as plain logic: how a calibrated
// probability is written, the model facts read from a manifest with a guard, a calibration and external figures
// (and from one without), the default model choice from the manifests' external AUCs, and when a result is
// withheld.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  calibrationText, externalText, formatProbability, formatScore, guardText, oodVerdictText, operatingPointText,
} from '../../extension/src/display.js';
import { chooseDefaultModel, externalAucs, fetchExternalAucs } from '../../extension/src/modelChoice.js';
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
    assert.deepEqual(f.operatingPoint, { positiveClass: 'COVID', threshold: 0.5, sensitivity: 0.97, specificity: 0.98 });
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
  test('more than two classes: no binary operating point', () => {
    const four = manifestWith({ classes: ['COVID', 'Lung_Opacity', 'Normal', 'Viral Pneumonia'], positiveClass: undefined });
    assert.equal(modelFacts(four, 1).operatingPoint, undefined);
    assert.equal(operatingPointText(undefined), undefined);
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

describe('default model choice', () => {
  const ext = (auc: number | null) => ({ ieee8023: { auc } });
  test('the variant with the higher external AUC, with the line that says why', () => {
    assert.deepEqual(chooseDefaultModel({ raw: ext(0.5761), masked: ext(0.6324) }), {
      variant: 'masked', reason: 'masked model by default: external AUC 0.63 vs 0.58 (ieee8023)',
    });
    assert.deepEqual(chooseDefaultModel({ raw: ext(0.7), masked: ext(0.6) }), {
      variant: 'raw', reason: 'raw model by default: external AUC 0.70 vs 0.60 (ieee8023)',
    });
  });
  test('AUCs that read alike at two digits get three; a tie keeps raw', () => {
    assert.equal(chooseDefaultModel({ raw: ext(0.611), masked: ext(0.614) }).reason, 'masked model by default: external AUC 0.614 vs 0.611 (ieee8023)');
    assert.equal(chooseDefaultModel({ raw: ext(0.6), masked: ext(0.6) }).variant, 'raw');
  });
  test('raw without figures to compare: none, one side only, a null AUC, no common set', () => {
    for (const e of [{}, { masked: ext(0.9) }, { raw: ext(0.5), masked: ext(null) }, { raw: ext(0.5), masked: { other: { auc: 0.9 } } }]) {
      const c = chooseDefaultModel(e);
      assert.equal(c.variant, 'raw', JSON.stringify(e));
      assert.equal(c.reason, 'raw model by default: no external figures to compare the models on');
    }
  });
  test('external AUCs from a manifest; none from something else', () => {
    assert.deepEqual(externalAucs({ metrics: { external: { a: { auc: 0.6, n: 3 }, b: { auc: null } } } }), { a: { auc: 0.6 }, b: { auc: null } });
    assert.equal(externalAucs({ metrics: {} }), undefined);
    assert.equal(externalAucs(null), undefined);
  });
  test('read over HTTP: a missing or unreachable manifest gives nothing', async () => {
    const answers: Record<string, () => Promise<Response>> = {
      '/m/ok/manifest.json': async () => new Response(JSON.stringify({ metrics: { external: { x: { auc: 0.7 } } } })),
      '/m/missing/manifest.json': async () => new Response('', { status: 404 }),
      '/m/down/manifest.json': async () => {
        throw new TypeError('fetch failed');
      },
    };
    const fake = ((url: string) => (answers[url] ?? (async () => new Response('', { status: 500 })))()) as typeof fetch;
    assert.deepEqual(await fetchExternalAucs('/m/ok', fake), { x: { auc: 0.7 } });
    assert.equal(await fetchExternalAucs('/m/missing/', fake), undefined);
    assert.equal(await fetchExternalAucs('/m/down/', fake), undefined);
  });
  test('the released bundles: the masked one does better on ieee8023, so the viewer opens on it', async () => {
    const read = async (v: string) => JSON.parse(await readFile(join(projectRoot, 'models', v, 'manifest.json'), 'utf8')) as unknown;
    const c = chooseDefaultModel({ raw: externalAucs(await read('raw')), masked: externalAucs(await read('masked')) });
    assert.equal(c.variant, 'masked');
    assert.match(c.reason, /^masked model by default: external AUC 0\.63 vs 0\.58 \(ieee8023\)$/);
  });
});
