// The experiment report: one self-contained HTML file (inline CSS, inline SVG charts, figures as data: URIs),
// readable offline and safe to archive or e-mail. Every section is optional so a partial run still reports.
import { barChart, confusionMatrixChart, escapeXml, formatNumber, lineChart, rocChart, type RocCurveData } from './charts.js';

/** Per-class scores as the metrics module produces them. */
export interface ClassScoresLike {
  precision: number;
  recall: number;
  f1: number;
  support?: number;
}

/** The metrics the report shows; the metrics module's ClassificationMetrics fits this shape. */
export interface MetricsLike {
  accuracy: number;
  perClass?: Record<string, ClassScoresLike>;
  macroF1?: number;
  /** confusion[true][predicted] */
  confusion?: number[][];
  auc?: { perClass?: Record<string, number>; macro?: number };
  covidSensitivity?: number;
  n?: number;
}

export interface EvaluationEntry {
  /** e.g. "fine-tuned (softmax)", "SVM poly on 412 F-test features", "compressed model + SVM". */
  name: string;
  /** Groups the tables: 'fine-tuned', 'classifier', 'compressed' (others are shown under their own name). */
  group?: string;
  /** e.g. 'test', 'external'. */
  split?: string;
  classes: string[];
  metrics: MetricsLike;
  /** One-vs-rest ROC curves, one per class (or one for the positive class). */
  roc?: RocCurveData[];
  note?: string;
}

export interface FeatureSweep {
  /** 'validation': k chosen on validation (unbiased); 'paper': k chosen on test as the reference code does. */
  protocol: 'validation' | 'paper';
  k: number[];
  score: number[];
  scoreName?: string;
  chosenK: number;
  total: number;
  classifier?: string;
  note?: string;
}

export interface PruningLayer {
  name: string;
  before: number;
  after: number;
  /** Units with zero variance that had to stay (e.g. tied by a residual Add or needed for padding). */
  keptForPadding?: number;
}

export interface ReportData {
  title?: string;
  createdAt?: string;
  summary?: {
    dataset?: string;
    classes?: string[];
    classCounts?: Record<string, number>;
    /** Images per split, e.g. { train, val, test, external }. */
    splits?: Record<string, number>;
    skipped?: { count: number; examples?: { path: string; reason: string }[] };
    seed?: number;
    /** Seconds per stage. */
    timings?: Record<string, number>;
    versions?: Record<string, string>;
    backbone?: string;
    variant?: string;
    inputSize?: number;
    extra?: Record<string, string | number | boolean>;
  };
  training?: { epochs: number[]; metrics: Record<string, number[]>; bestEpoch?: number; note?: string };
  pruning?: {
    unitsBefore: number;
    unitsAfter: number;
    paramsBefore: number;
    paramsAfter: number;
    /** Largest |output difference| between the pruned and unpruned models on check images. */
    maxAbsDiff?: number;
    layers?: PruningLayer[];
    note?: string;
  };
  featureSelection?: FeatureSweep | FeatureSweep[];
  evaluations?: EvaluationEntry[];
  gradcam?: { caption?: string; figures: { title: string; png: Uint8Array; caption?: string }[] };
  /** Any further figures (PNG bytes or an SVG string). */
  figures?: { title: string; png?: Uint8Array; svg?: string; caption?: string }[];
  notes?: string[];
}

const esc = escapeXml;
const fmt3 = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(3));

export function table(head: string[], rows: (string | number)[][], cls = ''): string {
  const th = head.map((h) => `<th>${esc(h)}</th>`).join('');
  const body = rows
    .map((r) => `<tr>${r.map((c) => `<td>${typeof c === 'number' ? esc(formatNumber(c)) : esc(c)}</td>`).join('')}</tr>`)
    .join('');
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table>`;
}

function keyValues(entries: [string, string | number | boolean | undefined][]): string {
  const rows = entries.filter(([, v]) => v !== undefined && v !== '');
  if (rows.length === 0) return '';
  return `<table class="kv"><tbody>${rows
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(typeof v === 'number' ? formatNumber(v) : String(v))}</td></tr>`)
    .join('')}</tbody></table>`;
}

