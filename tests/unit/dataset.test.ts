import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import {
  DatasetError,
  discoverDataset,
  mapFinding,
  parseCsv,
  parseFindingMapping,
} from '../../trainer/src/data/dataset.js';
import { splitDataset } from '../../trainer/src/data/split.js';
import { ImageDecodeError, readGreyImage } from '../../trainer/src/data/decode.js';
import { mulberry32, shuffled } from '../../trainer/src/data/rng.js';

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

test('flat layout: class folders sorted into labels, hidden files and non-images ignored', async () => {
  const root = makeDir('flat');
  for (const n of ['b.png', 'a.png', 'c.jpg']) writePng(join(root, 'Normal', n));
  for (const n of ['x.png', 'y.dcm']) writePng(join(root, 'COVID', n));
  writeFileSync(join(root, 'COVID', '.hidden.png'), 'x');
  writeFileSync(join(root, 'COVID', 'notes.txt'), 'x');
  makeDir('flat', '.cache');
  const ds = await discoverDataset(root);
  assert.equal(ds.layout, 'flat');
  assert.deepEqual(ds.classes, ['COVID', 'Normal']);
  assert.deepEqual(
    ds.samples.map((s) => [s.className, s.label, s.path.slice(root.length + 1)]),
    [
      ['COVID', 0, 'COVID/x.png'],
      ['COVID', 0, 'COVID/y.dcm'],
      ['Normal', 1, 'Normal/a.png'],
      ['Normal', 1, 'Normal/b.png'],
      ['Normal', 1, 'Normal/c.jpg'],
    ],
  );
  assert.ok(ds.samples.every((s) => s.patientId === undefined && s.maskPath === undefined));
  // A trailing slash names the same dataset.
  const slash = await discoverDataset(root + '/');
  assert.deepEqual(slash.samples, ds.samples);
});

test('kaggle layout: images/ with masks matched by name or <stem>_mask.png', async () => {
  const root = makeDir('kaggle');
  for (const c of ['COVID', 'Lung_Opacity', 'Normal']) {
    for (const n of ['1.png', '2.png', '3.png']) writePng(join(root, c, 'images', `${c}-${n}`));
  }
  writePng(join(root, 'COVID', 'masks', 'COVID-1.png'));
  writePng(join(root, 'Normal', 'masks', 'Normal-2_mask.png'));
  const ds = await discoverDataset(root);
  assert.equal(ds.layout, 'kaggle');
  assert.deepEqual(ds.classes, ['COVID', 'Lung_Opacity', 'Normal']);
  assert.equal(ds.samples.length, 9);
  const masked = ds.samples.filter((s) => s.maskPath).map((s) => [s.path.slice(root.length + 1), s.maskPath!.slice(root.length + 1)]);
  assert.deepEqual(masked, [
    ['COVID/images/COVID-1.png', 'COVID/masks/COVID-1.png'],
    ['Normal/images/Normal-2.png', 'Normal/masks/Normal-2_mask.png'],
  ]);
});

test('a dataset folder named with different case is found and reported', async () => {
  const root = makeDir('CaseData');
  writePng(join(root, 'A', '1.png'));
  writePng(join(root, 'B', '1.png'));
  const ds = await discoverDataset(join(tmp, 'casedata'));
  assert.equal(ds.root, root);
  assert.ok(ds.notes?.some((n) => n.includes(root)), JSON.stringify(ds.notes));
  await assert.rejects(discoverDataset(join(tmp, 'no-such-dataset')), (e: Error) => e instanceof DatasetError && /no such dataset folder/.test(e.message));
});

test('errors before any work: no class folders, empty class, single class', async () => {
  const none = makeDir('none');
  writePng(join(none, 'loose.png'));
  await assert.rejects(discoverDataset(none), (e: Error) => e instanceof DatasetError && /no class folders/.test(e.message));
  const empty = makeDir('empty');
  writePng(join(empty, 'COVID', '1.png'));
  makeDir('empty', 'Normal');
  writeFileSync(join(empty, 'Normal', 'readme.txt'), 'x');
  await assert.rejects(discoverDataset(empty), (e: Error) => e instanceof DatasetError && e.message.includes("class 'Normal' has no images"));
  const single = makeDir('single');
  writePng(join(single, 'COVID', '1.png'));
  await assert.rejects(
    discoverDataset(single),
    (e: Error) => e instanceof DatasetError && e.message.includes("need at least two classes, found only 'COVID'"),
  );
});

test('readGreyImage: PNG 8/16-bit and RGBA, JPEG; corrupt files throw ImageDecodeError naming the path', async () => {
  const dir = makeDir('decode');
  writePng(join(dir, 'g8.png'), { value: 77, width: 5, height: 3 });
  const g8 = await readGreyImage(join(dir, 'g8.png'));
  assert.deepEqual([g8.width, g8.height], [5, 3]);
  assert.ok(g8.data.every((v) => v === 77), `8-bit: ${g8.data.slice(0, 4)}`);
  writePng(join(dir, 'g16.png'), { value: 32896, depth: 16 }); // 32896 * 255 / 65535 = 128
  const g16 = await readGreyImage(join(dir, 'g16.png'));
  assert.ok(g16.data.every((v) => v === 128), `16-bit: ${g16.data.slice(0, 4)}`);
  writePng(join(dir, 'rgba.png'), { value: 200, colorType: 6 });
  const rgba = await readGreyImage(join(dir, 'rgba.png'));
  assert.ok(rgba.data.every((v) => v === 200), `RGBA: ${rgba.data.slice(0, 4)}`);
  const jpg = jpeg.encode({ width: 16, height: 16, data: Buffer.alloc(16 * 16 * 4, 90) }, 95);
  writeFileSync(join(dir, 'a.jpg'), jpg.data);
  const j = await readGreyImage(join(dir, 'a.jpg'));
  assert.equal(j.width, 16);
  assert.ok(j.data.every((v) => Math.abs(v - 90) <= 2), `JPEG: ${j.data.slice(0, 4)}`);

  const good = readFileSync(join(dir, 'g8.png'));
  writeFileSync(join(dir, 'truncated.png'), good.subarray(0, 40));
  writeFileSync(join(dir, 'garbage.jpg'), Buffer.from('this is not an image at all'));
  writeFileSync(join(dir, 'empty.png'), '');
  for (const name of ['truncated.png', 'garbage.jpg', 'empty.png', 'missing.png']) {
    const p = join(dir, name);
    await assert.rejects(readGreyImage(p), (e: Error) => e instanceof ImageDecodeError && e.path === p && e.message.includes(p), name);
  }
});

