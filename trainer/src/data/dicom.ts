// DICOM reading for Node: header attributes with dicom-parser, pixel data native or through the Cornerstone
// WASM codecs (JPEG baseline, JPEG 2000, JPEG-LS) and a small JPEG lossless decoder, giving the stored values
// that storedToGrey8 turns into the same 8-bit grey image the viewer shows.
import dicomParser from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';
import { inflateRawSync } from 'node:zlib';
import { storedToGrey8, type GreyImage, type StoredPixels } from '../image/pixels.js';
import { trimJ2kTrailer } from '../image/j2k.js';
import { decodeJpegLossless } from './jpeg-lossless.js';

export class DicomError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DicomError';
  }
}

export interface DicomMeta {
  transferSyntaxUid: string;
  /** False for a bare data set without the 128-byte preamble, 'DICM' and file meta group. */
  hasPart10Header: boolean;
  sopClassUid?: string;
  sopInstanceUid?: string;
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  modality?: string;
  bodyPartExamined?: string;
  viewPosition?: string;
  photometric: string;
  rows: number;
  columns: number;
  samplesPerPixel: number;
  numberOfFrames: number;
  bitsAllocated: number;
  bitsStored: number;
  highBit: number;
  pixelRepresentation: 0 | 1;
  rescaleSlope?: number;
  rescaleIntercept?: number;
  /** First value when the attribute is multi-valued. */
  windowCenter?: number;
  windowWidth?: number;
  voiLutFunction?: 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID';
  /** A VOI LUT Sequence is present; it is not applied (the window, or the value range, is used instead). */
  hasVoiLutSequence: boolean;
}

export interface DecodedDicom {
  meta: DicomMeta;
  stored: StoredPixels;
}

const TS = {
  implicitLE: '1.2.840.10008.1.2',
  explicitLE: '1.2.840.10008.1.2.1',
  deflatedLE: '1.2.840.10008.1.2.1.99',
  explicitBE: '1.2.840.10008.1.2.2',
  jpegBaseline: '1.2.840.10008.1.2.4.50',
  jpegLossless57: '1.2.840.10008.1.2.4.57',
  jpegLossless70: '1.2.840.10008.1.2.4.70',
  jpegLsLossless: '1.2.840.10008.1.2.4.80',
  jpegLsNear: '1.2.840.10008.1.2.4.81',
  j2kLossless: '1.2.840.10008.1.2.4.90',
  j2k: '1.2.840.10008.1.2.4.91',
} as const;

const NATIVE = new Set<string>([TS.implicitLE, TS.explicitLE, TS.deflatedLE, TS.explicitBE]);
const SUPPORTED_TS = new Set<string>([
  ...NATIVE,
  TS.jpegBaseline,
  TS.jpegLossless57,
  TS.jpegLossless70,
  TS.jpegLsLossless,
  TS.jpegLsNear,
  TS.j2kLossless,
  TS.j2k,
]);

/** True when the bytes carry the Part-10 'DICM' marker at offset 128. */
export function hasDicmMarker(bytes: Uint8Array): boolean {
  return bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
}

/**
 * Guess for a bare data set (no preamble): it starts with a little-endian tag of group 0002, 0004 or 0008.
 * Returns the transfer syntax to parse it with, or undefined when the bytes do not look like DICOM.
 */
export function sniffBareDataSet(bytes: Uint8Array): string | undefined {
  if (bytes.length < 8) return undefined;
  const group = bytes[0] | (bytes[1] << 8);
  if (group !== 0x0002 && group !== 0x0004 && group !== 0x0008) return undefined;
  const vr = String.fromCharCode(bytes[4], bytes[5]);
  return /^[A-Z]{2}$/.test(vr) ? TS.explicitLE : TS.implicitLE;
}

