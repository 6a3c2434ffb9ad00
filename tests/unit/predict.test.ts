// `zerovar predict`'s pure parts: which files under the inputs are images (and in what order), the CSV form
// with RFC 4180 quoting, the output format chosen from the options, and the overlay's pixels.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attentionOverlay } from '../../trainer/src/image/colormap.js';
import { csvField, discoverInputs, predictionCsvHeader, predictionsToCsv, type PredictedFile } from '../../trainer/src/train/predict.js';
import { predictFormat, predictionTable } from '../../trainer/src/cli/predict.js';
import { buildDicom } from '../helpers/dicom-writer.js';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'zerovar-predict-unit-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('csvField quotes commas, quotes and line breaks (RFC 4180) and leaves plain values alone', () => {
  assert.equal(csvField('a.png'), 'a.png');
  assert.equal(csvField('scans/a,b.png'), '"scans/a,b.png"');
  assert.equal(csvField('say "hi".png'), '"say ""hi"".png"');
  assert.equal(csvField('two\nlines'), '"two\nlines"');
  assert.equal(csvField('cr\rhere'), '"cr\rhere"');
  assert.equal(csvField(null), '');
  assert.equal(csvField(undefined), '');
  assert.equal(csvField(true), 'true');
  assert.equal(csvField(0.1 + 0.2), '0.30000000000000004', 'full precision');
  assert.equal(csvField(Infinity), '');
});

test('predictionsToCsv: the header names a probability column per class, rows keep full precision, CRLF ends', () => {
  const results: PredictedFile[] = [
    { file: 'x,1.png', predicted: 'COVID', probabilities: { COVID: 0.75, 'Viral, other': 0.25 }, outOfDistribution: false, oodScore: 1.5, oodThreshold: 3 },
    { file: 'y.dcm', predicted: 'Viral, other', probabilities: { COVID: 1 / 3, 'Viral, other': 2 / 3 }, outOfDistribution: null, oodScore: null, oodThreshold: null },
  ];
  const classes = ['COVID', 'Viral, other'];
  assert.deepEqual(predictionCsvHeader(classes), ['file', 'predicted', 'p_COVID', 'p_Viral, other', 'outOfDistribution', 'oodScore', 'oodThreshold']);
  const csv = predictionsToCsv({ classes, results });
  assert.ok(csv.endsWith('\r\n'));
  const lines = csv.split('\r\n');
  assert.equal(lines.length, 4);
  assert.equal(lines[0], 'file,predicted,p_COVID,"p_Viral, other",outOfDistribution,oodScore,oodThreshold');
  assert.equal(lines[1], '"x,1.png",COVID,0.75,0.25,false,1.5,3');
  assert.equal(lines[2], `y.dcm,"Viral, other",${String(1 / 3)},${String(2 / 3)},,,`);
  assert.equal(lines[3], '');
});

test('predictFormat: --json and --csv win, else the extension of --out, else the table', () => {
  assert.equal(predictFormat({ json: true }), 'json');
  assert.equal(predictFormat({ csv: true, out: 'x.json' }), 'csv');
  assert.equal(predictFormat({ out: 'r/scores.CSV' }), 'csv');
  assert.equal(predictFormat({ out: 'scores.json' }), 'json');
  assert.equal(predictFormat({ out: 'scores' }), 'json');
  assert.equal(predictFormat({}), 'table');
});

test('predictionTable: one line per file with the predicted probability and the verdict', () => {
  const base = { bundle: 'b', name: 'b', classes: ['COVID', 'Normal'], guard: true, skipped: [], ignored: 0, warnings: [] };
  const t = predictionTable({
    ...base,
    results: [
      { file: 'a.png', predicted: 'Normal', probabilities: { COVID: 0.2, Normal: 0.8 }, outOfDistribution: true, oodScore: 12.34, oodThreshold: 5 },
      { file: 'long/name.png', predicted: 'COVID', probabilities: { COVID: 0.9, Normal: 0.1 }, outOfDistribution: false, oodScore: 1, oodThreshold: 5 },
    ],
  });
  const lines = t.trimEnd().split('\n');
  assert.equal(lines.length, 3);
  assert.match(lines[1], /^a\.png\s+Normal\s+0\.800\s+yes \(12\.3 > 5\.0\)$/);
  assert.match(lines[2], /^long\/name\.png\s+COVID\s+0\.900\s+no$/);
});

test('discoverInputs: recursive, images by extension (any case) or DICOM by content, hidden and other files left out, sorted', async () => {
  const d = join(root, 'scans');
  await mkdir(join(d, 'b', 'deeper'), { recursive: true });
  await mkdir(join(d, '.hidden'), { recursive: true });
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  await writeFile(join(d, 'z.png'), png);
  await writeFile(join(d, 'A.JPG'), png);
  await writeFile(join(d, 'b', 'c.jpeg'), png);
  await writeFile(join(d, 'b', 'deeper', 'd.Dcm'), png);
  await writeFile(join(d, 'b', 'IM0001'), buildDicom({ rows: 2, columns: 2, samples: [0, 1, 2, 3] }));
  await writeFile(join(d, 'b', 'README'), 'not an image, no extension');
  await writeFile(join(d, 'notes.txt'), 'not an image');
  await writeFile(join(d, '.z.png'), png);
  await writeFile(join(d, '.hidden', 'e.png'), png);
  // A link back up the tree must not loop.
  await symlink(d, join(d, 'b', 'loop'));

  const single = join(root, 'single.txt');
  await writeFile(single, 'given explicitly: tried, and reported if it is no image');
  const r = await discoverInputs([d, single, join(root, 'missing'), join(d, 'z.png')]);
  assert.deepEqual(
    r.files.map((f) => f.rel),
    ['A.JPG', 'b/IM0001', 'b/c.jpeg', 'b/deeper/d.Dcm', 'z.png', 'single.txt'],
    'code-point order of relative paths, then the next input; z.png given twice is listed once',
  );
  assert.equal(r.files[0].path, join(d, 'A.JPG'));
  assert.equal(r.ignored, 2, 'README and notes.txt');
  assert.deepEqual(r.skipped, [{ file: join(root, 'missing'), reason: 'no such file or folder' }]);
});

test('attentionOverlay: opaque RGBA at the image size, grey where the map is zero, coloured where it is high', () => {
  const image = { width: 4, height: 2, data: Uint8Array.from([10, 20, 30, 40, 50, 60, 70, 80]) };
  const zero = attentionOverlay(image, new Float32Array(4), 2, 2, 0.5);
  assert.equal(zero.length, 4 * 2 * 4);
  for (let i = 0; i < 8; i++) {
    assert.deepEqual(Array.from(zero.subarray(4 * i, 4 * i + 4)), [image.data[i], image.data[i], image.data[i], 255]);
  }
  const hot = attentionOverlay(image, Float32Array.from([1, 1, 1, 1]), 2, 2, 0.5);
  // jet(1) is dark red, blended half and half with the grey.
  assert.deepEqual(Array.from(hot.subarray(0, 4)), [Math.round(10 * 0.5 + 128 * 0.5), 5, 5, 255]);
});
