// The viewer benchmark's in-page figures: the real OHIF page with our mode, the bench's test image served by the
// embedded DICOM folder source, the panel's Run pressed and its own run info read back (Total, backend and why,
// inference, model load). A fresh page per backend order, so its first Run is what a radiologist waits for on
// opening a study (backend selection, bundle fetch and checks, model load, first classification + Grad-CAM); the
// next Runs are warm. Beside the worker-only figures this says what the page adds (React, the displayed image's
// pixels, the overlay).
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { ROUTE_NAME } from '../../mode/src/index.js';
import { startViewer } from '../../scripts/host/viewer.js';
import { waitForRenderedImages } from '../e2e/browser.js';

/** One Run in the page, as its panel reported it. */
export interface PanelRun {
  variant: string;
  backend: string;
  why: string;
  /** The panel's Total (press to result, Grad-CAM included), ms. */
  totalMs: number;
  /** The panel's Inference row, e.g. "412 ms + Grad-CAM 96 ms". */
  inference: string;
  modelLoad: string;
}

export interface PageMeasure {
  /** The backend order asked for ('auto': the page's own, no override). */
  order: string;
  runs: PanelRun[];
  error?: string;
}

const RUN_TIMEOUT_MS = 240_000;

/** Milliseconds from the panel's "123 ms" / "4.5 ms". */
export function panelMs(text: string): number {
  const m = /([\d.]+)\s*ms/.exec(text);
  return m ? Number(m[1]) : NaN;
}

async function pressRun(page: Page): Promise<PanelRun> {
  const result = page.locator('[data-cy="zerovar-result"]');
  const runs = Number(await result.getAttribute('data-runs'));
  await page.locator('[data-cy="zerovar-run"]').click();
  const done = page.locator(`[data-cy="zerovar-result"][data-runs="${runs + 1}"]:is([data-state="done"], [data-state="failed"])`);
  await done.waitFor({ timeout: RUN_TIMEOUT_MS });
  if ((await done.getAttribute('data-state')) !== 'done') throw new Error(`the run failed: ${(await done.innerText()).slice(0, 300)}`);
  const row = async (k: string) => {
    const l = page.locator(`[data-cy="zerovar-run-info-${k}"]`);
    return (await l.count()) ? (await l.innerText()).trim() : '';
  };
  return {
    variant: await page.locator('[data-cy="zerovar-model"]').inputValue(),
    backend: await row('backend'),
    why: await row('backend-choice'),
    totalMs: panelMs(await row('total')),
    inference: await row('inference'),
    modelLoad: await row('model-load'),
  };
}

/**
 * Opens the viewer on `dicomFile` once per backend order and presses Run: first, then `warm` more, for the model the
 * page opens on and then the other variant (its first Run there is a model load on a started backend).
 */
export async function measureInViewer(o: {
  context: BrowserContext; projectRoot: string; modelsDir: string; dicomFile: string; orders: string[]; warm: number;
}): Promise<PageMeasure[]> {
  const dir = mkdtempSync(join(tmpdir(), 'zerovar-bench-viewer-'));
  copyFileSync(o.dicomFile, join(dir, 'image.dcm'));
  const viewer = await startViewer({ projectRoot: o.projectRoot, dicomDir: dir, modelsDir: o.modelsDir, port: 0 });
  const out: PageMeasure[] = [];
  try {
    const studies = (await (await fetch(`${viewer.url}/dicom-web/studies`)).json()) as { '0020000D'?: { Value?: string[] } }[];
    const study = studies[0]?.['0020000D']?.Value?.[0];
    if (!study) throw new Error('the embedded source lists no study for the test image');
    for (const order of o.orders) {
      const page = await o.context.newPage();
      const m: PageMeasure = { order, runs: [] };
      try {
        const query = order === 'auto' ? '' : `&zerovarBackends=${order}`;
        await page.goto(`${viewer.url}/${ROUTE_NAME}?StudyInstanceUIDs=${study}${query}`);
        await waitForRenderedImages(page, 120_000);
        await page.locator('[data-cy="zerovar-model-choice"]').waitFor({ state: 'visible', timeout: 60_000 });
        const select = page.locator('[data-cy="zerovar-model"]');
        const first = await select.inputValue();
        const variants = [first, ...(await select.locator('option').evaluateAll((os) => os.map((x) => (x as HTMLOptionElement).value)))
          .filter((v) => v && v !== first)];
        for (const v of variants) {
          if ((await select.inputValue()) !== v) await select.selectOption(v);
          for (let i = 0; i <= o.warm; i++) m.runs.push(await pressRun(page));
        }
      } catch (e) {
        m.error = e instanceof Error ? e.message.split('\n')[0] : String(e);
      } finally {
        await page.close();
      }
      out.push(m);
    }
  } finally {
    await viewer.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const k = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2;
};
const fmt = (v: number) => (Number.isFinite(v) ? (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(0)} ms`) : '-');

/** First and warm (median) Totals per order and model, against the goals (first <= 1.5 s, warm <= 150 ms). */
export function printPageTable(measures: PageMeasure[]): void {
  console.log('\nIn the viewer page (OHIF + our mode; the panel\'s own figures: Total = press Run to result with Grad-CAM):');
  for (const m of measures) {
    if (m.error && m.runs.length === 0) {
      console.log(`  ${m.order.padEnd(12)} failed: ${m.error}`);
      continue;
    }
    for (const variant of [...new Set(m.runs.map((r) => r.variant))]) {
      const runs = m.runs.filter((r) => r.variant === variant);
      const [first, ...warm] = runs;
      if (!first) continue;
      const w = median(warm.map((r) => r.totalMs));
      const pageFirst = variant === m.runs[0]?.variant;
      const goalFirst = pageFirst ? (first.totalMs <= 1500 ? 'meets <= 1.5 s' : 'MISSES <= 1.5 s') : 'model switch';
      const goalWarm = Number.isFinite(w) ? (w <= 150 ? 'meets <= 150 ms' : 'MISSES <= 150 ms') : '';
      console.log(`  ${m.order.padEnd(12)} ${variant.padEnd(7)} backend ${first.backend.padEnd(7)} first ${fmt(first.totalMs).padStart(8)} (${goalFirst}; ` +
        `model load ${first.modelLoad}; ${first.inference})  warm ${fmt(w).padStart(7)} (${goalWarm}; n=${warm.length}; last ${warm.at(-1)?.inference ?? '-'})`);
    }
    const why = m.runs[0]?.why;
    if (why) console.log(`  ${''.padEnd(12)} backend choice: ${why}`);
    if (m.error) console.log(`  ${''.padEnd(12)} stopped: ${m.error}`);
  }
}
