// A small end-to-end `zerovar compress` on real chest X-rays (50 per class at 96 px), through the real CLI, then
// `zerovar evaluate` on the bundle it exported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot, sharedPath } from '../helpers/shared.js';

const cli = join(projectRoot, 'trainer', 'bin', 'zerovar.mjs');

function zerovar(args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: projectRoot, encoding: 'utf8', timeout: 15 * 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('compress runs end to end on 50 images per class and exports a bundle that evaluate reads', async (t) => {
  const dataset = sharedPath('data', 'covid19-radiography-subset');
  const weights = sharedPath('weights', 'mobilenet_v2_0.35_224_notop');
  const root = mkdtempSync(join(tmpdir(), 'zerovar-e2e-'));
  const common = ['--dataset', dataset, '--experiment_id', 'small', '--experiments-dir', root, '--weights', weights];
  // Head only (--trainable-from fc1): a quick run of every step; fine-tuning through the backbone has its own tests.
  // --threads auto: the run measures its thread counts first (any choice gives the same results).
  const args = ['compress', ...common, '--threads', 'auto', '--limit', '50', '--input-size', '96', '--epochs', '4', '--trainable-from', 'fc1', '--fc1', '64', '--fc2', '64', '--lr', '1e-3', '--gradcam-samples', '2', '--export-unpruned', '--ood', sharedPath('data', 'ood-dev'), '--quiet'];

  const run = zerovar(args);
  assert.equal(run.code, 0, `compress failed:\n${run.stderr}`);
  const dir = join(root, 'small');

  await t.test('report.json holds the pipeline figures', () => {
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    assert.deepEqual(report.data.classes, ['COVID', 'Normal']);
    assert.equal(report.data.split.train + report.data.split.val + report.data.split.test, 100);
    assert.ok(report.pruning.unitsAfter <= report.pruning.unitsBefore);
    assert.ok(report.pruning.paramsAfter <= report.pruning.paramsBefore);
    // The surgery is exact where the statistics were measured; on 64 training images some units are constant
    // by chance only, so the test split's figure is reported, not bounded, at this size.
    assert.ok(report.pruning.maxAbsDiffTrain <= 1e-4, `maxAbsDiffTrain ${report.pruning.maxAbsDiffTrain}`);
    assert.ok(Number.isFinite(report.pruning.maxAbsDiff));
    assert.ok(report.selection.k >= 1 && report.selection.k <= 64);
    assert.equal(report.selection.protocol, 'validation');
    assert.equal(Object.keys(report.metrics.classifiers).length, 6);
    assert.ok(['svm-poly', 'svm-rbf', 'svm-linear', 'logistic'].includes(report.metrics.deployed), `deployed ${report.metrics.deployed}`);
    for (const m of [report.metrics.finetuned, report.metrics.compressed]) {
      assert.ok(m.accuracy > 0.5, `accuracy ${m.accuracy} is no better than chance`);
    }
    // The default (auto) tries uint8 dense kernels and keeps them only if validation accuracy holds within 0.5 pt
    // of float16's; either way the weights move the probabilities a little.
    const choice = report.bundle.check.weightsChoice;
    assert.equal(choice.candidate, 'mixed');
    assert.equal(choice.validation.n, report.data.split.val);
    const keep = choice.validation.accuracyCandidate >= choice.validation.accuracyFallback - 0.005 - 1e-9;
    assert.equal(report.bundle.check.weightsDtype, keep ? 'mixed' : 'float16');
    const specs = JSON.parse(readFileSync(join(dir, 'bundle', 'model', 'model.json'), 'utf8')).weightsManifest.flatMap((g: { weights: { quantization?: { dtype: string } }[] }) => g.weights);
    assert.equal(specs.some((w: { quantization?: { dtype: string } }) => w.quantization?.dtype === 'uint8'), keep, 'the bundle holds what the check says');
    assert.ok(report.bundle.reproduceMaxAbsDiff <= 0.1, `bundle reproduces to ${report.bundle.reproduceMaxAbsDiff}`);
    assert.ok(report.bundle.check.changed <= 1, `${report.bundle.check.changed} test answers differ through the bundle`);
    // The unpruned reference keeps every fc2 unit and the whole backbone.
    assert.ok(report.bundle.unpruned.params > report.compressedParams, 'the reference is larger than the compressed model');
    const ref = JSON.parse(readFileSync(join(dir, 'bundle-unpruned', 'manifest.json'), 'utf8'));
    assert.equal(ref.provenance.dataset, dataset, 'provenance names the dataset as given');
    assert.equal(ref.features.selected.length, 64);
  });

  await t.test('--threads auto: the counts measured and the one chosen are in the report and the bundle', () => {
    const runtime = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')).training.runtime;
    assert.equal(runtime.backend, 'wasm');
    const probe = runtime.threadsProbe;
    assert.match(probe.model, /MobileNetV2 0\.35 at 96 px, 8 images/);
    assert.ok(probe.stepMs['1'] > 0, 'one thread was timed');
    if (availableParallelism() > 1) assert.ok(probe.stepMs['2'] > 0, 'two threads were timed');
    assert.ok(Object.keys(probe.stepMs).includes(String(probe.chosen)));
    assert.equal(runtime.kernelThreads, probe.chosen, 'the training kernels ran on the count it chose');
    // The native addon's threads take the count and the wasm build stays single-threaded.
    assert.equal(runtime.nativeKernels, true, 'the native kernels ran (.ci/run builds them)');
    assert.equal(runtime.threads, 1, 'the wasm build stayed single-threaded under the native kernels');
    const m = JSON.parse(readFileSync(join(dir, 'bundle', 'manifest.json'), 'utf8'));
    assert.deepEqual(m.provenance.runtime, runtime);
    assert.match(readFileSync(join(dir, 'report.html'), 'utf8'), /chosen by --threads auto: 1 thread \d+ ms/);
  });

  await t.test('the bundle carries a guard thresholded on validation and a calibration, measured on the --ood sets', () => {
    const m = JSON.parse(readFileSync(join(dir, 'bundle', 'manifest.json'), 'utf8'));
    assert.ok(m.files[m.ood.path], 'the guard file is listed and checksummed');
    assert.equal(m.ood.input, 'unmasked');
    // 16 validation images at 95 % acceptance: exactly one lies above the threshold.
    assert.equal(m.ood.flagged.validation, 1 / 16);
    assert.deepEqual(Object.keys(m.ood.flagged.sets).sort(), ['ct', 'lateral', 'synthetic-checker', 'synthetic-flat', 'synthetic-gradient', 'synthetic-noise', 'synthetic-text']);
    assert.ok(['none', 'temperature'].includes(m.calibration.calibration.method));
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    assert.deepEqual(report.guard.ood.threshold, m.ood.threshold);
    const figures = readdirSync(join(dir, 'figures'));
    for (const f of ['ood-scores.png', 'reliability.png']) assert.ok(figures.includes(f), `missing figure ${f}`);
    assert.match(readFileSync(join(dir, 'report.html'), 'utf8'), /out-of-distribution guard: threshold/);
  });

  await t.test('report.html, log and figures are written', () => {
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    assert.match(html, /Compressed model/);
    assert.doesNotMatch(html, /(src|href)="https?:/);
    assert.ok(readFileSync(join(dir, 'log.txt'), 'utf8').includes('step export: done'));
    const figures = readdirSync(join(dir, 'figures'));
    for (const f of ['training-curves.png', 'units-removed.png', 'k-sweep.png', 'gradcam-COVID.png', 'gradcam-Normal.png']) {
      assert.ok(figures.includes(f), `missing figure ${f} (have ${figures.join(', ')})`);
    }
  });

  await t.test('the same experiment id without --resume is refused, with --resume nothing is redone', () => {
    const again = zerovar(args.filter((a) => a !== '--quiet'));
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /already exists.*--resume/);
    const resumed = zerovar([...args, '--resume']);
    assert.equal(resumed.code, 0, resumed.stderr);
    const log = readFileSync(join(dir, 'log.txt'), 'utf8');
    assert.match(log, /step train: already done/);
    assert.match(log, /--threads auto: \d, as measured for training/, 'a resumed run reuses the measured count');
    const redo = zerovar([...args, '--redo', 'explain']);
    assert.equal(redo.code, 0, redo.stderr);
    const after = readFileSync(join(dir, 'log.txt'), 'utf8');
    assert.equal(after.match(/step explain: start/g)?.length, 2, 'explain ran again');
    assert.equal(after.match(/step export: start/g)?.length, 1, 'export was not redone');
  });

  await t.test('evaluate --json gives the bundle metrics on a dataset', () => {
    const ev = zerovar(['evaluate', '--bundle', join(dir, 'bundle'), '--dataset', dataset, '--limit', '10', '--json']);
    assert.equal(ev.code, 0, ev.stderr);
    const out = JSON.parse(ev.stdout);
    assert.equal(out.n, 20);
    const confusion: number[][] = out.metrics.confusion;
    assert.equal(confusion.flat().reduce((a, b) => a + b, 0), 20);
    // The accuracy reported is the confusion matrix's diagonal share.
    assert.equal(out.accuracy, confusion.reduce((a, row, i) => a + row[i], 0) / 20);
  });

  await t.test('--redo prune with --variance-threshold auto: the threshold sweep, then the head search with its recovery fine-tune', () => {
    const auto = zerovar([...args, '--variance-threshold', 'auto', '--redo', 'prune']);
    assert.equal(auto.code, 0, auto.stderr);
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    const pr = report.pruning;
    assert.equal(pr.thresholdRule, 'auto');
    assert.ok(pr.thresholdSweep.length >= 2);
    const log = readFileSync(join(dir, 'log.txt'), 'utf8');
    if (pr.varianceThreshold > 0) {
      // Stage two ran: its points in increasing order, each scored after a recovery of the head.
      const head = pr.headSweep as { threshold: number; valAccuracy: number; paramsAfter: number }[];
      assert.ok(head.length >= 1);
      assert.deepEqual(head.map((p) => p.threshold), [...head.map((p) => p.threshold)].sort((a, b) => a - b));
      assert.match(log, /head threshold search \(fc1, fc2\)/);
      assert.match(readFileSync(join(dir, 'report.html'), 'utf8'), /Head \(fc1, fc2\) threshold .*Tried \(before -&gt; after recovery\)|Head \(fc1, fc2\) threshold .*Tried \(before -> after recovery\)/);
      if (pr.headThreshold !== undefined) {
        assert.ok(head.some((p) => p.threshold === pr.headThreshold));
        assert.ok(pr.recoveryEpochs >= 1);
        assert.equal(pr.paramsAfter, head.find((p) => p.threshold === pr.headThreshold)?.paramsAfter);
      }
    } else {
      assert.equal(pr.headSweep, undefined, 'threshold 0 is the exact rule: no head search');
    }
    // The bundle's provenance names the first command and, after it, the later ones whose steps it holds.
    const prov = JSON.parse(readFileSync(join(dir, 'bundle', 'manifest.json'), 'utf8')).provenance;
    assert.doesNotMatch(prov.command, /--redo/, 'the command that created the experiment');
    assert.ok(prov.laterCommands.some((c: string) => /--variance-threshold auto --redo prune/.test(c)), JSON.stringify(prov.laterCommands));
    assert.match(prov.laterCommands[prov.laterCommands.length - 1], /--redo prune/, 'the latest last');
    // The bundle made from it is valid and reads back.
    const ev = zerovar(['evaluate', '--bundle', join(dir, 'bundle'), '--dataset', dataset, '--limit', '5', '--json']);
    assert.equal(ev.code, 0, ev.stderr);
  });

  await t.test('an empty dataset folder is a clear error before any work', () => {
    const empty = mkdtempSync(join(tmpdir(), 'zerovar-empty-'));
    const r = zerovar(['compress', '--dataset', empty, '--experiment_id', 'x', '--experiments-dir', root, '--weights', weights]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /zerovar: .*class/i);
    assert.ok(!existsSync(join(root, 'x', 'checkpoints')));
  });
});