test('parseFindingMapping and mapFinding', () => {
  assert.deepEqual(parseFindingMapping('COVID-19*=COVID,No Finding=Normal'), { 'COVID-19*': 'COVID', 'No Finding': 'Normal' });
  assert.deepEqual(parseFindingMapping('COVID-19, ARDS=COVID; Pneumonia*=Other'), { 'COVID-19, ARDS': 'COVID', 'Pneumonia*': 'Other' });
  assert.throws(() => parseFindingMapping('COVID'), DatasetError);
  assert.throws(() => parseFindingMapping('=X'), DatasetError);
  const m = { 'COVID-19*': 'COVID', 'No Finding': 'Normal', 'COVID-19, ARDS': 'ARDS' };
  assert.equal(mapFinding('COVID-19', m), 'COVID');
  assert.equal(mapFinding('COVID-19, ARDS', m), 'ARDS'); // exact beats prefix
  assert.equal(mapFinding('covid-19, sars', m), 'COVID');
  assert.equal(mapFinding('No Finding', m), 'Normal');
  assert.equal(mapFinding('No Finding yet', m), undefined);
  assert.deepEqual(parseCsv('a,b\n"x, y","say ""hi"""\r\n1,\n'), [['a', 'b'], ['x, y', 'say "hi"'], ['1', '']]);
});

// ---- splits ----

function synthetic(nPerClass: number[], patientSize = 0): { label: number; patientId?: string; id: number }[] {
  const out: { label: number; patientId?: string; id: number }[] = [];
  let id = 0;
  nPerClass.forEach((n, label) => {
    for (let i = 0; i < n; i++) {
      out.push({ label, id, ...(patientSize ? { patientId: `c${label}-p${Math.floor(i / patientSize)}` } : {}) });
      id++;
    }
  });
  return shuffled(out, mulberry32(7));
}

test('split: 64/16/20 per class, disjoint, complete, order kept', () => {
  const samples = synthetic([500, 300, 41]);
  const s = splitDataset(samples);
  const all = [...s.train, ...s.val, ...s.test];
  assert.equal(all.length, samples.length);
  assert.equal(new Set(all.map((x) => x.id)).size, samples.length);
  for (const [label, n] of [[0, 500], [1, 300], [2, 41]] as const) {
    const count = (xs: typeof samples) => xs.filter((x) => x.label === label).length;
    assert.ok(Math.abs(count(s.train) - 0.64 * n) <= 1, `train ${label}: ${count(s.train)}`);
    assert.ok(Math.abs(count(s.val) - 0.16 * n) <= 1, `val ${label}: ${count(s.val)}`);
    assert.ok(Math.abs(count(s.test) - 0.2 * n) <= 1, `test ${label}: ${count(s.test)}`);
  }
  const pos = new Map(samples.map((x, i) => [x.id, i]));
  for (const part of [s.train, s.val, s.test]) {
    for (let i = 1; i < part.length; i++) assert.ok(pos.get(part[i - 1].id)! < pos.get(part[i].id)!);
  }
});

test('split: same seed same split, different seed different split, custom fractions', () => {
  const samples = synthetic([200, 200]);
  const ids = (s: ReturnType<typeof splitDataset<(typeof samples)[number]>>) => [s.train, s.val, s.test].map((p) => p.map((x) => x.id));
  assert.deepEqual(ids(splitDataset(samples, { seed: 3 })), ids(splitDataset(samples, { seed: 3 })));
  assert.deepEqual(ids(splitDataset(samples)), ids(splitDataset(samples, { seed: 42 })));
  assert.notDeepEqual(ids(splitDataset(samples, { seed: 3 })), ids(splitDataset(samples, { seed: 4 })));
  const half = splitDataset(samples, { fractions: [0.5, 0, 0.5] });
  assert.deepEqual([half.train.length, half.val.length, half.test.length], [200, 0, 200]);
  assert.throws(() => splitDataset(samples, { fractions: [0.5, 0.5, 0.5] }), /sum/);
});

test('split: patient groups never straddle splits and proportions stay close', () => {
  const samples = synthetic([600, 400], 3);
  // Make some patients mixed-label: their images follow the majority.
  samples.push({ label: 1, patientId: 'c0-p0', id: 10_000 });
  const s = splitDataset(samples, { seed: 11 });
  const where = new Map<string, string>();
  for (const [name, part] of Object.entries(s)) {
    for (const x of part) {
      const prev = where.get(x.patientId!);
      assert.ok(prev === undefined || prev === name, `patient ${x.patientId} in ${prev} and ${name}`);
      where.set(x.patientId!, name);
    }
  }
  const n = samples.length;
  assert.ok(Math.abs(s.train.length / n - 0.64) < 0.02 && Math.abs(s.val.length / n - 0.16) < 0.02 && Math.abs(s.test.length / n - 0.2) < 0.02);
});

