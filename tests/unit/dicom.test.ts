import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DicomError, decodeDicom, dicomToGrey, readDicomMeta, trimJ2kTrailer } from '../../trainer/src/data/dicom.js';
import { ImageDecodeError, readGreyImage } from '../../trainer/src/data/decode.js';
import { storedToGrey8, type GreyImage } from '../../trainer/src/image/pixels.js';
import dicomParser from 'dicom-parser';
import { decodeJpegLossless } from '../../trainer/src/data/jpeg-lossless.js';
import { buildDicom } from '../helpers/dicom-writer.js';
import { projectRoot, sharedPath } from '../helpers/shared.js';

const dicomDir = sharedPath('dicom');
const files = readdirSync(dicomDir).filter((f) => f.endsWith('.dcm')).sort();
const bytesOf = (name: string) => new Uint8Array(readFileSync(join(dicomDir, name)));
// Large files take a second or more to decode on a small CI machine: decode each once for all tests.
const decoded = new Map<string, ReturnType<typeof decodeDicom>>();
function decodeShared(name: string): ReturnType<typeof decodeDicom> {
  if (!decoded.has(name)) decoded.set(name, decodeDicom(bytesOf(name)));
  return decoded.get(name)!;
}

function stats(g: GreyImage): { mean: number; std: number } {
  let s = 0;
  let s2 = 0;
  for (const v of g.data) {
    s += v;
    s2 += v * v;
  }
  const mean = s / g.data.length;
  return { mean, std: Math.sqrt(s2 / g.data.length - mean * mean) };
}

const EXPECTED_TS: Record<string, string> = {
  'explicit-le': '1.2.840.10008.1.2.1',
  'implicit-le': '1.2.840.10008.1.2',
  'jpeg2000-lossy': '1.2.840.10008.1.2.4.91',
  'jpeg2000-lossless': '1.2.840.10008.1.2.4.90',
  'jpegls-near-lossless': '1.2.840.10008.1.2.4.81',
  'jpeg-baseline': '1.2.840.10008.1.2.4.50',
};

test('the seven real chest DICOM files decode to plausible grey images', async () => {
  assert.equal(files.length, 7);
  for (const name of files) {
    const { meta, stored } = await decodeShared(name);
    const ts = Object.entries(EXPECTED_TS).find(([k]) => name.includes(k))![1];
    assert.equal(meta.transferSyntaxUid, ts, name);
    assert.equal(meta.photometric, name.includes('mono1') ? 'MONOCHROME1' : 'MONOCHROME2', name);
    assert.equal(meta.hasPart10Header, !name.includes('nometa'), name);
    assert.equal(meta.samplesPerPixel, 1);
    assert.equal(meta.numberOfFrames, 1);
    assert.ok(meta.sopInstanceUid && meta.studyInstanceUid && meta.seriesInstanceUid, `${name}: UIDs`);
    assert.ok(meta.modality === 'CR' || meta.modality === 'DX', `${name}: modality ${meta.modality}`);
    const bits = Number(/(\d+)bit/.exec(name)![1]);
    assert.equal(meta.bitsStored, bits, name);
    // Stored values stay inside Bits Stored and use a real part of that range.
    let max = 0;
    for (let i = 0; i < stored.data.length; i++) max = Math.max(max, stored.data[i]);
    assert.ok(max < 2 ** bits && max > 2 ** (bits - 3), `${name}: max stored ${max}`);

    const g = storedToGrey8(stored);
    assert.ok(g.width > 100 && g.height > 100, name);
    assert.equal(g.data.length, g.width * g.height);
    const { mean, std } = stats(g);
    assert.ok(std > 10 && mean > 20 && mean < 235, `${name}: mean ${mean.toFixed(1)} std ${std.toFixed(1)}`);

    // Inversion: the same stored values displayed as the other photometric give the complement.
    const other = storedToGrey8({ ...stored, photometric: stored.photometric === 'MONOCHROME1' ? 'MONOCHROME2' : 'MONOCHROME1' });
    for (let i = 0; i < g.data.length; i += 97) assert.equal(g.data[i], 255 - other.data[i], `${name} pixel ${i}`);

    // readGreyImage gives that same image (checked on a small native and a small compressed file, for time).
    if (name === 'cr-mono1-10bit-implicit-le-nometa.dcm' || name === 'cr-mono2-8bit-jpeg-baseline.dcm') {
      const viaFile = await readGreyImage(join(dicomDir, name));
      assert.deepEqual([viaFile.width, viaFile.height], [g.width, g.height]);
      assert.ok(Buffer.from(viaFile.data).equals(Buffer.from(g.data)), name);
    }
  }
});

