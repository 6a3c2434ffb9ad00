// Pixel preprocessing shared by the trainer and the viewer: the same code turns stored DICOM values or decoded
// PNG/JPEG pixels into the network's input, so training and viewing cannot disagree. Browser-safe (no Node APIs).
//
// Non-square policy: radiographs are rarely square. The whole image is resized to size x size, aspect ratio not
// kept and nothing cropped, so no part of the lungs is ever cut away (the Kaggle data the method was defined on
// is square already, and the reference code resizes the same way).

/** 8-bit grey image, row-major, one byte per pixel. */
export interface GreyImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Stored pixel values of one grey DICOM frame with the attributes needed to display them. */
export interface StoredPixels {
  width: number;
  height: number;
  /** Stored values as decoded (already sign-extended when pixelRepresentation is 1). */
  data: ArrayLike<number>;
  bitsStored: number;
  pixelRepresentation: 0 | 1;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  /** Linear modality LUT. */
  rescaleSlope?: number;
  rescaleIntercept?: number;
  windowCenter?: number;
  windowWidth?: number;
  voiLutFunction?: 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID';
}

export type Normalization = 'mobilenet' | 'caffe';

export interface InputSpec {
  size: number;
  normalization: Normalization;
}

/** ImageNet channel means in BGR order, as Keras' caffe-style preprocess_input (VGG16) subtracts them. */
export const CAFFE_MEANS_BGR: readonly [number, number, number] = [103.939, 116.779, 123.68];

/**
 * Stored values -> 8-bit grey for display and for the network: modality LUT (slope/intercept), VOI window
 * (DICOM PS3.3 C.11.2.1.2; without a usable window, the min/max of the modality values), MONOCHROME1 inversion.
 */
export function storedToGrey8(p: StoredPixels): GreyImage {
  const n = p.width * p.height;
  if (p.data.length < n) {
    throw new Error(`pixel data holds ${p.data.length} values, ${p.width}x${p.height} needs ${n}`);
  }
  const slope = p.rescaleSlope ?? 1;
  const intercept = p.rescaleIntercept ?? 0;
  const voi = makeVoi(p, slope, intercept, n);
  const invert = p.photometric === 'MONOCHROME1';
  const toByte = (stored: number): number => {
    let y = Math.round(voi(stored * slope + intercept));
    if (y < 0) y = 0;
    else if (y > 255) y = 255;
    return invert ? 255 - y : y;
  };
  const out = new Uint8Array(n);
  const src = p.data;
  // Integer stored values (every decoder's typed arrays): one lookup table over their range is several times
  // faster than evaluating the window per pixel on multi-megapixel radiographs.
  if (isIntegerArray(src)) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = src[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (hi - lo <= 1 << 20) {
      const lut = new Uint8Array(hi - lo + 1);
      for (let v = lo; v <= hi; v++) lut[v - lo] = toByte(v);
      for (let i = 0; i < n; i++) out[i] = lut[src[i] - lo];
      return { width: p.width, height: p.height, data: out };
    }
  }
  for (let i = 0; i < n; i++) out[i] = toByte(src[i]);
  return { width: p.width, height: p.height, data: out };
}

function isIntegerArray(a: ArrayLike<number>): boolean {
  return (
    a instanceof Int8Array ||
    a instanceof Uint8Array ||
    a instanceof Uint8ClampedArray ||
    a instanceof Int16Array ||
    a instanceof Uint16Array ||
    a instanceof Int32Array ||
    a instanceof Uint32Array
  );
}

/** The VOI transform for one frame, from modality value to 0..255 (not yet rounded). */
function makeVoi(p: StoredPixels, slope: number, intercept: number, n: number): (x: number) => number {
  const c = p.windowCenter;
  const w = p.windowWidth;
  const fn = p.voiLutFunction ?? 'LINEAR';
  const hasWindow = c !== undefined && w !== undefined && Number.isFinite(c) && Number.isFinite(w) && w > 0;
  if (hasWindow && fn === 'SIGMOID') {
    return (x) => 255 / (1 + Math.exp((-4 * (x - c)) / w));
  }
  if (hasWindow && fn === 'LINEAR_EXACT') {
    const lo = c - w / 2;
    const hi = c + w / 2;
    return (x) => (x <= lo ? 0 : x > hi ? 255 : ((x - c) / w + 0.5) * 255);
  }
  if (hasWindow && fn === 'LINEAR' && w >= 1) {
    const lo = c - 0.5 - (w - 1) / 2;
    const hi = c - 0.5 + (w - 1) / 2;
    // Width 1 is a threshold at the centre; the general formula would divide by zero.
    if (w === 1) return (x) => (x <= lo ? 0 : 255);
    return (x) => (x <= lo ? 0 : x > hi ? 255 : ((x - (c - 0.5)) / (w - 1) + 0.5) * 255);
  }
  // No usable window: stretch the modality values' own range.
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = p.data[i] * slope + intercept;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (!(max > min)) return () => 0;
  const range = max - min;
  return (x) => ((x - min) * 255) / range;
}

/**
 * Interleaved 8-bit pixels (grey, grey+alpha, RGB or RGBA) -> grey. Colour uses ITU-R BT.601 luminance, as most
 * imaging tools do; alpha is ignored (radiographs carry no meaningful transparency).
 */
export function rgbaToGrey(data: ArrayLike<number>, width: number, height: number, channels: 1 | 2 | 3 | 4): GreyImage {
  const n = width * height;
  if (data.length < n * channels) {
    throw new Error(`pixel buffer holds ${data.length} values, ${width}x${height}x${channels} needs ${n * channels}`);
  }
  const out = new Uint8Array(n);
  if (channels <= 2) {
    for (let i = 0; i < n; i++) out[i] = clampByte(data[i * channels]);
  } else {
    for (let i = 0; i < n; i++) {
      const j = i * channels;
      out[i] = clampByte(0.299 * data[j] + 0.587 * data[j + 1] + 0.114 * data[j + 2]);
    }
  }
  return { width, height, data: out };
}

