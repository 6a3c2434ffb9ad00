// End to end: our bundles in the prebuilt OHIF viewer, in Debian Chromium, against Orthanc (through the host's
// same-origin proxy) and against the embedded DICOMweb folder source (with corrupt files and a CT instance in the
// folder): real classification in the inference worker with a trainer-made model bundle, the Grad-CAM overlay
// following pan and zoom, the raw / masked choice (opening on the one better on external data), the
// out-of-distribution guard (a lateral view and a CT image flagged, shown only on request; the shared chest
// X-rays not flagged), a tampered bundle refused by checksum.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { projectRoot, sharedPath } from '../helpers/shared.js';
import { buildBundles } from '../../scripts/host/build.js';
import { orthancMissing, startOrthanc, type RunningOrthanc } from '../../scripts/host/orthanc.js';
import { startViewer, type RunningViewer } from '../../scripts/host/viewer.js';
import { ROUTE_NAME } from '../../mode/src/index.js';
import { parseDicomBytes } from '../../scripts/host/dicom-json.js';
import { chromiumMissing, launchBrowser, waitForRenderedImages, type TestBrowser } from './browser.js';
import { checkClassification, resultLocator, run, RUN_TIMEOUT } from './panel.js';
import { eachDisplaySetPixels, showsImage } from './pixels.js';
import {
  expectedStudies, folderWithCorruptFiles, tamperedModels, writeCtInstance, writeLateralInstance, type ExpectedStudy,
} from './fixtures.js';
import {
  assertCaptureStored, assertReportMatches, assertValidSr, orthancInstanceFile, panelFigures, pressSave, refuseStores, scInstances, srInstances,
  studyBrowserSeries,
} from './save-to-pacs.js';
import { CAPTURE_SERIES_NUMBER } from '../../extension/src/attentionCapture.js';
import { readReport } from '../../extension/src/srReport.js';
import { PROXY_ROOT } from '../../scripts/host/server.js';

const artifacts = join(projectRoot, 'test-artifacts', 'viewer');
const RENDER_TIMEOUT = 60_000;
/** The model bundles the viewer serves: the project's released ones, or another trainer-made folder. */
const modelsDir = resolve(process.env.ZEROVAR_MODELS ?? join(projectRoot, 'models'));
/**
 * Shared files that OHIF's own decoders cannot decode, whichever source serves them. None since the host repairs
 * the DX file's JPEG 2000 codestream (scripts/host/viewer-fixes.ts).
 */
const UNDECODABLE: Record<string, string> = {};

let orthanc: RunningOrthanc | undefined;
let pacsViewer: RunningViewer | undefined;
let localViewer: RunningViewer | undefined;
let tamperViewer: RunningViewer | undefined;
let browser: TestBrowser | undefined;
let studies: ExpectedStudy[] = [];
let corrupt: { dir: string; corrupt: string[] } | undefined;
let tampered: string | undefined;
let ctStudy = '';
/** A lateral chest X-ray uploaded to Orthanc as a DX instance: the guard must flag it. */
let lateralDir: string | undefined;
let lateralStudy = '';
/** The shared lateral image used (the guard's score for it is far above either bundle's limit). */
const LATERAL_PNG = '000002-2.png';
const timings: string[] = [];
/** Studies whose (non-empty) attention overlay was checked against pan and zoom. */
const overlaysChecked: string[] = [];
/** Masked runs whose lung contour was checked on the canvas (green, on the image, toggled off and on). */
const contoursChecked: string[] = [];
/** Tools of mode-basic's primary section that must stay beside our button (plain tool buttons there). */
const BASIC_TOOLS = ['Zoom', 'Pan'];

function requireTools(): void {
  const missing = [chromiumMissing(), orthancMissing()].filter(Boolean);
  if (missing.length) throw new Error(`${missing.join('\n')}\n.ci/run installs them (apt packages chromium orthanc orthanc-dicomweb).`);
  if (!existsSync(join(modelsDir, 'raw', 'manifest.json'))) {
    throw new Error(
      `no model bundle at ${join(modelsDir, 'raw')}: the viewer test needs a trainer-made bundle. Make one with\n` +
        '  node trainer/bin/zerovar.mjs compress --dataset ../shared/data/covid19-radiography-subset --experiment_id dev ' +
        '--weights ../shared/weights/mobilenet_v2_0.35_224_notop --limit 50 --input-size 96 --epochs 4 --fc1 64 --fc2 64 ' +
        '--quiet --out models/raw\n(or point ZEROVAR_MODELS at a folder holding raw/).',
    );
  }
}

async function openStudy(page: Page, base: string, studyUid: string, backends?: string): Promise<void> {
  const query = backends ? `&zerovarBackends=${backends}` : '';
  await page.goto(`${base}/${ROUTE_NAME}?StudyInstanceUIDs=${studyUid}${query}`);
  const [imageId] = await waitForRenderedImages(page, RENDER_TIMEOUT);
  assert.ok(imageId?.startsWith('wadors:'), `expected a WADO-RS image id, got ${imageId}`);
  await page.locator('[data-cy="zerovar-panel"]').waitFor({ state: 'visible', timeout: 20_000 });
  // The default model is decided from both manifests: wait for it, so a model chosen here is not overridden.
  await page.locator('[data-cy="zerovar-model-choice"]').waitFor({ state: 'visible', timeout: 20_000 });
}

/** The result's out-of-distribution state: 'accepted', 'flagged' or 'unguarded'. */
const oodState = async (page: Page) => page.locator('[data-cy="zerovar-result"]').getAttribute('data-ood');

/**
 * A flagged result as shown by default: the plain message with score and limit, the way to see it anyway, no
 * class result, no attention map, the overlay toggle off and disabled (panel and toolbar).
 */
