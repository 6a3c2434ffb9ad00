// PNG output for the report: SVG charts rendered with resvg, and Grad-CAM figure grids composed pixel by pixel.
import { Resvg, type ResvgRenderOptions } from '@resvg/resvg-js';
import { PNG } from 'pngjs';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { camToRgba } from '../image/colormap.js';
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

/** Bilinear resize of a greyscale image to a size x size square (the model's "stretch" resize). */
function resizeGrey(img: GreyImageLike, size: number): Float32Array {
  const as = new Float32Array(img.data.length);
  for (let i = 0; i < as.length; i++) as[i] = img.data[i];
  return upsampleCam(as, img.width, img.height, size, size);
}

export interface GradcamGridRow {
  image: GreyImageLike;
  /** camH x camW attention map, 0..1. */
  cam: Float32Array;
  camW: number;
  camH: number;
  title?: string;
}

const TITLE_BAND = 22;
const GAP = 4;

/**
 * A figure with one row per image: the image, then the image with its Grad-CAM overlay. Rows with titles get a
 * caption band above them (rendered with resvg, so it needs a font like the charts).
 */
export function gradcamGrid(rows: GradcamGridRow[], cellSize: number, opts: { opacity?: number } = {}): {
  rgba: Uint8Array;
  width: number;
  height: number;
} {
  const withTitles = rows.some((r) => r.title);
  const rowH = cellSize + (withTitles ? TITLE_BAND : 0);
  const width = 2 * cellSize + 3 * GAP;
  const height = Math.max(1, rows.length * (rowH + GAP) + GAP);
  const rgba = new Uint8Array(width * height * 4).fill(255);
  const opacity = opts.opacity ?? 0.5;
  rows.forEach((row, r) => {
    const grey = resizeGrey(row.image, cellSize);
    const cam = upsampleCam(row.cam, row.camW, row.camH, cellSize, cellSize);
    const overlay = camToRgba(cam, cellSize, cellSize, { opacity });
    const y0 = GAP + r * (rowH + GAP) + (withTitles ? TITLE_BAND : 0);
    for (let y = 0; y < cellSize; y++) {
      for (let x = 0; x < cellSize; x++) {
        const g = grey[y * cellSize + x];
        const a = overlay[(y * cellSize + x) * 4 + 3] / 255;
        const left = ((y0 + y) * width + GAP + x) * 4;
        const right = ((y0 + y) * width + 2 * GAP + cellSize + x) * 4;
        for (let c = 0; c < 3; c++) {
          rgba[left + c] = g;
          rgba[right + c] = Math.round(g * (1 - a) + overlay[(y * cellSize + x) * 4 + c] * a);
        }
        rgba[left + 3] = 255;
        rgba[right + 3] = 255;
      }
    }
  });
  if (!withTitles) return { rgba, width, height };
  // Captions: the pixels go into an SVG as an embedded PNG at 1:1, with the text on top, rendered by resvg.
  const png = Buffer.from(encodeRgbaPng(rgba, width, height)).toString('base64');
  const texts = rows
    .map((row, r) =>
      row.title
        ? `<text x="${GAP}" y="${GAP + r * (rowH + GAP) + 15}" font-size="13">${escapeXml(row.title)}</text>`
        : '',
    )
    .join('');
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="${FONT_FAMILY}">` +
    `<image x="0" y="0" width="${width}" height="${height}" href="data:image/png;base64,${png}"/>${texts}</svg>`;
  const out = svgToRgba(svg);
  return { rgba: out.rgba, width: out.width, height: out.height };
}
