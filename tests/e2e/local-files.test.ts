// End to end: without a folder or a PACS the host serves OHIF's local-files source; shared files set on the
// page's file input are parsed and shown in the browser (nothing is requested from a server) and classify. The
// files among them that OHIF alone shows black, the DX file's JPEG 2000 codestream with a trailer and the CR
// study's Pixel Spacing 0\0, show visible pixels through the viewer's own fixes in the page (the host never sees
// these files).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { projectRoot, sharedPath } from '../helpers/shared.js';
import { buildBundles } from '../../scripts/host/build.js';
import { startViewer, type RunningViewer } from '../../scripts/host/viewer.js';
import { chromiumMissing, launchBrowser, waitForRenderedImages, type TestBrowser } from './browser.js';
import { expectedStudies } from './fixtures.js';
import { checkClassification, resultLocator, run } from './panel.js';
import { showsImage, viewportPixels } from './pixels.js';

const artifacts = join(projectRoot, 'test-artifacts', 'local-files');
const modelsDir = resolve(process.env.ZEROVAR_MODELS ?? join(projectRoot, 'models'));
/** An ordinary file, and the three that need the page's fixes. */
const FILES = [
  'cr-mono2-8bit-jpeg-baseline.dcm',
  'dx-mono1-12bit-jpeg2000-lossless.dcm',
  'cr-mono1-15bit-jpeg2000-lossy.dcm',
  'cr-mono1-15bit-jpegls-near-lossless.dcm',
];

let viewer: RunningViewer | undefined;
let browser: TestBrowser | undefined;

describe('local files without a server source (Chromium + OHIF\'s local-files source)', { timeout: 600_000 }, () => {
  before(async () => {
    const missing = chromiumMissing();
    if (missing) throw new Error(`${missing}\n.ci/run installs it.`);
    mkdirSync(artifacts, { recursive: true });
    await buildBundles(projectRoot, 'production');
    viewer = await startViewer({ projectRoot, port: 0, modelsDir });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await viewer?.close();
  });

  test('the host offers the local-files source only', () => {
    assert.deepEqual(viewer!.dataSources.map((d) => d.name), ['dicomlocal']);
    assert.equal(viewer!.startUrl, `${viewer!.url}/local`);
  });

  const modality = new Map(expectedStudies(sharedPath('dicom')).flatMap((s) => s.images.map((i) => [i.file, i.modality] as const)));
  for (const file of FILES) {
    test(`${file}, set on the page's file input, shows visible pixels and classifies`, async () => {
      const page = browser!.page;
      const start = browser!.requests.length;
      await page.goto(viewer!.startUrl);
      const input = page.locator('input[type=file]').first();
      await input.waitFor({ state: 'attached', timeout: 30_000 });
      await input.setInputFiles([sharedPath('dicom', file)]);
      await page.waitForURL(/StudyInstanceUIDs=.*datasources=dicomlocal/, { timeout: 30_000 });
      // The study list of the dropped file: pick the study, then our mode.
      await page.locator('tr').filter({ has: page.getByText(modality.get(file) ?? 'CR', { exact: true }) }).first().click();
      await page.getByRole('button', { name: /COVID-19 chest X-ray \(research\)/ }).click();
      const [id] = await waitForRenderedImages(page, 60_000);
      assert.match(id ?? '', /^dicomfile:/, 'the image comes from the dropped file');
      await page.waitForTimeout(500); // the first render after loading may still be the blank one
      const pixels = await viewportPixels(page);
      await page.screenshot({ path: join(artifacts, `${file}.png`) });
      assert.ok(showsImage(pixels), `visible pixels: ${JSON.stringify(pixels)}`);
      await page.locator('[data-cy="zerovar-model-choice"]').waitFor({ state: 'visible', timeout: 20_000 });
      await page.locator('[data-cy="zerovar-model"]').selectOption('raw');
      const r = await run(page);
      assert.equal(r.state, 'done', `the dropped file classifies: ${await resultLocator(page).innerText()}`);
      await checkClassification(page);
      const dicomRequests = browser!.requests.slice(start).filter((u) => /dicom-web|\.dcm/.test(u));
      assert.deepEqual(dicomRequests, [], 'no DICOM data is requested from a server');
      assert.deepEqual(browser!.errors.filter((e) => e.startsWith('pageerror')), [], 'no uncaught page errors');
    });
  }
});
