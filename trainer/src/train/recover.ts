// The recovery fine-tune after an approximate head pruning (train/head-prune.ts): the pruned model's head alone
// (fc1 on), from its pruned weights, on the training split with the frozen backbone's activations cached, the
// epoch of best validation accuracy kept, as the first fine-tune does. Short: the head starts from weights that
// already classify, and it only has to absorb the folded units' spread.
import type * as tf from '@tensorflow/tfjs';
import { rm } from 'node:fs/promises';
import { HEAD_LAYERS } from '../model/backbones.js';
import { fineTune } from './finetune.js';
import type { ImageSet } from './images.js';
import type { PipelineOptions } from './options.js';

export const RECOVERY_EPOCHS = 10;

/**
 * `teacherLogits` (the unpruned network's logits on the training split, in its order): fit them instead of the
 * labels. The first fine-tune fits the training split at or near 100 %, so after pruning the labels say little
 * more than "stay right", while the teacher's logits say how sure it was of each image.
 */
export async function recoverHead(
  model: tf.LayersModel,
  sets: { train: ImageSet; val: ImageSet },
  o: Pick<PipelineOptions, 'batchSize' | 'learningRate' | 'seed'>,
  scratchDir: string,
  { epochs = RECOVERY_EPOCHS, teacherLogits }: { epochs?: number; teacherLogits?: Float32Array[] } = {},
): Promise<{ valAccuracy: number; epochs: number }> {
  // A fresh run each time: the checkpoints of one candidate must not resume another.
  await rm(scratchDir, { recursive: true, force: true });
  try {
    const r = await fineTune(
      model,
      {
        train: { x: (idx) => sets.train.batch(idx), y: Array.from(sets.train.labels), teacherLogits },
        val: { x: (idx) => sets.val.batch(idx), y: Array.from(sets.val.labels) },
      },
      {
        epochs,
        batchSize: o.batchSize,
        learningRate: o.learningRate,
        seed: o.seed,
        trainableFrom: HEAD_LAYERS.first,
        freezeBackbone: true,
        checkpointDir: scratchDir,
        resume: false,
        logitsLayer: HEAD_LAYERS.logits,
      },
    );
    const best = r.history.find((h) => h.epoch === r.bestEpoch);
    return { valAccuracy: best?.valAccuracy ?? Math.max(...r.history.map((h) => h.valAccuracy)), epochs: r.bestEpoch };
  } finally {
    await rm(scratchDir, { recursive: true, force: true });
  }
}
