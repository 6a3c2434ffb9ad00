import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { barChart, confusionMatrixChart, lineChart, niceTicks, rocChart } from '../../trainer/src/report/charts.js';
import { encodeRgbaPng, gradcamGrid, svgToPng, svgToRgba, writeRgbaPng } from '../../trainer/src/report/png.js';
import { renderReportHtml, type ReportData } from '../../trainer/src/report/html.js';

/** A small well-formedness check: balanced tags, quoted attributes, no raw '<' or stray '&' in text. */
function assertWellFormedXml(xml: string, what: string): void {
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/g;
  let at = 0;
  let m: RegExpExecArray | null;
  const checkText = (text: string): void => {
    assert.ok(!text.includes('<'), `${what}: malformed tag near ${JSON.stringify(text.slice(0, 60))}`);
    const amp = text.match(/&(?!(?:[a-zA-Z]+|#\d+|#x[0-9a-fA-F]+);)/);
    assert.equal(amp, null, `${what}: unescaped '&' near ${JSON.stringify(text.slice(0, 60))}`);
  };
  while ((m = tag.exec(xml)) !== null) {
    checkText(xml.slice(at, m.index));
    at = tag.lastIndex;
    const [, closing, name, , selfClosing] = m;
    if (closing) assert.equal(stack.pop(), name, `${what}: </${name}> closes the wrong element`);
    else if (!selfClosing) stack.push(name);
  }
  checkText(xml.slice(at));
  assert.deepEqual(stack, [], `${what}: unclosed elements`);
}

function decodePng(bytes: Uint8Array): PNG {
  return PNG.sync.read(Buffer.from(bytes));
}

/** Share of pixels that are not (almost) white. */
function inkShare(rgba: Uint8Array, from = 0, to = rgba.length / 4): number {
  let ink = 0;
  for (let i = from; i < to; i++) if (rgba[i * 4] < 200 || rgba[i * 4 + 1] < 200 || rgba[i * 4 + 2] < 200) ink++;
  return ink / (to - from);
}

const line = lineChart({
  title: 'Loss <train> & "val"',
  xLabel: 'epoch',
  yLabel: 'loss',
  series: [
    { name: 'loss', x: [1, 2, 3, 4], y: [1.2, 0.7, 0.5, 0.45] },
    { name: 'val_loss', x: [1, 2, 3, 4], y: [1.3, 0.9, 0.8, NaN], dashed: true },
  ],
  markers: [{ x: 3, label: 'kept' }],
});
const bars = barChart({
  title: 'Units per layer',
  yLabel: 'units',
  categories: ['Conv1', 'block_1_expand', 'fc1', 'fc2'],
  series: [{ name: 'before', values: [16, 48, 128, 64] }, { name: 'after', values: [14, 40, 90, 12] }],
});
const confusion = confusionMatrixChart([[40, 2], [5, 53]], ['COVID', 'Normal'], 'Confusion & co');
const roc = rocChart([{ name: 'svm', fpr: [0, 0.1, 0.3, 1], tpr: [0, 0.8, 0.95, 1], auc: 0.93 }]);

test('niceTicks covers the range with round steps', () => {
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  const t = niceTicks(0.35, 1.3, 5);
  assert.ok(t[0] <= 0.35 && t[t.length - 1] >= 1.3, `${t}`);
  assert.ok(niceTicks(3, 3).length >= 2, 'a constant series still gets an axis');
});

test('the SVG charts are well-formed and render to non-blank PNGs with text', () => {
  for (const [name, svg] of Object.entries({ line, bars, confusion, roc })) {
    assertWellFormedXml(svg, name);
    const png = decodePng(svgToPng(svg));
    assert.ok(png.width >= 300 && png.height >= 250, `${name}: ${png.width}x${png.height}`);
    const share = inkShare(new Uint8Array(png.data));
    assert.ok(share > 0.005 && share < 0.6, `${name}: ink share ${share}`);
  }
  assert.ok(line.includes('Loss &lt;train&gt; &amp; &quot;val&quot;'), 'titles are escaped');
  assert.equal(decodePng(svgToPng(line, 1280)).width, 1280, 'the width option scales the rendering');

  // Text needs a font: a chart-less SVG holding only text must still leave ink.
  const textOnly = svgToRgba(
    '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40" font-family="DejaVu Sans, sans-serif">' +
      '<text x="10" y="28" font-size="20">Grad-CAM</text></svg>',
  );
  assert.ok(inkShare(textOnly.rgba) > 0.02, 'text is rendered (a font was found)');
});

test('gradcamGrid lays out image | overlay rows and the overlay shows the attention', async () => {
  const image = { width: 40, height: 30, data: new Uint8Array(40 * 30).fill(100) };
  const cam = new Float32Array(16);
  cam[0] = 1; // attention in the top-left corner of a 4x4 map
  const cell = 64;
  const plain = gradcamGrid([{ image, cam, camW: 4, camH: 4 }, { image, cam, camW: 4, camH: 4 }], cell);
  assert.equal(plain.width, 2 * cell + 12);
  assert.equal(plain.height, 2 * (cell + 4) + 4);
  assert.equal(plain.rgba.length, plain.width * plain.height * 4);
  const px = (x: number, y: number): number[] => Array.from(plain.rgba.slice((y * plain.width + x) * 4, (y * plain.width + x) * 4 + 3));
  // Left cell: the grey image untouched. Right cell: coloured where attended, grey where not.
  assert.deepEqual(px(4 + 5, 4 + 5), [100, 100, 100]);
  const hot = px(8 + cell + 5, 4 + 5);
  assert.ok(hot[0] > hot[1] + 40 && hot[0] > hot[2] + 40, `attended overlay pixel is reddish: ${hot}`);
  assert.deepEqual(px(8 + cell + cell - 3, 4 + cell - 3), [100, 100, 100]);

  const titled = gradcamGrid([{ image, cam, camW: 4, camH: 4, title: 'COVID 0.91' }], cell);
  assert.equal(titled.height, cell + 22 + 8);
  assert.ok(inkShare(titled.rgba, 0, titled.width * 20) > 0.01, 'the title band carries text');

  const dir = await mkdtemp(join(tmpdir(), 'zerovar-report-test-'));
  try {
    await writeRgbaPng(join(dir, 'sub', 'grid.png'), plain.rgba, plain.width, plain.height);
    const back = decodePng(new Uint8Array(await readFile(join(dir, 'sub', 'grid.png'))));
    assert.equal(back.width, plain.width);
    assert.deepEqual(new Uint8Array(back.data), plain.rgba);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

function fullReport(): ReportData {
  const grid = gradcamGrid(
    [{ image: { width: 8, height: 8, data: new Uint8Array(64).fill(80) }, cam: new Float32Array([1, 0, 0, 0]), camW: 2, camH: 2 }],
    32,
  );
  const metrics = {
    accuracy: 0.93,
    macroF1: 0.929,
    perClass: { COVID: { precision: 0.95, recall: 0.9, f1: 0.92, support: 42 }, Normal: { precision: 0.91, recall: 0.96, f1: 0.93, support: 58 } },
    confusion: [[38, 4], [3, 55]],
    auc: { perClass: { COVID: 0.97, Normal: 0.97 }, macro: 0.97 },
    covidSensitivity: 0.9,
    n: 100,
  };
  return {
    title: 'Report <test>',
    createdAt: '2024-01-01T00:00:00Z',
    summary: {
      dataset: 'covid19-radiography-subset',
      classes: ['COVID', 'Normal'],
      splits: { train: 64, val: 16, test: 20 },
      skipped: { count: 1, examples: [{ path: 'COVID/bad.png', reason: 'not a PNG' }] },
      seed: 42,
      timings: { 'fine-tune': 12.34, prune: 1.2 },
      versions: { node: 'v20', tfjs: '4.22.0' },
    },
    training: { epochs: [1, 2, 3], metrics: { loss: [1, 0.6, 0.5], val_loss: [1.1, 0.8, 0.7], acc: [0.6, 0.8, 0.85], val_acc: [0.55, 0.75, 0.8] }, bestEpoch: 3 },
    pruning: {
      unitsBefore: 1000, unitsAfter: 800, paramsBefore: 500000, paramsAfter: 380000, maxAbsDiff: 2.3e-7,
      layers: [{ name: 'Conv1', before: 16, after: 15 }, { name: 'fc2', before: 64, after: 20, keptForPadding: 1 }],
    },
    featureSelection: [
      { protocol: 'validation', k: [10, 20, 30], score: [0.8, 0.9, 0.85], chosenK: 20, total: 64, classifier: 'SVM poly' },
      { protocol: 'paper', k: [10, 20, 30], score: [0.82, 0.88, 0.91], chosenK: 30, total: 64, classifier: 'SVM poly' },
    ],
    evaluations: [
      { name: 'fine-tuned softmax', group: 'fine-tuned', split: 'test', classes: ['COVID', 'Normal'], metrics },
      { name: 'SVM poly', group: 'classifier', split: 'test', classes: ['COVID', 'Normal'], metrics, roc: [{ name: 'COVID', fpr: [0, 0.1, 1], tpr: [0, 0.9, 1], auc: 0.97 }] },
      { name: 'compressed + SVM', group: 'compressed', split: 'test', classes: ['COVID', 'Normal'], metrics },
    ],
    gradcam: { figures: [{ title: 'raw model, test images', png: encodeRgbaPng(grid.rgba, grid.width, grid.height) }] },
  };
}

test('the HTML report holds every section, self-contained, with parseable inline charts', () => {
  const html = renderReportHtml(fullReport());
  for (const id of ['summary', 'training', 'pruning', 'feature-selection', 'evaluation', 'gradcam', 'research-use']) {
    assert.ok(html.includes(`<section id="${id}">`), `section ${id}`);
  }
  for (const text of ['covid19-radiography-subset', 'COVID/bad.png', '2.30e-7', 'optimistic: k chosen on test',
    'Fine-tuned network', 'Classifiers on the selected features', 'Compressed model', 'COVID sensitivity', 'Research use only']) {
    assert.ok(html.includes(text), `report mentions ${text}`);
  }
  assert.ok(html.includes('Report &lt;test&gt;') && !html.includes('<test>'), 'text is escaped');
  // No external resources: every src/href is a fragment or a data: URI.
  const refs = [...html.matchAll(/\b(?:src|href)\s*=\s*"([^"]*)"/g)].map((m) => m[1]);
  assert.ok(refs.length > 5);
  for (const r of refs) assert.ok(r.startsWith('#') || r.startsWith('data:'), `external reference ${r.slice(0, 60)}`);
  assert.ok(!/url\(\s*['"]?https?:/i.test(html) && !/@import/i.test(html), 'no external CSS');
  const img = html.match(/src="data:image\/png;base64,([^"]+)"/);
  assert.ok(img, 'the Grad-CAM figure is embedded');
  assert.equal(decodePng(new Uint8Array(Buffer.from(img[1], 'base64'))).width, 76);

  const svgs = html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
  assert.ok(svgs.length >= 8, `${svgs.length} inline charts`); // 2 training, 1 pruning, 2 sweeps, 3 confusion, 1 roc
  svgs.forEach((svg, i) => assertWellFormedXml(svg, `inline chart ${i}`));
  const png = decodePng(svgToPng(svgs[0] ?? ''));
  assert.ok(inkShare(new Uint8Array(png.data)) > 0.005, 'an inline chart renders');
});

test('a partial report still renders, with only what it has', () => {
  const html = renderReportHtml({ summary: { dataset: 'tiny', seed: 1 } });
  assert.ok(html.includes('<section id="summary">') && html.includes('<section id="research-use">'));
  assert.ok(!html.includes('<section id="pruning">') && !html.includes('<section id="evaluation">'));
  const empty = renderReportHtml({});
  assert.ok(empty.startsWith('<!DOCTYPE html>') && empty.includes('No summary information'));
});
