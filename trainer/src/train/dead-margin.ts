// How dead is a dead ReLU unit? A Dense neuron whose ReLU output is 0 on every training image has zero variance,
// but if its pre-activation only just stays below 0 it fires on some new image, and removing it then changes the
// model there. Its pre-activation over the training images tells: the margin of the largest value below 0, in
// standard deviations of the pre-activation.
import * as tf from '@tensorflow/tfjs';
import type { PlannedUnit } from '../model/surgery.js';

export interface PreActivationStats {
  max: number;
  mean: number;
  sd: number;
  /** -max / sd: how many standard deviations the largest pre-activation stays below 0. */
  margin: number;
}

/** Dense ReLU layers of the model, by name. */
function denseReluLayers(model: tf.LayersModel): Map<string, tf.layers.Layer> {
  const out = new Map<string, tf.layers.Layer>();
  for (const l of model.layers) {
    const cfg = l.getConfig() as { activation?: string };
    if (l.getClassName() === 'Dense' && cfg.activation === 'relu') out.set(l.name, l);
  }
  return out;
}

/** The dead Dense ReLU neurons a plan removes: (layer, unit) pairs whose removed constant is 0. */
export function deadDenseUnits(model: tf.LayersModel, units: PlannedUnit[]): { layer: string; unit: number }[] {
  const dense = denseReluLayers(model);
  const out: { layer: string; unit: number }[] = [];
  for (const u of units) {
    for (const m of u.members) {
      if (!dense.has(m.tensor)) continue;
      const c = u.constants.find((k) => k.tensor === m.tensor && k.channel === m.channel);
      if (c && c.value === 0) out.push({ layer: m.tensor, unit: m.channel });
    }
  }
  return out;
}

/** Pre-activation statistics over input batches (the model's inputs) for the given Dense ReLU neurons, keyed
 * `layer:unit`. The batches are disposed. */
export function preActivationStats(
  model: tf.LayersModel,
  batches: Iterable<tf.Tensor>,
  units: { layer: string; unit: number }[],
): Map<string, PreActivationStats> {
  const stats = new Map<string, PreActivationStats>();
  const layers = [...new Set(units.map((u) => u.layer))];
  if (layers.length === 0) return stats;
  const inputs = layers.map((n) => model.getLayer(n).input as tf.SymbolicTensor);
  const probe = tf.model({ inputs: model.inputs, outputs: inputs });
  const rows: Float32Array[][] = layers.map(() => []);
  for (const x of batches) {
    const out = probe.predict(x);
    const list = Array.isArray(out) ? out : [out];
    list.forEach((t, li) => {
      const d = t.shape[1]!;
      const data = t.dataSync() as Float32Array;
      for (let r = 0; r < t.shape[0]!; r++) rows[li]!.push(data.slice(r * d, (r + 1) * d));
    });
    tf.dispose([x, ...list]);
  }
  layers.forEach((name, li) => {
    const [kernel, bias] = model.getLayer(name).getWeights();
    const W = kernel!.arraySync() as number[][];
    const b = bias ? (bias.arraySync() as number[]) : undefined;
    for (const { unit } of units.filter((u) => u.layer === name)) {
      let max = -Infinity;
      let sum = 0;
      let sumSq = 0;
      for (const x of rows[li]!) {
        let z = b ? b[unit]! : 0;
        for (let j = 0; j < x.length; j++) z += x[j]! * W[j]![unit]!;
        max = Math.max(max, z);
        sum += z;
        sumSq += z * z;
      }
      const n = rows[li]!.length;
      const mean = sum / n;
      const sd = Math.sqrt(Math.max(0, sumSq / n - mean * mean));
      stats.set(`${name}:${unit}`, { max, mean, sd, margin: sd > 0 ? -max / sd : max < 0 ? Infinity : 0 });
    }
  });
  return stats;
}