test('implicit VR without a file header decodes to the same pixels as its explicit VR twin', async () => {
  const a = await decodeShared('cr-mono1-10bit-explicit-le.dcm');
  const b = await decodeShared('cr-mono1-10bit-implicit-le-nometa.dcm');
  assert.deepEqual(Array.from(a.stored.data), Array.from(b.stored.data));
  assert.equal(b.meta.windowCenter, 550);
  assert.equal(b.meta.windowWidth, 1024);
});

test('JPEG 2000 lossy and JPEG-LS near-lossless of the same radiograph agree closely', async () => {
  const j2k = await decodeShared('cr-mono1-15bit-jpeg2000-lossy.dcm');
  const jls = await decodeShared('cr-mono1-15bit-jpegls-near-lossless.dcm');
  assert.deepEqual([j2k.stored.width, j2k.stored.height], [jls.stored.width, jls.stored.height]);
  let sum = 0;
  let range = 0;
  for (let i = 0; i < j2k.stored.data.length; i++) {
    sum += Math.abs(j2k.stored.data[i] - jls.stored.data[i]);
    range = Math.max(range, jls.stored.data[i]);
  }
  const mad = sum / j2k.stored.data.length;
  assert.ok(mad < 0.01 * range, `mean abs difference ${mad.toFixed(1)} of range ${range}`);
});

test('JPEG lossless (process 14, SV1 and other predictors, point transform) and deflated files match the source pixels', async () => {
  // Fixtures: a synthetic 12-bit pattern compressed with DCMTK's dcmcjpeg (+e1; +el +sv 5; +el +sv 7 +pt 2).
  const pattern = (x: number, y: number) => (x * 37 + y * 91 + ((x * y) % 13) * 5) % 4096;
  for (const [name, ts, pt] of [
    ['synthetic-12bit-jpeg-lossless-sv1.dcm', '1.2.840.10008.1.2.4.70', 0],
    ['synthetic-12bit-jpeg-lossless-p14-sv5.dcm', '1.2.840.10008.1.2.4.57', 0],
    ['synthetic-12bit-jpeg-lossless-p14-sv7-pt2.dcm', '1.2.840.10008.1.2.4.57', 2],
    ['synthetic-12bit-deflated.dcm', '1.2.840.10008.1.2.1.99', 0],
  ] as const) {
    const bytes = new Uint8Array(readFileSync(join(projectRoot, 'tests', 'fixtures', 'dicom', name)));
    const { meta, stored } = await decodeDicom(bytes);
    assert.equal(meta.transferSyntaxUid, ts);
    assert.deepEqual([stored.width, stored.height], [96, 80]);
    let wrong = 0;
    for (let y = 0; y < 80; y++) {
      for (let x = 0; x < 96; x++) if (stored.data[y * 96 + x] !== (pattern(x, y) >> pt) << pt) wrong++;
    }
    assert.equal(wrong, 0, name);
  }
});

/**
 * A minimal lossless JPEG encoder (one fixed 5-bit Huffman code per category) for what DCMTK does not write:
 * restart intervals. Restart intervals here are whole rows, where the standard's prediction rules are plain.
 */
