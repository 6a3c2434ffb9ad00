// The host's fixes for what OHIF cannot show: JPEG 2000 frames repaired inside multipart answers, unusable pixel
// spacings left out of DICOM JSON metadata.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { repairFrame, repairMultipartFrames, sanitizeMetadataText, sanitizeSpacing } from '../../scripts/host/viewer-fixes.js';
import type { DicomJson } from '../../scripts/host/dicom-json.js';

// SOC, SIZ(len 4), SOT(Psot 14), two data bytes, COM(len 4), EOC: the COM after the last tile-part is dropped.
const SOT = [0xff, 0x90, 0, 10, 0, 0, 0, 0, 0, 14, 0, 1];
const WITH_COM = Uint8Array.from([0xff, 0x4f, 0xff, 0x51, 0, 4, 1, 2, ...SOT, 0xaa, 0xbb, 0xff, 0x64, 0, 4, 7, 7, 0xff, 0xd9]);
const CLEAN = Uint8Array.from([0xff, 0x4f, 0xff, 0x51, 0, 4, 1, 2, ...SOT, 0xaa, 0xbb, 0xff, 0xd9]);

function multipart(boundary: string, parts: Uint8Array[]): Buffer {
  const chunks: Buffer[] = [Buffer.from('preamble\r\n')];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.90\r\n\r\n`), Buffer.from(p), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

test('repairFrame trims a JPEG 2000 trailer and leaves other frames alone', () => {
  assert.deepEqual(Array.from(repairFrame(WITH_COM)), Array.from(CLEAN));
  const jpeg = Uint8Array.of(0xff, 0xd8, 0xff, 0xd9);
  assert.equal(repairFrame(jpeg), jpeg);
});

test('repairMultipartFrames repairs each part and keeps the framing intact', () => {
  const type = 'multipart/related; type="application/octet-stream"; boundary=abc123';
  const body = multipart('abc123', [WITH_COM, CLEAN, WITH_COM]);
  const fixed = repairMultipartFrames(body, type);
  assert.ok(fixed);
  assert.deepEqual(fixed, multipart('abc123', [CLEAN, CLEAN, CLEAN]));
  const clean = multipart('abc123', [CLEAN]);
  assert.equal(repairMultipartFrames(clean, type), clean, 'nothing to repair: the same buffer');
  // A quoted boundary, as some servers send it.
  assert.deepEqual(repairMultipartFrames(multipart('q-1', [WITH_COM]), 'multipart/related; boundary="q-1"'), multipart('q-1', [CLEAN]));
  assert.equal(repairMultipartFrames(Buffer.from('not multipart'), type), undefined);
  assert.equal(repairMultipartFrames(body, 'application/octet-stream'), undefined);
});

test('sanitizeSpacing leaves out zero, negative or missing spacings and keeps real ones', () => {
  const json: DicomJson = {
    '00280030': { vr: 'DS', Value: [0, 0] },
    '00181164': { vr: 'DS', Value: [0.15, 0.15] },
    '00280010': { vr: 'US', Value: [10] },
  };
  assert.deepEqual(sanitizeSpacing(json), ['00280030']);
  assert.deepEqual(Object.keys(json).sort(), ['00181164', '00280010']);
  for (const bad of [[0.1], [-1, 1], ['x', 1], [0.1, 0]]) {
    const j: DicomJson = { '00280030': { vr: 'DS', Value: bad } };
    assert.deepEqual(sanitizeSpacing(j), ['00280030'], JSON.stringify(bad));
  }
  const text = JSON.stringify([{ '00280030': { vr: 'DS', Value: [0, 0] } }, { '00280030': { vr: 'DS', Value: [0.2, 0.2] } }]);
  assert.deepEqual(JSON.parse(sanitizeMetadataText(text)), [{}, { '00280030': { vr: 'DS', Value: [0.2, 0.2] } }]);
  const fine = JSON.stringify([{ '00280030': { vr: 'DS', Value: ['0.2', '0.2'] } }]);
  assert.equal(sanitizeMetadataText(fine), fine);
  assert.equal(sanitizeMetadataText('{"a":1}'), '{"a":1}');
  assert.equal(sanitizeMetadataText('not json'), 'not json');
});
