import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeDicom } from '../../trainer/src/data/dicom.js';
import { trimJ2kTrailer } from '../../trainer/src/image/j2k.js';
import { decodeJpegLossless } from '../../trainer/src/data/jpeg-lossless.js';
import { buildDicom } from '../helpers/dicom-writer.js';
import { projectRoot } from '../helpers/shared.js';

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

test('trimJ2kTrailer drops a marker between the last tile-part and EOC only', () => {
  // SOC, SIZ(len 4), SOT(Psot 14: 12 header bytes + 2 data), data, COM(len 4), EOC.
  const sot = [0xff, 0x90, 0, 10, 0, 0, 0, 0, 0, 14, 0, 1];
  const stream = Uint8Array.from([0xff, 0x4f, 0xff, 0x51, 0, 4, 1, 2, ...sot, 0xaa, 0xbb, 0xff, 0x64, 0, 4, 7, 7, 0xff, 0xd9]);
  const trimmed = trimJ2kTrailer(stream);
  assert.deepEqual(Array.from(trimmed), [0xff, 0x4f, 0xff, 0x51, 0, 4, 1, 2, ...sot, 0xaa, 0xbb, 0xff, 0xd9]);
  const clean = Uint8Array.from([0xff, 0x4f, 0xff, 0x51, 0, 4, 1, 2, ...sot, 0xaa, 0xbb, 0xff, 0xd9]);
  assert.equal(trimJ2kTrailer(clean), clean);
});