function encodeLossless(values: number[], width: number, height: number, predictor: number, restartRows: number): Uint8Array {
  const out: number[] = [0xff, 0xd8];
  const seg = (marker: number, body: number[]) => out.push(0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 0xff, ...body);
  const counts = new Array(16).fill(0);
  counts[4] = 17; // 17 codes of length 5: category t has code t
  seg(0xc4, [0x00, ...counts, ...Array.from({ length: 17 }, (_, t) => t)]);
  seg(0xc3, [16, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0]);
  if (restartRows) seg(0xdd, [(restartRows * width) >> 8, (restartRows * width) & 0xff]);
  seg(0xda, [1, 1, 0x00, predictor, 0, 0]);
  let acc = 0;
  let n = 0;
  const put = (bits: number, len: number) => {
    for (let i = len - 1; i >= 0; i--) {
      acc = (acc << 1) | ((bits >> i) & 1);
      if (++n === 8) {
        out.push(acc);
        if (acc === 0xff) out.push(0); // byte stuffing
        acc = 0;
        n = 0;
      }
    }
  };
  let rst = 0;
  let firstRow = 0;
  for (let y = 0; y < height; y++) {
    if (restartRows && y > 0 && y % restartRows === 0) {
      if (n) put(0xff, 8 - n);
      out.push(0xff, 0xd0 + (rst++ % 8));
      firstRow = y;
    }
    for (let x = 0; x < width; x++) {
      const at = (xx: number, yy: number) => values[yy * width + xx];
      let pred: number;
      if (y === firstRow) pred = x === 0 ? 1 << 15 : at(x - 1, y);
      else if (x === 0) pred = at(x, y - 1);
      else if (predictor === 1) pred = at(x - 1, y);
      else pred = at(x - 1, y) + at(x, y - 1) - at(x - 1, y - 1); // predictor 4
      let diff = (at(x, y) - pred) & 0xffff;
      if (diff >= 0x8000) diff -= 0x10000;
      const t = diff === -0x8000 ? 16 : diff === 0 ? 0 : 32 - Math.clz32(Math.abs(diff));
      put(t, 5);
      if (t > 0 && t < 16) put(diff > 0 ? diff : diff + (1 << t) - 1, t);
    }
  }
  if (n) put(0xff, 8 - n);
  out.push(0xff, 0xd9);
  return Uint8Array.from(out);
}

test('JPEG lossless: restart markers, byte stuffing and 16-bit extremes', () => {
  const width = 37;
  const height = 23;
  const rand = (i: number) => (Math.imul(i + 1, 2654435761) >>> 0) % 65536;
  // Noise with full-range jumps (categories up to 16, many 0xFF bytes) plus a smooth region.
  const values = Array.from({ length: width * height }, (_, i) => (i % 5 === 0 ? rand(i) : (i % 3) * 1000 + (i >> 4)));
  for (const [predictor, restartRows] of [[1, 0], [1, 2], [4, 3]] as const) {
    const frame = decodeJpegLossless(encodeLossless(values, width, height, predictor, restartRows));
    assert.deepEqual([frame.width, frame.height, frame.bitsPerSample, frame.components], [width, height, 16, 1]);
    const got = Array.from({ length: width * height }, (_, i) => frame.bytes[2 * i] | (frame.bytes[2 * i + 1] << 8));
    assert.deepEqual(got, values, `predictor ${predictor}, restart every ${restartRows} rows`);
  }
  assert.throws(() => decodeJpegLossless(Uint8Array.of(0xff, 0xd8, 0xff, 0xc0, 0, 11, 8, 0, 1, 0, 1, 1, 1, 0x11, 0)), /not lossless/);
});

test('native pixel data: bits above Bits Stored are masked, signed values sign-extended', async () => {
  // 12 bits stored in 16, with garbage in the top 4 bits (as overlays once were).
  const raw = [0xf000 | 5, 0x1000 | 4095, 2048, 0];
  const u = await decodeDicom(buildDicom({ rows: 2, columns: 2, samples: raw, bitsStored: 12 }));
  assert.deepEqual(Array.from(u.stored.data), [5, 4095, 2048, 0]);
  const s = await decodeDicom(buildDicom({ rows: 2, columns: 2, samples: raw, bitsStored: 12, pixelRepresentation: 1 }));
  assert.deepEqual(Array.from(s.stored.data), [5, -1, -2048, 0]);
  // Window, rescale and VOI function are read from the header.
  const w = await decodeDicom(
    buildDicom({ rows: 1, columns: 2, samples: [0, 1], windowCenter: '40\\400', windowWidth: '80\\2000', rescaleSlope: '2', rescaleIntercept: '-1024', voiLutFunction: 'SIGMOID' }),
  );
  assert.deepEqual(
    [w.meta.windowCenter, w.meta.windowWidth, w.meta.rescaleSlope, w.meta.rescaleIntercept, w.meta.voiLutFunction],
    [40, 80, 2, -1024, 'SIGMOID'],
  );
});

