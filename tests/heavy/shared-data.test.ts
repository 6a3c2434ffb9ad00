import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { sharedPath } from '../helpers/shared.js';

test('shared data is laid out as the tests expect', () => {
  const covid = readdirSync(sharedPath('data', 'covid19-radiography-subset', 'COVID'));
  const normal = readdirSync(sharedPath('data', 'covid19-radiography-subset', 'Normal'));
  assert.equal(covid.length, 1500);
  assert.equal(normal.length, 1500);
  assert.ok(readdirSync(sharedPath('dicom')).filter((f) => f.endsWith('.dcm')).length >= 7);
});

test('sharedPath names the missing path', () => {
  assert.throws(() => sharedPath('no-such-entry'), /missing shared test data: .*no-such-entry/);
});
