// The experiment's report: report.json (every figure the pipeline measured), a self-contained report.html, and
// the charts as PNG files beside the Grad-CAM grids.
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { barChart, confusionMatrixChart, lineChart, rocChart } from '../report/charts.js';
import { oodScoreChart, reliabilityChart } from '../report/guard-charts.js';
import { thresholdSweepChart } from '../report/prune-charts.js';
import { guardSummaryLines } from './guard-step.js';
import { renderReportHtml, type EvaluationEntry, type ReportData } from '../report/html.js';
import { svgToPng } from '../report/png.js';
import { ATTENTION_METHOD } from '../model/inference.js';
import { rocAuc, rocCurve } from '../stats/metrics.js';
import { writeJsonAtomic } from './experiment.js';
import { backendInfo } from '../runtime/backend.js';
import { HEAD_LAYERS } from '../model/backbones.js';
import type { DataResult, ExplainResult, ExportResult, Pipeline, PruneResult, SelectResult, TrainResult } from './pipeline.js';
import { exportCheckLine } from './export-check.js';
import { probeSummary } from './threads-probe.js';

function trainingNote(trainableFrom: string | null | undefined, freezeBackbone: boolean): string {
  if (!freezeBackbone && !trainableFrom) return 'Whole network fine-tuned.';
  if (!trainableFrom || trainableFrom === HEAD_LAYERS.first) return 'Backbone frozen (ImageNet features), head trained on cached backbone outputs.';
  return `Fine-tuned from ${trainableFrom} on; the layers before it frozen, their outputs cached.`;
}

