// "Save to PACS" against a fake DICOMweb server: STOW-RS of one application/dicom part to the study, a second save
// for the same image and model recognised, refusals and an unreachable PACS reported as sentences, and where
// saving is unavailable (a read-only folder source).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { saveReport, sourceFromInstance, storeTarget } from '../../extension/src/pacsSave.js';
import { readReport, type ReportContent } from '../../extension/src/srReport.js';

const source = sourceFromInstance({
  StudyInstanceUID: '1.2.3', SeriesInstanceUID: '1.2.3.4', SOPInstanceUID: '1.2.3.4.5', SOPClassUID: '1.2.840.10008.5.1.4.1.1.1', PatientName: [{ Alphabetic: 'Doe^Jane' }],
});
const content: ReportContent = {
  algorithmName: 'zerovar', algorithmVersion: '0.1.0', bundleSha256: 'ab'.repeat(32), variant: 'raw', task: 't', classes: ['COVID', 'Normal'],
  probabilities: [0.25, 0.75], predicted: 'Normal', ood: undefined, shownAnyway: false,
};

/** A PACS holding stored instances in memory; `status` forces the STOW answer. */
function fakePacs(status = 200) {
  const stored: { url: string; bytes: Uint8Array; type: string }[] = [];
  const sops = new Set<string>();
  const f = (async (input: string | URL, init?: RequestInit) => {
    const url = String(input);
    if (!init?.method || init.method === 'GET') {
      const sop = new URL(url, 'http://x').searchParams.get('SOPInstanceUID') ?? '';
      return new Response(JSON.stringify(sops.has(sop) ? [{}] : []), { status: 200 });
    }
    if (status !== 200) return new Response('no such study here', { status });
    const bytes = init.body as Uint8Array;
    stored.push({ url, bytes, type: String((init.headers as Record<string, string>)['Content-Type']) });
    const text = new TextDecoder('latin1').decode(bytes);
    const start = text.indexOf('\r\n\r\n') + 4;
    const end = text.lastIndexOf('\r\n--');
    sops.add(readReport(bytes.slice(start, end).buffer).sopInstanceUid);
    return new Response('{}', { status: 200 });
  }) as typeof fetch;
  return { f, stored };
}

describe('save to PACS', () => {
  test('stores one application/dicom part in the study, and a second save is recognised, not duplicated', async () => {
    const pacs = fakePacs();
    const first = await saveReport('/pacs/dicom-web/', source, content, pacs.f);
    assert.equal(first.kind, 'saved', first.message);
    assert.equal(pacs.stored.length, 1);
    assert.equal(pacs.stored[0]?.url, '/pacs/dicom-web/studies/1.2.3');
    assert.match(pacs.stored[0]?.type ?? '', /^multipart\/related; type="application\/dicom"; boundary=/);
    const again = await saveReport('/pacs/dicom-web', source, content, pacs.f);
    assert.equal(again.kind, 'duplicate');
    assert.match(again.message, /Already saved/);
    assert.equal(pacs.stored.length, 1, 'nothing stored the second time');
  });

  test('a refusal, a server error and an unreachable PACS are sentences that keep the result on screen', async () => {
    assert.match((await saveReport('/r', source, content, fakePacs(409).f)).message, /^The PACS refused the report \(HTTP 409\): no such study here\. .*stays on screen/);
    assert.match((await saveReport('/r', source, content, fakePacs(500).f)).message, /failed to store the report \(HTTP 500\)/);
    assert.match((await saveReport('/r', source, content, fakePacs(502).f)).message, /could not be reached \(HTTP 502\)/);
    const down = (async () => {
      throw new TypeError('Failed to fetch');
    }) as typeof fetch;
    const r = await saveReport('/r', source, content, down);
    assert.equal(r.kind, 'failed');
    assert.match(r.message, /could not be reached \(Failed to fetch\)/);
  });

  test('saving is unavailable for a source that takes no stores; the source image must have its UIDs', () => {
    assert.deepEqual(storeTarget({ wadoRoot: '/pacs/dicom-web', dicomUploadEnabled: true }), { root: '/pacs/dicom-web' });
    const folder = storeTarget({ wadoRoot: '/dicom-web', dicomUploadEnabled: false });
    assert.ok('unavailable' in folder && /does not accept stores/.test(folder.unavailable));
    assert.ok('unavailable' in storeTarget(undefined));
    assert.equal(source.patientName, 'Doe^Jane');
    assert.throws(() => sourceFromInstance({ StudyInstanceUID: '1' }), /no SeriesInstanceUID/);
  });
});
