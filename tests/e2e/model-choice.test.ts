// End to end: the model choice offers every bundle of the host's models folder (its index), raw and lung-masked
// told apart and each with its task, and the four-class bundle classifies a shared DICOM file in Chromium with
// its four probabilities, its task and its per-class operating point in the panel.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { projectRoot, sharedPath } from '../helpers/shared.js';
import { buildBundles } from '../../scripts/host/build.js';
import { MODEL_INDEX_PATH } from '../../scripts/host/model-index.js';
import { startViewer, type RunningViewer } from '../../scripts/host/viewer.js';
import { ROUTE_NAME } from '../../mode/src/index.js';
import { chromiumMissing, launchBrowser, waitForRenderedImages, type TestBrowser } from './browser.js';
import { expectedStudies } from './fixtures.js';

const artifacts = join(projectRoot, 'test-artifacts', 'model-choice');
const modelsDir = resolve(process.env.ZEROVAR_MODELS ?? join(projectRoot, 'models'));
const RUN_TIMEOUT = 120_000;
const FOUR = ['COVID', 'Lung_Opacity', 'Normal', 'Viral Pneumonia'];
const THREE = ['COVID', 'Normal', 'Viral Pneumonia'];

let viewer: RunningViewer | undefined;
let browser: TestBrowser | undefined;