function message(e: unknown): string {
  if (e instanceof Error) return e.message;
  // dicom-parser throws { exception, dataSet } when it fails part-way through a file.
  if (e && typeof e === 'object' && 'exception' in e) return message((e as { exception: unknown }).exception);
  return String(e);
}

/** Parser messages about reading past the end mean the file was cut short; say so plainly. */
function parseFailure(e: unknown, what: string): DicomError {
  const why = message(e);
  const truncated = /past end|overrun|overread|beyond|end of buffer/i.test(why);
  return new DicomError(truncated ? `${what}: the file is truncated (${why})` : `${what}: ${why}`);
}

function parse(bytes: Uint8Array): { ds: DataSet; part10: boolean } {
  const inflater = (arr: Uint8Array, position: number): Uint8Array => {
    // Deflated transfer syntax: everything after the file meta group is a raw deflate stream.
    const inflated = inflateRawSync(arr.subarray(position));
    const out = new Uint8Array(position + inflated.length);
    out.set(arr.subarray(0, position));
    out.set(inflated, position);
    return out;
  };
  if (hasDicmMarker(bytes)) {
    try {
      // dicom-parser's typings say the inflater returns void; it really uses the returned array.
      return { ds: dicomParser.parseDicom(bytes, { inflater: inflater as never }), part10: true };
    } catch (e) {
      throw parseFailure(e, 'cannot parse DICOM');
    }
  }
  const ts = sniffBareDataSet(bytes);
  if (!ts) throw new DicomError("not a DICOM file: no 'DICM' marker at offset 128 and no data set at the start");
  try {
    return { ds: dicomParser.parseDicom(bytes, { TransferSyntaxUID: ts }), part10: false };
  } catch (e) {
    throw parseFailure(e, 'cannot parse DICOM data set without a file header');
  }
}

function str(ds: DataSet, tag: string): string | undefined {
  const v = ds.string(tag);
  return v === undefined || v === '' ? undefined : v;
}

function num(ds: DataSet, tag: string): number | undefined {
  const v = ds.floatString(tag, 0);
  return v === undefined || !Number.isFinite(v) ? undefined : v;
}

function readMeta(ds: DataSet, part10: boolean): DicomMeta {
  const rows = ds.uint16('x00280010');
  const columns = ds.uint16('x00280011');
  if (!rows || !columns) throw new DicomError('no image: Rows / Columns missing (not an image object?)');
  const bitsAllocated = ds.uint16('x00280100') ?? 0;
  const bitsStored = ds.uint16('x00280101') ?? bitsAllocated;
  const voi = str(ds, 'x00281056')?.toUpperCase();
  return {
    transferSyntaxUid: str(ds, 'x00020010') ?? TS.implicitLE,
    hasPart10Header: part10,
    sopClassUid: str(ds, 'x00080016'),
    sopInstanceUid: str(ds, 'x00080018'),
    studyInstanceUid: str(ds, 'x0020000d'),
    seriesInstanceUid: str(ds, 'x0020000e'),
    modality: str(ds, 'x00080060'),
    bodyPartExamined: str(ds, 'x00180015'),
    viewPosition: str(ds, 'x00185101'),
    photometric: (str(ds, 'x00280004') ?? 'MONOCHROME2').toUpperCase(),
    rows,
    columns,
    samplesPerPixel: ds.uint16('x00280002') ?? 1,
    numberOfFrames: Math.max(1, ds.intString('x00280008') ?? 1),
    bitsAllocated,
    bitsStored,
    highBit: ds.uint16('x00280102') ?? bitsStored - 1,
    pixelRepresentation: ds.uint16('x00280103') === 1 ? 1 : 0,
    rescaleSlope: num(ds, 'x00281053'),
    rescaleIntercept: num(ds, 'x00281052'),
    windowCenter: num(ds, 'x00281050'),
    windowWidth: num(ds, 'x00281051'),
    voiLutFunction: voi === 'LINEAR' || voi === 'LINEAR_EXACT' || voi === 'SIGMOID' ? voi : undefined,
    hasVoiLutSequence: ds.elements['x00283010'] !== undefined,
  };
}

