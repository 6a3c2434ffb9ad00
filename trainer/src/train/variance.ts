// Per-channel activation statistics over a data set, in one streaming pass: count, mean and M2 (sum of squared
// deviations) per channel, merged batch by batch with Chan's parallel formula, all in float64. Within a batch the
// mean is a plain float64 sum divided by n, so a channel whose float32 values are bitwise equal gets exactly that
// value as mean and exactly 0 as variance: the zero-variance test stays exact.
import * as tf from '@tensorflow/tfjs';
import { buildDependencyGraph, statTensorNames } from '../model/dependency.js';
import { functionalModel } from '../model/graph.js';

export interface ChannelMoments {
  /** Values seen per channel (samples, times height x width for 4-D tensors). */
  count: number;
  mean: Float64Array;
  m2: Float64Array;
}

/** Moments per tensor, keyed by the name of the layer that outputs it. */
export interface UnitStats {
  samples: number;
  tensors: Record<string, ChannelMoments>;
}

export interface MeasureOptions {
  /** Dispose each input batch once it has been used (for generators that hand over ownership). */
  disposeBatches?: boolean;
  /** With the default tensor list: also measure these layers (the planner's `protect`). */
  protect?: string[];
}

/** Population variance per channel (M2 / count). */
export function channelVariance(m: ChannelMoments): Float64Array {
  const v = new Float64Array(m.mean.length);
  for (let k = 0; k < v.length; k++) v[k] = m.count > 0 ? m.m2[k] / m.count : NaN;
  return v;
}

/** Moments of a row-major [rows, channels] block of values. */
export function blockMoments(values: ArrayLike<number>, channels: number): ChannelMoments {
  const rows = values.length / channels;
  if (!Number.isInteger(rows)) throw new Error(`${values.length} values do not split into ${channels} channels`);
  const mean = new Float64Array(channels);
  const m2 = new Float64Array(channels);
  for (let r = 0, i = 0; r < rows; r++) for (let k = 0; k < channels; k++, i++) mean[k] += values[i];
  for (let k = 0; k < channels; k++) mean[k] /= rows;
  for (let r = 0, i = 0; r < rows; r++) {
    for (let k = 0; k < channels; k++, i++) {
      const d = values[i] - mean[k];
      m2[k] += d * d;
    }
  }
  return { count: rows, mean, m2 };
}

/** Chan et al.'s merge of two sets of moments; `a` is updated in place and returned. */
export function mergeMoments(a: ChannelMoments, b: ChannelMoments): ChannelMoments {
  if (b.count === 0) return a;
  if (a.count === 0) {
    a.mean.set(b.mean);
    a.m2.set(b.m2);
    a.count = b.count;
    return a;
  }
  const n = a.count + b.count;
  const wb = b.count / n;
  for (let k = 0; k < a.mean.length; k++) {
    const delta = b.mean[k] - a.mean[k];
    a.m2[k] = a.m2[k] + b.m2[k] + delta * delta * a.count * wb;
    // delta == 0 leaves the mean bitwise unchanged, which keeps constant channels exact.
    if (delta !== 0) a.mean[k] = a.mean[k] + delta * wb;
  }
  a.count = n;
  return a;
}

/**
 * Streams `batches` through `model` once and returns per-channel moments of the outputs of the named layers
 * (default: every tensor the zero-variance planner reads).
 */
export async function measureUnitStats(
  model: tf.LayersModel,
  batches: AsyncIterable<tf.Tensor4D> | Iterable<tf.Tensor4D>,
  tensorNames?: string[],
  options: MeasureOptions = {},
): Promise<UnitStats> {
  const fm = functionalModel(model);
  const names = tensorNames ?? statTensorNames(buildDependencyGraph(fm), options.protect);
  if (names.length === 0) throw new Error('no tensors to measure');
  const outputs = names.map((n) => fm.getLayer(n).output as tf.SymbolicTensor);
  const probe = tf.model({ inputs: fm.inputs, outputs });
  const tensors: Record<string, ChannelMoments> = {};
  for (const [i, n] of names.entries()) {
    const c = outputs[i].shape[outputs[i].shape.length - 1];
    if (typeof c !== 'number') throw new Error(`tensor '${n}' has an unknown channel count`);
    tensors[n] = { count: 0, mean: new Float64Array(c), m2: new Float64Array(c) };
  }
  let samples = 0;
  for await (const batch of batches) {
    const out = probe.predict(batch);
    const list = Array.isArray(out) ? out : [out];
    samples += batch.shape[0];
    if (options.disposeBatches) batch.dispose();
    try {
      for (const [i, n] of names.entries()) {
        const t = list[i];
        const values = (await t.data()) as Float32Array;
        mergeMoments(tensors[n], blockMoments(values, tensors[n].mean.length));
      }
    } finally {
      tf.dispose(list);
    }
  }
  if (samples === 0) throw new Error('no batches to measure');
  return { samples, tensors };
}