async function checkWithheld(page: Page): Promise<void> {
  assert.equal(await oodState(page), 'flagged', 'the guard flags the image');
  assert.equal(await page.locator('[data-cy="zerovar-result"]').getAttribute('data-withheld'), 'true');
  const note = page.locator('[data-cy="zerovar-ood"]');
  assert.match(await note.innerText(), /does not look like the frontal chest radiographs the model was trained on \(out-of-distribution score [\d,.]+, limit [\d,.]+\)/);
  assert.ok(await page.locator('[data-cy="zerovar-show-anyway"]').isVisible(), 'the panel offers to show the result anyway');
  assert.equal(await page.locator('[data-cy="zerovar-predicted"]').count(), 0, 'no class result by default');
  assert.equal(await page.locator('[data-cy="zerovar-probabilities"]').count(), 0, 'no probabilities by default');
  assert.match(await page.locator('[data-cy="zerovar-run-info-inference"]').innerText(), /Grad-CAM skipped/);
  const toggle = page.locator('[data-cy="zerovar-overlay-toggle"]');
  assert.equal(await toggle.isChecked(), false, 'the overlay is off');
  assert.equal(await toggle.isDisabled(), true, 'the panel\'s overlay toggle is disabled');
  const canvas = page.locator('canvas[data-zerovar-overlay]');
  if (await canvas.count()) {
    assert.equal(await canvas.getAttribute('data-zerovar-heatmap'), 'none', 'no heatmap on the viewport');
    assert.equal(await canvas.getAttribute('data-zerovar-contour'), 'none', 'no lung contour on the viewport');
    assert.equal((await overlayState(page)).painted, 0, 'nothing is painted');
  }
}

/** Show anyway (research): a new run that explains the image; the result is there, labelled out of distribution. */
async function showAnyway(page: Page): Promise<void> {
  const runs = Number(await page.locator('[data-cy="zerovar-result"]').getAttribute('data-runs'));
  await page.locator('[data-cy="zerovar-show-anyway"]').click();
  await page.locator(`[data-cy="zerovar-result"][data-runs="${runs + 1}"][data-state="done"]`).waitFor({ timeout: RUN_TIMEOUT });
  assert.equal(await oodState(page), 'flagged');
  assert.equal(await page.locator('[data-cy="zerovar-result"]').getAttribute('data-withheld'), 'false');
  assert.match(await page.locator('[data-cy="zerovar-ood-shown"]').innerText(), /out of distribution/);
  assert.match(await page.locator('[data-cy="zerovar-predicted"]').innerText(), /out of distribution/);
  await checkClassification(page);
}

interface OverlayState {
  /** Pixels with alpha > 0. */
  painted: number;
  /** Painted bounding box in CSS pixels, and the same box relative to the image's rectangle on the canvas. */
  box?: { x0: number; y0: number; x1: number; y1: number };
  rel?: { x0: number; y0: number; x1: number; y1: number };
  /** The image's corners on the canvas (for messages). */
  image?: unknown;
}

/** Reads the overlay canvas and the image's rectangle on the canvas (from Cornerstone's own transform). */
function overlayState(page: Page): Promise<OverlayState> {
  return page.evaluate(() => {
    const c = document.querySelector('canvas[data-zerovar-overlay]') as HTMLCanvasElement | null;
    if (!c) return { painted: 0 };
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let painted = 0;
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (let y = 0; y < c.height; y++) {
      for (let x = 0; x < c.width; x++) {
        if (d[(y * c.width + x) * 4 + 3] > 0) {
          painted++;
          if (x < x0) x0 = x;
          if (x > x1) x1 = x;
          if (y < y0) y0 = y;
          if (y > y1) y1 = y;
        }
      }
    }
    if (painted === 0) return { painted };
    const dpr = c.width / c.clientWidth;
    const box = { x0: x0 / dpr, y0: y0 / dpr, x1: (x1 + 1) / dpr, y1: (y1 + 1) / dpr };
    type Vp = {
      getImageData(): { dimensions: number[]; imageData: { indexToWorld(i: number[]): number[] } };
      worldToCanvas(w: number[]): number[];
    };
    const cs = (window as unknown as { cornerstone: { getRenderingEngines(): { getViewports(): Vp[] }[] } }).cornerstone;
    const vp = cs.getRenderingEngines()[0].getViewports()[0];
    const { dimensions, imageData } = vp.getImageData();
    // (No local helper functions here: the test runner's transpiler would wrap them in a helper the page lacks.)
    const o = vp.worldToCanvas(imageData.indexToWorld([-0.5, -0.5, 0]));
    const e = vp.worldToCanvas(imageData.indexToWorld([dimensions[0] - 0.5, dimensions[1] - 0.5, 0]));
    const [ox, ex] = [Math.min(o[0], e[0]), Math.max(o[0], e[0])];
    const [oy, ey] = [Math.min(o[1], e[1]), Math.max(o[1], e[1])];
    const rel = {
      x0: (box.x0 - ox) / (ex - ox), x1: (box.x1 - ox) / (ex - ox),
      y0: (box.y0 - oy) / (ey - oy), y1: (box.y1 - oy) / (ey - oy),
    };
    return { painted, box, rel, image: { o, e, dimensions: Array.from(dimensions) } };
  });
}

/** Zooms out and pans the viewport through Cornerstone; resolves after the overlay had a chance to redraw. */
async function zoomAndPan(page: Page, zoom: number, pan: [number, number]): Promise<void> {
  await page.evaluate(
    ({ zoom, pan }) => {
      type Vp = { setZoom(z: number): void; setPan(p: number[]): void; render(): void };
      const cs = (window as unknown as { cornerstone: { getRenderingEngines(): { getViewports(): Vp[] }[] } }).cornerstone;
      const vp = cs.getRenderingEngines()[0].getViewports()[0];
      vp.setZoom(zoom);
      vp.setPan(pan);
      vp.render();
    },
    { zoom, pan },
  );
  await page.waitForTimeout(400);
}