export const pngUri = (png: Uint8Array): string => `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
export const figure = (inner: string, caption?: string): string =>
  `<figure>${inner}${caption ? `<figcaption>${esc(caption)}</figcaption>` : ''}</figure>`;

function section(id: string, title: string, body: string): string {
  return `<section id="${id}"><h2>${esc(title)}</h2>${body}</section>`;
}

function summarySection(r: ReportData): string {
  const s = r.summary ?? {};
  let body = keyValues([
    ['Dataset', s.dataset],
    ['Classes', s.classes?.join(', ')],
    ['Backbone', s.backbone],
    ['Variant', s.variant],
    ['Input size', s.inputSize],
    ['Seed', s.seed],
    ['Report created', r.createdAt],
    ...Object.entries(s.extra ?? {}),
  ]);
  if (s.classCounts) body += `<h3>Images per class</h3>${table(['Class', 'Images'], Object.entries(s.classCounts))}`;
  if (s.splits) body += `<h3>Split sizes</h3>${table(['Split', 'Images'], Object.entries(s.splits))}`;
  if (s.skipped) {
    body += `<h3>Skipped files</h3><p>${esc(String(s.skipped.count))} file(s) could not be used.</p>`;
    if (s.skipped.examples?.length) body += table(['File', 'Reason'], s.skipped.examples.map((e) => [e.path, e.reason]));
  }
  if (s.timings) {
    body += `<h3>Timings</h3>${table(['Stage', 'Seconds'], Object.entries(s.timings).map(([k, v]) => [k, Number(v.toFixed(1))]))}`;
  }
  if (s.versions) body += `<h3>Versions</h3>${table(['Component', 'Version'], Object.entries(s.versions))}`;
  if (body === '') body = '<p class="muted">No summary information was recorded.</p>';
  return section('summary', 'Summary', body);
}

function trainingSection(t: NonNullable<ReportData['training']>): string {
  const names = Object.keys(t.metrics);
  const lossNames = names.filter((n) => /loss/i.test(n));
  const otherNames = names.filter((n) => !/loss/i.test(n));
  const markers = t.bestEpoch !== undefined ? [{ x: t.bestEpoch, label: 'kept' }] : [];
  const chart = (keys: string[], yLabel: string, title: string, yDomain?: [number, number]): string =>
    keys.length === 0
      ? ''
      : figure(lineChart({
        title,
        xLabel: 'epoch',
        yLabel,
        series: keys.map((k) => ({ name: k, x: t.epochs, y: t.metrics[k], dashed: /^val/i.test(k) })),
        markers,
        yDomain,
      }));
  let body = chart(lossNames, 'loss', 'Loss per epoch');
  body += chart(otherNames, 'value', 'Metrics per epoch', otherNames.every((n) => /acc/i.test(n)) ? [0, 1] : undefined);
  if (t.bestEpoch !== undefined) body += `<p>Checkpoint kept: epoch ${esc(String(t.bestEpoch))}.</p>`;
  if (t.note) body += `<p>${esc(t.note)}</p>`;
  return section('training', 'Training curves', body);
}

function pruningSection(p: NonNullable<ReportData['pruning']>): string {
  const pct = (a: number, b: number): string => (b > 0 ? `${((100 * (b - a)) / b).toFixed(1)}% removed` : '');
  let body = table(
    ['', 'Before', 'After', 'Change'],
    [
      ['Units', p.unitsBefore, p.unitsAfter, pct(p.unitsAfter, p.unitsBefore)],
      ['Parameters', p.paramsBefore, p.paramsAfter, pct(p.paramsAfter, p.paramsBefore)],
    ],
  );
  if (p.maxAbsDiff !== undefined) {
    body += `<p>Exactness check: max |output(pruned) &minus; output(unpruned)| = <strong>${esc(p.maxAbsDiff.toExponential(2))}</strong>.</p>`;
  }
  if (p.layers?.length) {
    body += figure(barChart({
      title: 'Units per layer',
      yLabel: 'units',
      categories: p.layers.map((l) => l.name),
      series: [
        { name: 'before', values: p.layers.map((l) => l.before) },
        { name: 'after', values: p.layers.map((l) => l.after) },
      ],
    }));
    body += `<details><summary>Per-layer table</summary>${table(
      ['Layer', 'Before', 'After', 'Removed', 'Zero-variance kept (padding / ties)'],
      p.layers.map((l) => [l.name, l.before, l.after, l.before - l.after, l.keptForPadding ?? 0]),
    )}</details>`;
  }
  if (p.note) body += `<p>${esc(p.note)}</p>`;
  return section('pruning', 'Zero-variance pruning', body);
}

function featureSection(sweeps: FeatureSweep[]): string {
  let body = '';
  for (const s of sweeps) {
    const biased = s.protocol === 'paper';
    body += `<h3>Protocol: ${esc(s.protocol)}${biased ? ' <span class="warn">(optimistic: k chosen on test)</span>' : ' (k chosen on validation)'}</h3>`;
    body += figure(lineChart({
      title: `F-test top-k sweep (${s.protocol} protocol)`,
      xLabel: 'k (features kept)',
      yLabel: s.scoreName ?? 'accuracy',
      series: [{ name: s.classifier ?? '', x: s.k, y: s.score }],
      markers: [{ x: s.chosenK, label: `k = ${s.chosenK}` }],
    }));
    body += keyValues([
      ['Chosen k', s.chosenK],
      ['Features available', s.total],
      ['Scored by', s.classifier],
    ]);
    if (biased) {
      body += '<p class="warn">This protocol follows the reference code: k is chosen by its score on the test set, so the compressed model\'s test result is optimistic. Use the validation protocol for an unbiased estimate.</p>';
    }
    if (s.note) body += `<p>${esc(s.note)}</p>`;
  }
  return section('feature-selection', 'F-test feature selection', body);
}

const GROUP_TITLES: Record<string, string> = {
  'fine-tuned': 'Fine-tuned network',
  classifier: 'Classifiers on the selected features',
  compressed: 'Compressed model',
};

function evaluationSection(entries: EvaluationEntry[]): string {
  let body = '<h3>Overview</h3>' + table(
    ['Model', 'Split', 'n', 'Accuracy', 'Macro-F1', 'Macro AUC', 'COVID sensitivity'],
    entries.map((e) => [
      e.name,
      e.split ?? '',
      e.metrics.n ?? '',
      fmt3(e.metrics.accuracy),
      fmt3(e.metrics.macroF1),
      fmt3(e.metrics.auc?.macro),
      fmt3(e.metrics.covidSensitivity),
    ]),
    'metrics',
  );
  const groups = [...new Set(entries.map((e) => e.group ?? 'other'))];
  for (const g of groups) {
    body += `<h3>${esc(GROUP_TITLES[g] ?? (g === 'other' ? 'Other models' : g))}</h3>`;
    for (const e of entries.filter((x) => (x.group ?? 'other') === g)) {
      const m = e.metrics;
      body += `<div class="eval"><h4>${esc(e.name)}${e.split ? ` &mdash; ${esc(e.split)}` : ''}</h4>`;
      body += keyValues([
        ['Accuracy', fmt3(m.accuracy)],
        ['Macro-F1', m.macroF1 === undefined ? undefined : fmt3(m.macroF1)],
        ['Macro AUC (one-vs-rest)', m.auc?.macro === undefined ? undefined : fmt3(m.auc.macro)],
        ['COVID sensitivity', m.covidSensitivity === undefined ? undefined : fmt3(m.covidSensitivity)],
      ]);
      if (m.perClass) {
        body += table(
          ['Class', 'Precision', 'Recall', 'F1', 'AUC', 'Support'],
          e.classes.map((c) => {
            const pc = m.perClass?.[c];
            return [c, fmt3(pc?.precision), fmt3(pc?.recall), fmt3(pc?.f1), fmt3(m.auc?.perClass?.[c]), pc?.support ?? ''];
          }),
          'metrics',
        );
      }
      const charts: string[] = [];
      if (m.confusion) charts.push(figure(confusionMatrixChart(m.confusion, e.classes, `Confusion matrix: ${e.name}`)));
      if (e.roc?.length) charts.push(figure(rocChart(e.roc, `ROC: ${e.name}`)));
      if (charts.length) body += `<div class="row">${charts.join('')}</div>`;
      if (e.note) body += `<p>${esc(e.note)}</p>`;
      body += '</div>';
    }
  }
  return section('evaluation', 'Evaluation', body);
}

function gradcamSection(g: NonNullable<ReportData['gradcam']>): string {
  let body = g.caption ? `<p>${esc(g.caption)}</p>` : '';
  body += '<p>Each row: the input image, then the attention of the predicted class (red = strongest) on top of it.</p>';
  body += `<div class="row">${g.figures
    .map((f) => figure(`<img alt="${esc(f.title)}" src="${pngUri(f.png)}"/>`, f.caption ? `${f.title}: ${f.caption}` : f.title))
    .join('')}</div>`;
  return section('gradcam', 'Grad-CAM attention', body);
}

function figuresSection(figs: NonNullable<ReportData['figures']>): string {
  const body = figs
    .map((f) => {
      const inner = f.svg ?? (f.png ? `<img alt="${esc(f.title)}" src="${pngUri(f.png)}"/>` : '');
      return figure(`<h3>${esc(f.title)}</h3>${inner}`, f.caption);
    })
    .join('');
  return section('figures', 'Further figures', body);
}

const CSS = `
body{font-family:"DejaVu Sans",Arial,Helvetica,sans-serif;margin:0 auto;max-width:1200px;padding:16px 24px;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:0.2em}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:1.8em}
nav a{margin-right:1em}table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ddd;padding:4px 10px;text-align:left}
table.metrics td:not(:first-child){text-align:right;font-variant-numeric:tabular-nums}table.kv th{background:#f6f6f6;font-weight:normal}
thead th{background:#f0f3f7}figure{margin:8px 12px 8px 0;display:inline-block;vertical-align:top;max-width:100%;overflow-x:auto}
figure img{max-width:100%}figcaption{font-size:0.9em;color:#555}.row{display:flex;flex-wrap:wrap;align-items:flex-start}
.warn{color:#a4370a}.muted{color:#777}.eval{margin-bottom:1.2em}.notice{background:#fff4e5;border:1px solid #f0b46c;padding:10px 14px;border-radius:4px}
`;

const RESEARCH_NOTE =
  'Research use only. These models and figures come from a research reproduction; they are not a medical device, ' +
  'have not been clinically validated, and must not be used for diagnosis or treatment decisions. Attention maps ' +
  'show where a model looked, not why a finding is present; models trained on whole images are known to use ' +
  'shortcuts such as text, markers and borders.';

/** Renders the whole report as one self-contained HTML document (no external requests). */
export function renderReportHtml(report: ReportData): string {
  const parts: [string, string, string][] = [['summary', 'Summary', summarySection(report)]];
  if (report.training) parts.push(['training', 'Training', trainingSection(report.training)]);
  if (report.pruning) parts.push(['pruning', 'Pruning', pruningSection(report.pruning)]);
  if (report.featureSelection) {
    const sweeps = Array.isArray(report.featureSelection) ? report.featureSelection : [report.featureSelection];
    if (sweeps.length) parts.push(['feature-selection', 'Feature selection', featureSection(sweeps)]);
  }
  if (report.evaluations?.length) parts.push(['evaluation', 'Evaluation', evaluationSection(report.evaluations)]);
  if (report.gradcam?.figures.length) parts.push(['gradcam', 'Grad-CAM', gradcamSection(report.gradcam)]);
  if (report.figures?.length) parts.push(['figures', 'Figures', figuresSection(report.figures)]);
  const notes = (report.notes ?? []).map((n) => `<p>${esc(n)}</p>`).join('');
  parts.push(['research-use', 'Research use', section('research-use', 'Research use only', `<p class="notice">${esc(RESEARCH_NOTE)}</p>${notes}`)]);
  const nav = parts.map(([id, label]) => `<a href="#${id}">${esc(label)}</a>`).join('');
  return htmlPage(report.title ?? 'zerovar experiment report', `<nav>${nav}</nav>${parts.map(([, , html]) => html).join('\n')}`);
}

/**
 * The shell of every HTML report (the experiment report, the bias study): one self-contained page (no external
 * requests) with the report style, the title and the research-use notice, then `body` (HTML, escaped by the caller).
 */
export function htmlPage(title: string, body: string): string {
  return (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>' +
    '<meta name="viewport" content="width=device-width, initial-scale=1"/>' +
    `<title>${esc(title)}</title><style>${CSS}</style></head><body>` +
    `<h1>${esc(title)}</h1><p class="notice">${esc(RESEARCH_NOTE.split('. ')[0])}.</p>` +
    body +
    '</body></html>\n'
  );
}
