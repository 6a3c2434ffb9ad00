// The displayed image as the model's input: its stored values through the modality LUT, the viewport's current
// VOI window (else the image's own) and MONOCHROME1 inversion, to 8-bit grey with the trainer's storedToGrey8.
// Also the guards: what cannot be classified (an error) and what can but is outside the model's domain (warnings).
import { storedToGrey8, type GreyImage, type StoredPixels } from '@zerovar/trainer/browser';
import { readImageInfo, type ImageInfo } from './imageInfo.js';
import type { CornerstoneLib, CsViewport } from './ohif-types.js';

/** Modalities the models were trained on (chest radiographs). */
export const RADIOGRAPH_MODALITIES = ['CR', 'DX'];
const CHEST = /CHEST|THORA|LUNG|THX|TORAX|TORACE|POITRINE|BRUST/i;

export interface ImageFacts {
  modality: string;
  bodyPart?: string;
  photometric: string;
  samplesPerPixel: number;
  numberOfFrames: number;
}

export interface Assessment {
  /** Why the image cannot be classified at all, or undefined. */
  error?: string;
  /** Reasons to doubt a result (the model still runs). */
  warnings: string[];
}

/** The guards, on plain facts (no Cornerstone), so they can be tested anywhere. */
export function assessImage(f: ImageFacts): Assessment {
  const warnings: string[] = [];
  const modality = f.modality.toUpperCase();
  if (!RADIOGRAPH_MODALITIES.includes(modality)) {
    warnings.push(`Modality ${f.modality || 'unknown'} is not a radiograph (CR/DX): the models were trained on chest X-rays only.`);
  }
  if (f.bodyPart && !CHEST.test(f.bodyPart)) {
    warnings.push(`Body part "${f.bodyPart}" is not the chest: the models were trained on chest X-rays only.`);
  }
  let error: string | undefined;
  if (f.numberOfFrames > 1) {
    error = `This is a multi-frame image (${f.numberOfFrames} frames); the models classify single-frame radiographs only.`;
  } else if (f.samplesPerPixel !== 1 || !/^MONOCHROME[12]$/.test(f.photometric)) {
    error = `Colour images (${f.photometric}, ${f.samplesPerPixel} samples per pixel) cannot be classified: the models need a greyscale radiograph.`;
  }
  return { error, warnings };
}

type Meta = Record<string, unknown> | undefined;
const first = (v: unknown): number | undefined => {
  const x = Array.isArray(v) ? v[0] : v;
  const n = typeof x === 'string' ? parseFloat(x) : x;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
};
const text = (v: unknown): string | undefined => {
  const x = Array.isArray(v) ? v[0] : v;
  return typeof x === 'string' && x.trim() ? x.trim() : undefined;
};

export interface DisplayedImage {
  info: ImageInfo;
  facts: ImageFacts;
  assessment: Assessment;
}

/** What the active viewport shows and whether it can be classified (metadata only: cheap, no pixels read). */
export function describeDisplayedImage(cs: CornerstoneLib, viewport: CsViewport): DisplayedImage {
  const info = readImageInfo(cs, viewport);
  const pixel = cs.metaData.get('imagePixelModule', info.imageId) as Meta;
  const series = cs.metaData.get('generalSeriesModule', info.imageId) as Meta;
  const instance = cs.metaData.get('instance', info.imageId) as Meta;
  const multiframe = cs.metaData.get('multiframeModule', info.imageId) as Meta;
  const facts: ImageFacts = {
    modality: info.modality,
    bodyPart: text(series?.bodyPartExamined) ?? text(instance?.BodyPartExamined),
    photometric: info.photometric,
    samplesPerPixel: first(pixel?.samplesPerPixel) ?? first(instance?.SamplesPerPixel) ?? 1,
    numberOfFrames: first(multiframe?.NumberOfFrames) ?? first(multiframe?.numberOfFrames) ?? first(instance?.NumberOfFrames) ?? 1,
  };
  return { info, facts, assessment: assessImage(facts) };
}

