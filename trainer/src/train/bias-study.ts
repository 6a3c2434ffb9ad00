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
import { maskOutline } from '../image/outline.js';
import { resizeGrey, type GreyImage } from '../image/pixels.js';
import { massInsideMask } from '../model/segmenter.js';
import { escapeXml } from '../report/charts.js';
import { figure, htmlPage, pngUri, table } from '../report/html.js';
import { imageGrid, markedCell, overlayCell, writeRgbaPng } from '../report/png.js';
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
  const cells = records.map((r) => {
    const g = resizeGrey(r.image, cell, cell).data;
    const outline = maskOutline(resizeGrey(r.mask, cell, cell).data, cell, cell);
    const overlays = r.cams.map((cam) => overlayCell(g, camToRgba(upsampleCam(cam, r.camW, r.camH, cell, cell), cell, cell, { opacity: 0.5 })));
    return [markedCell(g, outline, [60, 230, 80]), ...overlays];
  });
  const grid = imageGrid(cells, cell);
  await writeRgbaPng(path, grid.rgba, grid.width, grid.height);
}

const pct = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : `${(100 * v).toFixed(1)}%`);
const num = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(4));

/** The raw vs masked table as a self-contained HTML report (figures embedded). */
export function biasStudyHtml(study: BiasStudy, figures: { title: string; png: Uint8Array }[]): string {
  const head = ['variant', 'test accuracy', 'test AUC', 'external accuracy', 'external AUC', 'attention in lungs (test)', 'attention in lungs (external)'];
  const rows = study.rows.map((r) => [
    r.variant,
    num(r.test.accuracy),
    num(r.test.auc.macro),
    num(r.external?.accuracy),
    num(r.external?.auc.macro),
    pct(r.attention.test?.meanInside),
    pct(r.attention.external?.meanInside),
  ]);
  const figs = figures.map((f) => figure(`<img alt="${escapeXml(f.title)}" src="${pngUri(f.png)}">`, f.title)).join('\n');
  return htmlPage(
    'Bias study: raw vs lung-masked models (COVID vs Normal)',
    `<p>Dataset ${escapeXml(study.dataset)}${study.external ? `; external data ${escapeXml(study.external)}` : ''}.</p>` +
      table(head, rows, 'metrics') +
      '<p>Attention in lungs: mean share of the Grad-CAM mass (predicted class, upsampled to 224 px) inside the lung mask ' +
      "(the dataset's mask where it has one, else the segmenter's).</p>" +
      `${figs}<p>Figures: image with the lung outline | raw model's attention | masked model's attention.</p>`,
  );
}

export async function writeBiasStudy(dir: string, study: BiasStudy, figures: { title: string; png: Uint8Array }[]): Promise<void> {
  writeJsonAtomic(resolve(dir, 'report.json'), study);
  await writeFile(resolve(dir, 'report.html'), biasStudyHtml(study, figures));
}

export async function loadBundles(dirs: string[]): Promise<BundleModel[]> {
  return Promise.all(dirs.map((d) => BundleModel.load(fsFetcher(d))));
}
