// Lung segmentation for the masked variant: a small U-Net (grey X-ray in, lung probability out), the
// post-processing that turns its output into a clean two-lung mask, overlap scores, and the masking itself.
// Browser-safe: the trainer masks its training images with this code and the viewer masks what it classifies
// with the same code, so the two cannot disagree.
import * as tf from '@tensorflow/tfjs';
import { upsampleCam } from './gradcam.js';
import { resizeGrey, type GreyImage } from '../image/pixels.js';
import { DEFAULT_REFINEMENT, DEFAULT_SEGMENTER, type MaskRefinement, type SegmenterArchitecture } from './segmenter-config.js';

// The architecture and post-processing defaults are plain data (segmenter-config.ts), which --help reads too.
export { DEFAULT_REFINEMENT, DEFAULT_SEGMENTER, type MaskRefinement, type SegmenterArchitecture } from './segmenter-config.js';

/**
 * A U-Net: per level two 3x3 conv + ReLU, 2x2 max pooling down, nearest upsampling + skip concatenation up, a
 * 1x1 sigmoid conv out. Input [n, size, size, 1] in [-1, 1] (see segmenterInput), output [n, size, size, 1].
 */
export function buildSegmenter(arch: Partial<SegmenterArchitecture> = {}): tf.LayersModel {
  const { inputSize, filters } = { ...DEFAULT_SEGMENTER, ...arch };
  const seed = arch.seed ?? 1;
  const levels = filters.length;
  if (levels < 2) throw new Error('a segmenter needs at least two levels');
  if (inputSize % 2 ** (levels - 1) !== 0) {
    throw new Error(`segmenter input size ${inputSize} must be a multiple of ${2 ** (levels - 1)} (${levels - 1} poolings)`);
  }
  let n = 0;
  const conv = (x: tf.SymbolicTensor, f: number, name: string): tf.SymbolicTensor =>
    tf.layers
      .conv2d({
        filters: f,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: tf.initializers.heNormal({ seed: seed * 1000 + n++ }),
        name,
      })
      .apply(x) as tf.SymbolicTensor;
  const block = (x: tf.SymbolicTensor, f: number, name: string) => conv(conv(x, f, `${name}_conv1`), f, `${name}_conv2`);

  const input = tf.input({ shape: [inputSize, inputSize, 1], name: 'seg_input' });
  const skips: tf.SymbolicTensor[] = [];
  let x = input;
  for (let l = 0; l < levels - 1; l++) {
    x = block(x, filters[l], `seg_down${l + 1}`);
    skips.push(x);
    x = tf.layers.maxPooling2d({ poolSize: 2, name: `seg_pool${l + 1}` }).apply(x) as tf.SymbolicTensor;
  }
  x = block(x, filters[levels - 1], 'seg_bottom');
  for (let l = levels - 2; l >= 0; l--) {
    x = tf.layers.upSampling2d({ size: [2, 2], name: `seg_up${l + 1}` }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.concatenate({ name: `seg_skip${l + 1}` }).apply([x, skips[l]]) as tf.SymbolicTensor;
    x = block(x, filters[l], `seg_dec${l + 1}`);
  }
  const out = tf.layers
    .conv2d({
      filters: 1,
      kernelSize: 1,
      activation: 'sigmoid',
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed * 1000 + n++ }),
      name: 'seg_output',
    })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: 'lung_segmenter' });
}

/** The square input side a segmenter model expects. */
export function segmenterInputSize(model: tf.LayersModel): number {
  const shape = model.inputs[0].shape;
  const size = shape[1];
  if (typeof size !== 'number' || size !== shape[2] || shape[3] !== 1) {
    throw new Error(`not a segmenter: input shape ${JSON.stringify(shape)} (expected [null, s, s, 1])`);
  }
  return size;
}

/** Grey image -> segmenter input: whole image resized to size x size, x/127.5 - 1, one channel. */
export function segmenterInput(img: GreyImage, size: number): Float32Array {
  const r = img.width === size && img.height === size ? img : resizeGrey(img, size, size);
  const out = new Float32Array(size * size);
  for (let i = 0; i < out.length; i++) out[i] = r.data[i] / 127.5 - 1;
  return out;
}

