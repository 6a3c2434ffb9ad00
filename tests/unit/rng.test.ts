import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mulberry32, SeededRng } from '../../trainer/src/data/rng.js';

test('SeededRng: the shuffles fine-tuning checkpoints resume from stay as they were, state included', () => {
  const r = new SeededRng(42);
  assert.deepEqual(r.shuffle(12), [2, 0, 5, 10, 9, 11, 3, 1, 6, 8, 4, 7]);
  assert.equal(r.state, 2967354801);
  // Resuming from the saved state continues the same stream.
  const resumed = new SeededRng(r.state);
  assert.deepEqual(resumed.shuffle(5), r.shuffle(5));
});

test('mulberry32 is the same generator as SeededRng', () => {
  const f = mulberry32(7);
  const g = new SeededRng(7);
  for (let i = 0; i < 20; i++) assert.equal(f(), g.next());
});
