// --threads auto: which thread counts are tried, which one is kept, and a real (tiny) probe in child processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from 'commander';
import { candidateThreads, chooseThreads, fastestIndex, PROBE_MARGIN, probeThreads } from '../../trainer/src/train/threads-probe.js';
import { positiveIntOrAuto } from '../../trainer/src/cli/parse.js';

test('candidate thread counts: 1, then doublings within the cores, at most 8', () => {
  assert.deepEqual(candidateThreads(1), [1]);
  assert.deepEqual(candidateThreads(2), [1, 2]);
  assert.deepEqual(candidateThreads(6), [1, 2, 4]);
  assert.deepEqual(candidateThreads(64), [1, 2, 4, 8]);
});

test('a thread count is kept only when it beats the best so far by the margin', () => {
  const beat = 100 * (1 - PROBE_MARGIN) - 1;
  const tie = 100 * (1 - PROBE_MARGIN) + 1;
  assert.equal(fastestIndex([1, 2], [100, beat]), 1);
  assert.equal(fastestIndex([1, 2], [100, tie]), 0, 'within the margin: the fewer threads');
  assert.equal(fastestIndex([1, 2], [100, null]), 0, 'a count that could not run is not kept');
  assert.equal(fastestIndex([1, 2, 4], [100, 80, 79]), 1);
  assert.equal(fastestIndex([1, 2, 4], [100, 80, 60]), 2);
  assert.equal(fastestIndex([1, 2, 4], [100, 120, 50]), 0, 'the search stops at the first count that does not win');
});

test('--threads: a count is used as given, auto on the cpu backend is 1, a recorded choice is reused', async () => {
  const lines: string[] = [];
  const o = { size: 32, batch: 2, log: (l: string) => lines.push(l) };
  assert.deepEqual(await chooseThreads(undefined, 'auto', o), { threads: 1 });
  assert.deepEqual(await chooseThreads(3, 'wasm', o), { threads: 3 });
  assert.deepEqual(await chooseThreads('auto', 'cpu', o), { threads: 1 });
  const recorded = { model: 'MobileNetV2 0.35 at 32 px, 2 images, full fine-tune steps', stepMs: { 1: 50, 2: 30 }, chosen: 2 };
  assert.deepEqual(await chooseThreads('auto', 'wasm', { ...o, recorded }), { threads: 2 });
  assert.equal(lines.length, 1);
  assert.match(lines[0], /--threads auto: 2, as measured for training \(1 thread 50 ms, 2 threads 30 ms per step of MobileNetV2/);
});

test('--threads parses a positive integer or auto', () => {
  const parse = positiveIntOrAuto('--threads');
  assert.equal(parse('auto'), 'auto');
  assert.equal(parse('2'), 2);
  assert.throws(() => parse('0'), InvalidArgumentError);
  assert.throws(() => parse('two'), /--threads must be a positive integer or 'auto'/);
});

test('the probe times each candidate in its own process and keeps the faster', async () => {
  const lines: string[] = [];
  const p = await probeThreads({ alpha: 0.35, size: 32, batch: 2, steps: 1, cores: 2, log: (l) => lines.push(l) });
  assert.match(p.model, /MobileNetV2 0\.35 at 32 px, 2 images/);
  const one = p.stepMs['1'];
  assert.ok(one > 0, `no step time for 1 thread: ${lines.join(' | ')}`);
  // The threaded build must run here (the wasm-threads test checks it does): its time is recorded too.
  const two = p.stepMs['2'];
  assert.ok(two > 0, `no step time for 2 threads: ${lines.join(' | ')}`);
  assert.equal(p.chosen, two < (1 - PROBE_MARGIN) * one ? 2 : 1);
  assert.equal(lines.length, 2);

  const single = await probeThreads({ alpha: 0.35, size: 32, batch: 2, steps: 1, cores: 1 });
  assert.deepEqual(Object.keys(single.stepMs), ['1']);
  assert.equal(single.chosen, 1);
});