/** Lung probabilities at the segmenter's resolution, one Float32Array (size*size) per image. */
export function predictLungProbabilities(model: tf.LayersModel, images: GreyImage[], batchSize = 16): Float32Array[] {
  const size = segmenterInputSize(model);
  const per = size * size;
  const out: Float32Array[] = [];
  for (let start = 0; start < images.length; start += batchSize) {
    const chunk = images.slice(start, start + batchSize);
    const input = new Float32Array(chunk.length * per);
    chunk.forEach((img, i) => input.set(segmenterInput(img, size), i * per));
    const y = tf.tidy(() => model.predict(tf.tensor4d(input, [chunk.length, size, size, 1])) as tf.Tensor);
    const data = y.dataSync() as Float32Array;
    y.dispose();
    chunk.forEach((_, i) => out.push(data.slice(i * per, (i + 1) * per)));
  }
  return out;
}

/**
 * Lung masks (0 or 255, at each image's own size) for a batch of grey images: the segmenter's probabilities,
 * refined at its resolution (refineLungMask), then resized to the image with smooth edges.
 */
export function segmentLungsBatch(
  model: tf.LayersModel,
  images: GreyImage[],
  refinement: Partial<MaskRefinement> = {},
): GreyImage[] {
  const size = segmenterInputSize(model);
  return predictLungProbabilities(model, images).map((p, i) => {
    const small = refineLungMask({ width: size, height: size, data: p }, refinement);
    return resizeMask(small, images[i].width, images[i].height);
  });
}

/** The lung mask of one grey image (0 or 255, at the image's size). */
export function segmentLungs(model: tf.LayersModel, grey: GreyImage, refinement: Partial<MaskRefinement> = {}): GreyImage {
  return segmentLungsBatch(model, [grey], refinement)[0];
}

/** Resizes a binary mask (bilinear / area, then > 127), so upscaled borders are smooth rather than blocky. */
export function resizeMask(mask: GreyImage, width: number, height: number): GreyImage {
  const r = mask.width === width && mask.height === height ? mask : resizeGrey(mask, width, height);
  const out = new Uint8Array(width * height);
  for (let i = 0; i < out.length; i++) out[i] = r.data[i] > 127 ? 255 : 0;
  return { width, height, data: out };
}

/**
 * Probability map (values in [0, 1]) or 8-bit mask (values 0..255, pass threshold on that scale) -> clean lung
 * mask (0 or 255): threshold, keep the largest components (two lungs) dropping specks, fill holes, dilate slightly.
 */
export function refineLungMask(
  prob: { width: number; height: number; data: ArrayLike<number> },
  refinement: Partial<MaskRefinement> = {},
): GreyImage {
  const o = { ...DEFAULT_REFINEMENT, ...refinement };
  const { width, height } = prob;
  const n = width * height;
  let bin: Uint8Array = new Uint8Array(n);
  for (let i = 0; i < n; i++) bin[i] = prob.data[i] > o.threshold ? 1 : 0;
  if (o.keepComponents > 0) bin = keepLargestComponents(bin, width, height, o.keepComponents, o.minComponentFraction);
  if (o.fillHoles) bin = fillHoles(bin, width, height);
  const radius = Math.round(o.dilation * width);
  if (radius > 0) bin = dilate(bin, width, height, radius);
  for (let i = 0; i < n; i++) bin[i] = bin[i] ? 255 : 0;
  return { width, height, data: bin };
}

/** Connected components (8-connectivity) of a 0/1 mask: a label per pixel (0 = background) and their sizes. */
export function labelComponents(bin: Uint8Array, width: number, height: number): { labels: Int32Array; sizes: number[] } {
  const labels = new Int32Array(width * height);
  const sizes: number[] = [0];
  const stack: number[] = [];
  for (let start = 0; start < bin.length; start++) {
    if (!bin[start] || labels[start]) continue;
    const label = sizes.length;
    let size = 0;
    labels[start] = label;
    stack.push(start);
    while (stack.length) {
      const p = stack.pop()!;
      size++;
      const x = p % width;
      const y = (p - x) / width;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= width) continue;
          const q = yy * width + xx;
          if (bin[q] && !labels[q]) {
            labels[q] = label;
            stack.push(q);
          }
        }
      }
    }
    sizes.push(size);
  }
  return { labels, sizes };
}

