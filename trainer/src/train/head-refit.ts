// The dense head's least-squares refit after an approximate pruning (stage two of `--variance-threshold auto`).
// Folding a removed unit's mean into its consumers is the best a constant can do for it; a near-constant unit
// that still moves is better stood in for by the units kept beside it. So each dense layer in turn (fc1, fc2,
// logits) is refitted so that, on the training images, its pre-activations reproduce the unpruned network's for
// the units it keeps, given the pruned network's own inputs (the earlier layers already refitted): a ridge
// regression toward the folded weights, as channel-pruning methods reconstruct the next layer's response. What
// the classifier consumes is the penultimate features, not only the logits, and this keeps those too.
// The ridge strength is picked per layer on the validation split, against the folded weights themselves, so
// a refit that does not reproduce the unpruned network better on held-out images is not taken.
import * as tf from '@tensorflow/tfjs';
import { HEAD_LAYERS } from '../model/backbones.js';
import { ridgeToward } from '../stats/ridge.js';
import { predictRows, type ImageSet } from './images.js';

/** The dense layers refitted, in order: each one's inputs are the previous one's (refitted) outputs. */
export const REFIT_LAYERS: readonly string[] = [HEAD_LAYERS.first, HEAD_LAYERS.features, HEAD_LAYERS.logits];

/** Ridge strengths tried, as fractions of the layer's mean input variance times the number of images. */
export const RIDGE_GRID: readonly number[] = [1e-3, 1e-2, 1e-1, 1];

/** Rows x columns, row-major. */
interface Matrix {
  data: Float32Array;
  rows: number;
  cols: number;
}

/** The unpruned network's dense pre-activations on the training and validation splits, per refitted layer. */
export interface RefitReference {
  train: Record<string, Matrix>;
  val: Record<string, Matrix>;
}

export interface RefitLayer {
  layer: string;
  /** The ridge strength taken, or null when the folded weights reproduced the validation split best. */
  ridge: number | null;
  /** Validation error relative to the unpruned pre-activations' variance: folded weights, then refitted. */
  valErrorFolded: number;
  valError: number;
}

const asTensor = (m: Matrix): tf.Tensor2D => tf.tensor2d(m.data, [m.rows, m.cols]);
const asMatrix = (t: tf.Tensor2D): Matrix => ({ data: t.dataSync() as Float32Array, rows: t.shape[0], cols: t.shape[1] });

/** A set's head inputs (fc1's input: the pooled backbone features), one tensor row per image. */
function headInputs(model: tf.LayersModel, set: ImageSet): tf.Tensor2D {
  const view = tf.model({ inputs: model.inputs, outputs: model.getLayer(REFIT_LAYERS[0]).input as tf.SymbolicTensor });
  const rows = predictRows(view, set)[0];
  const cols = rows[0]?.length ?? 0;
  const data = new Float32Array(rows.length * cols);
  rows.forEach((r, i) => data.set(r, i * cols));
  return tf.tensor2d(data, [rows.length, cols]);
}

function dense(model: tf.LayersModel, name: string): { W: tf.Tensor2D; b: tf.Tensor1D; relu: boolean } {
  const layer = model.getLayer(name);
  const [W, b] = layer.getWeights() as [tf.Tensor2D, tf.Tensor1D];
  const activation = (layer.getConfig() as { activation?: string }).activation ?? 'linear';
  if (activation !== 'relu' && activation !== 'linear') throw new Error(`head refit: ${name} has activation ${activation}`);
  return { W, b, relu: activation === 'relu' };
}

/** Each refitted layer's pre-activations for input rows X, through the model's own weights. */
function preActivations(model: tf.LayersModel, X: tf.Tensor2D): Record<string, Matrix> {
  const out: Record<string, Matrix> = {};
  tf.tidy(() => {
    let x = X;
    for (const name of REFIT_LAYERS) {
      const { W, b, relu } = dense(model, name);
      const z = x.matMul(W).add(b) as tf.Tensor2D;
      out[name] = asMatrix(z);
      x = relu ? z.relu() : z;
    }
  });
  return out;
}

/** The unpruned network's reference pre-activations; computed once per prune step for every candidate. */
export function refitReference(original: tf.LayersModel, sets: { train: ImageSet; val: ImageSet }): RefitReference {
  const of = (set: ImageSet) => {
    const X = headInputs(original, set);
    try {
      return preActivations(original, X);
    } finally {
      X.dispose();
    }
  };
  return { train: of(sets.train), val: of(sets.val) };
}