/**
 * Toolbar toggle on -> Grad-CAM painted over the image; pan / zoom -> it moves with the image; toggle off -> gone.
 * Returns false when the image has no valid geometry on the canvas (then it checks that nothing is drawn).
 */
async function checkOverlay(page: Page, shot: string): Promise<boolean> {
  const button = page.locator('[data-cy="zerovar-overlay"]');
  await button.waitFor({ state: 'visible', timeout: 10_000 });
  await checkToolbarKeepsBasicTools(page);
  const canvas = page.locator('canvas[data-zerovar-overlay]');
  await button.click();
  await page.waitForFunction(() => document.querySelector('canvas[data-zerovar-overlay]')?.getAttribute('data-zerovar-overlay') === 'visible');
  assert.equal(await canvas.getAttribute('data-zerovar-heatmap'), 'grad-cam');
  assert.ok(await page.locator('[data-cy="zerovar-overlay-toggle"]').isChecked(), 'the panel shows the overlay as on');
  const before = await overlayState(page);
  if ((await canvas.getAttribute('data-zerovar-geometry')) === 'invalid') {
    // Cornerstone has no image-to-canvas transform for this image (its camera is NaN): nothing may be drawn.
    assert.equal(before.painted, 0, 'no overlay is drawn without a valid image geometry');
    await button.click();
    return false;
  }
  assert.ok(before.painted > 200, `the attention map is drawn over the image (${before.painted} pixels)`);
  const within = (r: NonNullable<OverlayState['rel']>) => r.x0 >= -0.02 && r.y0 >= -0.02 && r.x1 <= 1.02 && r.y1 <= 1.02;
  assert.ok(within(before.rel!), `painted pixels lie on the image: ${JSON.stringify(before)}`);
  await page.screenshot({ path: join(artifacts, `${shot}-overlay.png`) });
  // The opacity slider recolours the map: fully opaque attention gives a higher peak alpha than the default 50 %.
  const peakAlpha = () =>
    canvas.evaluate((c: HTMLCanvasElement) => {
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let max = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] > max) max = d[i];
      return max;
    });
  const alphaAtDefault = await peakAlpha();
  await page.locator('[data-cy="zerovar-opacity"]').fill('1');
  await page.waitForTimeout(200);
  const alphaAtFull = await peakAlpha();
  assert.ok(alphaAtFull > alphaAtDefault + 60, `opacity 100 % raises the peak alpha (${alphaAtDefault} -> ${alphaAtFull})`);
  await page.locator('[data-cy="zerovar-opacity"]').fill('0.5');

  await zoomAndPan(page, 0.6, [40, -25]);
  const moved = await overlayState(page);
  assert.ok(moved.painted > 0, 'still drawn after zoom and pan');
  const w0 = before.box!.x1 - before.box!.x0;
  const w1 = moved.box!.x1 - moved.box!.x0;
  assert.ok(Math.abs(w1 / w0 - 0.6) < 0.12, `the painted box scaled with the zoom: ${w0.toFixed(1)} -> ${w1.toFixed(1)} px`);
  const cx = (b: NonNullable<OverlayState['box']>) => (b.x0 + b.x1) / 2;
  assert.ok(Math.abs(cx(moved.box!) - cx(before.box!)) > 5, 'the painted box moved with the pan');
  for (const k of ['x0', 'y0', 'x1', 'y1'] as const) {
    assert.ok(Math.abs(moved.rel![k] - before.rel![k]) < 0.04, `relative to the image, the map stayed put (${k}: ${before.rel![k].toFixed(3)} -> ${moved.rel![k].toFixed(3)})`);
  }
  await page.screenshot({ path: join(artifacts, `${shot}-overlay-zoomed.png`) });

  await button.click();
  assert.equal(await canvas.getAttribute('data-zerovar-overlay'), 'hidden');
  assert.equal((await overlayState(page)).painted, 0, 'hiding clears the overlay');
  return true;
}

/** Opens a study in our mode and checks panel, notice, Run with the raw model and, when it runs, the overlay. */
async function checkStudy(page: Page, base: string, study: ExpectedStudy, shot: string, backends?: string): Promise<void> {
  await openStudy(page, base, study.studyUid, backends);
  const notice = page.locator('[data-cy="zerovar-notice"]');
  assert.ok(await notice.isVisible(), 'research notice is visible');
  assert.match(await notice.innerText(), /Research use only .* not for diagnosis/);
  await page.locator('[data-cy="zerovar-model"]').selectOption('raw');

  const outcome = await run(page);
  const undecodable = study.images.map((im) => UNDECODABLE[im.file]).find(Boolean);
  if (undecodable) {
    // The viewer stays usable and the panel says why it has nothing to classify.
    assert.equal(outcome.state, 'failed', `${undecodable}: Run cannot succeed`);
    assert.match(await page.locator('[data-cy="zerovar-error"]').innerText(), /could not decode/);
    await page.screenshot({ path: join(artifacts, `${shot}.png`) });
    return;
  }
  assert.equal(outcome.state, 'done', `Run failed: ${await resultLocator(page).innerText()}`);
  assert.equal(await oodState(page), 'accepted', `an ordinary chest X-ray is not flagged: ${await resultLocator(page).innerText()}`);
  const modality = await page.locator('[data-cy="zerovar-image-info-modality"]').innerText();
  const size = await page.locator('[data-cy="zerovar-image-info-size"]').innerText();
  assert.ok(study.images.some((im) => im.modality === modality && size === `${im.columns} × ${im.rows}`), `panel describes the shown image: ${modality} ${size}`);
  const c = await checkClassification(page);
  timings.push(`${shot}: ${c.backend}, cold run ${outcome.ms} ms (${c.inference}, ${await page.locator('[data-cy="zerovar-run-info-model-load"]').innerText()})`);
  const warm = await run(page);
  assert.equal(warm.state, 'done');
  timings.push(`${shot}: warm run ${warm.ms} ms (${await page.locator('[data-cy="zerovar-run-info-inference"]').innerText()})`);
  if ((await page.locator('[data-cy="zerovar-attention"]').getAttribute('data-empty')) === 'true') {
    // Grad-CAM can be all zero (no region raised the class score): the toggle then shows nothing, honestly.
    await checkEmptyOverlay(page);
  } else {
    if (await checkOverlay(page, shot)) overlaysChecked.push(shot);
  }
  await page.screenshot({ path: join(artifacts, `${shot}.png`) });
}

