// Smaller numbers for a bundle's files: float32 values encoded as half floats (float16) or as 8-bit affine codes
// (uint8: value = code * scale + min, one scale and min per tensor), in tfjs-converter's weight quantization
// format. tfjs decodes quantized weight specs itself (tf.io.decodeWeights, used by tf.loadLayersModel), so a
// quantized model.json loads anywhere tfjs runs; only the encoding side is here, since LayersModel.save has none.
// The same half-float codec stores the classifier's arrays (model/classifier-store.ts). Browser-safe.
import * as tf from '@tensorflow/tfjs';

/**
 * How a bundle's network weights are stored. 'mixed': the fully connected kernels (rank-2 tensors: the head, 69 %
 * of a MobileNetV2 0.35 network with a 512-wide head) as uint8, everything else as float16. A dense layer sums
 * hundreds of inputs, so independent rounding errors of its codes average out, while a 3x3 depthwise filter has 9
 * weights and a per-tensor code of 256 steps over all its channels is too coarse for the small ones.
 */
export type WeightsDtype = 'float32' | 'float16' | 'uint8' | 'mixed';
export const WEIGHTS_DTYPES: readonly WeightsDtype[] = ['float32', 'float16', 'uint8', 'mixed'];

/** In 'uint8' mode, tensors smaller than this (biases, batch-norm vectors) are stored as float16: an affine
 * code of 256 steps over a vector such as moving variances (spanning decades) would lose its small entries, and
 * these tensors are a negligible part of the size. */
export const UINT8_MIN_VALUES = 1024;

const F16_MAX = 65504;
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The half float nearest to `v` (round half to even), as its 16 bits. NaN and infinities are kept; finite values
 * beyond the half range become infinities (callers that must not change a value's meaning check first). */
export function toHalfBits(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 112; // the half exponent field (bias 15) for a float32 exponent field (bias 127)
  if (e >= 31) return sign | 0x7c00;
  const round = (m: number, rem: number, half: number) => (rem > half || (rem === half && (m & 1)) ? m + 1 : m);
  if (e <= 0) {
    // Subnormal half: value = m * 2^-24, with the implicit leading bit made explicit.
    if (e < -10) return sign;
    const full = mant | 0x800000;
    const shift = 14 - e;
    const m = full >>> shift;
    // A carry into 0x400 is the smallest normal half, which is the right bit pattern.
    return sign | round(m, full & ((1 << shift) - 1), 1 << (shift - 1));
  }
  // A mantissa carry increments the exponent (up to 0x7c00, infinity), as it should.
  return sign | ((e << 10) + round(mant >>> 13, mant & 0x1fff, 0x1000));
}

/** The value of a half float's 16 bits. */
export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

export function encodeFloat16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toHalfBits(values[i]);
  return out;
}

export function decodeFloat16(bits: ArrayLike<number>): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = fromHalfBits(bits[i]);
  return out;
}

/** True when every value survives float16 with its meaning (no finite value beyond the half range). */
export function fitsFloat16(values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) if (Math.abs(values[i]) > F16_MAX && Number.isFinite(values[i])) return false;
  return true;
}

export interface AffineCodes {
  codes: Uint8Array;
  scale: number;
  min: number;
}

/**
 * 8-bit affine codes of a tensor: 256 steps from its minimum to its maximum, the range widened to hold 0 and
 * shifted so that 0 is exactly a code (zeroed and pruned weights stay exactly zero). Decoded as
 * `code * scale + min`; the error is at most scale / 2 (plus float32 rounding). Null when a value is not finite.
 */
export function quantizeUint8(values: ArrayLike<number>): AffineCodes | null {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) return null;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const scale = hi > lo ? (hi - lo) / 255 : 1;
  const min = -Math.round(-lo / scale) * scale;
  const codes = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) codes[i] = Math.min(255, Math.max(0, Math.round((values[i] - min) / scale)));
  return { codes, scale, min };
}

/** What tfjs decodes: float32 of code * scale + min. */
export function dequantizeUint8(q: AffineCodes): Float32Array {
  const out = new Float32Array(q.codes.length);
  for (let i = 0; i < q.codes.length; i++) out[i] = q.codes[i] * q.scale + q.min;
  return out;
}

export type WeightSpec = tf.io.WeightsManifestEntry;

/** The encoding one float32 tensor gets under a bundle-wide `dtype`. */
function tensorMode(dtype: WeightsDtype, shape: number[], size: number): 'float32' | 'float16' | 'uint8' {
  if (dtype === 'float32' || dtype === 'float16') return dtype;
  if (size < UINT8_MIN_VALUES) return 'float16';
  return dtype === 'uint8' || shape.length === 2 ? 'uint8' : 'float16';
}

/**
 * Re-encodes a model's weights (specs + their concatenated bytes, quantized or not) as `dtype`. Tensors that are
 * not float32, or whose values the encoding cannot hold (NaN or infinities for uint8, values beyond the half range
 * for float16), stay as they were decoded, float32. Returns the new specs and bytes, in the same order.
 */
export function encodeWeights(specs: WeightSpec[], data: ArrayBuffer, dtype: WeightsDtype): { specs: WeightSpec[]; data: Uint8Array } {
  const tensors = tf.io.decodeWeights(data, specs);
  const parts: Uint8Array[] = [];
  const out: WeightSpec[] = [];
  try {
    for (const spec of specs) {
      const t = tensors[spec.name];
      const { quantization: _q, ...plain } = spec;
      if (spec.dtype !== 'float32') {
        const raw = t.dataSync() as Int32Array | Uint8Array;
        parts.push(new Uint8Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)));
        out.push(plain);
        continue;
      }
      const values = t.dataSync() as Float32Array;
      const mode = tensorMode(dtype, spec.shape, values.length);
      const q = mode === 'uint8' ? quantizeUint8(values) : null;
      if (q) {
        parts.push(q.codes);
        out.push({ ...plain, quantization: { dtype: 'uint8', scale: q.scale, min: q.min } });
      } else if (mode !== 'float32' && fitsFloat16(values)) {
        parts.push(new Uint8Array(encodeFloat16(values).buffer));
        out.push({ ...plain, quantization: { dtype: 'float16' } });
      } else {
        parts.push(new Uint8Array(values.slice().buffer));
        out.push(plain);
      }
    }
  } finally {
    tf.dispose(Object.values(tensors));
  }
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  return { specs: out, data: bytes };
}

/** How a model.json's weights are stored: by the narrowest encoding its tensors use; 'mixed' when a large tensor
 * (one that 'uint8' would have coded) is float16 beside uint8 ones. */
export function weightsDtypeOf(json: tf.io.ModelJSON): WeightsDtype {
  const seen = new Set<string>();
  let largeHalf = false;
  for (const g of json.weightsManifest ?? []) {
    for (const w of g.weights) {
      const q = w.quantization?.dtype ?? 'float32';
      seen.add(q);
      if (q === 'float16' && w.shape.reduce((a, b) => a * b, 1) >= UINT8_MIN_VALUES) largeHalf = true;
    }
  }
  if (seen.has('uint8')) return largeHalf ? 'mixed' : 'uint8';
  return seen.has('float16') ? 'float16' : 'float32';
}
