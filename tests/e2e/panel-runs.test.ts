// End to end: the panel's runs follow the displayed image (Chromium + OHIF + the embedded folder source). Every
// animation frame the page records what the viewport shows and what the panel shows: a result is never on screen
// beside another image than its own, neither after a finished run nor when a run's result arrives after the
// switch; the attention map is never drawn over the new image. A masked model's second run on the same image
// reuses its lung mask (the worker's cache) and answers as the first did.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { projectRoot, sharedPath } from '../helpers/shared.js';
import { buildBundles } from '../../scripts/host/build.js';
import { startViewer, type RunningViewer } from '../../scripts/host/viewer.js';
import { ROUTE_NAME } from '../../mode/src/index.js';
import { chromiumMissing, launchBrowser, waitForRenderedImages, type TestBrowser } from './browser.js';
import { expectedStudies } from './fixtures.js';

const artifacts = join(projectRoot, 'test-artifacts', 'panel-runs');
const modelsDir = resolve(process.env.ZEROVAR_MODELS ?? join(projectRoot, 'models'));
const RUN_TIMEOUT = 120_000;

/** One animation frame's record: the viewport's image, the panel's run state and its result's image, the overlay. */
interface Frame {
  shown?: string;
  state?: string;
  runs?: string;
  resultImage?: string;
  heatmap?: string;
  painted: boolean;
}

// A plain script (not a function): the test runner's transpiler would wrap named helpers in one the page lacks.
const RECORDER = `(() => {
  window.__zerovarFrames = [];
  const record = () => {
    const vp = window.cornerstone?.getRenderingEngines()[0]?.getViewports()[0];
    const r = document.querySelector('[data-cy="zerovar-result"]');
    const c = document.querySelector('canvas[data-zerovar-overlay]');
    let painted = false;
    if (c && c.width > 0) {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      for (let i = 3; i < d.length && !painted; i += 64) painted = d[i] > 0;
    }
    window.__zerovarFrames.push({
      shown: vp?.getCurrentImageId?.(), state: r?.getAttribute('data-state') ?? undefined,
      runs: r?.getAttribute('data-runs') ?? undefined, resultImage: r?.getAttribute('data-image') ?? undefined,
      heatmap: c?.getAttribute('data-zerovar-heatmap') ?? undefined, painted,
    });
    requestAnimationFrame(record);
  };
  record();
})()`;

const frames = (page: Page) => page.evaluate(() => (window as unknown as { __zerovarFrames: Frame[] }).__zerovarFrames);
const shownImage = (page: Page) =>
  page.evaluate(() => (window as unknown as { cornerstone: { getRenderingEngines(): { getViewports(): { getCurrentImageId(): string }[] }[] } })
    .cornerstone.getRenderingEngines()[0].getViewports()[0].getCurrentImageId());

async function pressRun(page: Page): Promise<number> {
  const runs = Number(await page.locator('[data-cy="zerovar-result"]').getAttribute('data-runs'));
  await page.locator('[data-cy="zerovar-run"]').click();
  return runs + 1;
}

const waitDone = (page: Page, runs: number) =>
  page.locator(`[data-cy="zerovar-result"][data-runs="${runs}"][data-state="done"]`).waitFor({ timeout: RUN_TIMEOUT });

/** Double-clicks the other thumbnail and waits until the viewport shows another image than `from`. */
async function switchImage(page: Page, thumbnail: number, from: string): Promise<string> {
  await page.locator('[data-cy="study-browser-thumbnail"]').nth(thumbnail).dblclick();
  await page.waitForFunction(
    (prev) => {
      const vp = (window as unknown as { cornerstone: { getRenderingEngines(): { getViewports(): { getCurrentImageId(): string; viewportStatus?: string }[] }[] } })
        .cornerstone.getRenderingEngines()[0].getViewports()[0];
      return vp.getCurrentImageId() !== prev && vp.viewportStatus === 'rendered';
    },
    from,
    { timeout: 30_000, polling: 100 },
  );
  return shownImage(page);
}

let viewer: RunningViewer | undefined;
let browser: TestBrowser | undefined;

