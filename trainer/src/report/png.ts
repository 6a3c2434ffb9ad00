// PNG output for the report: SVG charts rendered with resvg, and figure grids (Grad-CAM, segmentation, attention)
// composed pixel by pixel.
import { Resvg, type ResvgRenderOptions } from '@resvg/resvg-js';
import { PNG } from 'pngjs';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { blendOverGrey, camToRgba } from '../image/colormap.js';
import { upsampleCam } from '../model/gradcam.js';
import { escapeXml, FONT_FAMILY } from './charts.js';

/** A greyscale image (8-bit, row-major), as produced by the image decoders. */
export interface GreyImageLike {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Fonts to try first (Debian/Ubuntu's DejaVu); the system's fonts are searched as well. */
const PREFERRED_FONTS = ['/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf'];

function resvgOptions(width?: number): ResvgRenderOptions {
  const fontFiles = [
    ...PREFERRED_FONTS,
    ...(process.env.ZEROVAR_FONT ? process.env.ZEROVAR_FONT.split(':') : []),
  ].filter((f) => existsSync(f));
  return {
    fitTo: width ? { mode: 'width', value: width } : { mode: 'original' },
    background: '#ffffff',
    font: { loadSystemFonts: true, fontFiles, defaultFontFamily: fontFiles.length > 0 ? 'DejaVu Sans' : undefined },
  };
}

/** Renders an SVG document to PNG bytes; `width` scales it (default: the SVG's own size). Text needs a font:
 * DejaVu Sans or any system font (set ZEROVAR_FONT to extra font files, colon-separated, where none exist). */
export function svgToPng(svg: string, width?: number): Uint8Array {
  const png = new Resvg(svg, resvgOptions(width)).render().asPng();
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}

/** Renders an SVG document to RGBA pixels. */
export function svgToRgba(svg: string, width?: number): { rgba: Uint8Array; width: number; height: number } {
  const img = new Resvg(svg, resvgOptions(width)).render();
  const px = img.pixels;
  return { rgba: new Uint8Array(px.buffer, px.byteOffset, px.byteLength), width: img.width, height: img.height };
}

export function encodeRgbaPng(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number): Uint8Array {
  if (rgba.length !== width * height * 4) throw new Error(`encodeRgbaPng: expected ${width * height * 4} bytes, got ${rgba.length}`);
  const png = new PNG({ width, height });
  png.data = Buffer.from(rgba.buffer, rgba.byteOffset, rgba.byteLength);
  const out = PNG.sync.write(png);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

export async function writeRgbaPng(path: string, rgba: Uint8Array | Uint8ClampedArray, width: number, height: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, encodeRgbaPng(rgba, width, height));
}

/** Bilinear resize of a greyscale image to a size x size square (the model's "stretch" resize), unrounded. */
function resizeGreyExact(img: GreyImageLike, size: number): Float32Array {
  const as = new Float32Array(img.data.length);
  for (let i = 0; i < as.length; i++) as[i] = img.data[i];
  return upsampleCam(as, img.width, img.height, size, size);
}

// ---------------------------------------------------------------------------------------------------------------
// Figure grids: every figure (Grad-CAM rows, the segmenter's evaluation, the bias study's attention) is square
// cells of RGB pixels in rows, on white with a gap around each cell, optionally with a caption band above rows.

/** cell x cell pixels, 4 bytes each (the alpha byte is ignored: figures are opaque). */
export type Cell = Uint8Array;

/** A greyscale cell (values 0..255, row-major at the cell's size). */
export function greyCell(grey: ArrayLike<number>): Cell {
  const out = new Uint8Array(grey.length * 4);
  for (let i = 0; i < grey.length; i++) out[4 * i] = out[4 * i + 1] = out[4 * i + 2] = grey[i];
  return out;
}

/** The grey image under an RGBA overlay (alpha-blended, as the viewer draws the attention map). */
export function overlayCell(grey: ArrayLike<number>, overlay: ArrayLike<number>): Cell {
  return blendOverGrey(grey, overlay);
}

/**
 * The grey image with the pixels where `marked` > 127 painted `colour`, mixed as mix[0] * grey + mix[1] * colour
 * ([0, 1]: solid, for outlines; a tint shows the image through).
 */
export function markedCell(grey: ArrayLike<number>, marked: ArrayLike<number>, colour: readonly number[], mix: readonly [number, number] = [0, 1]): Cell {
  const out = greyCell(grey);
  for (let i = 0; i < grey.length; i++) {
    if (marked[i] <= 127) continue;
    for (let k = 0; k < 3; k++) out[4 * i + k] = Math.round(mix[0] * grey[i] + mix[1] * colour[k]);
  }
  return out;
}

/**
 * Lays out rows of cells (each cellSize x cellSize) with a gap around each, `columns` wide (default: the longest
 * row). Rows with titles get a caption band above them (rendered with resvg, so it needs a font like the charts).
 */
export function imageGrid(
  rows: Cell[][],
  cellSize: number,
  opts: { titles?: (string | undefined)[]; columns?: number } = {},
): { rgba: Uint8Array; width: number; height: number } {
  const cols = opts.columns ?? Math.max(0, ...rows.map((r) => r.length));
  const titles = opts.titles ?? [];
  const withTitles = titles.some((t) => t);
  const rowH = cellSize + (withTitles ? TITLE_BAND : 0);
  const width = cols * cellSize + (cols + 1) * GAP;
  const height = Math.max(1, rows.length * (rowH + GAP) + GAP);
  const rgba = new Uint8Array(width * height * 4).fill(255);
  rows.forEach((cells, r) => {
    const y0 = GAP + r * (rowH + GAP) + (withTitles ? TITLE_BAND : 0);
    cells.forEach((cell, c) => {
      for (let y = 0; y < cellSize; y++) {
        const at = ((y0 + y) * width + GAP + c * (cellSize + GAP)) * 4;
        rgba.set(cell.subarray(y * cellSize * 4, (y + 1) * cellSize * 4), at);
        for (let x = 0; x < cellSize; x++) rgba[at + 4 * x + 3] = 255;
      }
    });
  });
  if (!withTitles) return { rgba, width, height };
  // Captions: the pixels go into an SVG as an embedded PNG at 1:1, with the text on top, rendered by resvg.
  const png = Buffer.from(encodeRgbaPng(rgba, width, height)).toString('base64');
  const texts = titles
    .map((t, r) => (t ? `<text x="${GAP}" y="${GAP + r * (rowH + GAP) + 15}" font-size="13">${escapeXml(t)}</text>` : ''))
    .join('');
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="${FONT_FAMILY}">` +
    `<image x="0" y="0" width="${width}" height="${height}" href="data:image/png;base64,${png}"/>${texts}</svg>`;
  const out = svgToRgba(svg);
  return { rgba: out.rgba, width: out.width, height: out.height };
}

const TITLE_BAND = 22;
const GAP = 4;

export interface GradcamGridRow {
  image: GreyImageLike;
  /** camH x camW attention map, 0..1. */
  cam: Float32Array;
  camW: number;
  camH: number;
  title?: string;
}

/** A figure with one row per image: the image, then the image with its Grad-CAM overlay. */
export function gradcamGrid(rows: GradcamGridRow[], cellSize: number, opts: { opacity?: number } = {}): {
  rgba: Uint8Array;
  width: number;
  height: number;
} {
  const opacity = opts.opacity ?? 0.5;
  const cells = rows.map((row) => {
    const grey = resizeGreyExact(row.image, cellSize);
    const cam = upsampleCam(row.cam, row.camW, row.camH, cellSize, cellSize);
    return [greyCell(grey), overlayCell(grey, camToRgba(cam, cellSize, cellSize, { opacity }))];
  });
  return imageGrid(cells, cellSize, { titles: rows.map((r) => r.title), columns: 2 });
}
