// The panel hooks' plain logic: what a failed run says (missing bundle, refused bundle, anything else), when an
// attention map is empty, the availability lines and how the first availability answers are merged, and which
// image a run belongs to (a result is shown only for the image it was made on, and only while it is shown).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { InferenceError } from '../../extension/src/inferenceClient.js';
import type { ClassifyResult } from '../../extension/src/inferenceProtocol.js';
import { displayKey, snapshotKey } from '../../extension/src/displayKey.js';
import { attentionEmpty, failureText, resultIsCurrent, shownRun, type RunState } from '../../extension/src/useClassification.js';
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

describe('a run belongs to the image it was made on', () => {
  const a = displayKey('vp1', 'wadors:a');
  const b = displayKey('vp1', 'wadors:b');
  const done = (key: string): RunState =>
    ({ kind: 'done', key, model: 'raw', imageId: 'wadors:a', result: {} as ClassifyResult, totalMs: 1, shownAnyway: false });

  test('the key tells images and viewports apart, and a snapshot without an image from one with', () => {
    assert.notEqual(a, b);
    assert.notEqual(displayKey('vp1', 'wadors:a'), displayKey('vp2', 'wadors:a'), 'the same image in another viewport is another display');
    assert.equal(snapshotKey({ viewportId: 'vp1', display: { info: { imageId: 'wadors:a' } } }), a);
    assert.equal(snapshotKey({ viewportId: 'vp1', display: null }), displayKey('vp1', undefined));
    assert.notEqual(snapshotKey({ viewportId: 'vp1', display: null }), a);
  });

  test('the panel shows a result, a failure or "Running…" only for its own image; for another it is idle', () => {
    assert.equal(shownRun(done(a), a).kind, 'done');
    assert.deepEqual(shownRun(done(a), b), { kind: 'idle' }, 'a result of the previous image is not shown beside the new one');
    assert.deepEqual(shownRun({ kind: 'running', key: a, model: 'raw' }, b), { kind: 'idle' });
    assert.deepEqual(shownRun({ kind: 'failed', key: a, message: 'x' }, b), { kind: 'idle' });
    assert.equal(shownRun({ kind: 'failed', key: b, message: 'x' }, b).kind, 'failed');
    assert.deepEqual(shownRun({ kind: 'idle' }, a), { kind: 'idle' });
  });

  test('a result arriving after the image changed (or made on another image than Run was for) is dropped', () => {
    assert.equal(resultIsCurrent(a, a, a), true);
    assert.equal(resultIsCurrent(a, a, b), false, 'the viewport shows another image now');
    assert.equal(resultIsCurrent(a, b, b), false, 'the pixels read were of another image than Run was pressed for');
    assert.equal(resultIsCurrent(a, b, a), false);
  });
});
