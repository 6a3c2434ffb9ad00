// The viewer's model list, as plain logic: a bundle's task and description, reading the host's index, the
// fallbacks (no index: the built-in raw and masked; a deployment's configured bundles), the default model (the
// better external AUC among the bundles of one two-class task) and how the choice list names each model.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { modelOptionText, variantText } from '../../extension/src/display.js';
import { chooseDefaultModel, comparisonGroup } from '../../extension/src/modelChoice.js';
import { describeManifest, externalAucs, parseModelIndex, resolveUrl, taskLabel, type ModelEntry } from '../../extension/src/modelIndex.js';
import { loadModelList } from '../../extension/src/modelList.js';
import { DEFAULT_MODEL_INDEX, DEFAULT_MODEL_URLS, inferenceConfig } from '../../extension/src/models.js';
import { projectRoot } from '../helpers/shared.js';

const released = async (id: string) => JSON.parse(await readFile(join(projectRoot, 'models', id, 'manifest.json'), 'utf8')) as unknown;

describe('a bundle\'s task and description', () => {
  test('two classes: the positive class against the other; more: their count and names', () => {
    assert.equal(taskLabel(['COVID', 'Normal'], 'COVID'), 'COVID vs Normal');
    assert.equal(taskLabel(['Normal', 'COVID'], 'COVID'), 'COVID vs Normal');
    assert.equal(taskLabel(['Normal', 'COVID']), 'Normal vs COVID', 'no positive class: the first one');
    assert.equal(taskLabel(['COVID', 'Lung_Opacity', 'Normal', 'Viral Pneumonia'], 'COVID'), '4 classes: COVID, Lung_Opacity, Normal, Viral Pneumonia');
  });
  test('the released bundles', async () => {
    const raw = describeManifest(await released('raw'));
    assert.ok(!('error' in raw));
    assert.deepEqual({ ...raw, external: undefined }, { name: 'raw', variant: 'raw', classes: ['COVID', 'Normal'], positiveClass: 'COVID', task: 'COVID vs Normal', external: undefined });
    assert.equal(typeof raw.external?.ieee8023?.auc, 'number');
    const masked = describeManifest(await released('masked'));
    assert.ok(!('error' in masked) && masked.variant === 'masked' && masked.task === 'COVID vs Normal');
    const four = describeManifest(await released('raw-4class'));
    assert.ok(!('error' in four));
    assert.equal(four.task, '4 classes: COVID, Lung_Opacity, Normal, Viral Pneumonia');
    assert.equal(four.variant, 'raw');
    assert.equal(four.external, undefined, 'no external figures recorded');
  });
  test('not a bundle manifest: the field that is wrong', () => {
    assert.deepEqual(describeManifest(null), { error: 'manifest.json is not a JSON object' });
    assert.deepEqual(describeManifest({ name: 'x', variant: 'both', classes: ['a', 'b'] }), { error: 'manifest.variant: expected "raw" or "masked"' });
    assert.deepEqual(describeManifest({ name: 'x', variant: 'raw', classes: ['a'] }), { error: 'manifest.classes: expected two or more class names' });
  });
  test('external AUCs from a manifest; none from something else', () => {
    assert.deepEqual(externalAucs({ metrics: { external: { a: { auc: 0.6, n: 3 }, b: { auc: null } } } }), { a: { auc: 0.6 }, b: { auc: null } });
    assert.equal(externalAucs({ metrics: {} }), undefined);
    assert.equal(externalAucs(null), undefined);
  });
});

