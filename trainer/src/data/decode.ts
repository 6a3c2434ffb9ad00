// Reads any supported image file (PNG, JPEG, DICOM) from disk as an 8-bit grey image.
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { rgbaToGrey, type GreyImage } from '../image/pixels.js';
import { DicomError, dicomToGrey, hasDicmMarker, sniffBareDataSet } from './dicom.js';

export class ImageDecodeError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot decode image ${path}: ${reason}`, options);
    this.name = 'ImageDecodeError';
  }
}

export type ImageFormat = 'png' | 'jpeg' | 'dicom';

/** The format by content (signatures), then by extension for DICOM files without a Part-10 header. */
export function detectFormat(bytes: Uint8Array, path = ''): ImageFormat | undefined {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (hasDicmMarker(bytes)) return 'dicom';
  const ext = extname(path).toLowerCase();
  if (ext === '.dcm' || ext === '.dicom' || sniffBareDataSet(bytes)) return 'dicom';
  return undefined;
}

/** Decodes PNG (any depth / colour type; 16-bit scaled to 8-bit, colour to luminance) to grey. */
export function decodePng(bytes: Uint8Array): GreyImage {
  // pngjs normalises every depth and colour type to 8-bit RGBA (16-bit as round(v * 255 / 65535)).
  const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return rgbaToGrey(png.data, png.width, png.height, 4);
}

/** Decodes baseline/progressive JPEG to grey (colour to luminance). */
export function decodeJpeg(bytes: Uint8Array): GreyImage {
  const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false, maxMemoryUsageInMB: 1024 });
  const channels = img.data.length / (img.width * img.height);
  if (channels !== 1 && channels !== 3 && channels !== 4) throw new Error(`unexpected ${channels} channels`);
  return rgbaToGrey(img.data, img.width, img.height, channels);
}

/** Decodes image bytes of a known or detected format; errors become ImageDecodeError naming `path`. */
export async function decodeGreyImage(bytes: Uint8Array, path = '<memory>'): Promise<GreyImage> {
  if (bytes.length === 0) throw new ImageDecodeError(path, 'the file is empty');
  const format = detectFormat(bytes, path);
  if (!format) throw new ImageDecodeError(path, 'unknown format (expected PNG, JPEG or DICOM)');
  try {
    if (format === 'png') return decodePng(bytes);
    if (format === 'jpeg') return decodeJpeg(bytes);
    return await dicomToGrey(bytes);
  } catch (e) {
    const why = e instanceof DicomError ? e.message : e instanceof Error ? e.message : String(e);
    throw new ImageDecodeError(path, `corrupt or unsupported ${format.toUpperCase()}: ${why}`, { cause: e });
  }
}

/** Reads a PNG, JPEG or DICOM file as an 8-bit grey image; throws ImageDecodeError when it cannot. */
export async function readGreyImage(path: string): Promise<GreyImage> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    throw new ImageDecodeError(path, `cannot read the file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return decodeGreyImage(bytes, path);
}