test('unusable input is a DicomError with a clear message', async () => {
  const good = bytesOf('cr-mono1-10bit-explicit-le.dcm');
  const cases: [string, Uint8Array, RegExp][] = [
    ['garbage', new TextEncoder().encode('x'.repeat(400)), /not a DICOM file/],
    ['empty', new Uint8Array(0), /not a DICOM file/],
    ['header only', good.subarray(0, 1200), /truncated/],
    ['half pixel data', good.subarray(0, good.length / 2), /truncated/],
    ['RGB', buildDicom({ rows: 2, columns: 2, samples: new Array(12).fill(0), bitsAllocated: 8, samplesPerPixel: 3, photometric: 'RGB' }), /colour image/],
  ];
  const jpeg = bytesOf('cr-mono2-8bit-jpeg-baseline.dcm');
  cases.push(['truncated JPEG', jpeg.subarray(0, jpeg.length - 60_000), /truncated/]);
  for (const [what, bytes, re] of cases) {
    await assert.rejects(decodeDicom(bytes), (e: Error) => e instanceof DicomError && re.test(e.message), what);
  }
  const multi = buildDicom({ rows: 2, columns: 2, samples: new Array(8).fill(1), numberOfFrames: 2 });
  assert.equal(readDicomMeta(multi).numberOfFrames, 2);
  assert.equal((await decodeDicom(multi, { frame: 1 })).stored.data.length, 4);
  await assert.rejects(dicomToGrey(multi), (e: Error) => e instanceof DicomError && /multi-frame/.test(e.message));

  // Through readGreyImage, the same failures are ImageDecodeError naming the file.
  const dir = mkdtempSync(join(tmpdir(), 'zerovar-dicom-'));
  try {
    const p = join(dir, 'broken.dcm');
    writeFileSync(p, good.subarray(0, good.length / 2));
    await assert.rejects(readGreyImage(p), (e: Error) => e instanceof ImageDecodeError && e.message.includes(p) && e.cause instanceof DicomError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('corrupt compressed pixel data is a DicomError from each codec', async () => {
  for (const name of ['cr-mono2-8bit-jpeg-baseline.dcm', 'dx-mono1-12bit-jpeg2000-lossless.dcm', 'cr-mono1-15bit-jpegls-near-lossless.dcm']) {
    const bytes = bytesOf(name);
    const fragment = dicomParser.parseDicom(bytes).elements['x7fe00010'].fragments![0];
    bytes.fill(0x11, fragment.position, fragment.position + 64); // wipe the codestream's first markers
    await assert.rejects(decodeDicom(bytes), (e: Error) => e instanceof DicomError && /could not decode the pixel data/.test(e.message), name);
  }
});

test('trimJ2kTrailer drops a marker between the last tile-part and EOC only', () => {
  // SOC, SIZ(len 4), SOT(Psot 14: 12 header bytes + 2 data), data, COM(len 4), EOC.
  const sot = [0xff, 0x90, 0, 10, 0, 0, 0, 0, 0, 14, 0, 1];
  const stream = Uint8Array.from([0xff, 0x4f, 0xff, 0x51, 0, 4, 1, 2, ...sot, 0xaa, 0xbb, 0xff, 0x64, 0, 4, 7, 7, 0xff, 0xd9]);
  const trimmed = trimJ2kTrailer(stream);
  assert.deepEqual(Array.from(trimmed), [0xff, 0x4f, 0xff, 0x51, 0, 4, 1, 2, ...sot, 0xaa, 0xbb, 0xff, 0xd9]);
  const clean = Uint8Array.from([0xff, 0x4f, 0xff, 0x51, 0, 4, 1, 2, ...sot, 0xaa, 0xbb, 0xff, 0xd9]);
  assert.equal(trimJ2kTrailer(clean), clean);
});
