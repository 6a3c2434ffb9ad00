// The attention map as a DICOM Secondary Capture: its pixels (the image under the map, as the overlay draws it),
// the dataset read back (its study, its own series, the source image, the notice), UIDs derived like the
// report's, and its store beside the report against a fake DICOMweb server (saved once, then recognised).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildCapture, captureBytes, capturePixels, captureUids, readCapture, SECONDARY_CAPTURE, type Attention,
} from '../../extension/src/attentionCapture.js';
import { saveCapture, sourceFromInstance } from '../../extension/src/pacsSave.js';
import { reportUids, type ReportContent } from '../../extension/src/srReport.js';
import { attentionOverlay, jet } from '../../trainer/src/image/colormap.js';
import { resizeGrey } from '../../trainer/src/image/pixels.js';

const source = sourceFromInstance({
  StudyInstanceUID: '1.2.3', SeriesInstanceUID: '1.2.3.4', SOPInstanceUID: '1.2.3.4.5', SOPClassUID: '1.2.840.10008.5.1.4.1.1.1', PatientID: 'P1',
});
const content: ReportContent = {
  algorithmName: 'zerovar', algorithmVersion: '0.1.0', bundleSha256: 'cd'.repeat(32), variant: 'masked', task: 't', classes: ['COVID', 'Normal'],
  probabilities: [0.8, 0.2], predicted: 'COVID', ood: undefined, shownAnyway: false,
};
const grey = { width: 1001, height: 800, data: Uint8Array.from({ length: 1001 * 800 }, (_, i) => (i * 13) % 256) };
/** Hot in the left half of the map, nothing in the right half. */
const attention: Attention = { cam: Float32Array.from({ length: 16 }, (_, i) => (i % 4 < 2 ? 1 : 0)), width: 4, height: 4, className: 'COVID', method: 'Integrated Grad-CAM' };

describe('attention capture', () => {
  test('pixels: the image at most 512 wide, even width, under the map as the overlay blends it', () => {
    const p = capturePixels(grey, attention);
    assert.deepEqual([p.width, p.height], [512, 409]);
    assert.equal(p.rgb.length, 512 * 409 * 3);
    const expected = attentionOverlay(resizeGrey(grey, 512, 409), attention.cam, 4, 4, 0.5);
    for (const i of [0, 1000, 512 * 200 + 100, 512 * 409 - 1]) {
      assert.deepEqual(Array.from(p.rgb.subarray(3 * i, 3 * i + 3)), Array.from(expected.subarray(4 * i, 4 * i + 3)), `pixel ${i}`);
    }
    // Far right: the map is zero, the image shows grey; far left: tinted towards jet(1).
    const right = 512 * 200 + 510;
    assert.equal(p.rgb[3 * right], p.rgb[3 * right + 1]);
    assert.equal(p.rgb[3 * right + 1], p.rgb[3 * right + 2]);
    const left = 512 * 200 + 2;
    assert.deepEqual(jet(1), [128, 0, 0]);
    assert.ok(p.rgb[3 * left] > p.rgb[3 * left + 2] + 50, 'tinted red where attention is high');
    const small = capturePixels({ width: 100, height: 60, data: new Uint8Array(6000) }, attention);
    assert.deepEqual([small.width, small.height], [100, 60], 'a small image keeps its size');
  });

  test('the dataset reads back: Secondary Capture in the source\'s study, a series of its own, the source referenced', async () => {
    const uids = await captureUids(source, content);
    const report = await reportUids(source, content);
    assert.notEqual(uids.sopInstanceUid, report.sopInstanceUid);
    assert.notEqual(uids.seriesInstanceUid, report.seriesInstanceUid, 'beside the report, not in its series');
    assert.deepEqual(await captureUids(source, content), uids, 'the same image and bundle: the same UIDs');
    const pixels = capturePixels(grey, attention);
    const back = readCapture(captureBytes(buildCapture(source, content, attention, pixels, uids, new Date(2024, 0, 2))));
    assert.equal(back.sopClassUid, SECONDARY_CAPTURE);
    assert.equal(back.sopInstanceUid, uids.sopInstanceUid);
    assert.equal(back.studyInstanceUid, '1.2.3');
    assert.equal(back.seriesInstanceUid, uids.seriesInstanceUid);
    assert.equal(back.modality, 'OT');
    assert.deepEqual([back.columns, back.rows, back.photometric], [512, 409, 'RGB']);
    assert.deepEqual(back.source, { sopClassUid: source.sopClassUid, sopInstanceUid: '1.2.3.4.5' });
    assert.match(back.derivation, /^Integrated Grad-CAM of COVID \(masked model, bundle cdcdcdcdcdcd\)/);
    assert.match(back.comments, /^Research use only/);
    assert.deepEqual(back.pixels, pixels.rgb);
  });

  test('stored in the study once; a second save is recognised; a refusal is a sentence', async () => {
    const stored: string[] = [];
    const sops = new Set<string>();
    const pacs = (async (input: string | URL, init?: RequestInit) => {
      const url = String(input);
      if (!init?.method || init.method === 'GET') {
        const sop = new URL(url, 'http://x').searchParams.get('SOPInstanceUID') ?? '';
        return new Response(JSON.stringify(sops.has(sop) ? [{}] : []), { status: 200 });
      }
      const bytes = init.body as Uint8Array;
      const text = new TextDecoder('latin1').decode(bytes);
      const part = bytes.slice(text.indexOf('\r\n\r\n') + 4, text.lastIndexOf('\r\n--'));
      const sc = readCapture(part.buffer);
      sops.add(sc.sopInstanceUid);
      stored.push(`${url} ${sc.sopClassUid}`);
      return new Response('{}', { status: 200 });
    }) as typeof fetch;
    const first = await saveCapture('/pacs/dicom-web', source, content, attention, grey, pacs);
    assert.equal(first.kind, 'saved', first.message);
    assert.deepEqual(stored, [`/pacs/dicom-web/studies/1.2.3 ${SECONDARY_CAPTURE}`]);
    const again = await saveCapture('/pacs/dicom-web', source, content, attention, grey, pacs);
    assert.equal(again.kind, 'duplicate');
    assert.equal(stored.length, 1);
    const refused = (async (_: string | URL, init?: RequestInit) =>
      new Response(init?.method === 'POST' ? 'disk full' : '[]', { status: init?.method === 'POST' ? 500 : 200 })) as typeof fetch;
    const r = await saveCapture('/r', source, content, attention, grey, refused);
    assert.deepEqual(r, { kind: 'failed', message: 'The PACS failed to store the attention map (HTTP 500): disk full. It was not saved.' });
  });
});
