// Dataset discovery and the patient-grouped split on the real ieee8023 metadata CSV in ../shared.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import {
  DatasetError,
  discoverCsvDataset,
  discoverDataset,
  parseCsv,
  parseFindingMapping,
} from '../../trainer/src/data/dataset.js';
import { splitDataset } from '../../trainer/src/data/split.js';
import { sharedPath } from '../helpers/shared.js';

const tmp = mkdtempSync(join(tmpdir(), 'zerovar-dataset-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Writes a small PNG: grey 8-bit by default, or 16-bit grey / RGBA. */
function writePng(path: string, opts: { value?: number; width?: number; height?: number; depth?: 8 | 16; colorType?: 0 | 2 | 6 } = {}) {
  const { value = 128, width = 8, height = 6, depth = 8, colorType = 0 } = opts;
  const png = new PNG({ width, height, bitDepth: depth, colorType, inputColorType: colorType === 0 ? 0 : 6, inputHasAlpha: colorType !== 0 });
  if (depth === 16) {
    const data = new Uint16Array(width * height * 4).fill(value);
    (png as unknown as { data: Uint16Array }).data = data;
  } else if (colorType === 0) {
    png.data.fill(value); // grey input is read one byte per pixel
  } else {
    for (let i = 0; i < width * height; i++) png.data.set([value, value, value, 255], 4 * i);
  }
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, PNG.sync.write(png, { bitDepth: depth, colorType, inputColorType: colorType === 0 ? 0 : 6, inputHasAlpha: colorType !== 0 }));
}

function makeDir(...parts: string[]): string {
  const p = join(tmp, ...parts);
  mkdirSync(p, { recursive: true });
  return p;
}

test('CSV layout on the real ieee8023 metadata: counts match a direct count of mapped rows with files', async () => {
  const root = sharedPath('data', 'ieee8023-covid-chestxray');
  const mapping = parseFindingMapping('COVID-19*=COVID,No Finding=Normal,Pneumonia*=Pneumonia,Streptococcus=Pneumonia');
  const ds = await discoverCsvDataset(root, { mapping });
  // Independent count: the csv module's parser is not reused here beyond splitting lines safely.
  const rows = parseCsv(readFileSync(join(root, 'metadata.csv'), 'utf8'));
  const h = rows[0];
  const fi = h.indexOf('finding');
  const fn = h.indexOf('filename');
  const expected = new Map<string, number>();
  const seen = new Set<string>();
  for (const r of rows.slice(1)) {
    const f = r[fi];
    const cls = f.startsWith('COVID-19') ? 'COVID' : f === 'No Finding' ? 'Normal' : f.startsWith('Pneumonia') || f === 'Streptococcus' ? 'Pneumonia' : undefined;
    if (!cls || seen.has(r[fn]) || !existsSync(join(root, 'images', r[fn]))) continue;
    seen.add(r[fn]);
    expected.set(cls, (expected.get(cls) ?? 0) + 1);
  }
  assert.equal(ds.layout, 'csv');
  assert.deepEqual(ds.classes, ['COVID', 'Normal', 'Pneumonia']);
  for (const [cls, n] of expected) assert.equal(ds.samples.filter((s) => s.className === cls).length, n, cls);
  assert.ok(ds.samples.every((s) => s.patientId && existsSync(s.path)));
  assert.ok(ds.samples.some((s) => s.maskPath) && ds.samples.filter((s) => s.maskPath).every((s) => existsSync(s.maskPath!)));
  assert.ok(ds.dropped!.unmapped > 0);
  // View filter.
  const pa = await discoverCsvDataset(root, { mapping, views: ['PA'] });
  assert.ok(pa.samples.length < ds.samples.length && pa.dropped!.view > 0);
  // A missing file is dropped and counted.
  const copy = makeDir('csv-copy');
  writeFileSync(join(copy, 'metadata.csv'), 'patientid,finding,view,folder,filename\n1,COVID-19,PA,images,a.png\n2,No Finding,PA,images,b.png\n3,No Finding,PA,images,gone.png\n4,SARS,PA,images,c.png\n');
  writePng(join(copy, 'images', 'a.png'));
  writePng(join(copy, 'images', 'b.png'));
  writePng(join(copy, 'images', 'c.png'));
  writePng(join(copy, 'masks', 'a_mask.png'));
  const small = await discoverCsvDataset(copy, { mapping: { 'COVID-19*': 'COVID', 'No Finding': 'Normal' } });
  assert.deepEqual(small.dropped, { unmapped: 1, view: 0, missingFile: 1, duplicate: 0 });
  assert.deepEqual(small.samples.map((s) => [s.className, s.patientId, !!s.maskPath]), [['COVID', '1', true], ['Normal', '2', false]]);
  await assert.rejects(
    discoverCsvDataset(copy, { mapping: { 'COVID-19*': 'COVID' } }),
    (e: Error) => e instanceof DatasetError && e.message.includes("need at least two classes, found only 'COVID'"),
  );
  await assert.rejects(discoverDataset(copy), (e: Error) => e instanceof DatasetError && /metadata\.csv/.test(e.message));
});

// ---- splits ----

test('split on the real ieee8023 patients keeps each patient in one split', async () => {
  const ds = await discoverCsvDataset(sharedPath('data', 'ieee8023-covid-chestxray'), {
    mapping: { 'COVID-19*': 'COVID', '*': 'Other' },
  });
  const s = splitDataset(ds.samples);
  const owner = new Map<string, number>();
  [s.train, s.val, s.test].forEach((part, k) => {
    for (const x of part) {
      assert.ok((owner.get(x.patientId!) ?? k) === k);
      owner.set(x.patientId!, k);
    }
  });
  assert.ok(s.test.length > 0.12 * ds.samples.length && s.train.length > 0.5 * ds.samples.length);
});
