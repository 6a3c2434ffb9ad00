// The seven real chest DICOM files of ../shared/dicom: decoding, transfer syntaxes, and errors on damaged copies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DicomError, decodeDicom, dicomToGrey, readDicomMeta } from '../../trainer/src/data/dicom.js';
import { ImageDecodeError, readGreyImage } from '../../trainer/src/data/decode.js';
import { storedToGrey8, type GreyImage } from '../../trainer/src/image/pixels.js';
import dicomParser from 'dicom-parser';
import { buildDicom } from '../helpers/dicom-writer.js';
import { sharedPath } from '../helpers/shared.js';

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

