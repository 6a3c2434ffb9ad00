// An index of a folder of DICOM files: studies -> series -> instances, with each instance's DICOM JSON and a way to
// read its frames in the stored transfer syntax. Files that fail to parse are reported and skipped.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import dicomParser from 'dicom-parser';
import type { DataSet } from 'dicom-parser';
import { sanitizeSpacing } from './viewer-fixes.js';
import { dataSetToJson, errorMessage, parseDicomBytes, PIXEL_DATA_TAG, type DicomJson } from './dicom-json.js';

export interface DicomInstance {
  file: string;
  studyUid: string;
  seriesUid: string;
  sopUid: string;
  transferSyntax: string;
  numberOfFrames: number;
  /** Full metadata; pixel data as a BulkDataURI relative to the DICOMweb root (`studies/...`). */
  json: DicomJson;
}

export interface DicomFolderIndex {
  root: string;
  instances: DicomInstance[];
  skipped: { file: string; reason: string }[];
}

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const IMPLICIT_LE = '1.2.840.10008.1.2';
const EXPLICIT_BE = '1.2.840.10008.1.2.2';

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((d) => {
      const p = join(dir, d.name);
      if (d.isDirectory()) return listFiles(p);
      return d.isFile() || (d.isSymbolicLink() && statSync(p).isFile()) ? [p] : [];
    })
    .sort();
}

export function transferSyntaxOf(ds: DataSet): string {
  return (ds.string('x00020010') ?? IMPLICIT_LE).replace(/\0+$/, '');
}

/** Instance-level path under the DICOMweb root. */
export function instancePath(i: Pick<DicomInstance, 'studyUid' | 'seriesUid' | 'sopUid'>): string {
  return `studies/${i.studyUid}/series/${i.seriesUid}/instances/${i.sopUid}`;
}

/** Scans `root` recursively. `log` receives one line per skipped file. */
export function indexDicomFolder(root: string, log: (line: string) => void = () => {}): DicomFolderIndex {
  const index: DicomFolderIndex = { root, instances: [], skipped: [] };
  const seen = new Set<string>();
  for (const file of listFiles(root)) {
    const name = relative(root, file);
    const skip = (reason: string) => {
      index.skipped.push({ file: name, reason });
      log(`skipped ${name}: ${reason}`);
    };
    let ds: DataSet;
    try {
      ds = parseDicomBytes(new Uint8Array(readFileSync(file)));
    } catch (err) {
      skip(`not readable as DICOM (${errorMessage(err)})`);
      continue;
    }
    const studyUid = ds.string('x0020000d')?.replace(/\0+$/, '');
    const seriesUid = ds.string('x0020000e')?.replace(/\0+$/, '');
    const sopUid = ds.string('x00080018')?.replace(/\0+$/, '');
    if (!studyUid || !seriesUid || !sopUid) {
      skip('missing Study, Series or SOP Instance UID');
      continue;
    }
    if (!ds.elements[PIXEL_DATA_TAG]) {
      skip('no pixel data');
      continue;
    }
    if (seen.has(sopUid)) {
      skip(`duplicate SOP Instance UID ${sopUid}`);
      continue;
    }
    try {
      readFrame(ds, 0); // proves the pixel data can be served before the instance is listed
    } catch (err) {
      skip(`unreadable pixel data (${errorMessage(err)})`);
      continue;
    }
    seen.add(sopUid);
    const ids = { studyUid, seriesUid, sopUid };
    const json = dataSetToJson(ds, { pixelDataUri: `${instancePath(ids)}/frames/1` });
    // Zero pixel spacings would leave the viewer with a NaN camera (a black viewport): serve them as unknown.
    const unusable = sanitizeSpacing(json);
    if (unusable.length) log(`${name}: unusable spacing (${unusable.join(', ')}) left out of the metadata`);
    index.instances.push({
      file,
      ...ids,
      transferSyntax: transferSyntaxOf(ds),
      numberOfFrames: Math.max(1, parseInt(ds.string('x00280008') ?? '1', 10) || 1),
      json,
    });
  }
  return index;
}

export interface Frame {
  bytes: Uint8Array;
  /** Transfer syntax of `bytes`: the stored one for encapsulated data, explicit little endian for native data. */
  transferSyntax: string;
}

/** Reads one frame (0-based) of a parsed data set as stored, without decoding. */
export function readFrame(ds: DataSet, frameIndex: number): Frame {
  const el = ds.elements[PIXEL_DATA_TAG];
  if (!el) throw new Error('no pixel data');
  const frames = Math.max(1, parseInt(ds.string('x00280008') ?? '1', 10) || 1);
  if (frameIndex < 0 || frameIndex >= frames) throw new RangeError(`frame ${frameIndex + 1} of ${frames} does not exist`);
  const ts = transferSyntaxOf(ds);
  if (el.encapsulatedPixelData) {
    const fragments = el.fragments ?? [];
    if (fragments.length === 0) throw new Error('encapsulated pixel data without fragments');
    let bytes: Uint8Array;
    if (frames === 1) {
      bytes = dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, fragments.length);
    } else {
      const table = el.basicOffsetTable?.length ? el.basicOffsetTable : dicomParser.createJPEGBasicOffsetTable(ds, el);
      bytes = dicomParser.readEncapsulatedImageFrame(ds, el, frameIndex, table);
    }
    return { bytes: Uint8Array.from(bytes), transferSyntax: ts };
  }
  const rows = ds.uint16('x00280010') ?? 0;
  const cols = ds.uint16('x00280011') ?? 0;
  const spp = ds.uint16('x00280002') ?? 1;
  const bitsAllocated = ds.uint16('x00280100') ?? 16;
  if (bitsAllocated % 8 !== 0) throw new Error(`native pixel data with ${bitsAllocated} bits allocated is not supported`);
  const frameBytes = (rows * cols * spp * bitsAllocated) / 8;
  if (frameBytes === 0) throw new Error('image has no rows or columns');
  const start = el.dataOffset + frameIndex * frameBytes;
  if (start + frameBytes > ds.byteArray.length || (frameIndex + 1) * frameBytes > el.length) {
    throw new Error('pixel data is shorter than rows x columns x samples says');
  }
  const bytes = Uint8Array.from(ds.byteArray.subarray(start, start + frameBytes));
  if (ts === EXPLICIT_BE && bitsAllocated > 8) swapBytes(bytes, bitsAllocated / 8);
  return { bytes, transferSyntax: EXPLICIT_LE };
}

function swapBytes(bytes: Uint8Array, width: number): void {
  for (let i = 0; i + width <= bytes.length; i += width) bytes.subarray(i, i + width).reverse();
}

/** Re-reads an instance's file and returns one frame (0-based). */
export function readInstanceFrame(instance: DicomInstance, frameIndex: number): Frame {
  return readFrame(parseDicomBytes(new Uint8Array(readFileSync(instance.file))), frameIndex);
}