/** An empty attention map: toggling the overlay on paints nothing; toggling it off again restores the state. */
async function checkEmptyOverlay(page: Page): Promise<void> {
  const button = page.locator('[data-cy="zerovar-overlay"]');
  await button.click();
  await page.waitForFunction(() => document.querySelector('canvas[data-zerovar-overlay]')?.getAttribute('data-zerovar-overlay') === 'visible');
  assert.equal((await overlayState(page)).painted, 0, 'an empty attention map paints nothing');
  await button.click();
}

/** Our button joined mode-basic's primary toolbar: basic's tools are still there, ours comes after them. */
async function checkToolbarKeepsBasicTools(page: Page): Promise<void> {
  const ours = await page.locator('[data-cy="zerovar-overlay"]').boundingBox();
  assert.ok(ours, 'the overlay button has a place in the toolbar');
  for (const id of BASIC_TOOLS) {
    const tool = page.locator(`[data-cy="${id}"]`).first();
    assert.ok(await tool.isVisible(), `mode-basic's ${id} tool is still in the toolbar`);
    const box = await tool.boundingBox();
    assert.ok(box && box.x < ours.x, `our button comes after basic's ${id} (${box?.x} < ${ours.x})`);
  }
}

/** Masked: the released masked bundle classifies and draws its lung contour; raw still works after. */
async function checkMaskedChoice(page: Page): Promise<void> {
  const manifest = join(modelsDir, 'masked', 'manifest.json');
  // Without it this step would check nothing of the masked model: fail, never skip.
  assert.ok(existsSync(manifest), `no masked bundle at ${manifest}: the viewer test needs models/masked (or ZEROVAR_MODELS with masked/)`);
  const select = page.locator('[data-cy="zerovar-model"]');
  await select.selectOption('masked');
  const r = await run(page);
  assert.equal(r.state, 'done', `the masked model classifies: ${await resultLocator(page).innerText()}`);
  await checkClassification(page);
  assert.match(await page.locator('[data-cy="zerovar-facts-name"]').innerText(), /\(masked\)/);
  assert.match(await page.locator('[data-cy="zerovar-run-info-segmentation"]').innerText(), /\d+(\.\d)? ms/);
  if (await checkLungContour(page)) contoursChecked.push('masked');
  await page.screenshot({ path: join(artifacts, 'masked-choice.png') });
  await select.selectOption('raw');
  const again = await run(page);
  assert.equal(again.state, 'done', 'raw still classifies after choosing masked');
  await checkClassification(page);
  assert.equal(await page.locator('[data-cy="zerovar-contour-toggle"]').count(), 0, 'no contour choice for a raw result');
  assert.equal(await page.locator('canvas[data-zerovar-overlay]').getAttribute('data-zerovar-contour'), 'none', 'a raw run draws no contour');
}

/**
 * After a masked run, with the attention overlay off: the lung contour alone is drawn over the image in green
 * (on by default), and its checkbox removes and restores it. Returns false when the image has no valid geometry
 * on the canvas (then it checks that nothing is drawn).
 */
async function checkLungContour(page: Page): Promise<boolean> {
  const toggle = page.locator('[data-cy="zerovar-contour-toggle"]');
  assert.ok(await toggle.isChecked(), 'the lung contour is on by default for a masked result');
  const canvas = page.locator('canvas[data-zerovar-overlay]');
  assert.equal(await canvas.getAttribute('data-zerovar-contour'), 'lung-contour');
  assert.equal(await canvas.getAttribute('data-zerovar-overlay'), 'hidden', 'the attention overlay is off here');
  const state = await overlayState(page);
  if ((await canvas.getAttribute('data-zerovar-geometry')) === 'invalid') {
    assert.equal(state.painted, 0, 'no contour is drawn without a valid image geometry');
    return false;
  }
  const green = await canvas.evaluate((c: HTMLCanvasElement) => {
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && d[i + 1] > 150 && d[i + 1] > d[i] + 80 && d[i + 1] > d[i + 2] + 80) n++;
    return n;
  });
  assert.ok(green > 200, `the lung contour is drawn in green (${green} green of ${state.painted} painted pixels)`);
  assert.ok(green >= 0.95 * state.painted, `with the attention overlay off only the contour is drawn (${green} of ${state.painted})`);
  const r = state.rel!;
  assert.ok(r.x0 >= -0.02 && r.y0 >= -0.02 && r.x1 <= 1.02 && r.y1 <= 1.02, `the contour lies on the image: ${JSON.stringify(state)}`);
  await page.screenshot({ path: join(artifacts, 'masked-lung-contour.png') });
  await toggle.uncheck();
  assert.equal(await canvas.getAttribute('data-zerovar-contour'), 'none');
  assert.equal((await overlayState(page)).painted, 0, 'unchecking removes the contour');
  await toggle.check();
  assert.ok((await overlayState(page)).painted > 200, 'checking draws it again');
  return true;
}

function assertSameOrigin(requests: string[], origins: string[]): void {
  const foreign = requests.filter((u) => !/^(data|blob):/.test(u) && !origins.some((o) => u.startsWith(o + '/')));
  assert.deepEqual(foreign, [], 'no request leaves the page origin');
}

