// Pixel statistics of what the viewport shows, from a screenshot of its element: "rendered" status alone is also
// reached by a viewport that paints black (an undecodable frame, a NaN camera).
import type { Page } from 'playwright-core';
import { decodePng } from '../../trainer/src/data/decode.js';

export interface ViewportPixels {
  width: number;
  height: number;
  /** Mean and standard deviation of the grey levels (0-255). */
  mean: number;
  std: number;
  /** Share of pixels brighter than 24 (the viewport's background is black). */
  lit: number;
}

/** Grey statistics of a screenshot of the first Cornerstone viewport's element. */
export async function viewportPixels(page: Page): Promise<ViewportPixels> {
  const rect = await page.evaluate(() => {
    type Vp = { element: HTMLElement };
    const cs = (window as unknown as { cornerstone: { getRenderingEngines(): { getViewports(): Vp[] }[] } }).cornerstone;
    const r = cs.getRenderingEngines()[0].getViewports()[0].element.getBoundingClientRect();
    return { x: r.x, y: r.y, width: r.width, height: r.height };
  });
  // The viewport's corners carry overlay text: keep its middle 80 %.
  const clip = { x: rect.x + rect.width * 0.1, y: rect.y + rect.height * 0.1, width: rect.width * 0.8, height: rect.height * 0.8 };
  const grey = decodePng(new Uint8Array(await page.screenshot({ clip })));
  return greyStats(grey.data, grey.width, grey.height);
}

export function greyStats(data: ArrayLike<number>, width: number, height: number): ViewportPixels {
  let sum = 0;
  let sq = 0;
  let lit = 0;
  const n = width * height;
  for (let i = 0; i < n; i++) {
    const v = data[i];
    sum += v;
    sq += v * v;
    if (v > 24) lit++;
  }
  const mean = sum / n;
  return { width, height, mean, std: Math.sqrt(Math.max(0, sq / n - mean * mean)), lit: lit / n };
}

/** A radiograph fills much of the viewport with structure; a black or flat viewport does not. */
export function showsImage(p: ViewportPixels): boolean {
  return p.lit > 0.1 && p.std > 12;
}

/**
 * Opens each display set of the study (double-clicking its thumbnail, so every instance of a two-image study is
 * shown in turn) and returns the pixel statistics of each, keyed by the displayed SOP Instance UID.
 */
export async function eachDisplaySetPixels(page: Page, timeoutMs: number): Promise<{ sop: string; pixels: ViewportPixels }[]> {
  const thumbs = page.locator('[data-cy="study-browser-thumbnail"]');
  const n = Math.max(1, await thumbs.count());
  const out: { sop: string; pixels: ViewportPixels }[] = [];
  for (let k = 0; k < n; k++) {
    if (k > 0) await thumbs.nth(k).dblclick();
    const sop = await page.waitForFunction(
      (prev) => {
        type Vp = { viewportStatus?: string; getCurrentImageId?: () => string | undefined };
        const w = window as unknown as {
          cornerstone?: { getRenderingEngines(): { getViewports(): Vp[] }[]; metaData: { get(t: string, id: string): { SOPInstanceUID?: string } | undefined } };
        };
        const vp = w.cornerstone?.getRenderingEngines()[0]?.getViewports()[0];
        const id = vp?.getCurrentImageId?.();
        if (!vp || vp.viewportStatus !== 'rendered' || !id) return false;
        const uid = w.cornerstone?.metaData.get('instance', id)?.SOPInstanceUID;
        return uid && !prev.includes(uid) ? uid : false;
      },
      out.map((o) => o.sop),
      { timeout: timeoutMs, polling: 250 },
    );
    await page.waitForTimeout(500); // the first render after loading may still be the blank one
    out.push({ sop: String(await sop.jsonValue()), pixels: await viewportPixels(page) });
  }
  return out;
}
