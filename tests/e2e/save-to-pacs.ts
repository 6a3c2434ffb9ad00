// The e2e checks of "Save to PACS": the shown result stored in Orthanc as a DICOM SR in the image's study, read
// back by Orthanc's REST API and parsed (the same figures the panel showed), accepted by DCMTK's dsrdump and
// dicom3tools' dciodvfy; the attention map stored beside it as a Secondary Capture (read back, dciodvfy); a
// second save reported, not duplicated; refused stores (500, 409) reported with the result
// kept on screen; the embedded folder source's button disabled with its reason; the SR series in OHIF's study
// browser after reopening the study. Used by viewer.test.ts's own block (which owns the servers and the browser).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page, Route } from 'playwright-core';
import { CAPTURE_SERIES_NUMBER, readCapture, SECONDARY_CAPTURE } from '../../extension/src/attentionCapture.js';
import { COMPREHENSIVE_SR, type ReadReport } from '../../extension/src/srReport.js';
import { validateSr, verifyIod } from '../helpers/sr-validate.js';

/** What the panel shows for a result: probabilities per class, the predicted class, the guard's state. */
export interface PanelFigures {
  probabilities: Record<string, number>;
  predicted: string;
  ood: string | null;
}

export async function panelFigures(page: Page): Promise<PanelFigures> {
  const rows = page.locator('[data-cy="zerovar-probabilities"] [data-probability]');
  const probabilities: Record<string, number> = {};
  for (let i = 0; i < (await rows.count()); i++) {
    const row = rows.nth(i);
    probabilities[(await row.getAttribute('data-class')) ?? ''] = Number(await row.getAttribute('data-probability'));
  }
  const predicted = (await page.locator('[data-cy="zerovar-predicted"]').getAttribute('data-class')) ?? '';
  return { probabilities, predicted, ood: await page.locator('[data-cy="zerovar-result"]').getAttribute('data-ood') };
}

/**
 * The instances of one SOP class Orthanc holds in a study (QIDO-RS straight at Orthanc, not through the viewer's
 * proxy); with `seriesNumber`, only those of series of that number.
 */
export async function instancesOfClass(dicomWebUrl: string, studyUid: string, sopClassUid: string, seriesNumber?: string): Promise<string[]> {
  const r = await fetch(`${dicomWebUrl}/studies/${studyUid}/instances?SOPClassUID=${sopClassUid}&includefield=00200011`, { headers: { Accept: 'application/dicom+json' } });
  if (r.status === 204) return [];
  assert.equal(r.status, 200, `QIDO for the study's ${sopClassUid} instances: HTTP ${r.status}`);
  const list = (await r.json()) as Record<string, { Value?: unknown[] } | undefined>[];
  return list
    .filter((x) => seriesNumber === undefined || String(x['00200011']?.Value?.[0] ?? '') === seriesNumber)
    .map((x) => String(x['00080018']?.Value?.[0] ?? ''));
}

/** The SR instances Orthanc holds in a study. */
export const srInstances = (dicomWebUrl: string, studyUid: string) => instancesOfClass(dicomWebUrl, studyUid, COMPREHENSIVE_SR);
/** The attention maps Orthanc holds in a study: Secondary Captures in our series (the study's images may be SC too). */
export const scInstances = (dicomWebUrl: string, studyUid: string) =>
  instancesOfClass(dicomWebUrl, studyUid, SECONDARY_CAPTURE, CAPTURE_SERIES_NUMBER);

/**
 * After a save: the panel says the attention map was stored (or recognised), Orthanc holds exactly that one
 * Secondary Capture in the study, it reads back (dcmjs) referencing the report's source image, its pixels are the
 * image with the map drawn over it (tinted where the panel's map is not empty), and dciodvfy finds no error.
 */
