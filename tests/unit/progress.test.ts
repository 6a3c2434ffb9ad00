// The trainer's progress lines: rate and ETA in plain lines for logs, a bar redrawn in place on a terminal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, Progress } from '../../trainer/src/train/progress.js';

test('progress: plain lines with rate and ETA when not a terminal; a redrawn bar on one', () => {
  let t = 0;
  const lines: string[] = [];
  const p = new Progress('forward', 100, { stream: { write: (s: string) => lines.push(s) }, tty: false, minIntervalMs: 0, now: () => t });
  for (let i = 0; i < 100; i++) {
    t += 50;
    p.tick();
  }
  assert.equal(lines.length, 10, lines.join(''));
  assert.match(lines[0], /^forward 10\/100 \(10%\) 20\/s elapsed 00:01 ETA 00:05\n$/);
  assert.match(lines.at(-1)!, /^forward 100\/100 \(100%\) 20\/s elapsed 00:05\n$/);
  const tty: string[] = [];
  const q = new Progress('epoch', 4, { stream: { write: (s: string) => tty.push(s) }, tty: true, now: () => (t += 1000) });
  q.tick(2, 'loss 0.5');
  q.tick(2);
  // On a terminal the line is redrawn in place and ends with the erase-to-end-of-line escape.
  assert.match(tty[0], /^\r\[#{12}-{12}\] epoch 2\/4 \(50%\) .* ETA .* loss 0\.5/);
  assert.ok(tty[0].endsWith('loss 0.5\x1b[K'), JSON.stringify(tty[0]));
  assert.ok(tty.at(-1)!.endsWith('\n'));
  assert.equal(formatDuration(3725), '1:02:05');
  assert.equal(formatDuration(NaN), '--:--');
});
