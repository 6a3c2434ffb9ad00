// Gradient accumulation over micro-batches: one optimizer update for a batch too large to hold in memory at
// once (the wasm heap is capped at 4 GB), equal to the update of the whole batch.
//
// With a loss that is a mean over samples, the whole batch's gradient is the size-weighted mean of the micro-
// batches' gradients. That holds whenever a sample's loss does not depend on the other samples in its batch: true
// for the fine-tuning here (BatchNormalization runs in inference mode), not for batch statistics.
import * as tf from '@tensorflow/tfjs';

export interface MicroBatch {
  /** Number of samples in the micro-batch (its weight in the mean). */
  size: number;
}

export interface AccumulatedGradients {
  /** The whole batch's loss: the size-weighted mean of the micro-batch losses. */
  loss: number;
  /** d loss / d vars[i], in the order of `vars`. Owned by the caller (dispose them). */
  grads: tf.Tensor[];
}

/**
 * Gradients of a mean loss over the union of `batches`, computed one micro-batch at a time. `lossFn(batch)` must
 * return the mean loss over that micro-batch (a regularization term may be included: the weights sum to 1, so it
 * counts once). Only one micro-batch's activations are alive at a time, plus one running sum per variable.
 */
export async function accumulatedGradients<B extends MicroBatch>(
  lossFn: (batch: B) => tf.Scalar,
  vars: tf.Variable[],
  batches: B[],
): Promise<AccumulatedGradients> {
  if (batches.length === 0) throw new Error('accumulatedGradients: no micro-batches');
  if (vars.length === 0) throw new Error('accumulatedGradients: no variables');
  const total = batches.reduce((s, b) => s + b.size, 0);
  if (!(total > 0) || batches.some((b) => !(b.size > 0))) throw new Error('accumulatedGradients: every micro-batch needs size > 0');
  let sums: tf.Tensor[] | null = null;
  let loss = 0;
  for (const batch of batches) {
    const w = batch.size / total;
    const { value, grads } = tf.variableGrads(() => lossFn(batch), vars);
    loss += w * (await value.data())[0]; // data(): WebGPU in Node cannot read synchronously
    value.dispose();
    const ordered = vars.map((v) => {
      const g = grads[v.name];
      if (!g) throw new Error(`accumulatedGradients: the loss does not depend on variable ${v.name}`);
      return g;
    });
    const next = tf.tidy(() => ordered.map((g, i) => (sums ? tf.add(sums[i], tf.mul(g, w)) : tf.mul(g, w))));
    tf.dispose(ordered);
    if (sums) tf.dispose(sums);
    sums = next;
  }
  return { loss, grads: sums! };
}

/** Splits `n` samples into consecutive [start, end) ranges of at most `size` samples. */
export function microBatchRanges(n: number, size: number): Array<[number, number]> {
  if (!(size >= 1)) throw new Error('micro-batch size must be >= 1');
  const out: Array<[number, number]> = [];
  for (let s = 0; s < n; s += size) out.push([s, Math.min(n, s + size)]);
  return out;
}

/** Applies gradients from accumulatedGradients with an optimizer (one update), then disposes them. */
export function applyAccumulated(optimizer: tf.Optimizer, vars: tf.Variable[], grads: tf.Tensor[]): void {
  optimizer.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: grads[i] })));
  tf.dispose(grads);
}
