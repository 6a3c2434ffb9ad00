// The weight codecs: half floats and 8-bit affine codes, checked against their definitions and against tfjs's own
// decoder (which is what loads a quantized bundle).
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../trainer/src/runtime/backend.js';
import {
  UINT8_MIN_VALUES,
  decodeFloat16,
  dequantizeUint8,
  encodeFloat16,
  encodeWeights,
  fitsFloat16,
  fromHalfBits,
  quantizeUint8,
  toHalfBits,
  weightsDtypeOf,
  type WeightSpec,
} from '../../trainer/src/model/quantize.js';

before(async () => {
  await initBackend('cpu');
});

test('float16: representable values round trip exactly, others to the nearest half (ties to even)', () => {
  const exact = [0, 1, -2, 0.5, 0.333251953125, 65504, -65504, 2 ** -14, 2 ** -24, 3 * 2 ** -24, 1000.5, 2 ** -10];
  for (const v of exact) assert.equal(fromHalfBits(toHalfBits(v)), v, `${v}`);
  assert.ok(Object.is(fromHalfBits(toHalfBits(-0)), -0), '-0 keeps its sign');
  // Halfway between 1 and 1 + 2^-10 goes to the even mantissa (1); three quarters up goes up.
  assert.equal(fromHalfBits(toHalfBits(1 + 2 ** -11)), 1);
  assert.equal(fromHalfBits(toHalfBits(1 + 3 * 2 ** -11)), 1 + 2 ** -9);
  assert.equal(fromHalfBits(toHalfBits(2 ** -25)), 0, 'half of the smallest subnormal ties to 0');
  assert.equal(fromHalfBits(toHalfBits(2 ** -25 * 1.5)), 2 ** -24);
  // Relative error at most 2^-11 over the normal range.
  let rng = 7;
  for (let i = 0; i < 2000; i++) {
    rng = (rng * 1103515245 + 12345) % 2 ** 31;
    const v = Math.fround(((rng / 2 ** 31) * 2 - 1) * 10 ** ((i % 9) - 4));
    const back = fromHalfBits(toHalfBits(v));
    if (Math.abs(v) >= 2 ** -14) assert.ok(Math.abs(back - v) <= Math.abs(v) * 2 ** -11, `${v} -> ${back}`);
    else assert.ok(Math.abs(back - v) <= 2 ** -25, `${v} -> ${back} (subnormal)`);
  }
});

test('float16: NaN and infinities are kept, overflow becomes infinity and fitsFloat16 says so', () => {
  assert.ok(Number.isNaN(fromHalfBits(toHalfBits(NaN))));
  assert.equal(fromHalfBits(toHalfBits(Infinity)), Infinity);
  assert.equal(fromHalfBits(toHalfBits(-Infinity)), -Infinity);
  assert.equal(fromHalfBits(toHalfBits(1e6)), Infinity);
  assert.equal(fromHalfBits(toHalfBits(65520)), Infinity, 'rounds past the largest half');
  assert.equal(fromHalfBits(toHalfBits(65519)), 65504);
  assert.ok(fitsFloat16([1, NaN, Infinity, -65504]));
  assert.ok(!fitsFloat16([1, 70000]));
});

test("float16: the encoder's bits decode through tfjs's own decoder to the same values", () => {
  const values = Float32Array.from({ length: 4096 }, (_, i) => Math.sin(i * 12.9898) * 10 ** ((i % 11) - 6));
  values[0] = NaN;
  values[1] = -Infinity;
  const bits = encodeFloat16(values);
  const spec: WeightSpec = { name: 'w', shape: [values.length], dtype: 'float32', quantization: { dtype: 'float16' } };
  const t = tf.io.decodeWeights(bits.slice().buffer, [spec]).w;
  const theirs = t.dataSync();
  t.dispose();
  const ours = decodeFloat16(bits);
  assert.ok(Number.isNaN(theirs[0]) && Number.isNaN(ours[0]));
  assert.deepEqual(Array.from(theirs.slice(1)), Array.from(ours.slice(1)));
});

test('uint8: grid values and zero are exact, the error is at most scale / 2, non-finite values are refused', () => {
  const grid = Array.from({ length: 256 }, (_, k) => -1 + (k * 2) / 255);
  const q0 = quantizeUint8(Float32Array.from(grid));
  assert.ok(q0);
  const values = Float32Array.from({ length: 1000 }, (_, i) => Math.cos(i) * 3 + 0.5);
  values[10] = 0;
  const q = quantizeUint8(values);
  assert.ok(q);
  const back = dequantizeUint8(q);
  assert.equal(back[10], 0, 'zero is a code exactly');
  for (let i = 0; i < values.length; i++) assert.ok(Math.abs(back[i] - values[i]) <= q.scale / 2 + 1e-6, `${values[i]} -> ${back[i]}`);
  // Values on the code grid come back as they were (to float32).
  const onGrid = Float32Array.from({ length: 256 }, (_, k) => Math.fround(k * q.scale + q.min));
  const q2 = quantizeUint8(onGrid);
  assert.ok(q2);
  const b2 = dequantizeUint8(q2);
  for (let k = 0; k < 256; k++) assert.ok(Math.abs(b2[k] - onGrid[k]) <= 1e-6 * Math.max(1, Math.abs(onGrid[k])), `${onGrid[k]}`);
  // All positive: the range still holds 0; constant tensors are exact.
  const pos = quantizeUint8([2, 3, 4]);
  assert.ok(pos && pos.min === 0);
  assert.deepEqual(Array.from(dequantizeUint8(quantizeUint8([5, 5, 5]) ?? assert.fail())), [5, 5, 5]);
  assert.equal(quantizeUint8([1, NaN]), null);
  assert.equal(quantizeUint8([1, Infinity]), null);
});

