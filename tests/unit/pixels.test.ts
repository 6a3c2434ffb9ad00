import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CAFFE_MEANS_BGR,
  greyToInput,
  resizeGrey,
  rgbaToGrey,
  storedToGrey8,
  type GreyImage,
  type StoredPixels,
} from '../../trainer/src/image/pixels.js';

function stored(values: number[], extra: Partial<StoredPixels> = {}): StoredPixels {
  return {
    width: values.length,
    height: 1,
    data: values,
    bitsStored: 12,
    pixelRepresentation: 0,
    photometric: 'MONOCHROME2',
    ...extra,
  };
}

function grey(width: number, height: number, f: (x: number, y: number) => number): GreyImage {
  const data = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = f(x, y);
  return { width, height, data };
}

test('LINEAR window follows the DICOM C.11.2.1.2 formula', () => {
  // c=100, w=51: below c-0.5-(w-1)/2 = 74.5 -> 0, above c-0.5+(w-1)/2 = 124.5 -> 255,
  // else ((x - 99.5)/50 + 0.5) * 255.
  const g = storedToGrey8(stored([0, 74, 75, 99.5, 100, 110, 124, 125, 4000], { windowCenter: 100, windowWidth: 51 }));
  const expect = [0, 0, ((75 - 99.5) / 50 + 0.5) * 255, 127.5, ((100 - 99.5) / 50 + 0.5) * 255, ((110 - 99.5) / 50 + 0.5) * 255, ((124 - 99.5) / 50 + 0.5) * 255, 255, 255].map(Math.round);
  assert.deepEqual([...g.data], expect);
  assert.deepEqual([...g.data.slice(0, 5)], [0, 0, 3, 128, 130]);
});

test('LINEAR_EXACT and SIGMOID windows', () => {
  const exact = storedToGrey8(stored([40, 50, 75, 100, 150, 151], { windowCenter: 100, windowWidth: 100, voiLutFunction: 'LINEAR_EXACT' }));
  assert.deepEqual([...exact.data], [0, 0, 64, 128, 255, 255]);
  const sig = storedToGrey8(stored([100, 150, 50], { windowCenter: 100, windowWidth: 100, voiLutFunction: 'SIGMOID' }));
  assert.deepEqual([...sig.data], [128, Math.round(255 / (1 + Math.exp(-2))), Math.round(255 / (1 + Math.exp(2)))]);
});

test('no window: min/max of the modality values spans 0..255', () => {
  const g = storedToGrey8(stored([1000, 1500, 2000]));
  assert.deepEqual([...g.data], [0, 128, 255]);
  const flat = storedToGrey8(stored([7, 7, 7]));
  assert.deepEqual([...flat.data], [0, 0, 0]);
});

test('MONOCHROME1 is inverted after windowing', () => {
  const values = [0, 80, 100, 120, 300];
  const m2 = storedToGrey8(stored(values, { windowCenter: 100, windowWidth: 41 }));
  const m1 = storedToGrey8(stored(values, { windowCenter: 100, windowWidth: 41, photometric: 'MONOCHROME1' }));
  assert.deepEqual([...m1.data], [...m2.data].map((v) => 255 - v));
  assert.equal(m1.data[0], 255);
  assert.equal(m1.data[4], 0);
});

test('rescale slope/intercept apply before the window (window in modality units)', () => {
  // Stored 0..2 with slope 10, intercept -1024 -> -1024, -1014, -1004. Window c=-1014 w=21 (LINEAR):
  // lo = -1014.5-10 = -1024.5, hi = -1004.5 -> -1024 maps to ((-1024+1014.5)/20+0.5)*255 = 6.375.
  const g = storedToGrey8(stored([0, 1, 2], { rescaleSlope: 10, rescaleIntercept: -1024, windowCenter: -1014, windowWidth: 21 }));
  assert.deepEqual([...g.data], [6, 134, 255]);
});

test('signed stored values window correctly', () => {
  const g = storedToGrey8(
    stored([-2048, -1, 0, 2047], { pixelRepresentation: 1, windowCenter: 0, windowWidth: 4096, voiLutFunction: 'LINEAR_EXACT' }),
  );
  assert.deepEqual([...g.data], [0, 127, 128, 255]);
  const noWindow = storedToGrey8(stored([-100, 0, 100], { pixelRepresentation: 1 }));
  assert.deepEqual([...noWindow.data], [0, 128, 255]);
});

