// The SR writer: the report's UIDs are derived (same image and bundle, same instance), its Part 10 bytes read back
// with the same figures, the source image referenced, the guard's verdict and the research notice kept; a
// four-class result as the panel would save it, every class's probability and the task read back.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildReport, COMPREHENSIVE_SR, deviceUidFor, readReport, reportBytes, reportUids, RESEARCH_NOTICE, type ReportContent, type SourceImage,
} from '../../extension/src/srReport.js';
import { reportContent } from '../../extension/src/SaveToPacs.js';
import type { ClassifyResult } from '../../extension/src/inferenceProtocol.js';
import type { ModelFacts } from '../../extension/src/modelFacts.js';

const source: SourceImage = {
  studyInstanceUid: '1.2.826.0.1.3680043.8.498.1', seriesInstanceUid: '1.2.826.0.1.3680043.8.498.2',
  sopInstanceUid: '1.2.826.0.1.3680043.8.498.3', sopClassUid: '1.2.840.10008.5.1.4.1.1.1', patientName: 'Doe^Jane', patientId: 'P1',
};
const content: ReportContent = {
  algorithmName: 'zerovar COVID-19 classifier', algorithmVersion: '0.1.0', bundleSha256: 'ab'.repeat(32), variant: 'raw',
  task: 'COVID vs Normal', classes: ['COVID', 'Normal'], probabilities: [0.8123456789, 0.1876543211], predicted: 'COVID',
  ood: { score: 12.5, threshold: 30.1, flagged: false }, shownAnyway: false,
};

async function written(s = source, c = content) {
  const uids = await reportUids(s, c);
  return { uids, bytes: reportBytes(buildReport(s, c, uids, new Date(2024, 0, 2, 3, 4, 5), await deviceUidFor(c))) };
}

describe('SR report', () => {
  test('UIDs are valid 2.25 UIDs derived from image and bundle: same inputs the same instance, another bundle another one', async () => {
    const a = await reportUids(source, content);
    assert.deepEqual(await reportUids(source, content), a);
    assert.match(a.sopInstanceUid, /^2\.25\.[1-9]\d*$/);
    assert.ok(a.sopInstanceUid.length <= 64);
    const other = await reportUids(source, { bundleSha256: 'cd'.repeat(32) });
    assert.notEqual(other.sopInstanceUid, a.sopInstanceUid);
    assert.notEqual(other.seriesInstanceUid, a.seriesInstanceUid);
    const otherImage = await reportUids({ ...source, sopInstanceUid: `${source.sopInstanceUid}.9` }, content);
    assert.notEqual(otherImage.sopInstanceUid, a.sopInstanceUid);
    assert.equal(otherImage.seriesInstanceUid, a.seriesInstanceUid, 'one series per study and bundle');
  });

  test('the Part 10 bytes read back with the figures, the source reference, the verdict and the notice', async () => {
    const { uids, bytes } = await written();
    assert.equal(new TextDecoder().decode(new Uint8Array(bytes, 128, 4)), 'DICM');
    const r = readReport(bytes);
    assert.equal(r.sopClassUid, COMPREHENSIVE_SR);
    assert.equal(r.modality, 'SR');
    assert.equal(r.sopInstanceUid, uids.sopInstanceUid);
    assert.equal(r.studyInstanceUid, source.studyInstanceUid);
    assert.deepEqual(r.source, { sopClassUid: source.sopClassUid, sopInstanceUid: source.sopInstanceUid });
    assert.equal(r.bundleSha256, content.bundleSha256);
    assert.equal(r.predicted, 'COVID');
    assert.equal(r.variant, 'raw');
    assert.ok(Math.abs((r.probabilities.COVID ?? 0) - 0.8123456789) < 1e-5, JSON.stringify(r.probabilities));
    assert.ok(Math.abs((r.probabilities.Normal ?? 0) - 0.1876543211) < 1e-5);
    assert.match(r.oodVerdict, /^accepted/);
    assert.equal(r.oodScore, 12.5);
    assert.equal(r.notice, RESEARCH_NOTICE);
  });

  test('a bundle without a guard says so; a flagged result shown anyway says so in its notice', async () => {
    const none = readReport((await written(source, { ...content, ood: undefined })).bytes);
    assert.match(none.oodVerdict, /^no guard/);
    assert.equal(none.oodScore, undefined);
    const shown = readReport((await written(source, { ...content, ood: { score: 90, threshold: 30, flagged: true }, shownAnyway: true })).bytes);
    assert.match(shown.oodVerdict, /^flagged: out of distribution/);
    assert.match(shown.notice, /Shown anyway although flagged/);
  });

  test('one probability per class is required', () => {
    assert.throws(() => buildReport(source, { ...content, probabilities: [1] }, { seriesInstanceUid: '2.25.1', sopInstanceUid: '2.25.2' }, new Date(), '2.25.3'), /one probability per class/);
  });

  test('a four-class result: the task names the four classes, each has its probability, the predicted one is kept', async () => {
    const classes = ['COVID', 'Lung_Opacity', 'Normal', 'Viral Pneumonia'];
    const facts = { name: 'raw-4class', variant: 'raw', backbone: 'mobilenet_v2_0.35', task: '4 classes: COVID, Lung_Opacity, Normal, Viral Pneumonia' } as ModelFacts;
    const result = {
      classes, probabilities: [0.1, 0.62, 0.2, 0.08], classIndex: 1, className: 'Lung_Opacity', bundleSha256: 'ef'.repeat(32), facts,
      ood: { score: 10, threshold: 30, flagged: false },
    } as unknown as ClassifyResult;
    const c = reportContent(result, false);
    assert.equal(c.task, '4 classes: COVID, Lung_Opacity, Normal, Viral Pneumonia on a frontal chest radiograph (whole image)');
    const r = readReport((await written(source, c)).bytes);
    assert.deepEqual(Object.keys(r.probabilities), classes);
    assert.ok(Math.abs((r.probabilities.Lung_Opacity ?? 0) - 0.62) < 1e-6);
    assert.ok(Math.abs((r.probabilities['Viral Pneumonia'] ?? 0) - 0.08) < 1e-6);
    assert.equal(r.predicted, 'Lung_Opacity');
    assert.equal(r.variant, 'raw');
  });
});