/** Header attributes only (no pixel decoding). */
export function readDicomMeta(bytes: Uint8Array): DicomMeta {
  const { ds, part10 } = parse(bytes);
  return readMeta(ds, part10);
}

// ---- codecs: Emscripten modules, each initialised once on first use ----

type Decoder = CodecDecoder;
type CodecName = 'openjpeg' | 'charls' | 'libjpeg-turbo';
const codecCache = new Map<string, Promise<() => Decoder>>();
/** Turns a thrown WASM exception pointer into text, where the codec exports a way to (CharLS does). */
const codecExplain = new Map<string, (e: unknown) => string>();
/** The codecs print progress and errors to stdout/stderr; keep the latest lines for error messages instead. */
const codecLog: string[] = [];
function logCodecLine(line: string): void {
  if (/^\[(INFO|WARNING)\]/.test(line)) return;
  codecLog.push(line.replace(/^\[ERROR\]\s*/, ''));
  if (codecLog.length > 4) codecLog.shift();
}
const codecOptions = { print: logCodecLine, printErr: logCodecLine };

function codec(name: CodecName): Promise<() => Decoder> {
  let p = codecCache.get(name);
  if (!p) {
    p = (async () => {
      if (name === 'openjpeg') {
        const m = await (await import('@cornerstonejs/codec-openjpeg/decodewasmjs')).default(codecOptions);
        return () => new m.J2KDecoder();
      }
      if (name === 'charls') {
        const m = await (await import('@cornerstonejs/codec-charls/decodewasmjs')).default(codecOptions);
        const explain = m.getExceptionMessage;
        if (explain) codecExplain.set(name, (e) => explain(e));
        return () => new m.JpegLSDecoder();
      }
      const m = await (await import('@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs')).default(codecOptions);
      return () => new m.JPEGDecoder();
    })();
    p.catch(() => codecCache.delete(name)); // a failed load may be retried
    codecCache.set(name, p);
  }
  return p;
}

interface RawFrame {
  width: number;
  height: number;
  bitsPerSample: number;
  components: number;
  /** Decoded samples, little-endian 16-bit when bitsPerSample > 8. */
  bytes: Uint8Array;
}

async function runCodec(name: CodecName, data: Uint8Array): Promise<RawFrame> {
  const make = await codec(name);
  const dec = make();
  codecLog.length = 0;
  const fail = (why: string) =>
    new DicomError(`${name} could not decode the pixel data: ${why}${codecLog.length ? ` (${codecLog.join('; ')})` : ''}`);
  try {
    dec.getEncodedBuffer(data.length).set(data);
    dec.decode();
    const info = dec.getFrameInfo();
    // Some failures (e.g. openjpeg on a broken tile) return an empty frame instead of throwing.
    if (!info.width || !info.height) throw fail('empty frame');
    return {
      width: info.width,
      height: info.height,
      bitsPerSample: info.bitsPerSample,
      components: info.componentCount,
      bytes: new Uint8Array(dec.getDecodedBuffer()), // copy out of the WASM heap before delete()
    };
  } catch (e) {
    if (e instanceof DicomError) throw e;
    if (typeof e !== 'number') throw fail(message(e));
    let text = '';
    try {
      text = codecExplain.get(name)?.(e) ?? '';
    } catch {
      // no readable message
    }
    throw fail(text || 'corrupt or unsupported compressed data');
  } finally {
    dec.delete();
  }
}