/** 'Trained on wasm, 2 threads (--threads auto: 1 thread 180 ms, 2 threads 120 ms per step of ...).' */
function runtimeNote(r: TrainResult['runtime']): string {
  if (!r) return '';
  const plural = (n: number) => `${n} thread${n > 1 ? 's' : ''}`;
  const threads =
    r.backend !== 'wasm' ? '' : r.nativeKernels ? `, the native kernels on ${plural(r.kernelThreads)}` : `, ${plural(r.threads)}${r.threads > 1 ? ` (the project's kernels on ${r.kernelThreads})` : ''}`;
  const products = r.matrixProducts ? `; matrix products: ${r.matrixProducts}` : '';
  return `Trained on ${r.backend}${threads}${products}${r.threadsProbe ? `, chosen by --threads auto: ${probeSummary(r.threadsProbe)}` : ''}.`;
}

function versions(): Record<string, string> {
  const require = createRequire(import.meta.url);
  const v: Record<string, string> = { node: process.version, tfjs: tf.version.tfjs, backend: tf.getBackend() };
  const b = backendInfo();
  if (b.adapter) v.backendAdapter = `${b.adapter}${b.software ? ' (software)' : ''}`;
  for (const pkg of ['libsvm-js', 'ml-random-forest', 'ml-knn', 'dicom-parser']) {
    try {
      v[pkg] = (require(`${pkg}/package.json`) as { version: string }).version;
    } catch {
      // not resolvable from here: leave it out
    }
  }
  return v;
}

function metricsToEntry(name: string, group: EvaluationEntry['group'], classes: string[], metrics: EvaluationEntry['metrics']): EvaluationEntry {
  return { name, group, split: 'test', classes, metrics };
}

function rocFromScores(y: number[], scores: number[][], classes: string[]) {
  return classes.map((c, k) => {
    const yb = y.map((l) => (l === k ? 1 : 0));
    const s = scores.map((row) => row[k]);
    const r = rocCurve(yb, s);
    return { name: c, fpr: r.fpr, tpr: r.tpr, auc: rocAuc(yb, s) };
  });
}

/** What the threshold and the k rule chose, and the network's size from start to finish. */
function pruningNotes(pr: PruneResult, sel: SelectResult | undefined): string[] {
  const pct = (n: number) => `${((100 * n) / pr.paramsBefore).toFixed(1)} %`;
  const out: string[] = [];
  if (pr.varianceThreshold !== undefined) {
    const diff = pr.maxAbsDiffVal !== undefined ? `, max |pruned - unpruned| ${pr.maxAbsDiffVal.toExponential(2)} on validation and ${pr.maxAbsDiff.toExponential(2)} on test` : '';
    out.push(
      `Variance threshold ${pr.varianceThreshold} relative to each layer's mean unit variance (${pr.thresholdRule === 'auto' ? 'auto: the largest of the sweep up to which validation accuracy stays within 0.5 pt of the unpruned' : 'as given'}; 0 is the exact rule): ` +
        `${pr.unitsBefore - pr.unitsAfter} units and ${pr.paramsBefore - pr.paramsAfter} parameters (${pct(pr.paramsBefore - pr.paramsAfter)}) removed${diff}.`,
    );
    if (pr.valAccuracy !== undefined && pr.baselineValAccuracy !== undefined) {
      const test = pr.testAccuracy !== undefined ? `; test accuracy ${pr.testAccuracy.toFixed(4)} pruned` : '';
      out.push(`Validation accuracy (softmax head): ${pr.baselineValAccuracy.toFixed(4)} unpruned, ${pr.valAccuracy.toFixed(4)} pruned${test}.`);
    }
  }
  if (pr.headSweep && pr.headSweep.length > 0) {
    const tried = pr.headSweep.map((h) => `${h.threshold}: ${pct(h.paramsRemoved)} removed, validation ${h.valAccuracyBefore.toFixed(4)} -> ${h.valAccuracy.toFixed(4)}`).join('; ');
    out.push(
      `Head (fc1, fc2) threshold ${pr.headThreshold ?? 'none held'}` +
        `${pr.headRefit ? `, refitted by least squares to the unpruned pre-activations (${pr.headRefit.map((r) => `${r.layer} ${r.ridge === null ? 'kept folded' : `validation error ${r.valErrorFolded.toExponential(1)} -> ${r.valError.toExponential(1)}`}`).join(', ')})` : ''}` +
        `${pr.recoveryEpochs !== undefined ? `, then a head-only recovery fine-tune${pr.recoveryFit === 'distill' ? " fitting the unpruned network's logits" : pr.recoveryFit === 'labels' ? ' on the labels' : ''} (best epoch ${pr.recoveryEpochs})` : ''}. Tried (before -> after recovery): ${tried}.`,
    );
  }
  if (sel?.kBest !== undefined && sel.kCompact !== undefined) {
    out.push(`k rule ${sel.kRule}: k = ${sel.k} (best k ${sel.kBest}, compact k ${sel.kCompact}: the smallest within 0.5 pt of the best).`);
  }
  if (sel?.compressedUnits !== undefined) {
    out.push(
      `Network: ${pr.unitsBefore} units, ${pr.paramsBefore} parameters fine-tuned; ${sel.compressedUnits} units, ${sel.compressedParams} parameters ` +
        `(${pct(pr.paramsBefore - sel.compressedParams)} fewer) exported, ${sel.unreferencedUnitsRemoved ?? 0} of them removed after selection for feeding nothing.`,
    );
  }
  return out;
}

export async function writeReport(p: Pipeline): Promise<{ json: string; html: string }> {
  const exp = p.exp;
  const data = exp.result<DataResult>('data');
  const tr = exp.done('train') ? exp.result<TrainResult>('train') : undefined;
  const pr = exp.done('prune') ? exp.result<PruneResult>('prune') : undefined;
  const sel = exp.done('select') ? exp.result<SelectResult>('select') : undefined;
  const ex = exp.done('export') ? exp.result<ExportResult>('export') : undefined;
  const xp = exp.done('explain') ? exp.result<ExplainResult>('explain') : undefined;
  const external = p.external();
  const yTest = data.split.test.map((s) => s.label);
  const timings = Object.fromEntries(
    Object.entries(exp.state.steps).map(([k, v]) => [k, Math.round((v?.seconds ?? 0) * 10) / 10]),
  );

  const report = {
    experiment: exp.state.id,
    createdAt: exp.state.createdAt,
    seed: p.opts.seed,
    options: exp.state.options,
    versions: versions(),
    data: {
      dataset: data.dataset,
      layout: data.layout,
      classes: data.classes,
      found: data.found,
      split: { train: data.split.train.length, val: data.split.val.length, test: data.split.test.length },
      skipped: data.skipped,
      notes: data.notes,
    },
    training: tr && { history: tr.history, bestEpoch: tr.bestEpoch, trainBackend: tr.trainBackend, trainAdapter: tr.trainAdapter, runtime: tr.runtime, trainableFrom: tr.trainableFrom, params: tr.params, cacheSeconds: tr.cacheSeconds },
    // Every pruning figure but the kept-unit index list, which the bundle's selection already encodes.
    pruning: pr && (({ keptFeatures: _kept, ...figures }) => figures)(pr),
    selection: sel && {
      k: sel.k,
      kRule: sel.kRule,
      kBest: sel.kBest,
      kCompact: sel.kCompact,
      compressedUnits: sel.compressedUnits,
      unreferencedUnitsRemoved: sel.unreferencedUnitsRemoved,
      protocol: sel.protocol,
      optimistic: sel.protocol === 'paper',
      totalFeatures: sel.totalFeatures,
      afterPruning: pr?.keptFeatures.length,
      sweep: sel.sweep,
      selected: sel.selected,
    },
    metrics: {
      finetuned: tr?.metrics,
      classifiers: sel && Object.fromEntries(sel.classifiers.map((c) => [c.kind, { val: c.val, test: c.test, fitSeconds: c.fitSeconds }])),
      deployed: sel?.deployed,
      compressed: sel?.compressed,
      external: external?.metrics,
    },
    compressedParams: sel?.compressedParams,
    bundle: ex && { dir: ex.dir, sizeBytes: ex.sizeBytes, reproduceMaxAbsDiff: ex.reproduceMaxAbsDiff, check: ex.check, unpruned: ex.unpruned },
    guard: ex?.guard && { ood: ex.guard.ood, calibration: ex.guard.calibration, reliability: ex.guard.reliability },
    gradcam: xp,
    timings,
  };
  const jsonPath = exp.path('report.json');
  writeJsonAtomic(jsonPath, report);

  // Charts: inline SVG in the HTML, and PNG files for papers and slides.
  const charts: { file: string; title: string; svg: string }[] = [];
  if (tr) {
    const epochs = tr.history.map((h) => h.epoch);
    charts.push({
      file: 'training-curves.png',
      title: 'Training curves',
      svg: lineChart({
        title: 'Fine-tuning: accuracy per epoch',
        xLabel: 'epoch',
        yLabel: 'accuracy',
        series: [
          { name: 'train', x: epochs, y: tr.history.map((h) => h.accuracy) },
          { name: 'validation', x: epochs, y: tr.history.map((h) => h.valAccuracy), dashed: true },
        ],
        markers: [{ x: tr.bestEpoch, label: 'best' }],
      }),
    });
  }
  if (pr) {
    const layers = pr.layers.filter((l) => l.unitsAfter < l.unitsBefore);
    charts.push({
      file: 'units-removed.png',
      title: 'Zero-variance units removed per layer',
      svg: barChart({
        title: 'Units per layer before and after removing zero-variance units',
        categories: layers.map((l) => l.name),
        series: [
          { name: 'before', values: layers.map((l) => l.unitsBefore) },
          { name: 'after', values: layers.map((l) => l.unitsAfter) },
        ],
        yLabel: 'units',
      }),
    });
  }
  if (pr?.thresholdSweep && pr.thresholdSweep.length > 1 && pr.baselineValAccuracy !== undefined) {
    charts.push({
      file: 'threshold-sweep.png',
      title: 'Variance threshold sweep',
      svg: thresholdSweepChart(pr.thresholdSweep, pr.paramsBefore, pr.baselineValAccuracy, pr.varianceThreshold ?? 0),
    });
  }
  if (sel) {
    charts.push({
      file: 'k-sweep.png',
      title: 'F-test k sweep',
      svg: lineChart({
        title: `SVM accuracy on the ${sel.protocol === 'paper' ? 'test split (paper protocol, optimistic)' : 'validation split'} by k`,
        xLabel: 'k (selected features)',
        yLabel: 'accuracy',
        series: [{ name: 'svm-poly', x: sel.sweep.map((s) => s.k), y: sel.sweep.map((s) => s.score) }],
        markers: [
          { x: sel.k, label: `k=${sel.k}${sel.kRule ? ` (${sel.kRule})` : ''}` },
          ...(sel.kBest !== undefined && sel.kBest !== sel.k ? [{ x: sel.kBest, label: `best k=${sel.kBest}` }] : []),
        ],
      }),
    });
    charts.push({ file: 'confusion-compressed.png', title: 'Confusion matrix: compressed model', svg: confusionMatrixChart(sel.compressed.confusion, data.classes, 'Compressed model (test)') });
    charts.push({ file: 'roc-compressed.png', title: 'ROC: compressed model', svg: rocChart(rocFromScores(yTest, sel.testProbabilities, data.classes), 'Compressed model (test), one-vs-rest') });
  }
  const g = ex?.guard;
  if (g) {
    charts.push({ file: 'ood-scores.png', title: 'Out-of-distribution guard: scores by set', svg: oodScoreChart(g.scores, g.ood.threshold) });
    charts.push({
      file: 'reliability.png',
      title: 'Calibration: reliability diagram',
      svg: reliabilityChart(g.reliability.before, g.reliability.after, g.calibration.testEce.before, g.calibration.testEce.after),
    });
  }
  if (tr) charts.push({ file: 'confusion-finetuned.png', title: 'Confusion matrix: fine-tuned', svg: confusionMatrixChart(tr.metrics.confusion, data.classes, 'Fine-tuned softmax model (test)') });
  const figDir = exp.ensureDir('figures');
  for (const c of charts) await writeFile(`${figDir}/${c.file}`, svgToPng(c.svg));

  const evaluations: EvaluationEntry[] = [];
  if (tr) evaluations.push({ ...metricsToEntry('Fine-tuned (softmax)', 'fine-tuned', data.classes, tr.metrics), roc: rocFromScores(yTest, tr.testScores, data.classes) });
  for (const c of sel?.classifiers ?? []) {
    evaluations.push(metricsToEntry(`${c.kind} on the ${sel!.k} selected features${c.kind === sel!.deployed ? ' (deployed)' : ''}`, 'classifier', data.classes, c.test));
  }
  if (sel) evaluations.push({ ...metricsToEntry(`Compressed model + ${sel.deployed}`, 'compressed', data.classes, sel.compressed), roc: rocFromScores(yTest, sel.testProbabilities, data.classes) });
  if (external) evaluations.push({ ...metricsToEntry(`Compressed model on external data (${external.n} images)`, 'compressed', data.classes, external.metrics), split: 'external' });

  const html: ReportData = {
    title: `zerovar experiment ${exp.state.id}`,
    createdAt: new Date().toISOString(),
    summary: {
      dataset: data.dataset,
      classes: data.classes,
      classCounts: data.found,
      splits: { ...report.data.split, ...(external ? { external: external.n } : {}) },
      skipped: { count: data.skipped.length, examples: data.skipped.slice(0, 50) },
      seed: p.opts.seed,
      timings,
      versions: report.versions,
      backbone: p.info.name,
      variant: p.opts.variant ?? 'raw',
      inputSize: p.spec.size,
    },
    training: tr && {
      epochs: tr.history.map((h) => h.epoch),
      metrics: {
        accuracy: tr.history.map((h) => h.accuracy),
        val_accuracy: tr.history.map((h) => h.valAccuracy),
        loss: tr.history.map((h) => h.loss),
        val_loss: tr.history.map((h) => h.valLoss),
      },
      bestEpoch: tr.bestEpoch,
      note: [trainingNote(tr.trainableFrom === undefined ? p.opts.trainableFrom : tr.trainableFrom, p.opts.freezeBackbone), runtimeNote(tr.runtime)].filter(Boolean).join(' '),
    },
    pruning: pr && {
      unitsBefore: pr.unitsBefore,
      unitsAfter: pr.unitsAfter,
      paramsBefore: pr.paramsBefore,
      paramsAfter: pr.paramsAfter,
      maxAbsDiff: pr.maxAbsDiff,
      layers: pr.layers.map((l) => ({ name: l.name, before: l.unitsBefore, after: l.unitsAfter })),
      note:
        `Statistics over the training split; a removal must also hold on the validation split (${pr.unconfirmedOnValidation} unit group(s) constant on training images only were kept), and dead ReLU units must stay ${pr.deadMargin} sd below 0 on the training images (${pr.keptThinMargin} kept). ` +
        `Constant units kept because a padded consumer would see them change at the borders: ${pr.keptForPadding}; constant non-zero units of the Grad-CAM layer kept: ${pr.keptProtected}. ` +
        `max |pruned - unpruned|: ${pr.maxAbsDiffTrain.toExponential(2)} on training images, ${pr.maxAbsDiff.toExponential(2)} on the test split.`,
    },
    featureSelection: sel && {
      protocol: sel.protocol,
      k: sel.sweep.map((s) => s.k),
      score: sel.sweep.map((s) => s.score),
      scoreName: 'accuracy',
      chosenK: sel.k,
      total: pr?.keptFeatures.length ?? sel.totalFeatures,
      classifier: 'svm-poly',
    },
    evaluations,
    gradcam: xp && {
      caption: `${ATTENTION_METHOD} on layer ${xp.layer} for the deployed model's predicted class (gradients averaged along the path from zero activations).`,
      figures: xp.figures.map((f) => ({ title: f, png: new Uint8Array(readFileSync(exp.path(f))) })),
    },
    figures: charts.filter((c) => ['threshold-sweep.png', 'ood-scores.png', 'reliability.png'].includes(c.file)).map((c) => ({ title: c.title, svg: c.svg })),
    notes: [
      ...(pr ? pruningNotes(pr, sel) : []),
      ...(g ? guardSummaryLines(g).map((l) => l.trim()) : []),
      ...(sel?.protocol === 'paper' ? ['k was chosen on the test split (the paper protocol): the compressed test accuracy is optimistic.'] : []),
      ...(ex ? [`Bundle: ${ex.dir}, ${(ex.sizeBytes / 1e6).toFixed(2)} MB; ${ex.check ? exportCheckLine(ex.check) : `reproduces the trainer's test probabilities to ${ex.reproduceMaxAbsDiff.toExponential(2)}`}.`] : []),
    ],
  };
  const htmlPath = exp.path('report.html');
  await writeFile(htmlPath, renderReportHtml(html));
  exp.log(`report written: ${jsonPath}, ${htmlPath}`);
  return { json: jsonPath, html: htmlPath };
}