describe('the panel\'s runs follow the displayed image (Chromium + OHIF)', { timeout: 600_000 }, () => {
  before(async () => {
    const missing = chromiumMissing();
    if (missing) throw new Error(`${missing}\n.ci/run installs it.`);
    mkdirSync(artifacts, { recursive: true });
    await buildBundles(projectRoot, 'production');
    viewer = await startViewer({ projectRoot, dicomDir: sharedPath('dicom'), port: 0, modelsDir });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await viewer?.close();
  });

  test('a result (finished, or arriving after the switch) is never shown or drawn beside another image', async () => {
    const page = browser!.page;
    // The study of two distinct instances (JPEG 2000 and JPEG-LS), one display set each.
    const study = expectedStudies(sharedPath('dicom')).find((s) => s.images.some((i) => /15bit-jpeg2000/.test(i.file)));
    assert.ok(study, 'the shared two-instance CR study');
    await page.goto(`${viewer!.url}/${ROUTE_NAME}?StudyInstanceUIDs=${study.studyUid}&zerovarBackends=wasm`);
    await waitForRenderedImages(page, 60_000);
    await page.locator('[data-cy="zerovar-model-choice"]').waitFor({ state: 'visible', timeout: 30_000 });
    assert.equal(await page.locator('[data-cy="study-browser-thumbnail"]').count(), 2, 'two display sets');
    await page.locator('[data-cy="zerovar-model"]').selectOption('raw');
    await page.evaluate(RECORDER);

    // A finished run with its attention map on, then the other image.
    const first = await shownImage(page);
    await waitDone(page, await pressRun(page));
    assert.equal(await page.locator('[data-cy="zerovar-result"]').getAttribute('data-image'), first);
    await page.locator('[data-cy="zerovar-overlay-toggle"]').check();
    const drawn = await frames(page);
    assert.ok(drawn.at(-1)?.heatmap === 'grad-cam' || drawn.some((f) => f.painted), 'the attention map was drawn for its image');
    const second = await switchImage(page, 1, first);
    await page.waitForTimeout(500);
    assert.equal(await page.locator('[data-cy="zerovar-result"]').getAttribute('data-state'), 'idle', 'the new image starts without a result');
    await page.screenshot({ path: join(artifacts, 'after-switch.png') });

    // A run whose result arrives after the switch: the masked bundle's first load is held back until the viewport
    // shows the other image, then the run completes for the image it was started on and must be dropped.
    await page.locator('[data-cy="zerovar-model"]').selectOption('masked');
    await page.waitForTimeout(500); // the availability check (HEAD) goes through unheld
    let held!: () => void;
    const heldOne = new Promise<void>((r) => (held = r));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const pattern = '**/zerovar/models/masked/**';
    await browser!.context.route(pattern, async (route) => {
      if (route.request().method() === 'GET') {
        held();
        await released;
      }
      await route.continue();
    });
    const late = await pressRun(page);
    await heldOne;
    const back = await switchImage(page, 0, second);
    assert.equal(back, first);
    release();
    // The late answer comes (the worker answers in order: the next run's result follows it) and is dropped.
    const next = await pressRun(page);
    assert.equal(next, late, 'the dropped run was not counted as finished');
    await waitDone(page, next);
    await browser!.context.unroute(pattern);
    assert.equal(await page.locator('[data-cy="zerovar-result"]').getAttribute('data-image'), first, 'the shown result is of the shown image');
    await page.screenshot({ path: join(artifacts, 'after-late-result.png') });

    const all = await frames(page);
    assert.ok(all.length > 20, `frames recorded (${all.length})`);
    const stale = all.filter((f) => f.state === 'done' && f.resultImage !== f.shown);
    assert.deepEqual(stale.slice(0, 3), [], `no frame shows a result beside another image (${stale.length} of ${all.length} did)`);
    const ran = all.filter((f) => f.state === 'done');
    assert.ok(ran.length > 0 && ran.every((f) => f.resultImage), 'every shown result names its image');
    // The attention map is drawn only over its own image: after the switch to the second image, nothing painted.
    const onSecond = all.filter((f) => f.shown === second);
    assert.ok(onSecond.length > 0, 'frames of the second image were recorded');
    assert.deepEqual(onSecond.filter((f) => f.painted).slice(0, 3), [], 'no attention map is painted over the second image');
    assert.deepEqual(browser!.errors.filter((e) => e.startsWith('pageerror')), [], 'no uncaught page errors');
  });
  test('the masked model segments an image once: a second run says its mask was cached and answers the same', async () => {
    const page = browser!.page;
    const study = expectedStudies(sharedPath('dicom')).find((s) => s.images.some((i) => /cr-mono2-8bit-jpeg-baseline\.dcm$/.test(i.file)));
    assert.ok(study, 'the shared 8-bit CR study');
    await page.goto(`${viewer!.url}/${ROUTE_NAME}?StudyInstanceUIDs=${study.studyUid}&zerovarBackends=wasm`);
    await waitForRenderedImages(page, 60_000);
    await page.locator('[data-cy="zerovar-model-choice"]').waitFor({ state: 'visible', timeout: 30_000 });
    await page.locator('[data-cy="zerovar-model"]').selectOption('masked');
    const segmentation = page.locator('[data-cy="zerovar-run-info-segmentation"]');
    const probabilities = () => page.locator('[data-cy="zerovar-probabilities"] [data-probability]')
      .evaluateAll((rs) => rs.map((r) => r.getAttribute('data-probability')));
    await waitDone(page, await pressRun(page));
    assert.match(await segmentation.innerText(), /^\d+(\.\d)? ms \(part of the inference\)$/);
    const first = await probabilities();
    assert.equal(first.length, 2);
    await waitDone(page, await pressRun(page));
    assert.match(await segmentation.innerText(), /^cached: the mask of this very image \(\d+(\.\d)? ms\)$/);
    assert.deepEqual(await probabilities(), first, 'the cached mask gives the same answer');
    assert.equal(await page.locator('canvas[data-zerovar-overlay]').getAttribute('data-zerovar-contour'), 'lung-contour', 'its lung contour is drawn');
    await page.locator('[data-cy="zerovar-result"]').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(artifacts, 'masked-cached.png') });
    // Another window level is another image for the model: segmented again.
    await page.evaluate(() => {
      type Vp = { setProperties(p: { voiRange: { lower: number; upper: number } }): void; render(): void };
      const vp = (window as unknown as { cornerstone: { getRenderingEngines(): { getViewports(): Vp[] }[] } }).cornerstone.getRenderingEngines()[0].getViewports()[0];
      vp.setProperties({ voiRange: { lower: 40, upper: 200 } });
      vp.render();
    });
    await waitDone(page, await pressRun(page));
    assert.match(await segmentation.innerText(), /part of the inference/, 'new pixels, a new segmentation');
    assert.deepEqual(browser!.errors.filter((e) => e.startsWith('pageerror')), [], 'no uncaught page errors');
  });
});