function encapsulatedFrame(ds: DataSet, el: Element, frame: number, nFrames: number, ts: string): Uint8Array {
  const fragments = el.fragments ?? [];
  if (fragments.length === 0) throw new DicomError('encapsulated pixel data has no fragments');
  try {
    if (nFrames === 1) return dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, fragments.length);
    if (el.basicOffsetTable && el.basicOffsetTable.length > 0) return dicomParser.readEncapsulatedImageFrame(ds, el, frame);
    if (fragments.length === nFrames) return dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, frame, 1);
    if (ts === TS.jpegBaseline || ts === TS.jpegLossless57 || ts === TS.jpegLossless70) {
      const table = dicomParser.createJPEGBasicOffsetTable(ds, el);
      return dicomParser.readEncapsulatedImageFrame(ds, el, frame, table);
    }
  } catch (e) {
    throw new DicomError(`cannot read frame ${frame + 1} of the encapsulated pixel data: ${message(e)}`);
  }
  throw new DicomError(`cannot locate frame ${frame + 1}: no offset table and fragments do not map to frames`);
}

/** Native pixel data of one frame -> stored values (masked to Bits Stored, sign-extended when signed). */
function nativeFrame(ds: DataSet, el: Element, meta: DicomMeta, frame: number, bigEndian: boolean): StoredValues {
  const n = meta.rows * meta.columns;
  const bytesPer = meta.bitsAllocated / 8;
  if (meta.bitsAllocated !== 8 && meta.bitsAllocated !== 16 && meta.bitsAllocated !== 32) {
    throw new DicomError(`unsupported Bits Allocated ${meta.bitsAllocated} (8, 16 or 32 expected)`);
  }
  const frameBytes = n * bytesPer;
  const start = el.dataOffset + frame * frameBytes;
  const end = start + frameBytes;
  if (end > ds.byteArray.length || (el.length !== 0xffffffff && (frame + 1) * frameBytes > el.length)) {
    throw new DicomError(`pixel data truncated: frame ${frame + 1} needs ${frameBytes} bytes`);
  }
  const view = new DataView(ds.byteArray.buffer, ds.byteArray.byteOffset + start, frameBytes);
  const out = new Int32Array(n);
  const le = !bigEndian;
  for (let i = 0; i < n; i++) {
    out[i] =
      bytesPer === 1 ? view.getUint8(i) : bytesPer === 2 ? view.getUint16(2 * i, le) : view.getUint32(4 * i, le) | 0;
  }
  return maskStored(out, meta);
}

type StoredValues = Int32Array;

function maskStored(raw: Int32Array, meta: DicomMeta): StoredValues {
  const bits = meta.bitsStored;
  if (bits >= 32) return raw;
  const shift = Math.max(0, meta.highBit + 1 - bits);
  const mask = bits >= 31 ? 0x7fffffff : (1 << bits) - 1;
  const sign = 1 << (bits - 1);
  for (let i = 0; i < raw.length; i++) {
    let v = (raw[i] >>> shift) & mask;
    if (meta.pixelRepresentation === 1 && v & sign) v -= 2 * sign;
    raw[i] = v;
  }
  return raw;
}

function rawToStored(frame: RawFrame, meta: DicomMeta): StoredValues {
  if (frame.width !== meta.columns || frame.height !== meta.rows) {
    throw new DicomError(
      `decoded frame is ${frame.width}x${frame.height}, the header says ${meta.columns}x${meta.rows}`,
    );
  }
  if (frame.components !== 1) throw new DicomError(`decoded frame has ${frame.components} components, 1 expected`);
  const n = frame.width * frame.height;
  const out = new Int32Array(n);
  const b = frame.bytes;
  if (frame.bitsPerSample <= 8) {
    if (b.length < n) throw new DicomError('decoded frame is shorter than the image');
    for (let i = 0; i < n; i++) out[i] = b[i];
  } else {
    if (b.length < 2 * n) throw new DicomError('decoded frame is shorter than the image');
    for (let i = 0; i < n; i++) out[i] = b[2 * i] | (b[2 * i + 1] << 8);
  }
  // Codecs give unsigned samples of the codestream's precision; the header decides signedness and Bits Stored.
  return maskStored(out, { ...meta, highBit: meta.bitsStored - 1 });
}

