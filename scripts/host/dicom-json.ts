// Converts a dicom-parser data set into the DICOM JSON model (PS3.18 F.2) that DICOMweb metadata and QIDO answers use.
// Implicit-VR files carry no VRs, so the attributes a viewer needs are listed here with theirs; other implicit
// attributes are left out rather than guessed.
import dicomParser from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';

export type DicomJsonValue = string | number | { Alphabetic: string } | DicomJson;
export interface DicomJsonAttribute {
  vr: string;
  Value?: DicomJsonValue[];
  BulkDataURI?: string;
  InlineBinary?: string;
}
/** Keys are 8 upper-case hex digits, e.g. `0020000D`. */
export type DicomJson = Record<string, DicomJsonAttribute>;

/** VRs of the attributes a viewer reads, for data sets encoded with implicit VR. */
const KNOWN_VR: Record<string, string> = {
  '00020010': 'UI',
  '00080005': 'CS', '00080008': 'CS', '00080016': 'UI', '00080018': 'UI', '00080020': 'DA', '00080021': 'DA',
  '00080022': 'DA', '00080023': 'DA', '00080030': 'TM', '00080031': 'TM', '00080032': 'TM', '00080033': 'TM',
  '00080050': 'SH', '00080060': 'CS', '00080064': 'CS', '00080070': 'LO', '00080080': 'LO', '00080090': 'PN',
  '00081010': 'SH', '00081030': 'LO', '0008103E': 'LO', '00081090': 'LO',
  '00100010': 'PN', '00100020': 'LO', '00100030': 'DA', '00100040': 'CS', '00101010': 'AS',
  '00180015': 'CS', '00180050': 'DS', '00180060': 'DS', '00181164': 'DS', '00185100': 'CS', '00185101': 'CS',
  '0020000D': 'UI', '0020000E': 'UI', '00200010': 'SH', '00200011': 'IS', '00200012': 'IS', '00200013': 'IS',
  '00200020': 'CS', '00200032': 'DS', '00200037': 'DS', '00200052': 'UI', '00200062': 'CS',
  '00280002': 'US', '00280004': 'CS', '00280006': 'US', '00280008': 'IS', '00280010': 'US', '00280011': 'US',
  '00280030': 'DS', '00280100': 'US', '00280101': 'US', '00280102': 'US', '00280103': 'US', '00280301': 'CS',
  '00281040': 'CS', '00281041': 'SS', '00281050': 'DS', '00281051': 'DS', '00281052': 'DS', '00281053': 'DS',
  '00281054': 'LO', '00281055': 'LO', '00281056': 'CS', '00282110': 'CS', '00282112': 'DS', '00282114': 'CS',
};

const STRING_VRS = new Set(['AE', 'AS', 'CS', 'DA', 'DT', 'LO', 'SH', 'TM', 'UI', 'UC']);
const TEXT_VRS = new Set(['LT', 'ST', 'UT', 'UR']);
const BINARY_VRS = new Set(['OB', 'OW', 'OF', 'OD', 'OL', 'OV', 'UN']);
/** Binary attributes up to this size are sent inline; larger ones (other than pixel data) are left out. */
const MAX_INLINE_BINARY = 4096;

export const PIXEL_DATA_TAG = 'x7fe00010';

/** `x0020000d` -> `0020000D`. */
export function jsonKey(tag: string): string {
  return tag.slice(1).toUpperCase();
}

export interface ToJsonOptions {
  /** BulkDataURI for the pixel data attribute; without it pixel data is left out. */
  pixelDataUri?: string;
  /** Keep group 0002 (file meta) attributes other than the transfer syntax. Default false. */
  keepFileMeta?: boolean;
}

/** Converts every public attribute of the data set (recursing into sequences) to DICOM JSON. */
export function dataSetToJson(ds: DataSet, options: ToJsonOptions = {}): DicomJson {
  const out: DicomJson = {};
  for (const tag of Object.keys(ds.elements).sort()) {
    const key = jsonKey(tag);
    const group = parseInt(key.slice(0, 4), 16);
    if (group % 2 === 1) continue; // private
    if (group === 2 && key !== '00020010' && !options.keepFileMeta) continue;
    const el = ds.elements[tag];
    if (tag === PIXEL_DATA_TAG) {
      if (options.pixelDataUri) out[key] = { vr: el.vr ?? 'OW', BulkDataURI: options.pixelDataUri };
      continue;
    }
    const attr = elementToJson(ds, el, key);
    if (attr) out[key] = attr;
  }
  return out;
}