describe('the model choice lists every bundle of the host (Chromium + OHIF)', { timeout: 600_000 }, () => {
  before(async () => {
    const missing = chromiumMissing();
    if (missing) throw new Error(`${missing}\n.ci/run installs it.`);
    for (const id of ['raw', 'masked', 'raw-3class', 'raw-4class']) {
      assert.ok(existsSync(join(modelsDir, id, 'manifest.json')), `the test needs the released ${id} bundle in ${modelsDir}`);
    }
    mkdirSync(artifacts, { recursive: true });
    await buildBundles(projectRoot, 'production');
    viewer = await startViewer({ projectRoot, dicomDir: sharedPath('dicom'), port: 0, modelsDir });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await viewer?.close();
  });

  test('raw, masked, raw-3class and raw-4class are offered with their variant and task; raw-4class classifies with four probabilities', async () => {
    const index = (await (await fetch(`${viewer!.url}${MODEL_INDEX_PATH}`)).json()) as { models: { id: string }[] };
    assert.deepEqual(index.models.map((m) => m.id), ['masked', 'raw', 'raw-3class', 'raw-4class']);

    const page = browser!.page;
    const study = expectedStudies(sharedPath('dicom')).find((s) => s.images.some((i) => /cr-mono2-8bit-jpeg-baseline\.dcm$/.test(i.file)));
    assert.ok(study, 'the shared 8-bit CR study');
    await page.goto(`${viewer!.url}/${ROUTE_NAME}?StudyInstanceUIDs=${study.studyUid}&zerovarBackends=wasm`);
    await waitForRenderedImages(page, 60_000);
    const choice = page.locator('[data-cy="zerovar-model-choice"]');
    await choice.waitFor({ state: 'visible', timeout: 30_000 });

    // Every bundle, raw and lung-masked told apart, each with its task; the default as before.
    const select = page.locator('[data-cy="zerovar-model"]');
    const options = await select.locator('option').evaluateAll((os) =>
      os.map((o) => ({ value: (o as HTMLOptionElement).value, text: o.textContent ?? '', variant: o.getAttribute('data-variant'), task: o.getAttribute('data-task') })));
    assert.deepEqual(options, [
      { value: 'masked', text: 'masked · lung-masked · COVID vs Normal', variant: 'masked', task: 'COVID vs Normal' },
      { value: 'raw', text: 'raw · raw · COVID vs Normal', variant: 'raw', task: 'COVID vs Normal' },
      { value: 'raw-3class', text: `raw-3class · raw · 3 classes: ${THREE.join(', ')}`, variant: 'raw', task: `3 classes: ${THREE.join(', ')}` },
      { value: 'raw-4class', text: `raw-4class · raw · 4 classes: ${FOUR.join(', ')}`, variant: 'raw', task: `4 classes: ${FOUR.join(', ')}` },
    ]);
    assert.equal(await select.inputValue(), 'masked');
    assert.equal(await choice.getAttribute('data-model'), 'masked');
    assert.match(await choice.innerText(), /^masked model by default: external AUC 0\.\d+ vs 0\.\d+ \(ieee8023\)$/);
    assert.equal(await page.locator('[data-cy="zerovar-about-input"]').innerText(), 'lung-masked (lungs only)');

    await select.selectOption('raw-4class');
    assert.equal(await page.locator('[data-cy="zerovar-about-task"]').innerText(), `4 classes: ${FOUR.join(', ')}`);
    assert.equal(await page.locator('[data-cy="zerovar-about-input"]').innerText(), 'raw (whole image)');
    await page.locator('[data-cy="zerovar-run"]').click();
    const result = page.locator('[data-cy="zerovar-result"][data-runs="1"]:is([data-state="done"], [data-state="failed"])');
    await result.waitFor({ timeout: RUN_TIMEOUT });
    assert.equal(await result.getAttribute('data-state'), 'done', `raw-4class classifies: ${await result.innerText()}`);
    assert.equal(await result.getAttribute('data-ood'), 'accepted', 'an ordinary chest X-ray is not flagged');

    const rows = page.locator('[data-cy="zerovar-probabilities"] [data-probability]');
    const probs = await rows.evaluateAll((rs) => rs.map((r) => ({ cls: r.getAttribute('data-class') ?? '', p: Number(r.getAttribute('data-probability')) })));
    assert.deepEqual(probs.map((x) => x.cls), FOUR, 'four classes shown, in the bundle\'s order');
    assert.ok(Math.abs(probs.reduce((s, x) => s + x.p, 0) - 1) <= 0.01, `the probabilities sum to 1: ${JSON.stringify(probs)}`);
    const predicted = await page.locator('[data-cy="zerovar-predicted"]').getAttribute('data-class');
    assert.equal(predicted, probs.reduce((a, b) => (b.p > a.p ? b : a)).cls, 'the predicted class is the most probable one');
    // Exactly one bar is the predicted one's colour.
    const bars = await rows.evaluateAll((rs) => rs.map((r) => getComputedStyle(r.lastElementChild!.firstElementChild!).backgroundColor));
    assert.equal(bars.filter((c) => c === bars[FOUR.indexOf(predicted!)]).length, 1, `one highlighted bar: ${JSON.stringify(bars)}`);

    assert.match(await page.locator('[data-cy="zerovar-facts-name"]').innerText(), /^raw-4class \(raw\)$/);
    assert.equal(await page.locator('[data-cy="zerovar-facts-task"]').innerText(), `4 classes: ${FOUR.join(', ')}`);
    assert.match(await page.locator('[data-cy="zerovar-facts-operating-point"]').innerText(),
      /^the most probable of 4 classes: test recall COVID [\d.]+ %, Lung_Opacity [\d.]+ %, Normal [\d.]+ %, Viral Pneumonia [\d.]+ %$/);
    assert.match(await page.locator('[data-cy="zerovar-attention"]').innerText(), new RegExp(`(Grad-CAM of|raised the) ${predicted}`));
    await page.screenshot({ path: join(artifacts, 'raw-4class.png') });

    // Back to a two-class bundle: two probabilities again.
    await select.selectOption('raw');
    await page.locator('[data-cy="zerovar-run"]').click();
    await page.locator('[data-cy="zerovar-result"][data-runs="2"][data-state="done"]').waitFor({ timeout: RUN_TIMEOUT });
    assert.deepEqual(await rows.evaluateAll((rs) => rs.map((r) => r.getAttribute('data-class'))), ['COVID', 'Normal']);
    assert.deepEqual(browser!.errors.filter((e) => e.startsWith('pageerror')), [], 'no uncaught page errors');
  });
});