test('rgbaToGrey uses BT.601 luminance and ignores alpha', () => {
  const g = rgbaToGrey([255, 0, 0, 0, 0, 255, 0, 255, 0, 0, 255, 9, 100, 100, 100, 255], 4, 1, 4);
  assert.deepEqual([...g.data], [76, 150, 29, 100]);
  assert.deepEqual([...rgbaToGrey([10, 200, 30, 0], 2, 1, 2).data], [10, 30]);
  assert.deepEqual([...rgbaToGrey([0, 0, 0, 255, 255, 255], 2, 1, 3).data], [0, 255]);
});

test('resize keeps a constant image constant, shrinking and enlarging, non-square', () => {
  const c = grey(317, 251, () => 173);
  for (const [w, h] of [[224, 224], [31, 97], [640, 480], [1, 1]] as const) {
    const r = resizeGrey(c, w, h);
    assert.equal(r.data.length, w * h);
    assert.ok(r.data.every((v) => v === 173), `${w}x${h}`);
  }
});

test('shrinking averages areas (no aliasing of a fine checkerboard)', () => {
  const checker = grey(200, 200, (x, y) => ((x + y) % 2 ? 255 : 0));
  const r = resizeGrey(checker, 50, 50);
  // Point sampling would give all 0 or all 255; area averaging gives mid-grey everywhere.
  assert.ok(r.data.every((v) => v >= 127 && v <= 128), `got ${Math.min(...r.data)}..${Math.max(...r.data)}`);
  // Exact 2x2 block means for an integer factor.
  const ramp = grey(4, 2, (x, y) => x * 10 + y * 100);
  assert.deepEqual([...resizeGrey(ramp, 2, 1).data], [Math.round((0 + 10 + 100 + 110) / 4), Math.round((20 + 30 + 120 + 130) / 4)]);
});

test('enlarging is bilinear between pixel centres', () => {
  const two = grey(2, 1, (x) => (x ? 200 : 0));
  // 2 -> 4: output centres map to source x = -0.25 (clamped 0), 0.25, 0.75, 1.25 (clamped 1).
  assert.deepEqual([...resizeGrey(two, 4, 1).data], [0, 50, 150, 200]);
});

test('greyToInput: mobilenet and caffe normalisation, HWC with grey copied to 3 channels', () => {
  const img = grey(2, 2, (x, y) => [0, 255, 127.5, 64][y * 2 + x]);
  const m = greyToInput(img, { size: 2, normalization: 'mobilenet' });
  assert.equal(m.length, 12);
  assert.deepEqual([...m.slice(0, 6)], [-1, -1, -1, 1, 1, 1]);
  assert.ok(Math.abs(m[9] - (64 / 127.5 - 1)) < 1e-6);
  const c = greyToInput(img, { size: 2, normalization: 'caffe' });
  const [b, g, r] = CAFFE_MEANS_BGR;
  assert.ok(Math.abs(c[3] - (255 - b)) < 1e-4 && Math.abs(c[4] - (255 - g)) < 1e-4 && Math.abs(c[5] - (255 - r)) < 1e-4);
  assert.ok(Math.abs(c[0] + b) < 1e-4);
  // A non-square image is resized whole to size x size.
  const wide = greyToInput(grey(300, 100, () => 255), { size: 8, normalization: 'mobilenet' });
  assert.equal(wide.length, 8 * 8 * 3);
  assert.ok(wide.every((v) => v === 1));
});

test('typed integer arrays (lookup-table path) match the per-pixel path exactly', () => {
  const n = 5000;
  const signed = new Int16Array(n);
  for (let i = 0; i < n; i++) signed[i] = ((Math.imul(i, 2654435761) >>> 0) % 8192) - 4096;
  for (const extra of [
    { windowCenter: 40, windowWidth: 400, rescaleSlope: 1.5, rescaleIntercept: -20 },
    { windowCenter: 0, windowWidth: 3000, voiLutFunction: 'SIGMOID' as const, photometric: 'MONOCHROME1' as const },
    {},
  ]) {
    const typed = storedToGrey8({ ...stored([]), width: 100, height: 50, data: signed, pixelRepresentation: 1, ...extra });
    const plain = storedToGrey8({ ...stored([]), width: 100, height: 50, data: Array.from(signed), pixelRepresentation: 1, ...extra });
    assert.deepEqual([...typed.data], [...plain.data]);
    assert.ok(new Set(typed.data).size > 50); // a real spread of values, not a constant
  }
});
