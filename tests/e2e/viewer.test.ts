// End to end: our bundles in the prebuilt OHIF viewer, in Debian Chromium, against Orthanc (through the host's
// same-origin proxy) and against the embedded DICOMweb folder source (with corrupt files in the folder).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { projectRoot, sharedPath } from '../helpers/shared.js';
import { buildBundles } from '../../scripts/host/build.js';
import { orthancMissing, startOrthanc, type RunningOrthanc } from '../../scripts/host/orthanc.js';
import { startViewer, type RunningViewer } from '../../scripts/host/viewer.js';
import { ROUTE_NAME } from '../../mode/src/index.js';
import { chromiumMissing, launchBrowser, waitForRenderedImages, type TestBrowser } from './browser.js';
import { expectedStudies, folderWithCorruptFiles, type ExpectedStudy } from './fixtures.js';

const artifacts = join(projectRoot, 'test-artifacts', 'viewer');
const RENDER_TIMEOUT = 60_000;
/**
 * Shared files that OHIF's own decoders cannot decode, whichever source serves them (the same bytes decode to
 * nothing with @cornerstonejs/codec-openjpeg in Node as well).
 */
const UNDECODABLE: Record<string, string> = {
  'dx-mono1-12bit-jpeg2000-lossless.dcm': 'OpenJPEG rejects this codestream ("Stream too short, expected SOT")',
};

let orthanc: RunningOrthanc | undefined;
let pacsViewer: RunningViewer | undefined;
let localViewer: RunningViewer | undefined;
let browser: TestBrowser | undefined;
let studies: ExpectedStudy[] = [];
let corrupt: { dir: string; corrupt: string[] } | undefined;

function requireTools(): void {
  const missing = [chromiumMissing(), orthancMissing()].filter(Boolean);
  if (missing.length) throw new Error(`${missing.join('\n')}\n.ci/run installs them (apt packages chromium orthanc orthanc-dicomweb).`);
}