/** The viewport's VOI as centre / width in modality units, when it has one. */
function viewportWindow(viewport: CsViewport): { center: number; width: number } | undefined {
  const range = viewport.getProperties?.()?.voiRange;
  if (!range || !Number.isFinite(range.lower) || !Number.isFinite(range.upper) || !(range.upper > range.lower)) return undefined;
  return { center: (range.lower + range.upper) / 2, width: range.upper - range.lower };
}

/**
 * Why the viewport does not show its image, or undefined when it does: the panel classifies only what is on screen.
 * An image whose geometry Cornerstone could not build (e.g. from a zero Pixel Spacing: a NaN camera) paints nothing,
 * though its pixels may be in the cache.
 */
export function notRenderedReason(viewport: CsViewport): string | undefined {
  const data = viewport.getImageData();
  if (!data) return 'The image did not render in the viewport (no image data): there is nothing to classify.';
  const [cols, rows] = data.dimensions;
  const corners = [[-0.5, -0.5], [(cols ?? 0) - 0.5, (rows ?? 0) - 0.5]].map(([i, j]) =>
    viewport.worldToCanvas(data.imageData.indexToWorld([i, j, 0])));
  const finite = corners.every((c) => c.length >= 2 && Number.isFinite(c[0]) && Number.isFinite(c[1]));
  if (!finite || !(cols > 0 && rows > 0)) {
    return 'The image did not render in the viewport (the viewer has no valid geometry for it, e.g. a Pixel Spacing of 0): there is nothing to classify.';
  }
  return undefined;
}

/** The displayed image's pixels with everything needed to display them as the viewer does. */
export function readStoredPixels(cs: CornerstoneLib, viewport: CsViewport, d: DisplayedImage): StoredPixels {
  if (d.assessment.error) throw new Error(d.assessment.error);
  const { info } = d;
  const image = cs.cache.getImage(info.imageId);
  if (!image) throw new Error('the displayed image is not loaded yet');
  if (!(image.rows > 0 && image.columns > 0)) {
    const ts = (image as { transferSyntaxUID?: string }).transferSyntaxUID;
    throw new Error(`the viewer could not decode the displayed image${ts ? ` (transfer syntax ${ts})` : ''}`);
  }
  const notShown = notRenderedReason(viewport);
  if (notShown) throw new Error(notShown);
  if (image.color || (image.numberOfComponents ?? 1) > 1) {
    throw new Error('the viewer decoded this image as colour: the models need a greyscale radiograph');
  }
  const data = image.getPixelData();
  if (!data || data.length < image.rows * image.columns) throw new Error('the displayed image has no pixel data yet');
  const modalityLut = cs.metaData.get('modalityLutModule', info.imageId) as Meta;
  const voiLut = cs.metaData.get('voiLutModule', info.imageId) as Meta;
  // Cornerstone may have applied the modality LUT while loading ("pre-scaling"): then the values are modality values.
  const preScaled = image.preScale?.scaled === true || image.isPreScaled === true;
  const fn = text(voiLut?.voiLUTFunction)?.toUpperCase();
  const win = viewportWindow(viewport);
  return {
    width: image.columns,
    height: image.rows,
    data,
    bitsStored: info.bitsStored ?? 16,
    pixelRepresentation: info.pixelRepresentation === 1 ? 1 : 0,
    photometric: info.photometric === 'MONOCHROME1' ? 'MONOCHROME1' : 'MONOCHROME2',
    rescaleSlope: preScaled ? 1 : first(modalityLut?.rescaleSlope) ?? 1,
    rescaleIntercept: preScaled ? 0 : first(modalityLut?.rescaleIntercept) ?? 0,
    windowCenter: win?.center ?? first(voiLut?.windowCenter),
    windowWidth: win?.width ?? first(voiLut?.windowWidth),
    voiLutFunction: fn === 'SIGMOID' || fn === 'LINEAR_EXACT' ? fn : 'LINEAR',
  };
}

/** The displayed image as the model's 8-bit grey input. */
export function readDisplayedGrey(cs: CornerstoneLib, viewport: CsViewport, d: DisplayedImage): GreyImage {
  return storedToGrey8(readStoredPixels(cs, viewport, d));
}