export async function assertCaptureStored(
  page: Page, orthancUrl: string, dicomWebUrl: string, studyUid: string, sourceSop: string, state: 'saved' | 'duplicate',
): Promise<void> {
  const line = page.locator('[data-cy="zerovar-save-capture"]');
  assert.equal(await line.getAttribute('data-state'), state, await line.innerText());
  const sop = (await line.getAttribute('data-sop')) ?? '';
  assert.deepEqual(await scInstances(dicomWebUrl, studyUid), [sop], 'one Secondary Capture in the study, the one the panel named');
  const bytes = await orthancInstanceFile(orthancUrl, sop);
  const sc = readCapture(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
  assert.equal(sc.studyInstanceUid, studyUid);
  assert.equal(sc.source.sopInstanceUid, sourceSop, 'the capture references the report\'s source image');
  assert.ok(sc.columns > 0 && sc.columns <= 512 && sc.rows > 0 && sc.rows <= 512, `${sc.columns} x ${sc.rows}`);
  assert.equal(sc.pixels.length, sc.columns * sc.rows * 3);
  let lit = 0;
  let tinted = 0;
  for (let i = 0; i < sc.pixels.length; i += 3) {
    const [r, g, b] = [sc.pixels[i], sc.pixels[i + 1], sc.pixels[i + 2]];
    if (r + g + b > 60) lit++;
    if (Math.max(r, g, b) - Math.min(r, g, b) > 30) tinted++;
  }
  assert.ok(lit > 0.1 * sc.rows * sc.columns, `the image shows in the capture (${lit} lit pixels)`);
  const empty = (await page.locator('[data-cy="zerovar-attention"]').getAttribute('data-empty')) === 'true';
  assert.ok(empty ? tinted === 0 : tinted > 100, `the map is drawn over it (${tinted} coloured pixels, panel's map ${empty ? 'empty' : 'not empty'})`);
  const dir = mkdtempSync(join(tmpdir(), 'zerovar-e2e-sc-'));
  try {
    writeFileSync(join(dir, 'sc.dcm'), bytes);
    const v = verifyIod(join(dir, 'sc.dcm'));
    assert.deepEqual(v.dciodvfyErrors, [], v.dciodvfy);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The stored file of one instance, by Orthanc's REST API (lookup by SOP Instance UID, then /instances/{id}/file). */
export async function orthancInstanceFile(orthancUrl: string, sopInstanceUid: string): Promise<Uint8Array> {
  const found = (await (await fetch(`${orthancUrl}/tools/lookup`, { method: 'POST', body: sopInstanceUid })).json()) as { ID: string; Type: string }[];
  const inst = found.find((f) => f.Type === 'Instance');
  assert.ok(inst, `Orthanc knows instance ${sopInstanceUid}: ${JSON.stringify(found)}`);
  const r = await fetch(`${orthancUrl}/instances/${inst.ID}/file`);
  assert.equal(r.status, 200);
  return new Uint8Array(await r.arrayBuffer());
}

/** The read-back report holds what the panel showed (probabilities to DS's six significant digits). */
export function assertReportMatches(report: ReadReport, shown: PanelFigures, study: string, variant: string): void {
  assert.equal(report.sopClassUid, COMPREHENSIVE_SR);
  assert.equal(report.modality, 'SR');
  assert.equal(report.studyInstanceUid, study, 'the report is in the image\'s study');
  assert.equal(report.predicted, shown.predicted, 'the report\'s predicted class is the panel\'s');
  assert.deepEqual(Object.keys(report.probabilities).sort(), Object.keys(shown.probabilities).sort(), 'the same classes');
  for (const [cls, p] of Object.entries(shown.probabilities)) {
    const saved = report.probabilities[cls] ?? NaN;
    assert.ok(Math.abs(saved - p) <= 1e-5 * Math.max(1, p), `probability of ${cls}: report ${saved}, panel ${p}`);
  }
  assert.equal(report.variant, variant);
  assert.match(report.bundleSha256, /^[0-9a-f]{64}$/);
  assert.match(report.algorithmName, /zerovar/);
  assert.match(report.notice, /^Research use only/);
  assert.match(report.oodVerdict, shown.ood === 'flagged' ? /^flagged/ : shown.ood === 'accepted' ? /^accepted/ : /^no guard/);
  assert.ok(report.source.sopInstanceUid, 'the report references its source image');
}

/** dsrdump reads the file without errors and dciodvfy reports none; returns dsrdump's text. */
export function assertValidSr(bytes: Uint8Array): string {
  const dir = mkdtempSync(join(tmpdir(), 'zerovar-e2e-sr-'));
  try {
    const file = join(dir, 'sr.dcm');
    writeFileSync(file, bytes);
    const v = validateSr(file);
    assert.match(v.dsrdump, /Comprehensive SR Document/);
    assert.deepEqual(v.dciodvfyErrors, [], v.dciodvfy);
    return v.dsrdump;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Clicks "Save to PACS" and waits for the outcome; returns its state (saved, duplicate, failed) and message. */
export async function pressSave(page: Page): Promise<{ state: string; message: string; sop: string | null }> {
  const save = page.locator('[data-cy="zerovar-save"]');
  const button = page.locator('[data-cy="zerovar-save-button"]');
  await button.waitFor({ state: 'visible', timeout: 10_000 });
  assert.equal(await button.isEnabled(), true, `the save button is enabled: ${await save.innerText()}`);
  await button.click();
  await page.locator('[data-cy="zerovar-save"]:is([data-state="saved"], [data-state="duplicate"], [data-state="failed"])').waitFor({ timeout: 30_000 });
  const status = page.locator('[data-cy="zerovar-save-status"]');
  return { state: (await save.getAttribute('data-state')) ?? '', message: await status.innerText(), sop: await status.getAttribute('data-sop') };
}

/**
 * Answers the page's STOW-RS POST to `{proxy}/studies/{study}` with `status` (searches pass through); returns a
 * function that removes the route and the number of stores it refused.
 */
export async function refuseStores(page: Page, proxyRoot: string, study: string, status: number, body: string): Promise<{ stop(): Promise<void>; refused(): number }> {
  let refused = 0;
  const matches = (u: URL) => u.pathname === `${proxyRoot}/studies/${study}`;
  const handler = async (route: Route) => {
    if (route.request().method() !== 'POST') return route.continue();
    refused++;
    return route.fulfill({ status, contentType: 'text/plain', body });
  };
  await page.route(matches, handler);
  return { stop: () => page.unroute(matches, handler), refused: () => refused };
}

/** The study browser's thumbnails (OHIF 3.13: data-cy study-browser-thumbnail[-no-image], data-series = series number). */
export async function studyBrowserSeries(page: Page): Promise<{ series: string; kind: string; text: string }[]> {
  const thumbs = page.locator('[data-cy="study-browser-thumbnail"], [data-cy="study-browser-thumbnail-no-image"]');
  const out: { series: string; kind: string; text: string }[] = [];
  for (let i = 0; i < (await thumbs.count()); i++) {
    const t = thumbs.nth(i);
    out.push({
      series: (await t.getAttribute('data-series')) ?? '',
      kind: (await t.getAttribute('data-cy')) ?? '',
      text: (await t.innerText()).replace(/\s+/g, ' ').trim(),
    });
  }
  return out;
}