function elementToJson(ds: DataSet, el: Element, key: string): DicomJsonAttribute | undefined {
  const vr = el.vr ?? (el.items ? 'SQ' : KNOWN_VR[key]);
  if (!vr) return undefined;
  if (vr === 'SQ') {
    const items = (el.items ?? []).flatMap((item) => (item.dataSet ? [dataSetToJson(item.dataSet)] : []));
    return items.length ? { vr, Value: items } : { vr };
  }
  if (el.length === 0) return { vr };
  if (STRING_VRS.has(vr)) {
    const raw = ds.string(el.tag) ?? '';
    const parts = stringValues(ds, el.tag).map((s) => (vr === 'UI' ? s.replace(/\0+$/, '') : s));
    return raw === '' ? { vr } : { vr, Value: parts };
  }
  if (TEXT_VRS.has(vr)) {
    const text = ds.text(el.tag);
    return text ? { vr, Value: [text] } : { vr };
  }
  if (vr === 'PN') {
    const names = stringValues(ds, el.tag).map((s) => ({ Alphabetic: s }));
    return names.length ? { vr, Value: names } : { vr };
  }
  if (vr === 'DS' || vr === 'IS') {
    const nums = stringValues(ds, el.tag)
      .map((s) => (vr === 'IS' ? parseInt(s, 10) : parseFloat(s)))
      .filter((n) => Number.isFinite(n));
    return nums.length ? { vr, Value: nums } : { vr };
  }
  const numeric = NUMERIC_READERS[vr];
  if (numeric) {
    const count = Math.floor(el.length / numeric.bytes);
    const values: number[] = [];
    for (let i = 0; i < count; i++) {
      const v = numeric.read(ds, el.tag, i);
      if (v !== undefined) values.push(v);
    }
    return { vr, Value: values };
  }
  if (BINARY_VRS.has(vr) && el.length <= MAX_INLINE_BINARY && !el.encapsulatedPixelData) {
    const bytes = ds.byteArray.subarray(el.dataOffset, el.dataOffset + el.length);
    return { vr, InlineBinary: Buffer.from(bytes).toString('base64') };
  }
  return undefined; // AT, large binaries: not needed by the viewer
}

function stringValues(ds: DataSet, tag: string): string[] {
  const n = ds.numStringValues(tag) ?? 0;
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push((ds.string(tag, i) ?? '').trim());
  return out;
}

const NUMERIC_READERS: Record<string, { bytes: number; read: (ds: DataSet, tag: string, i: number) => number | undefined }> = {
  US: { bytes: 2, read: (ds, t, i) => ds.uint16(t, i) },
  SS: { bytes: 2, read: (ds, t, i) => ds.int16(t, i) },
  UL: { bytes: 4, read: (ds, t, i) => ds.uint32(t, i) },
  SL: { bytes: 4, read: (ds, t, i) => ds.int32(t, i) },
  FL: { bytes: 4, read: (ds, t, i) => ds.float(t, i) },
  FD: { bytes: 8, read: (ds, t, i) => ds.double(t, i) },
};

/** Parses a DICOM file's bytes; files without the Part 10 preamble are read as implicit VR little endian. */
export function parseDicomBytes(bytes: Uint8Array): DataSet {
  try {
    return dicomParser.parseDicom(bytes);
  } catch (err) {
    const message = errorMessage(err);
    if (!/DICM prefix not found/i.test(message)) throw new Error(message);
    try {
      return dicomParser.parseDicom(bytes, { TransferSyntaxUID: '1.2.840.10008.1.2' });
    } catch (err2) {
      throw new Error(errorMessage(err2));
    }
  }
}

/** dicom-parser throws strings or `{exception}` objects as well as Errors. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  if (err && typeof err === 'object' && 'exception' in err) return String((err as { exception: unknown }).exception);
  return String(err);
}

/** First value of a string attribute of a DICOM JSON object. */
export function jsonString(json: DicomJson, key: string): string | undefined {
  const v = json[key]?.Value?.[0];
  if (v === undefined) return undefined;
  if (typeof v === 'object' && 'Alphabetic' in v) return String(v.Alphabetic);
  return typeof v === 'object' ? undefined : String(v);
}