describe('viewer end to end (OHIF + our mode in Chromium)', { timeout: 600_000 }, () => {
  before(async () => {
    requireTools();
    rmSync(artifacts, { recursive: true, force: true });
    mkdirSync(artifacts, { recursive: true });
    const dicom = sharedPath('dicom');
    studies = expectedStudies(dicom);
    corrupt = folderWithCorruptFiles(dicom);
    ctStudy = writeCtInstance(join(corrupt.dir, 'synthetic-ct.dcm'));
    lateralDir = mkdtempSync(join(tmpdir(), 'zerovar-lateral-'));
    lateralStudy = writeLateralInstance(sharedPath('data', 'ood-dev', 'lateral', LATERAL_PNG), join(lateralDir, 'lateral.dcm'));
    tampered = tamperedModels(modelsDir);
    await buildBundles(projectRoot, 'production');
    orthanc = await startOrthanc();
    const { uploaded, refused } = await orthanc.upload(dicom);
    assert.deepEqual(refused, [], 'Orthanc accepts every shared DICOM file');
    assert.ok(uploaded.length >= studies.length);
    const lateral = await orthanc.upload(lateralDir);
    assert.deepEqual(lateral.refused, [], 'Orthanc accepts the lateral instance');
    pacsViewer = await startViewer({ projectRoot, dicomweb: orthanc.dicomWebUrl, port: 0, modelsDir });
    localViewer = await startViewer({ projectRoot, dicomDir: corrupt.dir, port: 0, modelsDir });
    tamperViewer = await startViewer({ projectRoot, dicomDir: dicom, port: 0, modelsDir: tampered });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await pacsViewer?.close();
    await localViewer?.close();
    await tamperViewer?.close();
    await orthanc?.stop();
    if (corrupt) rmSync(corrupt.dir, { recursive: true, force: true });
    if (tampered) rmSync(tampered, { recursive: true, force: true });
    if (lateralDir) rmSync(lateralDir, { recursive: true, force: true });
    if (timings.length) console.log(`inference timings (headless Chromium):\n  ${timings.join('\n  ')}`);
  });

  test('the host serves the viewer cross-origin isolated with our app-config, worker and wasm', async () => {
    const r = await fetch(`${pacsViewer!.url}/${ROUTE_NAME}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('cross-origin-opener-policy'), 'same-origin');
    assert.equal(r.headers.get('cross-origin-embedder-policy'), 'require-corp');
    const config = await (await fetch(`${pacsViewer!.url}/app-config.js`)).text();
    assert.match(config, /"\/zerovar\/extension\.js"/);
    assert.match(config, /"\/pacs\/dicom-web"/);
    const qido = (await (await fetch(`${pacsViewer!.url}/pacs/dicom-web/studies`)).json()) as unknown[];
    assert.equal(qido.length, studies.length + 1, 'the proxy answers QIDO from Orthanc (the shared studies and the lateral one)');
    const wasm = await fetch(`${pacsViewer!.url}/zerovar/tfjs-backend-wasm-simd.wasm`);
    assert.equal(wasm.status, 200);
    assert.equal(wasm.headers.get('content-type'), 'application/wasm');
    const manifest = await fetch(`${pacsViewer!.url}/zerovar/models/raw/manifest.json`);
    assert.equal(manifest.status, 200, 'the raw bundle is served');
  });

  test('every study opens from Orthanc and classifies with the raw model: probabilities, backend, overlay', async () => {
    const b = browser!;
    const start = b.requests.length;
    for (const [k, study] of studies.entries()) {
      // The first study uses the default backend order (WebGPU, WebGL, wasm); the rest use wasm, which starts
      // in well under a second here (WebGL on a software renderer compiles shaders for ~10 s on each page load).
      await checkStudy(b.page, pacsViewer!.url, study, `pacs-${k + 1}`, k === 0 ? undefined : 'wasm');
      if (k === 0) await checkMaskedChoice(b.page);
    }
    assert.ok(overlaysChecked.length >= 1, 'at least one study has a non-empty attention map whose overlay was checked');
    assert.equal(contoursChecked.length, 1, 'the masked run\'s lung contour was checked on the canvas');
    const requests = b.requests.slice(start);
    assertSameOrigin(requests, [pacsViewer!.url]);
    assert.ok(requests.some((u) => u.includes('/pacs/dicom-web/') && u.includes('/frames/')), 'frames came through the proxy');
    assert.ok(requests.some((u) => u.endsWith('/zerovar/models/raw/model/model.json')), 'the bundle came from the host');
    const crashes = b.errors.filter((e) => e.startsWith('pageerror'));
    assert.deepEqual(crashes, [], 'no uncaught page errors');
  });

  test('the embedded DICOM folder source survives corrupt files and warns about a CT image', async () => {
    const v = localViewer!;
    const skipped = v.skippedFiles.map((s) => s.file);
    for (const c of corrupt!.corrupt) assert.ok(skipped.includes(c), `${c} is skipped (${JSON.stringify(v.skippedFiles)})`);
    const qido = (await (await fetch(`${v.url}/dicom-web/studies`)).json()) as unknown[];
    assert.equal(qido.length, studies.length + 1, 'every valid study (and the CT one) is listed');
    const b = browser!;
    const start = b.requests.length;
    // The 10-bit native study (explicit + implicit VR copies) and the JPEG 2000 / JPEG-LS study.
    const picks = studies.filter((s) => s.images.some((i) => /explicit|jpegls/.test(i.file)));
    assert.ok(picks.length >= 1);
    for (const [k, study] of picks.entries()) await checkStudy(b.page, v.url, study, `local-${k + 1}`, 'wasm');

    // A CT image: a warning in the panel; running is still allowed, the guard flags it, and its result is
    // there only when asked for.
    await openStudy(b.page, v.url, ctStudy, 'wasm');
    const warnings = b.page.locator('[data-cy="zerovar-warnings"]');
    await warnings.waitFor({ timeout: 10_000 });
    assert.match(await warnings.innerText(), /Modality CT is not a radiograph/);
    await b.page.locator('[data-cy="zerovar-model"]').selectOption('raw');
    const r = await run(b.page);
    assert.equal(r.state, 'done', `a CT image may still be run: ${await resultLocator(b.page).innerText()}`);
    await checkWithheld(b.page);
    await showAnyway(b.page);
    await b.page.screenshot({ path: join(artifacts, 'local-ct-warning.png') });

    assertSameOrigin(b.requests.slice(start), [v.url]);
    const health = await fetch(`${v.url}/dicom-web/studies`);
    assert.equal(health.status, 200, 'the server still answers after the viewer session');
  });

  test('the guard: a lateral chest X-ray from Orthanc is flagged by both models, an ordinary one is not; the viewer opens on the model better on external data', async () => {
    const b = browser!;
    const page = b.page;
    const start = b.requests.length;
    await openStudy(page, pacsViewer!.url, lateralStudy, 'wasm');
    // The default: the released masked bundle's external AUC is the higher one.
    const choice = page.locator('[data-cy="zerovar-model-choice"]');
    assert.equal(await choice.getAttribute('data-variant'), 'masked');
    assert.match(await choice.innerText(), /^masked model by default: external AUC 0\.\d+ vs 0\.\d+ \(ieee8023\)$/);
    assert.equal(await page.locator('[data-cy="zerovar-model"]').inputValue(), 'masked', 'the viewer opens on the masked model');
    assert.match(await page.locator('[data-cy="zerovar-image-info-modality"]').innerText(), /^DX$/);

    // The overlay was on: a flagged result switches it off and draws nothing.
    await page.locator('[data-cy="zerovar-overlay"]').click();
    const masked = await run(page);
    assert.equal(masked.state, 'done', `the lateral image runs: ${await resultLocator(page).innerText()}`);
    await checkWithheld(page);
    await page.locator('[data-cy="zerovar-overlay"]').click({ force: true, timeout: 2_000 }).catch(() => undefined);
    const canvas = page.locator('canvas[data-zerovar-overlay]');
    assert.equal(await canvas.getAttribute('data-zerovar-heatmap'), 'none', 'the toolbar toggle shows no heatmap for a flagged image');
    assert.equal((await overlayState(page)).painted, 0);
    // The model facts say what the guard and the model are (test split and external figures side by side).
    assert.match(await page.locator('[data-cy="zerovar-facts-ood-guard"]').innerText(), /^flags [\d.]+ % of test images/);
    assert.match(await page.locator('[data-cy="zerovar-facts-external-ieee8023"]').innerText(), /AUC 0\.\d{3}/);
    assert.match(await page.locator('[data-cy="zerovar-facts-operating-point"]').innerText(), /^COVID when its probability ≥ 50 %: test sensitivity [\d.]+ %, specificity [\d.]+ %$/);
    assert.match(await page.locator('[data-cy="zerovar-facts-calibration"]').innerText(), /test ECE/);
    await page.screenshot({ path: join(artifacts, 'lateral-flagged.png') });

    await page.locator('[data-cy="zerovar-model"]').selectOption('raw');
    const raw = await run(page);
    assert.equal(raw.state, 'done');
    await checkWithheld(page);
    await showAnyway(page);
    await page.screenshot({ path: join(artifacts, 'lateral-shown-anyway.png') });

    // An ordinary chest X-ray of the shared files, with the default (masked) model: not flagged.
    const ordinary = studies.find((s) => s.images.some((i) => /cr-mono2-8bit-jpeg-baseline\.dcm$/.test(i.file))) ?? studies[0];
    await openStudy(page, pacsViewer!.url, ordinary.studyUid, 'wasm');
    assert.equal(await page.locator('[data-cy="zerovar-model"]').inputValue(), 'masked');
    const ok = await run(page);
    assert.equal(ok.state, 'done');
    assert.equal(await oodState(page), 'accepted', 'an ordinary chest X-ray is not flagged');
    assert.match(await page.locator('[data-cy="zerovar-ood-ok"]').innerText(), /^Looks like the frontal chest radiographs/);
    await checkClassification(page);
    for (const row of await page.locator('[data-cy="zerovar-probabilities"] [data-probability] span:last-child').allInnerTexts()) {
      assert.match(row, /^(>99|<1|\d{1,2}) %$/, `a calibrated probability in whole percent: ${row}`);
    }
    await page.screenshot({ path: join(artifacts, 'ordinary-accepted.png') });
    assertSameOrigin(b.requests.slice(start), [pacsViewer!.url]);
  });

  test('a tampered bundle is refused by checksum and the viewer keeps rendering', async () => {
    const b = browser!;
    const study = studies.find((s) => s.images.some((i) => /jpeg-baseline\.dcm$/.test(i.file))) ?? studies[0];
    await openStudy(b.page, tamperViewer!.url, study.studyUid, 'wasm');
    const r = await run(b.page);
    assert.equal(r.state, 'failed', 'a tampered bundle is not used');
    const text = await b.page.locator('[data-cy="zerovar-error"]').innerText();
    assert.match(text, /refused: checksum mismatch for model\/weights\.bin/);
    await b.page.screenshot({ path: join(artifacts, 'tampered-bundle.png') });
    const ids = await waitForRenderedImages(b.page, 10_000);
    assert.equal(ids.length, 1, 'the viewport still shows the image');
    const crashes = b.errors.filter((e) => e.startsWith('pageerror'));
    assert.deepEqual(crashes, [], 'no uncaught page errors');
  });
  // Results back to the PACS (issue 12, section 3): its own block, after the others (it adds an SR to a study).
  describe('Save to PACS', () => {
    const SR_SERIES_NUMBER = '9901';
    test('the result is stored in Orthanc as an SR in the study, holds the panel\'s figures, passes dsrdump and dciodvfy; a second save is refused as a duplicate; refused stores are reported', async () => {
      const page = browser!.page;
      const study = studies.find((s) => s.images.some((i) => /cr-mono2-8bit-jpeg-baseline\.dcm$/.test(i.file))) ?? studies[0];
      assert.deepEqual(await srInstances(orthanc!.dicomWebUrl, study.studyUid), [], 'no SR in the study before saving');
      await openStudy(page, pacsViewer!.url, study.studyUid, 'wasm');
      const variant = await page.locator('[data-cy="zerovar-model"]').inputValue();
      const r = await run(page);
      assert.equal(r.state, 'done', `the study classifies: ${await resultLocator(page).innerText()}`);
      assert.equal(await oodState(page), 'accepted', 'an ordinary chest X-ray is not flagged (a withheld result cannot be saved)');
      await checkClassification(page);
      const shown = await panelFigures(page);
      const save = page.locator('[data-cy="zerovar-save"][data-available]'); // known once the data source answered
      await save.waitFor({ timeout: 10_000 });
      assert.equal(await save.getAttribute('data-available'), 'true', 'the PACS source accepts stores');

      // A PACS that fails (500) or refuses (409): a clear message, nothing stored, the result stays on screen.
      for (const [status, text] of [[500, /^The PACS failed to store the report \(HTTP 500\): disk full\. The result was not saved; it stays on screen\.$/],
        [409, /^The PACS refused the report \(HTTP 409\): conflict\. The result was not saved; it stays on screen\.$/]] as const) {
        const refusal = await refuseStores(page, PROXY_ROOT, study.studyUid, status, status === 500 ? 'disk full' : 'conflict');
        const out = await pressSave(page);
        await refusal.stop();
        assert.equal(refusal.refused(), 1, `the store went to the STOW-RS URL (answered ${status})`);
        assert.equal(out.state, 'failed');
        assert.match(out.message, text);
        assert.equal(await page.locator('[data-cy="zerovar-save-status"]').getAttribute('role'), 'alert');
        assert.deepEqual(await panelFigures(page), shown, `the result stays on screen after a ${status}`);
        assert.equal(await page.locator('[data-cy="zerovar-result"]').getAttribute('data-state'), 'done');
        assert.deepEqual(await srInstances(orthanc!.dicomWebUrl, study.studyUid), [], `nothing stored after a ${status}`);
        assert.deepEqual(await scInstances(orthanc!.dicomWebUrl, study.studyUid), [], `no attention map stored after a ${status}`);
      }
      // (A page screenshot with the message scrolled into view: an element shot of the tall panel cuts at the viewport.)
      await page.locator('[data-cy="zerovar-save-status"]').scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(artifacts, 'save-refused.png') });

      // The real store.
      const saved = await pressSave(page);
      assert.equal(saved.state, 'saved', saved.message);
      assert.match(saved.message, /^Saved to the PACS as a DICOM Structured Report in this study\.$/);
      await page.locator('[data-cy="zerovar-save-status"]').scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(artifacts, 'save-to-pacs.png') });
      const stored = await srInstances(orthanc!.dicomWebUrl, study.studyUid);
      assert.deepEqual(stored, [saved.sop], 'one SR instance in the study, the one the panel named');
      const bytes = await orthancInstanceFile(orthanc!.url, stored[0] ?? '');
      const report = readReport(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
      assertReportMatches(report, shown, study.studyUid, variant);
      const images = (await (await fetch(`${orthanc!.dicomWebUrl}/studies/${study.studyUid}/instances`)).json()) as { '00080018'?: { Value?: string[] } }[];
      assert.ok(images.some((x) => x['00080018']?.Value?.[0] === report.source.sopInstanceUid), 'the report references an image of its study');
      const dump = assertValidSr(bytes);
      assert.match(dump, new RegExp(`Predicted class"\\)="${report.predicted}"`), 'dsrdump reads the predicted class');
      assert.deepEqual(await panelFigures(page), shown, 'the result stays on screen after saving');
      await assertCaptureStored(page, orthanc!.url, orthanc!.dicomWebUrl, study.studyUid, report.source.sopInstanceUid, 'saved');

      // Saving again for the same image and model: reported, not duplicated.
      const again = await pressSave(page);
      assert.equal(again.state, 'duplicate', again.message);
      assert.match(again.message, /^Already saved/);
      assert.equal(again.sop, saved.sop);
      assert.deepEqual(await srInstances(orthanc!.dicomWebUrl, study.studyUid), stored, 'still one SR instance');
      await assertCaptureStored(page, orthanc!.url, orthanc!.dicomWebUrl, study.studyUid, report.source.sopInstanceUid, 'duplicate');

      // Reopened, the study browser lists the SR as a series of its own beside the image series.
      await openStudy(page, pacsViewer!.url, study.studyUid, 'wasm');
      await page.locator(`[data-series="${SR_SERIES_NUMBER}"]`).first().waitFor({ state: 'visible', timeout: 30_000 });
      const series = await studyBrowserSeries(page);
      const sr = series.filter((s) => s.series === SR_SERIES_NUMBER);
      assert.equal(sr.length, 1, `one SR thumbnail: ${JSON.stringify(series)}`);
      assert.ok(series.length >= 3, `the image series, the SR and the attention map: ${JSON.stringify(series)}`);
      assert.equal(series.filter((x) => x.series === CAPTURE_SERIES_NUMBER).length, 1, `one attention map thumbnail: ${JSON.stringify(series)}`);
      assert.match(sr[0]?.text ?? '', /SR/, `the SR thumbnail says SR: ${JSON.stringify(sr)}`);
      console.log(`study browser after saving: ${JSON.stringify(series)}`);
      await page.screenshot({ path: join(artifacts, 'sr-in-study-browser.png') });
      // Opened from the study browser, OHIF shows the report's content tree as text (its text SR viewport):
      // the title, the algorithm, the predicted class and each class's probability, the research notice.
      await page.locator(`[data-series="${SR_SERIES_NUMBER}"]`).first().dblclick();
      const grid = page.locator('[data-cy="viewport-grid"]').first();
      await page.waitForFunction(() => /Predicted class/.test(document.querySelector('[data-cy="viewport-grid"]')?.textContent ?? ''), undefined, { timeout: 30_000 });
      const viewportText = (await grid.innerText()).replace(/\s+/g, ' ').trim();
      console.log(`the SR opened from the study browser: viewport says ${JSON.stringify(viewportText.slice(0, 400))}`);
      assert.match(viewportText, /COVID-19 chest X-ray classification \(research\)/, 'the report\'s title');
      assert.match(viewportText, new RegExp(`Predicted class\\W+${report.predicted}`), 'the predicted class');
      for (const cls of Object.keys(report.probabilities)) assert.match(viewportText, new RegExp(`Probability of ${cls}`), `the probability of ${cls}`);
      assert.match(viewportText, /Research use only/, 'the research-use notice');
      await page.screenshot({ path: join(artifacts, 'sr-opened.png') });
      const crashes = browser!.errors.filter((e) => e.startsWith('pageerror'));
      assert.deepEqual(crashes, [], 'no uncaught page errors');
    });

    test('the embedded folder source: the button is disabled with its reason, and the host refuses a store', async () => {
      const page = browser!.page;
      const study = studies.find((s) => s.images.some((i) => /explicit|jpegls/.test(i.file))) ?? studies[0];
      await openStudy(page, localViewer!.url, study.studyUid, 'wasm');
      const r = await run(page);
      assert.equal(r.state, 'done');
      const save = page.locator('[data-cy="zerovar-save"][data-available]'); // known once the data source answered
      await save.waitFor({ timeout: 10_000 });
      assert.equal(await save.getAttribute('data-available'), 'false');
      assert.equal(await page.locator('[data-cy="zerovar-save-button"]').isDisabled(), true, 'the button is disabled');
      assert.match(await page.locator('[data-cy="zerovar-save-unavailable"]').innerText(),
        /^Saving is unavailable: this data source \(a read-only DICOM folder\) does not accept stores; open the study from a PACS\.$/);
      await page.locator('[data-cy="zerovar-panel"]').screenshot({ path: join(artifacts, 'save-unavailable-local.png') });
      const post = await fetch(`${localViewer!.url}/dicom-web/studies/${study.studyUid}`, { method: 'POST', body: 'x' });
      assert.equal(post.status, 405, 'the embedded source refuses STOW-RS');
    });
  });
});