/** Keeps the `keep` largest components; those under `minFraction` of the largest go too. */
export function keepLargestComponents(bin: Uint8Array, width: number, height: number, keep: number, minFraction = 0): Uint8Array {
  const { labels, sizes } = labelComponents(bin, width, height);
  const order = sizes
    .map((s, l) => ({ s, l }))
    .slice(1)
    .sort((a, b) => b.s - a.s || a.l - b.l);
  const largest = order[0]?.s ?? 0;
  const kept = new Set(order.slice(0, keep).filter((c) => c.s >= minFraction * largest).map((c) => c.l));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = kept.has(labels[i]) ? 1 : 0;
  return out;
}

/** Sets background pixels that cannot reach the image border (4-connectivity) to foreground. */
export function fillHoles(bin: Uint8Array, width: number, height: number): Uint8Array {
  const outside = new Uint8Array(bin.length);
  const stack: number[] = [];
  const seed = (p: number) => {
    if (!bin[p] && !outside[p]) {
      outside[p] = 1;
      stack.push(p);
    }
  };
  for (let x = 0; x < width; x++) {
    seed(x);
    seed((height - 1) * width + x);
  }
  for (let y = 0; y < height; y++) {
    seed(y * width);
    seed(y * width + width - 1);
  }
  while (stack.length) {
    const p = stack.pop()!;
    const x = p % width;
    if (x > 0) seed(p - 1);
    if (x < width - 1) seed(p + 1);
    if (p >= width) seed(p - width);
    if (p < bin.length - width) seed(p + width);
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = outside[i] ? 0 : 1;
  return out;
}

/** Binary dilation by a (2r+1)-wide square, as two separable running maxima. */
export function dilate(bin: Uint8Array, width: number, height: number, radius: number): Uint8Array {
  const rows = new Uint8Array(bin.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let v = 0;
      for (let k = Math.max(0, x - radius); k <= Math.min(width - 1, x + radius) && !v; k++) v = bin[y * width + k];
      rows[y * width + x] = v;
    }
  }
  const out = new Uint8Array(bin.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let v = 0;
      for (let k = Math.max(0, y - radius); k <= Math.min(height - 1, y + radius) && !v; k++) v = rows[k * width + x];
      out[y * width + x] = v;
    }
  }
  return out;
}

/**
 * The masked variant's input: pixels outside the lungs blanked to 0. The mask (any size; > 127 is lung) is
 * resized to the image with smooth edges first.
 */
export function lungMaskedImage(grey: GreyImage, mask: GreyImage): GreyImage {
  const m = resizeMask(mask, grey.width, grey.height);
  const out = new Uint8Array(grey.data.length);
  for (let i = 0; i < out.length; i++) out[i] = m.data[i] ? grey.data[i] : 0;
  return { width: grey.width, height: grey.height, data: out };
}

/** Overlap of two masks of the same size (> 127 is foreground). */
export interface Overlap {
  dice: number;
  iou: number;
}

/** Dice = 2|A∩B| / (|A| + |B|) and IoU = |A∩B| / |A∪B|; both 1 when both masks are empty. */
export function maskOverlap(a: GreyImage, b: GreyImage): Overlap {
  if (a.width !== b.width || a.height !== b.height) {
    throw new Error(`masks differ in size: ${a.width}x${a.height} vs ${b.width}x${b.height}`);
  }
  let inter = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.data.length; i++) {
    const pa = a.data[i] > 127;
    const pb = b.data[i] > 127;
    if (pa) na++;
    if (pb) nb++;
    if (pa && pb) inter++;
  }
  const union = na + nb - inter;
  if (union === 0) return { dice: 1, iou: 1 };
  return { dice: (2 * inter) / (na + nb), iou: inter / union };
}

export function diceScore(a: GreyImage, b: GreyImage): number {
  return maskOverlap(a, b).dice;
}

export function iouScore(a: GreyImage, b: GreyImage): number {
  return maskOverlap(a, b).iou;
}

/**
 * Fraction of a non-negative map's mass (e.g. a Grad-CAM map at its layer's resolution) that falls inside the
 * mask. The map is upsampled bilinearly (as it is drawn) to the mask at `side` x `side`, so a coarse 7x7 map is
 * not judged by its blocky cells.
 */
export function massInsideMask(map: Float32Array, mapWidth: number, mapHeight: number, mask: GreyImage, side = 224): number {
  const up = upsampleCam(map, mapWidth, mapHeight, side, side);
  const m = resizeMask(mask, side, side);
  let inside = 0;
  let total = 0;
  for (let i = 0; i < up.length; i++) {
    const v = Math.max(0, up[i]);
    total += v;
    if (m.data[i]) inside += v;
  }
  return total > 0 ? inside / total : NaN;
}
