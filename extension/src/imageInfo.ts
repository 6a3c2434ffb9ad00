// What the displayed image is: its DICOM pixel description and a summary of its stored pixel values.
import type { CornerstoneLib, CsViewport } from './ohif-types.js';

export interface ImageInfo {
  imageId: string;
  modality: string;
  photometric: string;
  rows: number;
  columns: number;
  bitsStored?: number;
  pixelRepresentation?: number;
}

export interface PixelSummary extends ImageInfo {
  /** Stored values (before the modality LUT). */
  min: number;
  max: number;
  mean: number;
  count: number;
  rescaleSlope: number;
  rescaleIntercept: number;
  windowCenter?: number;
  windowWidth?: number;
}

type Meta = Record<string, unknown> | undefined;

function first(v: unknown): number | undefined {
  const x = Array.isArray(v) ? v[0] : v;
  return typeof x === 'number' && Number.isFinite(x) ? x : undefined;
}

export function currentImageId(viewport: CsViewport): string {
  const id = viewport.getCurrentImageId?.();
  if (!id) throw new Error('the active viewport has no image (is it a stack viewport?)');
  return id;
}

export function readImageInfo(cs: CornerstoneLib, viewport: CsViewport): ImageInfo {
  const imageId = currentImageId(viewport);
  const pixel = cs.metaData.get('imagePixelModule', imageId) as Meta;
  const series = cs.metaData.get('generalSeriesModule', imageId) as Meta;
  if (!pixel) throw new Error('no pixel description (imagePixelModule) for the displayed image');
  return {
    imageId,
    modality: String(series?.modality ?? 'unknown'),
    photometric: String(pixel.photometricInterpretation ?? 'unknown'),
    rows: Number(pixel.rows),
    columns: Number(pixel.columns),
    bitsStored: first(pixel.bitsStored),
    pixelRepresentation: first(pixel.pixelRepresentation),
  };
}

/** Reads the displayed image's stored pixel values and the LUT parameters needed to interpret them. */
export function readPixels(cs: CornerstoneLib, viewport: CsViewport): { info: PixelSummary; pixels: ArrayLike<number> } {
  const info = readImageInfo(cs, viewport);
  const image = cs.cache.getImage(info.imageId);
  if (!image) throw new Error('the displayed image is not loaded yet');
  if (!(image.rows > 0 && image.columns > 0)) {
    // The loader finished but its decoder produced no pixels (e.g. a codestream the decoder rejects).
    const ts = (image as { transferSyntaxUID?: string }).transferSyntaxUID;
    throw new Error(`the viewer could not decode the displayed image${ts ? ` (transfer syntax ${ts})` : ''}`);
  }
  const pixels = image.getPixelData() ?? viewport.getImageData()?.scalarData;
  if (!pixels || pixels.length === 0) throw new Error('the displayed image has no pixel data yet');
  if (pixels.length < info.rows * info.columns) {
    throw new Error(`pixel data has ${pixels.length} values, expected ${info.rows} x ${info.columns}`);
  }
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (let i = 0; i < pixels.length; i++) {
    const v = pixels[i];
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  const modalityLut = cs.metaData.get('modalityLutModule', info.imageId) as Meta;
  const voiLut = cs.metaData.get('voiLutModule', info.imageId) as Meta;
  return {
    pixels,
    info: {
      ...info,
      min,
      max,
      mean: sum / pixels.length,
      count: pixels.length,
      rescaleSlope: first(modalityLut?.rescaleSlope) ?? 1,
      rescaleIntercept: first(modalityLut?.rescaleIntercept) ?? 0,
      windowCenter: first(voiLut?.windowCenter),
      windowWidth: first(voiLut?.windowWidth),
    },
  };
}
