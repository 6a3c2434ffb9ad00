// The e2e checks of "Save to PACS": the shown result stored in Orthanc as a DICOM SR in the image's study, read
// back by Orthanc's REST API and parsed (the same figures the panel showed), accepted by DCMTK's dsrdump and
// dicom3tools' dciodvfy; a second save reported, not duplicated; refused stores (500, 409) reported with the result
// kept on screen; the embedded folder source's button disabled with its reason; the SR series in OHIF's study
// browser after reopening the study. Used by viewer.test.ts's own block (which owns the servers and the browser).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page, Route } from 'playwright-core';
import { COMPREHENSIVE_SR, type ReadReport } from '../../extension/src/srReport.js';
import { validateSr } from '../helpers/sr-validate.js';

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

/** The SR instances Orthanc holds in a study (QIDO-RS straight at Orthanc, not through the viewer's proxy). */
export async function srInstances(dicomWebUrl: string, studyUid: string): Promise<string[]> {
  const r = await fetch(`${dicomWebUrl}/studies/${studyUid}/instances?SOPClassUID=${COMPREHENSIVE_SR}`, { headers: { Accept: 'application/dicom+json' } });
  if (r.status === 204) return [];
  assert.equal(r.status, 200, `QIDO for the study's SR instances: HTTP ${r.status}`);
  const list = (await r.json()) as { '00080018'?: { Value?: string[] } }[];
  return list.map((x) => x['00080018']?.Value?.[0] ?? '');
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
