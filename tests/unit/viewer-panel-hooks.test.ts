// The panel hooks' plain logic: what a failed run says (missing bundle, refused bundle, anything else), when an
// attention map is empty, the availability lines and how the first availability answers are merged.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { InferenceError } from '../../extension/src/inferenceClient.js';
import type { ClassifyResult } from '../../extension/src/inferenceProtocol.js';
import { attentionEmpty, failureText } from '../../extension/src/useClassification.js';
import { availabilityText, withFirstAnswer } from '../../extension/src/useModelAvailability.js';

describe('run failures', () => {
  test('a missing bundle names its URL and marks the model missing', () => {
    const err = new InferenceError({ name: 'BundleError', message: 'missing file manifest.json: HTTP 404', missing: true });
    assert.deepEqual(failureText(err, 'masked', '/zerovar/models/masked/'), {
      text: 'masked model not available (no bundle at /zerovar/models/masked/)', missing: true,
    });
  });
  test('a refused bundle says so; other errors keep their message', () => {
    const refused = new InferenceError({ name: 'BundleError', message: 'checksum mismatch for model/weights.bin' });
    assert.deepEqual(failureText(refused, 'raw', '/r/'), { text: 'The raw model bundle was refused: checksum mismatch for model/weights.bin', missing: false });
    assert.deepEqual(failureText(new Error('no active viewport'), 'raw', '/r/'), { text: 'no active viewport', missing: false });
    assert.deepEqual(failureText('boom', 'raw', '/r/'), { text: 'boom', missing: false });
  });
});

describe('attention', () => {
  const withCam = (cam?: number[]) =>
    ({ attention: cam && { cam: Float32Array.from(cam), width: cam.length, height: 1, classIndex: 0, className: 'COVID' } }) as ClassifyResult;
  test('an all-zero or absent map is empty; one positive value is not', () => {
    assert.equal(attentionEmpty(withCam([0, 0, 0])), true);
    assert.equal(attentionEmpty(withCam()), true);
    assert.equal(attentionEmpty(withCam([0, 0.01, 0])), false);
  });
});

describe('availability', () => {
  test('lines for missing and unreachable bundles, nothing otherwise', () => {
    assert.equal(availabilityText('masked', 'missing'), 'masked model not available');
    assert.equal(availabilityText('raw', 'error'), 'raw model: its server did not answer');
    assert.equal(availabilityText('raw', 'available'), undefined);
    assert.equal(availabilityText('raw', 'checking'), undefined);
    assert.equal(availabilityText('raw', undefined), undefined);
  });
  test('the first answer fills an unknown or checking model but never overrides a known one', () => {
    assert.deepEqual(withFirstAnswer({}, 'raw', 'available'), { raw: 'available' });
    assert.deepEqual(withFirstAnswer({ raw: 'checking' }, 'raw', 'missing'), { raw: 'missing' });
    assert.deepEqual(withFirstAnswer({ raw: 'missing', masked: 'checking' }, 'raw', 'available'), { raw: 'missing', masked: 'checking' });
  });
});
