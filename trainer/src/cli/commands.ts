// What each `zerovar` subcommand does: parsed options mapped onto the library's operations (the pipeline's
// steps, evaluateBundle, predictFiles, the bias study), and their results printed.
import { evaluateBundle, evaluateExternal, type EvaluateResult } from '../train/evaluate.js';
import { runBiasStudy } from '../train/bias-run.js';
import { guardBundle } from '../train/guard-bundle.js';
import { recordExternal } from '../train/record.js';
import { guardSummaryLines, type GuardStepResult } from '../train/guard-step.js';
import { Progress } from '../train/progress.js';
import type { PipelineOptions } from '../train/options.js';
import { Pipeline } from '../train/pipeline.js';
import { writeReport } from '../train/report.js';
import { runPredict } from './predict.js';
import { requantizeBundle, requantizeLines } from '../train/requantize.js';
import { compareExperiments, comparisonLines } from '../train/compare.js';
import { join } from 'node:path';

export async function runCommand(command: string, raw: PipelineOptions | Record<string, unknown>): Promise<void> {
  if (command === 'predict') return runPredict(raw as Record<string, unknown>);
  if (command === 'compare') {
    const o = raw as { pairs: string[]; experimentsDir: string; json?: boolean };
    const pairs = o.pairs.map((p) => {
      const [reference, candidate, ...rest] = p.split(':');
      if (!reference || !candidate || rest.length) throw new Error(`compare: '${p}' is not REFERENCE:CANDIDATE`);
      return [reference, candidate] as const;
    });
    const c = compareExperiments(pairs, o.experimentsDir);
    if (o.json) process.stdout.write(JSON.stringify({ pairs: c.pairs.map(({ reference, candidate, ...rest }) => ({ reference: reference.id, candidate: candidate.id, ...rest })), pooled: c.pooled }, null, 2) + '\n');
    else process.stdout.write(comparisonLines(c).join('\n') + '\n');
    return;
  }
  if (command === 'evaluate') {
    const o = raw as Record<string, unknown>;
    const r = await evaluateBundle({
      bundle: String(o.bundle),
      dataset: String(o.dataset),
      csv: o.csv as string | undefined,
      mapping: String(o.mapping),
      limit: o.limit as number | undefined,
      backend: (o.backend as 'auto' | 'wasm' | 'cpu') ?? 'auto',
    });
    if (o.record) {
      await recordExternal(String(o.bundle), String(o.record), r);
      process.stderr.write(`recorded as metrics.external.${String(o.record)} in ${String(o.bundle)}/manifest.json\n`);
    }
    if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else printMetrics(r);
    return;
  }

  if (command === 'guard') {
    const o = raw as Record<string, unknown>;
    const log = (line: string) => process.stderr.write(line + '\n');
    let bar: Progress | null = null;
    let seen = 0;
    const r = await guardBundle({
      bundle: String(o.bundle),
      dataset: String(o.dataset),
      csv: o.csv as string | undefined,
      mapping: String(o.mapping),
      ood: o.ood as string[] | undefined,
      components: o.components as number | undefined,
      acceptance: o.acceptance as number | undefined,
      backend: (o.backend as 'auto' | 'wasm' | 'cpu') ?? 'auto',
      log,
      onProgress: (done, total) => {
        bar ??= new Progress('guard and calibration', total);
        bar.tick(done - seen);
        seen = done;
        if (done === total) bar.finish();
      },
    });
    if (o.json) process.stdout.write(JSON.stringify({ ood: r.ood, calibration: r.calibration }, null, 2) + '\n');
    else printGuard(String(o.bundle), r);
    return;
  }

  if (command === 'requantize') {
    const o = raw as Record<string, unknown>;
    const r = await requantizeBundle({
      bundle: String(o.bundle),
      weightsDtype: o.weightsDtype as 'float32' | 'float16' | 'uint8' | 'mixed',
      classifierArrays: o.classifierDtype as 'float64' | 'float32' | 'float16' | 'inline',
      dataset: o.dataset as string | undefined,
      csv: o.csv as string | undefined,
      mapping: String(o.mapping),
      dryRun: Boolean(o.dryRun),
      backend: (o.backend as 'auto' | 'wasm' | 'cpu') ?? 'auto',
      log: (line) => process.stderr.write(line + '\n'),
    });
    process.stdout.write((o.json ? JSON.stringify(r, null, 2) : requantizeLines(r).join('\n')) + '\n');
    return;
  }

  const opts = raw as PipelineOptions;
  const isStep = ['prune', 'select', 'explain', 'export'].includes(command);
  if (command === 'xai') {
    // The paper's xai.py: a binary COVID vs Normal model.
    opts.classes ??= ['COVID', 'Normal'];
    // With a segmenter and no single variant asked for: the bias study, raw and masked side by side.
    if (opts.segmenter && opts.variant !== 'masked') {
      const { dir } = await runBiasStudy(opts, (line) => process.stderr.write(line + '\n'));
      process.stderr.write(`bias study: ${join(dir, 'report.html')}\n`);
      return;
    }
  }
  const p = new Pipeline({ ...opts, continueExisting: isStep });
  await p.init();
  switch (command) {
    case 'train':
      await p.train();
      break;
    case 'prune':
      await p.prune();
      break;
    case 'select':
      await p.select();
      break;
    case 'export':
      await p.export();
      await writeReport(p);
      break;
    case 'explain':
      await p.explain();
      break;
    case 'compress':
    case 'xai': {
      await p.explain();
      if (command === 'xai' && opts.external) await evaluateExternal(p, opts.external);
      const out = await writeReport(p);
      p.log(`report: ${out.html}`);
      break;
    }
    default:
      throw new Error(`unknown command ${command}`);
  }
}

function printMetrics(r: EvaluateResult): void {
  const m = r.metrics;
  const lines = [
    `bundle ${r.bundle} on ${r.dataset}: ${r.n} images`,
    `accuracy ${m.accuracy.toFixed(4)}  macro-F1 ${m.macroF1.toFixed(4)}  macro AUC ${m.auc.macro.toFixed(4)}  ECE ${r.ece.toFixed(4)}`,
    r.flagged === null ? 'no out-of-distribution guard' : `flagged out of distribution: ${(100 * r.flagged).toFixed(1)} %`,
    ...r.classes.map((c) => {
      const pc = m.perClass[c];
      return `  ${c.padEnd(12)} precision ${pc.precision.toFixed(4)}  recall ${pc.recall.toFixed(4)}  F1 ${pc.f1.toFixed(4)}  n ${pc.support}`;
    }),
  ];
  if (r.skipped.length) lines.push(`skipped ${r.skipped.length} unreadable file(s)`);
  process.stdout.write(lines.join('\n') + '\n');
}

function printGuard(bundle: string, r: GuardStepResult): void {
  process.stdout.write([`bundle ${bundle}: out-of-distribution guard and calibration added`, ...guardSummaryLines(r)].join('\n') + '\n');
}
