// The panel as the end-to-end tests drive it: Run and its outcome, and what a finished classification must show.
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';

/** Cold WebGL on a software renderer compiles its shaders on the first run: allow for it. */
export const RUN_TIMEOUT = 90_000;
const BACKENDS = ['webgpu', 'webgl', 'wasm', 'cpu'];

export const resultLocator = (page: Page) =>
  page.locator('[data-cy="zerovar-result"][data-state="done"], [data-cy="zerovar-result"][data-state="failed"]');

export /** Presses Run and waits for the outcome; returns 'done' or 'failed' and the elapsed milliseconds. */
async function run(page: Page): Promise<{ state: string; ms: number }> {
  const runs = Number(await page.locator('[data-cy="zerovar-result"]').getAttribute('data-runs'));
  const t0 = Date.now();
  await page.locator('[data-cy="zerovar-run"]').click();
  // data-runs counts finished runs: wait for this one, not a result left from the previous run.
  const result = page.locator(
    `[data-cy="zerovar-result"][data-runs="${runs + 1}"]:is([data-state="done"], [data-state="failed"])`,
  );
  await result.waitFor({ timeout: RUN_TIMEOUT });
  return { state: (await result.getAttribute('data-state'))!, ms: Date.now() - t0 };
}

export /** The shown probabilities sum to one, the predicted class is the most probable one, a backend is named. */
async function checkClassification(page: Page): Promise<{ backend: string; predicted: string; inference: string }> {
  const rows = page.locator('[data-cy="zerovar-probabilities"] [data-probability]');
  const n = await rows.count();
  assert.ok(n >= 2, `at least two classes shown, got ${n}`);
  const probs: { cls: string; p: number }[] = [];
  for (let i = 0; i < n; i++) {
    const row = rows.nth(i);
    probs.push({ cls: (await row.getAttribute('data-class'))!, p: Number(await row.getAttribute('data-probability')) });
  }
  const sum = probs.reduce((s, x) => s + x.p, 0);
  assert.ok(Math.abs(sum - 1) <= 0.01, `probabilities sum to 1: ${JSON.stringify(probs)}`);
  assert.ok(probs.every((x) => x.p >= 0 && x.p <= 1), 'each probability is in [0, 1]');
  const predicted = (await page.locator('[data-cy="zerovar-predicted"]').getAttribute('data-class'))!;
  const best = probs.reduce((a, b) => (b.p > a.p ? b : a));
  assert.equal(predicted, best.cls, 'the predicted class is the most probable one');
  assert.match(await page.locator('[data-cy="zerovar-predicted"]').innerText(), new RegExp(`Predicted: ${predicted}`));
  const backend = await page.locator('[data-cy="zerovar-run-info-backend"]').innerText();
  assert.ok(BACKENDS.includes(backend), `a backend is shown: ${backend}`);
  const inference = await page.locator('[data-cy="zerovar-run-info-inference"]').innerText();
  assert.match(inference, /\d+(\.\d)? ms \+ Grad-CAM \d+(\.\d)? ms/);
  // The model's facts from its manifest.
  for (const k of ['units-removed', 'parameters-removed', 'bundle-size', 'classifier', 'features-k']) {
    assert.ok(await page.locator(`[data-cy="zerovar-facts-${k}"]`).count(), `model fact ${k} is shown`);
  }
  return { backend, predicted, inference };
}
