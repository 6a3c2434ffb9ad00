// The paper's bias study (xai.py + its attention figures): binary COVID vs Normal models trained on raw and on
// lung-masked images, each tested on its own test split and on external data, and where each one looks: the
// share of its Grad-CAM mass that falls inside the lungs.
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { discoverCsvDataset, discoverDataset, parseFindingMapping, type Sample } from '../data/dataset.js';
import { readGreyImage } from '../data/decode.js';
import { fsFetcher } from '../io/bundle-fs.js';
import { camToRgba } from '../image/colormap.js';
import { upsampleCam } from '../model/gradcam.js';
import { BundleModel } from '../model/inference.js';
import type { ClassificationMetrics } from '../stats/metrics.js';
import { resizeGrey, type GreyImage } from '../image/pixels.js';
import { massInsideMask } from '../model/segmenter.js';
import { writeRgbaPng } from '../report/png.js';
import { writeJsonAtomic } from './experiment.js';
import { lungMasks, loadSegmenter } from './segmenter.js';

export interface AttentionSummary {
  n: number;
  /** Mean share of Grad-CAM mass inside the lung mask (0..1). */
  meanInside: number;
  medianInside: number;
  /** Where the lung masks came from. */
  masksFromDataset: number;
  masksPredicted: number;
}

export interface VariantRow {
  variant: 'raw' | 'masked';
  experiment: string;
  test: ClassificationMetrics;
  external?: ClassificationMetrics & { n: number };
  attention: { test?: AttentionSummary; external?: AttentionSummary };
}

export interface BiasStudy {
  dataset: string;
  external?: string;
  rows: VariantRow[];
  figures: string[];
}

/** Test-split samples of an experiment (as recorded by its data step) or an external dataset's samples. */
export async function externalSamples(dir: string, mapping: string, classes: string[]): Promise<Sample[]> {
  let ds;
  try {
    ds = await discoverDataset(dir);
  } catch {
    ds = await discoverCsvDataset(dir, { mapping: parseFindingMapping(mapping) });
  }
  return ds.samples.filter((s) => classes.includes(s.className));
}

export interface AttentionRecord {
  path: string;
  image: GreyImage;
  mask: GreyImage;
  cams: Float32Array[];
  camW: number;
  camH: number;
  inside: number[];
}

/**
 * Grad-CAM of each bundle (for its predicted class) on the same raw images, and the share of each map inside the
 * lungs. Masked bundles mask the image themselves, as the viewer does.
 */
export async function measureAttention(
  bundles: BundleModel[],
  samples: Sample[],
  segmenterDir: string,
  size: number,
): Promise<{ records: AttentionRecord[]; summaries: AttentionSummary[] }> {
  const seg = await loadSegmenter(segmenterDir);
  const images: GreyImage[] = [];
  const kept: Sample[] = [];
  for (const s of samples) {
    try {
      images.push(resizeGrey(await readGreyImage(s.path), size, size));
      kept.push(s);
    } catch {
      // unreadable: left out of the attention figures, as elsewhere
    }
  }
  const { masks, fromDataset, predicted } = await lungMasks(kept, images, seg);
  seg.model.dispose();
  const records: AttentionRecord[] = images.map((image, i) => {
    const cams: Float32Array[] = [];
    const inside: number[] = [];
    let camW = 0;
    let camH = 0;
    for (const bm of bundles) {
      const e = bm.explain(image);
      cams.push(e.cam);
      camW = e.width;
      camH = e.height;
      inside.push(massInsideMask(e.cam, e.width, e.height, masks[i]));
    }
    return { path: kept[i].path, image, mask: masks[i], cams, camW, camH, inside };
  });
  const summaries = bundles.map((_, b) => {
    const v = records.map((r) => r.inside[b]).filter((x) => Number.isFinite(x));
    const sorted = [...v].sort((x, y) => x - y);
    return {
      n: v.length,
      meanInside: v.length ? v.reduce((a, c) => a + c, 0) / v.length : NaN,
      medianInside: sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)] : NaN,
      masksFromDataset: fromDataset,
      masksPredicted: predicted,
    };
  });
  return { records, summaries };
}

