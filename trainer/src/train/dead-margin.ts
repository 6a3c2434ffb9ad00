// How dead is a dead ReLU unit? A unit whose ReLU output is 0 on every training image has zero variance, but if
// its pre-activation only just stays below 0 it fires on some new image, and removing it then changes the model
// there. Its pre-activation over the training images tells: the margin of the largest value below 0, in standard
// deviations of the pre-activation. Covers Dense layers with a fused ReLU and ReLU / Activation('relu'|'relu6')
// layers (after a conv and its BatchNorm, as in MobileNetV2), whose pre-activation is their input.
import * as tf from '@tensorflow/tfjs';
import type { PlannedUnit } from '../model/surgery.js';

export interface PreActivationStats {
  max: number;
  mean: number;
  sd: number;
  /** -max / sd: how many standard deviations the largest pre-activation stays below 0. */
  margin: number;
}

export interface DeadUnit {
  /** The ReLU-family layer whose output is 0. */
  layer: string;
  unit: number;
}

type ReluKind = 'dense' | 'activation';

/** Layers whose output is a ReLU of something: Dense with a fused ReLU, ReLU layers, Activation relu / relu6. */
function reluLayers(model: tf.LayersModel): Map<string, ReluKind> {
  const out = new Map<string, ReluKind>();
  for (const l of model.layers) {
    const cfg = l.getConfig() as { activation?: string };
    const cls = l.getClassName();
    if (cls === 'Dense' && cfg.activation === 'relu') out.set(l.name, 'dense');
    else if (cls === 'ReLU' || (cls === 'Activation' && (cfg.activation === 'relu' || cfg.activation === 'relu6'))) {
      out.set(l.name, 'activation');
    }
  }
  return out;
}

/** The dead ReLU units a plan removes: members of ReLU-family layers whose removed constant is 0. */
export function deadReluUnits(model: tf.LayersModel, units: PlannedUnit[]): DeadUnit[] {
  const relu = reluLayers(model);
  const out: DeadUnit[] = [];
  for (const u of units) {
    for (const m of u.members) {
      if (!relu.has(m.tensor)) continue;
      // Its own removed constant, or (when only a pass-through after it is read, e.g. pooling) all of them.
      const own = u.constants.find((k) => k.tensor === m.tensor && k.channel === m.channel);
      const dead = own ? own.value === 0 : u.constants.length > 0 && u.constants.every((k) => k.value === 0);
      if (dead) out.push({ layer: m.tensor, unit: m.channel });
    }
  }
  return out;
}

/**
 * Pre-activation statistics over input batches (the model's inputs) for the given dead units, keyed
 * `layer:unit`; over samples (and height x width for conv tensors). The batches are disposed.
 */
export function preActivationStats(model: tf.LayersModel, batches: Iterable<tf.Tensor>, units: DeadUnit[]): Map<string, PreActivationStats> {
  const relu = reluLayers(model);
  const layers = [...new Set(units.map((u) => u.layer))];
  const stats = new Map<string, PreActivationStats>();
  if (layers.length === 0) return stats;
  const channels = layers.map((n) => units.filter((u) => u.layer === n).map((u) => u.unit));
  const probe = tf.model({ inputs: model.inputs, outputs: layers.map((n) => model.getLayer(n).input as tf.SymbolicTensor) });
  // Dense: the pre-activation of the chosen neurons is x . W[:, units] + b.
  const dense = layers.map((n, i) => {
    if (relu.get(n) !== 'dense') return null;
    const [kernel, bias] = model.getLayer(n).getWeights();
    const idx = tf.tensor1d(channels[i], 'int32');
    const w = tf.gather(kernel!, idx, 1);
    const b = bias ? tf.gather(bias, idx) : tf.zeros([channels[i].length]);
    idx.dispose();
    return { w, b };
  });
  const acc = layers.map((_, i) => ({
    max: new Float64Array(channels[i].length).fill(-Infinity),
    sum: new Float64Array(channels[i].length),
    sumSq: new Float64Array(channels[i].length),
    n: 0,
  }));
  for (const x of batches) {
    const out = probe.predict(x);
    const list = Array.isArray(out) ? out : [out];
    list.forEach((t, i) => {
      const k = channels[i].length;
      const z = tf.tidy(() => {
        const d = dense[i];
        if (d) return tf.add(tf.matMul(t as tf.Tensor2D, d.w as tf.Tensor2D), d.b);
        const picked = tf.gather(t, tf.tensor1d(channels[i], 'int32'), t.rank - 1);
        return tf.reshape(picked, [-1, k]);
      });
      const data = z.dataSync();
      const a = acc[i];
      for (let r = 0; r < data.length; r += k) {
        for (let c = 0; c < k; c++) {
          const v = data[r + c];
          if (v > a.max[c]) a.max[c] = v;
          a.sum[c] += v;
          a.sumSq[c] += v * v;
        }
      }
      a.n += data.length / k;
      z.dispose();
    });
    tf.dispose([x, ...list]);
  }
  for (const d of dense) if (d) tf.dispose([d.w, d.b]);
  layers.forEach((name, i) => {
    const a = acc[i];
    channels[i].forEach((unit, c) => {
      const mean = a.sum[c] / a.n;
      const sd = Math.sqrt(Math.max(0, a.sumSq[c] / a.n - mean * mean));
      const max = a.max[c];
      stats.set(`${name}:${unit}`, { max, mean, sd, margin: sd > 0 ? -max / sd : max < 0 ? Infinity : 0 });
    });
  });
  return stats;
}
