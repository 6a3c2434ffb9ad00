// Decoded images of a split, held as 8-bit grey at the network's input size (a 224 px image is 50 kB, so the
// 3,000-image subset fits in ~150 MB), turned into normalised float batches only when a batch is needed.
import * as tf from '@tensorflow/tfjs';
import { readGreyImage } from '../data/decode.js';
import type { Sample } from '../data/dataset.js';
import { greyToInput, resizeGrey, type GreyImage, type InputSpec } from '../image/pixels.js';
import type { BundleModel, InputOptions, Prediction } from '../model/inference.js';

export interface SkippedFile {
  path: string;
  reason: string;
}

export class ImageSet {
  constructor(
    readonly samples: Sample[],
    readonly images: GreyImage[],
    readonly spec: InputSpec,
  ) {}

  get size(): number {
    return this.samples.length;
  }

  get labels(): number[] {
    return this.samples.map((s) => s.label);
  }

  /** Normalised input batch [n, size, size, 3] for the given indices. */
  batch(indices: number[]): tf.Tensor4D {
    const { size } = this.spec;
    const out = new Float32Array(indices.length * size * size * 3);
    indices.forEach((idx, i) => out.set(greyToInput(this.images[idx], this.spec), i * size * size * 3));
    return tf.tensor4d(out, [indices.length, size, size, 3]);
  }

  /** Consecutive batches over the whole set, in order. */
  *batches(batchSize: number): Generator<tf.Tensor4D> {
    for (let i = 0; i < this.size; i += batchSize) {
      const idx: number[] = [];
      for (let j = i; j < Math.min(this.size, i + batchSize); j++) idx.push(j);
      yield this.batch(idx);
    }
  }

  subset(indices: number[]): ImageSet {
    return new ImageSet(
      indices.map((i) => this.samples[i]),
      indices.map((i) => this.images[i]),
      this.spec,
    );
  }
}

/**
 * Decodes every sample; files that cannot be read are skipped and reported, never fatal, so one broken image
 * in a dataset of thousands does not stop a run.
 */
export async function loadImageSet(
  samples: Sample[],
  spec: InputSpec,
  onProgress?: (done: number, total: number) => void,
): Promise<{ set: ImageSet; skipped: SkippedFile[] }> {
  const kept: Sample[] = [];
  const images: GreyImage[] = [];
  const skipped: SkippedFile[] = [];
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i];
    try {
      const grey = await readGreyImage(s.path);
      images.push(resizeGrey(grey, spec.size, spec.size));
      kept.push(s);
    } catch (err) {
      skipped.push({ path: s.path, reason: (err as Error).message });
    }
    onProgress?.(i + 1, samples.length);
  }
  return { set: new ImageSet(kept, images, spec), skipped };
}

/** Runs a model over a set in batches and returns each output as rows of floats. */
export function predictRows(model: tf.LayersModel, set: ImageSet, batchSize = 32): Float32Array[][] {
  const nOut = model.outputs.length;
  const rows: Float32Array[][] = Array.from({ length: nOut }, () => []);
  for (const x of set.batches(batchSize)) {
    const ys = tf.tidy(() => {
      const y = model.predict(x);
      return Array.isArray(y) ? y : [y];
    });
    ys.forEach((y, o) => {
      const [n, d] = [y.shape[0], y.size / y.shape[0]];
      const data = y.dataSync() as Float32Array;
      for (let r = 0; r < n; r++) rows[o].push(data.slice(r * d, (r + 1) * d));
    });
    tf.dispose([x, ...ys]);
  }
  return rows;
}

/** A bundle's predictions for every image of a set, in batches (as the viewer classifies them, one at a time). */
export function classifySet(bm: BundleModel, set: ImageSet, opts: InputOptions = {}, batchSize = 32): Prediction[] {
  const out: Prediction[] = [];
  for (let i = 0; i < set.size; i += batchSize) out.push(...bm.classifyBatch(set.images.slice(i, i + batchSize), opts));
  return out;
}