/** Rows of image (lung outline) | attention of bundle 0 | attention of bundle 1 ... */
export async function writeAttentionFigure(path: string, records: AttentionRecord[], cell = 200): Promise<void> {
  if (records.length === 0) return;
  const cols = 1 + records[0].cams.length;
  const gap = 4;
  const width = cols * cell + (cols + 1) * gap;
  const height = records.length * (cell + gap) + gap;
  const rgba = new Uint8Array(width * height * 4).fill(255);
  records.forEach((r, row) => {
    const g = resizeGrey(r.image, cell, cell);
    const m = resizeGrey(r.mask, cell, cell);
    const overlays = r.cams.map((cam) => camToRgba(upsampleCam(cam, r.camW, r.camH, cell, cell), cell, cell, { opacity: 0.5 }));
    for (let c = 0; c < cols; c++) {
      for (let y = 0; y < cell; y++) {
        for (let x = 0; x < cell; x++) {
          const i = y * cell + x;
          const v = g.data[i];
          const at = ((gap + row * (cell + gap) + y) * width + gap + c * (cell + gap) + x) * 4;
          // Lung outline on the first panel: mask pixels with a background neighbour.
          const edge =
            c === 0 && m.data[i] > 127 && (x === 0 || y === 0 || m.data[i - 1] <= 127 || m.data[i - cell] <= 127 || x === cell - 1 || m.data[i + 1] <= 127 || (y < cell - 1 && m.data[i + cell] <= 127));
          for (let k = 0; k < 3; k++) {
            if (c === 0) rgba[at + k] = edge ? [60, 230, 80][k] : v;
            else {
              const o = overlays[c - 1];
              const a = o[i * 4 + 3] / 255;
              rgba[at + k] = Math.round(v * (1 - a) + o[i * 4 + k] * a);
            }
          }
          rgba[at + 3] = 255;
        }
      }
    }
  });
  await writeRgbaPng(path, rgba, width, height);
}

const pct = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : `${(100 * v).toFixed(1)}%`);
const num = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(4));

/** The raw vs masked table as self-contained HTML (figures embedded). */
export function biasStudyHtml(study: BiasStudy, figures: { title: string; png: Uint8Array }[]): string {
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c);
  const rows = study.rows
    .map(
      (r) =>
        `<tr><td>${r.variant}</td><td>${num(r.test.accuracy)}</td><td>${num(r.test.auc.macro)}</td><td>${num(r.external?.accuracy)}</td>` +
        `<td>${num(r.external?.auc.macro)}</td><td>${pct(r.attention.test?.meanInside)}</td><td>${pct(r.attention.external?.meanInside)}</td></tr>`,
    )
    .join('\n');
  const figs = figures
    .map((f) => `<figure><img alt="${esc(f.title)}" src="data:image/png;base64,${Buffer.from(f.png).toString('base64')}"><figcaption>${esc(f.title)}</figcaption></figure>`)
    .join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>Bias study: raw vs lung-masked</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}td:first-child{text-align:left}img{max-width:100%}</style></head><body>
<h1>Bias study: raw vs lung-masked models (COVID vs Normal)</h1>
<p>Dataset ${esc(study.dataset)}${study.external ? `; external data ${esc(study.external)}` : ''}. Research use only.</p>
<table><thead><tr><th>variant</th><th>test accuracy</th><th>test AUC</th><th>external accuracy</th><th>external AUC</th><th>attention in lungs (test)</th><th>attention in lungs (external)</th></tr></thead>
<tbody>${rows}</tbody></table>
<p>Attention in lungs: mean share of the Grad-CAM mass (predicted class, upsampled to 224 px) inside the lung mask
(the dataset's mask where it has one, else the segmenter's).</p>
${figs}
<p>Figures: image with the lung outline | raw model's attention | masked model's attention.</p>
</body></html>`;
}

export async function writeBiasStudy(dir: string, study: BiasStudy, figures: { title: string; png: Uint8Array }[]): Promise<void> {
  writeJsonAtomic(resolve(dir, 'report.json'), study);
  await writeFile(resolve(dir, 'report.html'), biasStudyHtml(study, figures));
}

export async function loadBundles(dirs: string[]): Promise<BundleModel[]> {
  return Promise.all(dirs.map((d) => BundleModel.load(fsFetcher(d))));
}