/** SOP Instance UID -> shared file names (the 10-bit explicit and implicit copies share one instance). */
function filesBySop(dir: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const name of readdirSync(dir).sort()) {
    const sop = parseDicomBytes(new Uint8Array(readFileSync(join(dir, name)))).string('x00080018')?.replace(/\0+$/, '') ?? '';
    out.set(sop, [...(out.get(sop) ?? []), name]);
  }
  return out;
}

describe('every shared file is shown with visible pixels and classified', { timeout: 600_000 }, () => {
  let orthancP: RunningOrthanc | undefined;
  let pacs: RunningViewer | undefined;
  let folder: RunningViewer | undefined;
  let b: TestBrowser | undefined;
  let bySop = new Map<string, string[]>();
  before(async () => {
    requireTools();
    mkdirSync(artifacts, { recursive: true });
    const dicom = sharedPath('dicom');
    bySop = filesBySop(dicom);
    await buildBundles(projectRoot, 'production');
    orthancP = await startOrthanc();
    assert.deepEqual((await orthancP.upload(dicom)).refused, []);
    pacs = await startViewer({ projectRoot, dicomweb: orthancP.dicomWebUrl, port: 0, modelsDir });
    folder = await startViewer({ projectRoot, dicomDir: dicom, port: 0, modelsDir });
    b = await launchBrowser();
  });
  after(async () => {
    await b?.close();
    for (const v of [pacs, folder]) await v?.close();
    await orthancP?.stop();
  });

  for (const source of ['pacs', 'folder'] as const) {
    test(`through ${source === 'pacs' ? 'Orthanc' : 'the embedded folder source'}: each of the shared files shows visible pixels and classifies`, async () => {
      const v = source === 'pacs' ? pacs! : folder!;
      const shown = new Set<string>();
      for (const study of expectedStudies(sharedPath('dicom'))) {
        await openStudy(b!.page, v.url, study.studyUid, 'wasm');
        for (const { sop, pixels } of await eachDisplaySetPixels(b!.page, RENDER_TIMEOUT)) {
          const names = bySop.get(sop) ?? [];
          assert.ok(names.length, `the shown instance ${sop} is one of the shared files`);
          await b!.page.screenshot({ path: join(artifacts, `pixels-${source}-${names[0]}.png`) });
          assert.ok(showsImage(pixels), `${names.join(' / ')} through ${source}: visible pixels in the viewport ${JSON.stringify(pixels)}`);
          // Both two-class bundles, each with an attention map of its predicted class that has something in it.
          for (const model of ['raw', 'masked']) {
            await b!.page.locator('[data-cy="zerovar-model"]').selectOption(model);
            const r = await run(b!.page);
            assert.equal(r.state, 'done', `${names[0]} through ${source} classifies with ${model}: ${await resultLocator(b!.page).innerText()}`);
            await checkClassification(b!.page);
            const note = b!.page.locator('[data-cy="zerovar-attention"]');
            assert.equal(await note.getAttribute('data-empty'), 'false', `${names[0]}, ${model}: ${await note.innerText()}`);
            assert.match(await note.innerText(), /^Attention map: Integrated Grad-CAM of (COVID|Normal)\.$/);
          }
          for (const n of names) shown.add(n);
        }
      }
      assert.deepEqual([...shown].sort(), [...bySop.values()].flat().sort(), 'all shared files were shown');
    });
  }
});