/** Opens a study in our mode, checks panel, Run and the overlay toggle; returns the Run result's text. */
async function checkStudy(page: Page, base: string, study: ExpectedStudy, shot: string): Promise<void> {
  await page.goto(`${base}/${ROUTE_NAME}?StudyInstanceUIDs=${study.studyUid}`);
  const [imageId] = await waitForRenderedImages(page, RENDER_TIMEOUT);
  assert.ok(imageId?.startsWith('wadors:'), `expected a WADO-RS image id, got ${imageId}`);

  const panel = page.locator('[data-cy="zerovar-panel"]');
  await panel.waitFor({ state: 'visible', timeout: 20_000 });
  const notice = page.locator('[data-cy="zerovar-notice"]');
  assert.ok(await notice.isVisible(), 'research notice is visible');
  assert.match(await notice.innerText(), /Research use only .* not for diagnosis/);
  assert.ok(await page.locator('[data-cy="zerovar-model"] option[value="masked"]').count(), 'masked model is offered');

  await page.locator('[data-cy="zerovar-run"]').click();
  const result = page.locator('[data-cy="zerovar-result"][data-state="done"], [data-cy="zerovar-result"][data-state="failed"]');
  await result.waitFor({ timeout: 20_000 });
  const undecodable = study.images.map((im) => UNDECODABLE[im.file]).find(Boolean);
  if (undecodable) {
    // The viewer stays usable and the panel says why it has nothing to read.
    assert.equal(await result.getAttribute('data-state'), 'failed', `${undecodable}: Run cannot succeed`);
    assert.match(await page.locator('[data-cy="zerovar-error"]').innerText(), /could not decode/);
    await page.screenshot({ path: join(artifacts, `${shot}.png`) });
    return;
  }
  assert.equal(await result.getAttribute('data-state'), 'done', `Run failed: ${await result.innerText()}`);
  const modality = await page.locator('[data-cy="zerovar-result-rows-modality"]').innerText();
  const size = await page.locator('[data-cy="zerovar-result-rows-size"]').innerText();
  const shown = study.images.find((im) => im.modality === modality && size === `${im.columns} × ${im.rows}`);
  assert.ok(shown, `Run reported ${modality} ${size}; the study has ${study.images.map((i) => `${i.modality} ${i.columns} × ${i.rows}`).join(', ')}`);
  const pixelsRead = await page.locator('[data-cy="zerovar-result-rows-pixels-read"]').innerText();
  assert.ok(pixelsRead.startsWith(`${shown.columns * shown.rows} `), `all pixels were read: ${pixelsRead}`);

  // The toolbar toggle shows and hides the overlay; the test pattern puts visible pixels on it.
  const overlayButton = page.locator('[data-cy="zerovar-overlay"]');
  await overlayButton.waitFor({ state: 'visible', timeout: 10_000 });
  await page.locator('[data-cy="zerovar-test-overlay"]').click();
  const canvas = page.locator('canvas[data-zerovar-overlay]');
  await page.waitForFunction(() => document.querySelector('canvas[data-zerovar-overlay]')?.getAttribute('data-zerovar-overlay') === 'visible');
  assert.equal(await canvas.getAttribute('data-zerovar-heatmap'), 'test-pattern');
  const painted = () =>
    canvas.evaluate((c: HTMLCanvasElement) => {
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i]! > 0) n++;
      return n;
    });
  assert.ok((await painted()) > 1000, 'the test pattern is drawn over the image');
  await page.screenshot({ path: join(artifacts, `${shot}-overlay.png`) });
  await overlayButton.click();
  assert.equal(await canvas.getAttribute('data-zerovar-overlay'), 'hidden');
  assert.equal(await painted(), 0, 'hiding clears the overlay');
  await overlayButton.click();
  assert.equal(await canvas.getAttribute('data-zerovar-overlay'), 'visible');
  assert.ok((await painted()) > 1000, 'showing again redraws it');
  await page.screenshot({ path: join(artifacts, `${shot}.png`) });
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
    await buildBundles(projectRoot, 'production');
    orthanc = await startOrthanc();
    const { uploaded, refused } = await orthanc.upload(dicom);
    assert.deepEqual(refused, [], 'Orthanc accepts every shared DICOM file');
    assert.ok(uploaded.length >= studies.length);
    pacsViewer = await startViewer({ projectRoot, dicomweb: orthanc.dicomWebUrl, port: 0 });
    localViewer = await startViewer({ projectRoot, dicomDir: corrupt.dir, port: 0 });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await pacsViewer?.close();
    await localViewer?.close();
    await orthanc?.stop();
    if (corrupt) rmSync(corrupt.dir, { recursive: true, force: true });
  });

  test('the host serves the viewer cross-origin isolated with our app-config', async () => {
    const r = await fetch(`${pacsViewer!.url}/${ROUTE_NAME}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('cross-origin-opener-policy'), 'same-origin');
    assert.equal(r.headers.get('cross-origin-embedder-policy'), 'require-corp');
    const config = await (await fetch(`${pacsViewer!.url}/app-config.js`)).text();
    assert.match(config, /"\/zerovar\/extension\.js"/);
    assert.match(config, /"\/pacs\/dicom-web"/);
    const qido = (await (await fetch(`${pacsViewer!.url}/pacs/dicom-web/studies`)).json()) as unknown[];
    assert.equal(qido.length, studies.length, 'the proxy answers QIDO from Orthanc');
  });

  test('every study opens in our mode from Orthanc: panel, notice, Run, overlay toggle', async () => {
    const b = browser!;
    const start = b.requests.length;
    for (const [k, study] of studies.entries()) {
      await checkStudy(b.page, pacsViewer!.url, study, `pacs-${k + 1}`);
    }
    assertSameOrigin(b.requests.slice(start), [pacsViewer!.url]);
    assert.ok(b.requests.slice(start).some((u) => u.includes('/pacs/dicom-web/') && u.includes('/frames/')), 'frames came through the proxy');
    const crashes = b.errors.filter((e) => e.startsWith('pageerror'));
    assert.deepEqual(crashes, [], 'no uncaught page errors');
  });

  test('the embedded DICOM folder source serves the viewer and survives corrupt files', async () => {
    const v = localViewer!;
    const skipped = v.skippedFiles.map((s) => s.file);
    for (const c of corrupt!.corrupt) assert.ok(skipped.includes(c), `${c} is skipped (${JSON.stringify(v.skippedFiles)})`);
    const qido = (await (await fetch(`${v.url}/dicom-web/studies`)).json()) as unknown[];
    assert.equal(qido.length, studies.length, 'every valid study is listed');
    const b = browser!;
    const start = b.requests.length;
    // The 10-bit native study (explicit + implicit VR copies) and the JPEG 2000 / JPEG-LS study.
    const picks = studies.filter((s) => s.images.some((i) => /explicit|jpegls/.test(i.file)));
    assert.ok(picks.length >= 1);
    for (const [k, study] of picks.entries()) await checkStudy(b.page, v.url, study, `local-${k + 1}`);
    assertSameOrigin(b.requests.slice(start), [v.url]);
    const health = await fetch(`${v.url}/dicom-web/studies`);
    assert.equal(health.status, 200, 'the server still answers after the viewer session');
  });
});
