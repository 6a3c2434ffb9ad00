// Third-party readers accept the SR writer's output: DCMTK's dsrdump reads it without errors and dicom3tools'
// dciodvfy reports no errors for the Comprehensive SR IOD (Debian packages dcmtk and dicom3tools; .ci/run
// installs them), and dciodvfy none for the attention map's Secondary Capture. The e2e test runs them on the
// instances read back from Orthanc as well.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildReport, deviceUidFor, reportBytes, reportUids } from '../../extension/src/srReport.js';
import { buildCapture, captureBytes, capturePixels, captureUids } from '../../extension/src/attentionCapture.js';
import { validateSr, verifyIod } from '../helpers/sr-validate.js';

const source = {
  studyInstanceUid: '1.2.826.0.1.3680043.8.498.1', seriesInstanceUid: '1.2.826.0.1.3680043.8.498.2', sopInstanceUid: '1.2.826.0.1.3680043.8.498.3',
  sopClassUid: '1.2.840.10008.5.1.4.1.1.1', patientName: 'Doe^Jane', patientId: 'P1', studyDate: '20200101', studyTime: '101010', studyId: 'S1',
};
const content = {
  algorithmName: 'zerovar COVID-19 classifier', algorithmVersion: '0.1.0', bundleSha256: 'ab'.repeat(32), variant: 'masked',
  task: 'COVID vs Normal', classes: ['COVID', 'Normal'], probabilities: [0.3, 0.7], predicted: 'Normal',
  ood: { score: 3, threshold: 30, flagged: false }, shownAnyway: false,
};

describe('SR validators', () => {
  test('dsrdump reads the report and dciodvfy finds no error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zerovar-sr-'));
    try {
      const file = join(dir, 'sr.dcm');
      writeFileSync(file, Buffer.from(reportBytes(buildReport(source, content, await reportUids(source, content), new Date(), await deviceUidFor(content)))));
      const v = validateSr(file);
      assert.match(v.dsrdump, /Comprehensive SR Document/);
      assert.match(v.dsrdump, /Probability of Normal"\)="70" \(%,UCUM,"percent"\)/);
      assert.deepEqual(v.dciodvfyErrors, [], v.dciodvfy);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('dciodvfy finds no error in the attention map\'s Secondary Capture', async () => {
    const grey = { width: 300, height: 240, data: Uint8Array.from({ length: 300 * 240 }, (_, i) => i % 251) };
    const attention = { cam: Float32Array.from({ length: 64 }, (_, i) => i / 63), width: 8, height: 8, className: 'Normal', method: 'Integrated Grad-CAM' };
    const dir = mkdtempSync(join(tmpdir(), 'zerovar-sc-'));
    try {
      const file = join(dir, 'sc.dcm');
      const uids = await captureUids(source, content);
      writeFileSync(file, Buffer.from(captureBytes(buildCapture(source, content, attention, capturePixels(grey, attention), uids, new Date()))));
      const v = verifyIod(file);
      assert.match(v.dciodvfy, /SCImage/);
      assert.deepEqual(v.dciodvfyErrors, [], v.dciodvfy);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
