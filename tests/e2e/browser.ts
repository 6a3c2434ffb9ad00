// Debian Chromium through playwright-core, with a throw-away profile, for the viewer's end-to-end test.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page, type Request } from 'playwright-core';

export const CHROMIUM = process.env.ZEROVAR_CHROMIUM ?? '/usr/bin/chromium';

export function chromiumMissing(): string | undefined {
  return existsSync(CHROMIUM)
    ? undefined
    : `Chromium is not installed (${CHROMIUM} missing): install the Debian package chromium (.ci/run does)`;
}

export interface TestBrowser {
  context: BrowserContext;
  page: Page;
  /** Every request the page made, in order. */
  requests: string[];
  /** Console errors and uncaught page errors. */
  errors: string[];
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<TestBrowser> {
  const missing = chromiumMissing();
  if (missing) throw new Error(missing);
  const profile = mkdtempSync(join(tmpdir(), 'zerovar-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const requests: string[] = [];
  const errors: string[] = [];
  context.on('request', (r: Request) => requests.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return {
    context,
    page,
    requests,
    errors,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Waits until every Cornerstone viewport is rendered *with an image*: status 'rendered' alone is reached once
 * before the stack's first image arrives. Returns the displayed image ids.
 */
export async function waitForRenderedImages(page: Page, timeoutMs: number): Promise<string[]> {
  const handle = await page.waitForFunction(
    () => {
      type Vp = { viewportStatus?: string; getCurrentImageId?: () => string | undefined };
      const cs = (window as unknown as {
        cornerstone?: { getRenderingEngines?: () => { getViewports(): Vp[] }[]; cache?: { getImage(id: string): unknown } };
      }).cornerstone;
      const viewports = (cs?.getRenderingEngines?.() ?? []).flatMap((e) => e.getViewports());
      if (viewports.length === 0) return false;
      const ids: string[] = [];
      for (const v of viewports) {
        const id = v.getCurrentImageId?.();
        if (v.viewportStatus !== 'rendered' || !id || !cs?.cache?.getImage(id)) return false;
        ids.push(id);
      }
      return ids;
    },
    undefined,
    { timeout: timeoutMs, polling: 250 },
  );
  return (await handle.jsonValue()) as string[];
}