describe('the host\'s index', () => {
  const entry = (id: string, extra: Record<string, unknown> = {}) => ({ id, url: `/zerovar/models/${id}/`, name: id, variant: 'raw', classes: ['COVID', 'Normal'], positiveClass: 'COVID', task: 'COVID vs Normal', ...extra });
  test('entries with their fields; URLs relative to the index resolved beside it', () => {
    const got = parseModelIndex({
      models: [
        entry('raw', { bytes: 1234, external: { ieee8023: { auc: 0.58 } } }),
        entry('elsewhere', { url: 'other/place' }),
        entry('remote', { url: 'https://example.org/b/' }),
      ],
    }, '/zerovar/models/index.json');
    assert.deepEqual(got[0], {
      id: 'raw', url: '/zerovar/models/raw/', name: 'raw', variant: 'raw', classes: ['COVID', 'Normal'], positiveClass: 'COVID',
      task: 'COVID vs Normal', external: { ieee8023: { auc: 0.58 } }, bytes: 1234,
    });
    assert.equal(got[1]?.url, '/zerovar/models/other/place/');
    assert.equal(got[2]?.url, 'https://example.org/b/');
    assert.equal(resolveUrl('a/', 'https://h/x/index.json'), 'https://h/x/a/');
  });
  test('a broken bundle stays listed with its error; entries without id or URL, and repeated ids, are dropped', () => {
    const got = parseModelIndex({
      models: [
        { id: 'broken', url: '/m/broken/', error: 'manifest.json is not valid JSON' },
        { url: '/m/noid/' }, { id: 'nourl' }, entry('raw'), entry('raw', { name: 'second' }),
        { id: 'half', url: '/m/half/', variant: 'raw' },
      ],
    }, '/m/index.json');
    assert.deepEqual(got.map((m) => m.id), ['broken', 'raw', 'half']);
    assert.deepEqual(got[0], { id: 'broken', url: '/m/broken/', error: 'manifest.json is not valid JSON' });
    assert.equal(got[1]?.name, 'raw', 'the first of a repeated id');
    assert.match(got[2]?.error ?? '', /^the index's entry is incomplete \(name: expected a string\)$/);
  });
  test('not an index', () => {
    assert.throws(() => parseModelIndex({ bundles: [] }, '/i.json'), /not a model index/);
  });
});

/** A fake server: path -> JSON body (or a status); every request is recorded. */
function fakeFetch(answers: Record<string, unknown>) {
  const asked: string[] = [];
  const fn = (async (url: string) => {
    asked.push(url);
    const a = answers[url];
    if (a === undefined) return new Response('not found', { status: 404 });
    if (a instanceof Error) throw a;
    return new Response(JSON.stringify(a));
  }) as typeof fetch;
  return { fn, asked };
}

const manifest = (variant: 'raw' | 'masked', auc?: number, classes = ['COVID', 'Normal']) => ({
  name: variant, variant, classes, positiveClass: 'COVID', metrics: auc === undefined ? {} : { external: { ieee8023: { auc } } },
});

describe('loading the model list', () => {
  const config = inferenceConfig(undefined, '');
  test('from the index: its entries, no manifest read', async () => {
    const { fn, asked } = fakeFetch({
      [DEFAULT_MODEL_INDEX]: {
        models: [
          { id: 'masked', url: '/zerovar/models/masked/', ...manifest('masked'), task: 'COVID vs Normal', external: { ieee8023: { auc: 0.63 } } },
          { id: 'raw', url: '/zerovar/models/raw/', ...manifest('raw'), task: 'COVID vs Normal', external: { ieee8023: { auc: 0.58 } } },
          { id: 'raw-4class', url: '/zerovar/models/raw-4class/', ...manifest('raw', undefined, ['COVID', 'Lung_Opacity', 'Normal', 'Viral Pneumonia']), task: '4 classes: COVID, Lung_Opacity, Normal, Viral Pneumonia' },
        ],
      },
    });
    const list = await loadModelList(config, fn);
    assert.equal(list.source, 'index');
    assert.deepEqual(list.models.map((m) => m.id), ['masked', 'raw', 'raw-4class']);
    assert.deepEqual(list.choice, { id: 'masked', variant: 'masked', reason: 'masked model by default: external AUC 0.63 vs 0.58 (ieee8023)' });
    assert.deepEqual(asked, [DEFAULT_MODEL_INDEX]);
  });
  test('no index (404, unreachable, not JSON, empty): the built-in raw and masked, described from their manifests', async () => {
    const manifests = {
      [`${DEFAULT_MODEL_URLS.raw}manifest.json`]: manifest('raw', 0.7),
      [`${DEFAULT_MODEL_URLS.masked}manifest.json`]: manifest('masked', 0.6),
    };
    for (const index of [undefined, new TypeError('fetch failed'), 'not an index', { models: [] }]) {
      const { fn, asked } = fakeFetch({ ...manifests, ...(index === undefined ? {} : { [DEFAULT_MODEL_INDEX]: index }) });
      const list = await loadModelList(config, fn);
      assert.equal(list.source, 'built-in', String(index));
      assert.deepEqual(list.models.map((m) => [m.id, m.url, m.task]), [['raw', DEFAULT_MODEL_URLS.raw, 'COVID vs Normal'], ['masked', DEFAULT_MODEL_URLS.masked, 'COVID vs Normal']]);
      assert.equal(list.choice.reason, 'raw model by default: external AUC 0.70 vs 0.60 (ieee8023)');
      assert.equal(asked[0], DEFAULT_MODEL_INDEX);
    }
  });
  test('a built-in bundle that does not answer stays listed without a description; one that is not a bundle is marked', async () => {
    const { fn } = fakeFetch({ [`${DEFAULT_MODEL_URLS.raw}manifest.json`]: { hello: 1 } });
    const list = await loadModelList(config, fn);
    assert.deepEqual(list.models, [
      { id: 'raw', url: DEFAULT_MODEL_URLS.raw, error: 'manifest.name: expected a string' },
      { id: 'masked', url: DEFAULT_MODEL_URLS.masked },
    ]);
    assert.equal(list.choice.id, 'masked', 'the unusable raw bundle is not the default');
  });
  test('a deployment\'s configured models: each key an id, the whole list, no index read', async () => {
    const c = inferenceConfig({ zerovar: { models: { covid: 'https://example.org/covid', four: '/b/four/' } } }, '');
    assert.deepEqual(c.models, { covid: 'https://example.org/covid/', four: '/b/four/' });
    const { fn, asked } = fakeFetch({
      'https://example.org/covid/manifest.json': manifest('masked'),
      '/b/four/manifest.json': manifest('raw', undefined, ['COVID', 'Lung_Opacity', 'Normal', 'Viral Pneumonia']),
    });
    const list = await loadModelList(c, fn);
    assert.equal(list.source, 'config');
    assert.deepEqual(list.models.map((m) => [m.id, m.variant, m.task]), [['covid', 'masked', 'COVID vs Normal'], ['four', 'raw', '4 classes: COVID, Lung_Opacity, Normal, Viral Pneumonia']]);
    assert.ok(!asked.includes(DEFAULT_MODEL_INDEX));
    assert.equal(list.choice.id, 'covid', 'the only two-class model');
  });
  test('the index\'s URL and the backends from the app config', () => {
    const d = inferenceConfig(undefined, '');
    assert.equal(d.models, undefined);
    assert.equal(d.modelIndex, DEFAULT_MODEL_INDEX);
    assert.equal(inferenceConfig({ zerovar: { modelIndex: 'https://h/i.json', models: { x: 5 } } }, '').modelIndex, 'https://h/i.json');
    assert.equal(inferenceConfig({ zerovar: { models: { x: 5 } } }, '').models, undefined, 'no usable URL: no configured list');
  });
});

describe('the default model', () => {
  const e = (id: string, variant: 'raw' | 'masked', auc: number | null | undefined, extra: Partial<ModelEntry> = {}): ModelEntry => ({
    id, url: `/m/${id}/`, name: id, variant, classes: ['COVID', 'Normal'], task: 'COVID vs Normal',
    ...(auc === undefined ? {} : { external: { ieee8023: { auc } } }), ...extra,
  });
  const four = (auc?: number) => e('raw-4class', 'raw', auc, { classes: ['COVID', 'Lung_Opacity', 'Normal', 'Viral Pneumonia'], task: '4 classes: COVID, Lung_Opacity, Normal, Viral Pneumonia' });
  test('the bundle with the higher external AUC, with the line that says why', () => {
    assert.deepEqual(chooseDefaultModel([e('raw', 'raw', 0.5761), e('masked', 'masked', 0.6324)]), {
      id: 'masked', variant: 'masked', reason: 'masked model by default: external AUC 0.63 vs 0.58 (ieee8023)',
    });
    assert.deepEqual(chooseDefaultModel([e('raw', 'raw', 0.7), e('masked', 'masked', 0.6)]), {
      id: 'raw', variant: 'raw', reason: 'raw model by default: external AUC 0.70 vs 0.60 (ieee8023)',
    });
  });
  test('AUCs that read alike at two digits get three; a tie keeps raw', () => {
    assert.equal(chooseDefaultModel([e('raw', 'raw', 0.611), e('masked', 'masked', 0.614)]).reason, 'masked model by default: external AUC 0.614 vs 0.611 (ieee8023)');
    assert.equal(chooseDefaultModel([e('masked', 'masked', 0.6), e('raw', 'raw', 0.6)]).id, 'raw');
  });
  test('raw without figures to compare: none, one side only, a null AUC, no common set', () => {
    const cases = [
      [e('raw', 'raw', undefined), e('masked', 'masked', undefined)],
      [e('masked', 'masked', 0.9), e('raw', 'raw', undefined)],
      [e('raw', 'raw', 0.5), e('masked', 'masked', null)],
      [e('raw', 'raw', 0.5), e('masked', 'masked', undefined, { external: { other: { auc: 0.9 } } })],
      [e('masked', 'masked', 0.9)],
    ];
    for (const models of cases) {
      const c = chooseDefaultModel(models);
      const raw = models.find((m) => m.variant === 'raw');
      assert.equal(c.id, raw?.id ?? 'masked', JSON.stringify(models));
      assert.equal(c.reason, `${c.id} model by default: no external figures to compare the models on`);
    }
  });
  test('a four-class bundle is not compared with the two-class ones, even with a higher AUC', () => {
    const models = [e('masked', 'masked', 0.63), e('raw', 'raw', 0.58), four(0.99)];
    assert.deepEqual(comparisonGroup(models).map((m) => m.id), ['masked', 'raw']);
    assert.equal(chooseDefaultModel(models).id, 'masked');
  });
  test('only a four-class bundle: it, with nothing to compare; a broken bundle is never the default', () => {
    assert.deepEqual(chooseDefaultModel([four()]), { id: 'raw-4class', variant: 'raw', reason: 'raw-4class model by default: no external figures to compare the models on' });
    const broken: ModelEntry = { id: 'raw', url: '/m/raw/', error: 'manifest.json is not valid JSON' };
    assert.equal(chooseDefaultModel([broken, e('masked', 'masked', 0.6)]).id, 'masked');
    assert.equal(chooseDefaultModel([]).reason, 'no model bundles are listed');
  });
  test('several two-class tasks: the one most bundles share; more than two bundles: the runner-up in the line', () => {
    const pneumonia = (id: string, auc: number) => e(id, 'raw', auc, { classes: ['Pneumonia', 'Normal'], task: 'Pneumonia vs Normal' });
    const models = [pneumonia('p', 0.99), e('raw', 'raw', 0.58), e('masked', 'masked', 0.63), e('masked-2', 'masked', 0.61)];
    assert.deepEqual(comparisonGroup(models).map((m) => m.id), ['raw', 'masked', 'masked-2']);
    assert.equal(chooseDefaultModel(models).reason, 'masked model by default: external AUC 0.63 vs 0.61 (ieee8023)');
  });
});

describe('the choice list\'s words', () => {
  const four: ModelEntry = { id: 'raw-4class', url: '/m/', variant: 'raw', classes: ['COVID', 'Lung_Opacity', 'Normal', 'Viral Pneumonia'], task: '4 classes: COVID, Lung_Opacity, Normal, Viral Pneumonia' };
  test('id, raw or lung-masked, task; why it cannot run', () => {
    assert.equal(modelOptionText(four, 'available'), 'raw-4class · raw · 4 classes: COVID, Lung_Opacity, Normal, Viral Pneumonia');
    assert.equal(modelOptionText({ id: 'masked', url: '/m/', variant: 'masked', task: 'COVID vs Normal' }, 'checking'), 'masked · lung-masked · COVID vs Normal');
    assert.equal(modelOptionText({ id: 'masked', url: '/m/' }, 'missing'), 'masked — not available');
    assert.equal(modelOptionText({ id: 'x', url: '/m/', error: 'bad' }, 'available'), 'x — not usable');
    assert.equal(variantText('masked'), 'lung-masked (lungs only)');
    assert.equal(variantText('raw'), 'raw (whole image)');
  });
});