test('encodeWeights: uint8 for large tensors, float16 for small ones, float32 where the codes cannot hold the values', () => {
  const big = Float32Array.from({ length: UINT8_MIN_VALUES }, (_, i) => Math.sin(i) * 0.1);
  const small = Float32Array.from([0.25, -1.5, 3]);
  const withNaN = Float32Array.from({ length: UINT8_MIN_VALUES }, (_, i) => (i === 3 ? NaN : i / 100));
  const huge = Float32Array.from([1, 1e6]);
  const ints = Int32Array.from([1, -2, 3]);
  const specs: WeightSpec[] = [
    { name: 'big', shape: [32, 32], dtype: 'float32' },
    { name: 'small', shape: [3], dtype: 'float32' },
    { name: 'nan', shape: [UINT8_MIN_VALUES], dtype: 'float32' },
    { name: 'huge', shape: [2], dtype: 'float32' },
    { name: 'ints', shape: [3], dtype: 'int32' },
  ];
  const parts = [big, small, withNaN, huge, ints].map((a) => new Uint8Array(a.buffer));
  const data = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    at += p.length;
  }
  const u8 = encodeWeights(specs, data.buffer, 'uint8');
  assert.deepEqual(u8.specs.map((s) => s.quantization?.dtype ?? 'none'), ['uint8', 'float16', 'float16', 'none', 'none']);
  assert.equal(u8.data.byteLength, UINT8_MIN_VALUES + 3 * 2 + UINT8_MIN_VALUES * 2 + 2 * 4 + 3 * 4);
  const decoded = tf.io.decodeWeights(u8.data.slice().buffer, u8.specs);
  const q = quantizeUint8(big) ?? assert.fail();
  assert.deepEqual(Array.from(decoded.big.dataSync()), Array.from(dequantizeUint8(q)));
  assert.deepEqual(Array.from(decoded.small.dataSync()), [0.25, -1.5, 3]);
  assert.ok(Number.isNaN(decoded.nan.dataSync()[3]));
  assert.deepEqual(Array.from(decoded.huge.dataSync()), [1, 1e6]);
  assert.deepEqual(Array.from(decoded.ints.dataSync()), [1, -2, 3]);
  tf.dispose(Object.values(decoded));

  const f16 = encodeWeights(specs, data.buffer, 'float16');
  assert.deepEqual(f16.specs.map((s) => s.quantization?.dtype ?? 'none'), ['float16', 'float16', 'float16', 'none', 'none']);
  // Re-encoding float16 weights as float32 restores plain specs holding the half values.
  const back = encodeWeights(f16.specs, f16.data.slice().buffer, 'float32');
  assert.ok(back.specs.every((s) => s.quantization === undefined));
  const t = tf.io.decodeWeights(back.data.slice().buffer, back.specs);
  assert.deepEqual(Array.from(t.big.dataSync()), Array.from(decodeFloat16(encodeFloat16(big))));
  tf.dispose(Object.values(t));
});

test("'mixed' codes large rank-2 tensors (dense kernels) as uint8 and everything else as float16", () => {
  const n = UINT8_MIN_VALUES;
  const dense = Float32Array.from({ length: n }, (_, i) => Math.cos(i) * 0.05);
  const conv = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.3);
  const bias = Float32Array.from([0.5, -0.25]);
  const specs: WeightSpec[] = [
    { name: 'fc/kernel', shape: [32, n / 32], dtype: 'float32' },
    { name: 'conv/kernel', shape: [2, 2, 16, n / 64], dtype: 'float32' },
    { name: 'fc/bias', shape: [2], dtype: 'float32' },
  ];
  const parts = [dense, conv, bias].map((a) => new Uint8Array(a.buffer));
  const data = new Uint8Array(parts.reduce((k, p) => k + p.length, 0));
  parts.reduce((at, p) => (data.set(p, at), at + p.length), 0);
  const mixed = encodeWeights(specs, data.buffer, 'mixed');
  assert.deepEqual(mixed.specs.map((s) => s.quantization?.dtype), ['uint8', 'float16', 'float16']);
  assert.equal(mixed.data.byteLength, n + 2 * n + 2 * 2);
  const decoded = tf.io.decodeWeights(mixed.data.slice().buffer, mixed.specs);
  assert.deepEqual(Array.from(decoded['fc/kernel'].dataSync()), Array.from(dequantizeUint8(quantizeUint8(dense) ?? assert.fail())));
  assert.deepEqual(Array.from(decoded['conv/kernel'].dataSync()), Array.from(decodeFloat16(encodeFloat16(conv))));
  tf.dispose(Object.values(decoded));
  // The manifest's specs say which encoding a model was stored with.
  const json = (specs: WeightSpec[]) => ({ modelTopology: {}, weightsManifest: [{ paths: ['w.bin'], weights: specs }] }) as tf.io.ModelJSON;
  assert.equal(weightsDtypeOf(json(mixed.specs)), 'mixed');
  assert.equal(weightsDtypeOf(json(encodeWeights(specs, data.buffer, 'uint8').specs)), 'uint8');
  assert.equal(weightsDtypeOf(json(encodeWeights(specs, data.buffer, 'float16').specs)), 'float16');
  assert.equal(weightsDtypeOf(json(specs)), 'float32');
});