function clampByte(v: number): number {
  const r = Math.round(v);
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

/** Source taps and weights of a 1-D resampling; each output sample's weights sum to 1. */
interface Taps {
  start: Int32Array;
  count: Int32Array;
  weights: Float32Array[];
}

/**
 * 1-D resampling weights. Shrinking averages the exact source area each output pixel covers (like an area
 * filter), so large radiographs downsample without aliasing; enlarging is bilinear with pixel-centre alignment.
 */
function resampleTaps(src: number, dst: number): Taps {
  const start = new Int32Array(dst);
  const count = new Int32Array(dst);
  const weights: Float32Array[] = [];
  const scale = src / dst;
  for (let i = 0; i < dst; i++) {
    if (scale > 1) {
      const a = i * scale;
      const b = (i + 1) * scale;
      const j0 = Math.floor(a);
      const j1 = Math.min(src, Math.ceil(b));
      const w = new Float32Array(j1 - j0);
      for (let j = j0; j < j1; j++) w[j - j0] = (Math.min(b, j + 1) - Math.max(a, j)) / scale;
      start[i] = j0;
      count[i] = j1 - j0;
      weights.push(w);
    } else {
      const x = Math.min(Math.max((i + 0.5) * scale - 0.5, 0), src - 1);
      const j0 = Math.floor(x);
      const f = x - j0;
      if (j0 + 1 < src && f > 0) {
        start[i] = j0;
        count[i] = 2;
        weights.push(Float32Array.of(1 - f, f));
      } else {
        start[i] = j0;
        count[i] = 1;
        weights.push(Float32Array.of(1));
      }
    }
  }
  return { start, count, weights };
}

/** Resizes to width x height: area averaging along an axis that shrinks, bilinear along one that grows. */
export function resizeGrey(img: GreyImage, width: number, height: number): GreyImage {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new Error(`resize target must be positive integers, got ${width}x${height}`);
  }
  if (img.width <= 0 || img.height <= 0) throw new Error(`cannot resize an empty ${img.width}x${img.height} image`);
  if (img.width === width && img.height === height) {
    return { width, height, data: new Uint8Array(img.data) };
  }
  const sw = img.width;
  const sh = img.height;
  const tx = resampleTaps(sw, width);
  const ty = resampleTaps(sh, height);
  // Horizontal pass into floats (sh x width), then vertical pass, rounding once at the end.
  const mid = new Float32Array(sh * width);
  for (let y = 0; y < sh; y++) {
    const row = y * sw;
    for (let x = 0; x < width; x++) {
      const s = tx.start[x];
      const w = tx.weights[x];
      let acc = 0;
      for (let k = 0; k < w.length; k++) acc += w[k] * img.data[row + s + k];
      mid[y * width + x] = acc;
    }
  }
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const s = ty.start[y];
    const w = ty.weights[y];
    for (let x = 0; x < width; x++) {
      let acc = 0;
      for (let k = 0; k < w.length; k++) acc += w[k] * mid[(s + k) * width + x];
      out[y * width + x] = clampByte(acc);
    }
  }
  return { width, height, data: out };
}

/**
 * Grey image -> network input: resized to size x size (whole image, no crop), grey copied to 3 channels,
 * normalised for the backbone, HWC order, length size*size*3.
 * mobilenet: x/127.5 - 1 in [-1, 1]; caffe (VGG16): BGR channels minus the ImageNet means.
 */
export function greyToInput(img: GreyImage, spec: InputSpec): Float32Array {
  const { size, normalization } = spec;
  const r = img.width === size && img.height === size ? img : resizeGrey(img, size, size);
  const n = size * size;
  const out = new Float32Array(n * 3);
  if (normalization === 'mobilenet') {
    for (let i = 0; i < n; i++) {
      const v = r.data[i] / 127.5 - 1;
      out[3 * i] = v;
      out[3 * i + 1] = v;
      out[3 * i + 2] = v;
    }
  } else if (normalization === 'caffe') {
    const [b, g, rr] = CAFFE_MEANS_BGR;
    for (let i = 0; i < n; i++) {
      const v = r.data[i];
      out[3 * i] = v - b;
      out[3 * i + 1] = v - g;
      out[3 * i + 2] = v - rr;
    }
  } else {
    throw new Error(`unknown normalization '${String(normalization)}' (expected 'mobilenet' or 'caffe')`);
  }
  return out;
}

/** Bilinear resize of a row-major w x h map to outW x outH (pixel centres aligned, edges clamped). */
export function upsampleCam(cam: Float32Array, w: number, h: number, outW: number, outH: number): Float32Array {
  if (cam.length !== w * h) throw new Error(`upsampleCam: expected ${w * h} values, got ${cam.length}`);
  const out = new Float32Array(outW * outH);
  const sx = w / outW;
  const sy = h / outH;
  for (let y = 0; y < outH; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), h - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, h - 1);
    const ty = fy - y0;
    for (let x = 0; x < outW; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), w - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, w - 1);
      const tx = fx - x0;
      const top = cam[y0 * w + x0] * (1 - tx) + cam[y0 * w + x1] * tx;
      const bottom = cam[y1 * w + x0] * (1 - tx) + cam[y1 * w + x1] * tx;
      out[y * outW + x] = top * (1 - ty) + bottom * ty;
    }
  }
  return out;
}
