// The attention map as a DICOM Secondary Capture beside the result's SR: the displayed image in grey with the
// Grad-CAM map drawn over it as the viewer's overlay draws it (RGB, the longest side at most 512 pixels), in a
// series of its own in the source image's study, referencing the source image, with the research-use notice. Its
// UIDs derive from the source image and the bundle, like the report's, so a second save names the same instance.
// Pure: dataset building, Part 10 bytes (dcmjs) and reading it back, with no viewer or network in it.
import { attentionOverlay, resizeGrey, type GreyImage } from '@zerovar/trainer/browser';
import {
  derivedUid, dicomDate, dicomTime, instanceIdentity, part10Bytes, patientAndStudy, readDataset, researchNotice, str,
  type ReadReport, type ReportContent, type ReportUids, type SourceImage,
} from './srReport.js';

export const SECONDARY_CAPTURE = '1.2.840.10008.5.1.4.1.1.7';
/** The capture's series number, after the report's 9901. */
export const CAPTURE_SERIES_NUMBER = '9902';
/** Longest side of the saved image: the map's detail is far coarser, the anatomy stays recognisable. */
const MAX_SIDE = 512;
/** The overlay's default opacity in the panel. */
const OPACITY = 0.5;

/** A result's attention map as the worker returns it (0..1, row-major). */
export interface Attention {
  cam: Float32Array;
  width: number;
  height: number;
  className: string;
  /** The attention method, in words (the trainer's ATTENTION_METHOD). */
  method: string;
}

export type CaptureContent = Pick<ReportContent, 'algorithmName' | 'algorithmVersion' | 'bundleSha256' | 'variant' | 'shownAnyway'>;

/** The capture's UIDs: one series per study and bundle, one instance per source image and bundle. */
export async function captureUids(source: SourceImage, content: Pick<ReportContent, 'bundleSha256'>): Promise<ReportUids> {
  return {
    seriesInstanceUid: await derivedUid(`zerovar-sc-series|${source.studyInstanceUid}|${content.bundleSha256}`),
    sopInstanceUid: await derivedUid(`zerovar-sc|${source.sopInstanceUid}|${content.bundleSha256}`),
  };
}

/** The image under its attention map, RGB at the image's aspect, the longest side at most 512 (an even width). */
export function capturePixels(grey: GreyImage, attention: Attention): { width: number; height: number; rgb: Uint8Array } {
  const scale = Math.min(1, MAX_SIDE / Math.max(grey.width, grey.height));
  // An even width: the pixel data's length must be even, and three bytes a pixel would not make it so otherwise.
  const width = Math.max(2, 2 * Math.round((grey.width * scale) / 2));
  const height = Math.max(1, Math.round(grey.height * scale));
  const small = grey.width === width && grey.height === height ? grey : resizeGrey(grey, width, height);
  const rgba = attentionOverlay(small, attention.cam, attention.width, attention.height, OPACITY);
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    rgb[i] = rgba[j];
    rgb[i + 1] = rgba[j + 1];
    rgb[i + 2] = rgba[j + 2];
  }
  return { width, height, rgb };
}

/** The naturalized (dcmjs) dataset of the capture. */
export function buildCapture(
  source: SourceImage, content: CaptureContent, attention: Attention, pixels: { width: number; height: number; rgb: Uint8Array },
  uids: ReportUids, now: Date,
): Record<string, unknown> {
  const d = dicomDate(now);
  const t = dicomTime(now);
  const reference = { ReferencedSOPClassUID: source.sopClassUid, ReferencedSOPInstanceUID: source.sopInstanceUid };
  return {
    SpecificCharacterSet: 'ISO_IR 192',
    SOPClassUID: SECONDARY_CAPTURE,
    SOPInstanceUID: uids.sopInstanceUid,
    InstanceCreationDate: d,
    InstanceCreationTime: t,
    // Patient and General Study: repeated from the source image (type 2: empty when it has none).
    ...patientAndStudy(source),
    // General Series, General Equipment, SC Equipment.
    Modality: 'OT',
    SeriesInstanceUID: uids.seriesInstanceUid,
    SeriesNumber: CAPTURE_SERIES_NUMBER,
    // The models read chest radiographs only; an unpaired part, so Laterality (type 2C) is absent.
    BodyPartExamined: 'CHEST',
    SeriesDescription: `zerovar ${content.variant} attention map (research)`.slice(0, 64),
    SeriesDate: d,
    SeriesTime: t,
    Manufacturer: 'zerovar (research)',
    ConversionType: 'WSD',
    SecondaryCaptureDeviceManufacturer: 'zerovar (research)',
    SecondaryCaptureDeviceManufacturerModelName: content.algorithmName.slice(0, 64),
    SecondaryCaptureDeviceSoftwareVersions: content.algorithmVersion.slice(0, 64),
    // General Image, SC Image.
    InstanceNumber: '1',
    PatientOrientation: '',
    ContentDate: d,
    ContentTime: t,
    ImageType: ['DERIVED', 'SECONDARY'],
    DerivationDescription: `${attention.method} of ${attention.className} (${content.variant} model, bundle ${content.bundleSha256.slice(0, 12)}) over the displayed image`.slice(0, 1024),
    SourceImageSequence: [reference],
    ReferencedImageSequence: [reference],
    BurnedInAnnotation: 'NO',
    ImageComments: researchNotice(content.shownAnyway),
    DateOfSecondaryCapture: d,
    TimeOfSecondaryCapture: t,
    // Image Pixel: 8-bit RGB, interleaved.
    SamplesPerPixel: 3,
    PhotometricInterpretation: 'RGB',
    PlanarConfiguration: 0,
    Rows: pixels.height,
    Columns: pixels.width,
    BitsAllocated: 8,
    BitsStored: 8,
    HighBit: 7,
    PixelRepresentation: 0,
    PixelData: [pixels.rgb.buffer.slice(pixels.rgb.byteOffset, pixels.rgb.byteOffset + pixels.rgb.byteLength)],
    _vrMap: { PixelData: 'OB' },
  };
}

/** The capture as a DICOM Part 10 file. */
export function captureBytes(capture: Record<string, unknown>): ArrayBuffer {
  return part10Bytes(capture, 'ZEROVAR_SC_1');
}

/** What a saved capture says, read back from its Part 10 bytes. */
export interface ReadCapture extends Pick<ReadReport, 'sopClassUid' | 'sopInstanceUid' | 'studyInstanceUid' | 'seriesInstanceUid' | 'modality' | 'source'> {
  rows: number;
  columns: number;
  photometric: string;
  derivation: string;
  comments: string;
  pixels: Uint8Array;
}

export function readCapture(bytes: ArrayBuffer): ReadCapture {
  const ds = readDataset(bytes);
  const ref = (Array.isArray(ds.SourceImageSequence) ? ds.SourceImageSequence[0] : ds.SourceImageSequence) ?? {};
  const pixelData = Array.isArray(ds.PixelData) ? ds.PixelData[0] : ds.PixelData;
  return {
    ...instanceIdentity(ds, ref as Record<string, unknown>),
    rows: Number(ds.Rows),
    columns: Number(ds.Columns),
    photometric: str(ds.PhotometricInterpretation),
    derivation: str(ds.DerivationDescription),
    comments: str(ds.ImageComments),
    pixels: pixelData instanceof ArrayBuffer ? new Uint8Array(pixelData) : new Uint8Array(0),
  };
}