/** The columns `keep` of a reference matrix, as a tensor. */
function keptColumns(m: Matrix, keep: readonly number[]): tf.Tensor2D {
  return tf.tidy(() => tf.gather(asTensor(m), keep, 1) as tf.Tensor2D);
}

const toF64 = (t: tf.Tensor): Float64Array => Float64Array.from(t.dataSync());

/**
 * Refits the pruned model's dense head in place. `removed` is the plan's removed units per layer output (the
 * pruning plan's removedChannels); the logits lose none.
 */
export function refitHead(
  pruned: tf.LayersModel,
  reference: RefitReference,
  sets: { train: ImageSet; val: ImageSet },
  removed: Record<string, readonly number[]>,
  grid: readonly number[] = RIDGE_GRID,
): RefitLayer[] {
  const report: RefitLayer[] = [];
  let Xtr = headInputs(pruned, sets.train);
  let Xva = headInputs(pruned, sets.val);
  try {
    for (const name of REFIT_LAYERS) {
      const drop = new Set(removed[name] ?? []);
      const keep = [...Array(reference.train[name].cols).keys()].filter((u) => !drop.has(u));
      const { W: W0, b: b0, relu } = dense(pruned, name);
      const [m, p] = W0.shape;
      if (keep.length !== p) throw new Error(`head refit: ${name} keeps ${p} units, the plan ${keep.length}`);
      const chosen = { ridge: null as number | null, error: 0, folded: 0 };
      const { W, b } = tf.tidy(() => {
        const Ztr = keptColumns(reference.train[name], keep);
        const Zva = keptColumns(reference.val[name], keep);
        const xm = Xtr.mean(0);
        const zm = Ztr.mean(0);
        const Xc = Xtr.sub(xm);
        const G = toF64(Xc.matMul(Xc, true, false));
        const C = toF64(Xc.matMul(Ztr.sub(zm), true, false));
        const W0d = toF64(W0);
        let trace = 0;
        for (let i = 0; i < m; i++) trace += G[i * m + i];
        const zVar = Zva.sub(Zva.mean(0)).square().sum().dataSync()[0];
        const errorOf = (W: tf.Tensor2D, b: tf.Tensor1D) => Xva.matMul(W).add(b).sub(Zva).square().sum().dataSync()[0] / Math.max(zVar, 1e-30);
        const folded = errorOf(W0, b0);
        let best = { ridge: null as number | null, W: W0, b: b0, error: folded };
        if (trace > 0) {
          for (const alpha of grid) {
            // The Gram matrix is summed in float32: at a tiny ridge, inputs that are (nearly) linearly dependent
            // can leave it indefinite. Such a strength is skipped, as one that did not help.
            let solved: Float64Array;
            try {
              solved = ridgeToward(G, C, W0d, m, p, (alpha * trace) / m);
            } catch {
              continue;
            }
            const W = tf.tensor2d(Float32Array.from(solved), [m, p]);
            const b = zm.sub(xm.reshape([1, m]).matMul(W).reshape([p])) as tf.Tensor1D;
            const error = errorOf(W, b);
            if (error < best.error) best = { ridge: alpha, W, b, error };
          }
        }
        Object.assign(chosen, { ridge: best.ridge, error: best.error, folded });
        return { W: best.W, b: best.b };
      });
      if (chosen.ridge !== null) pruned.getLayer(name).setWeights([W, b]);
      report.push({ layer: name, ridge: chosen.ridge, valErrorFolded: chosen.folded, valError: chosen.error });
      const next = (X: tf.Tensor2D): tf.Tensor2D => tf.tidy(() => {
        const z = X.matMul(W).add(b) as tf.Tensor2D;
        return relu ? (z.relu() as tf.Tensor2D) : z;
      });
      const [ntr, nva] = [next(Xtr), next(Xva)];
      // getWeights hands out the layer's own variables: only a refit's new tensors are ours to dispose.
      tf.dispose([Xtr, Xva, ...(chosen.ridge !== null ? [W, b] : [])]);
      [Xtr, Xva] = [ntr, nva];
    }
  } finally {
    tf.dispose([Xtr, Xva]);
  }
  return report;
}