/**
 * Parses a DICOM file and decodes one grey frame (default the first) to stored values. Throws DicomError for
 * non-DICOM bytes, missing pixel data, unsupported transfer syntaxes and colour images.
 */
export async function decodeDicom(bytes: Uint8Array, opts: { frame?: number } = {}): Promise<DecodedDicom> {
  const { ds, part10 } = parse(bytes);
  return decodeParsed(ds, readMeta(ds, part10), opts.frame ?? 0);
}

/** The 8-bit grey image of a single-frame grey radiograph, displayed as its header asks (window, inversion). */
export async function dicomToGrey(bytes: Uint8Array): Promise<GreyImage> {
  const { ds, part10 } = parse(bytes);
  const meta = readMeta(ds, part10);
  if (meta.numberOfFrames > 1) {
    throw new DicomError(`multi-frame image (${meta.numberOfFrames} frames): a single radiograph is expected`);
  }
  const { stored } = await decodeParsed(ds, meta, 0);
  return storedToGrey8(stored);
}

async function decodeParsed(ds: DataSet, meta: DicomMeta, frame: number): Promise<DecodedDicom> {
  if (!Number.isInteger(frame) || frame < 0 || frame >= meta.numberOfFrames) {
    throw new DicomError(`frame ${frame + 1} requested, the image has ${meta.numberOfFrames}`);
  }
  if (meta.samplesPerPixel !== 1 || (meta.photometric !== 'MONOCHROME1' && meta.photometric !== 'MONOCHROME2')) {
    throw new DicomError(
      `colour image (${meta.photometric}, ${meta.samplesPerPixel} samples per pixel): only grey MONOCHROME1/2 radiographs are supported`,
    );
  }
  if (meta.bitsStored < 1 || meta.bitsStored > 32) throw new DicomError(`invalid Bits Stored ${meta.bitsStored}`);
  const el = ds.elements['x7fe00010'];
  if (!el) throw new DicomError('no pixel data (7FE0,0010) in this DICOM object');
  const ts = meta.transferSyntaxUid;
  if (!SUPPORTED_TS.has(ts)) throw new DicomError(`unsupported transfer syntax ${ts}`);

  let values: StoredValues;
  if (NATIVE.has(ts)) {
    if (el.encapsulatedPixelData) throw new DicomError(`pixel data is encapsulated but transfer syntax ${ts} is native`);
    values = nativeFrame(ds, el, meta, frame, ts === TS.explicitBE);
  } else {
    if (!el.encapsulatedPixelData) throw new DicomError(`transfer syntax ${ts} needs encapsulated pixel data`);
    const data = encapsulatedFrame(ds, el, frame, meta.numberOfFrames, ts);
    let raw: RawFrame;
    if (ts === TS.j2k || ts === TS.j2kLossless) raw = await runCodec('openjpeg', trimJ2kTrailer(data));
    else if (ts === TS.jpegLsLossless || ts === TS.jpegLsNear) raw = await runCodec('charls', data);
    else if (ts === TS.jpegBaseline) raw = await runCodec('libjpeg-turbo', data);
    else {
      try {
        raw = decodeJpegLossless(data);
      } catch (e) {
        throw new DicomError(`JPEG lossless decoding failed: ${message(e)}`);
      }
    }
    values = rawToStored(raw, meta);
  }
  const stored: StoredPixels = {
    width: meta.columns,
    height: meta.rows,
    data: values,
    bitsStored: meta.bitsStored,
    pixelRepresentation: meta.pixelRepresentation,
    photometric: meta.photometric as 'MONOCHROME1' | 'MONOCHROME2',
    rescaleSlope: meta.rescaleSlope,
    rescaleIntercept: meta.rescaleIntercept,
    windowCenter: meta.windowCenter,
    windowWidth: meta.windowWidth,
    voiLutFunction: meta.voiLutFunction,
  };
  return { meta, stored };
}
