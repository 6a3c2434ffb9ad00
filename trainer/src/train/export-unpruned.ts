// The reference the compression is measured against (--export-unpruned), in the bundle format: the fine-tuned
// network cut at its features layer (fc2) with every unit (no surgery, no selection) and the deployed classifier's
// kind refitted on all its features. Benchmarks and the viewer bench load it beside the compressed bundle.
import type * as tf from '@tensorflow/tfjs';
import { readdir, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { writeBundle, type BundleManifestDraft } from '../io/bundle-fs.js';
import { HEAD_LAYERS } from '../model/backbones.js';
import { classifierFromJSON, classifierScoreFn, type ClassifierKind } from '../model/classifiers.js';
import type { BundleClassifier } from '../model/inference.js';
import type { WeightsDtype } from '../model/quantize.js';
import { pruneOutputUnits } from '../model/surgery.js';
import { evaluateScores } from '../stats/metrics.js';
import { fitClassifier } from './classifiers.js';
import { predictRows, type ImageSet } from './images.js';

export interface UnprunedExport {
  dir: string;
  params: number;
  accuracy: number;
  sizeBytes: number;
}

/** Bytes of every file under `dir`. */
export async function dirSize(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(resolve(e.parentPath, e.name))).size;
  }
  return total;
}

export async function exportUnpruned(
  finetuned: tf.LayersModel,
  sets: { train: ImageSet; test: ImageSet },
  o: { dir: string; draft: BundleManifestDraft; extraFiles: Record<string, Uint8Array>; kind: ClassifierKind; weightsDtype: WeightsDtype; fc2: number; seed: number; classes: string[]; positiveClass: string },
): Promise<UnprunedExport> {
  const { train, test } = sets;
  const all = [...Array(o.fc2).keys()];
  const reference = pruneOutputUnits(finetuned, HEAD_LAYERS.features, all);
  try {
    const [Xtr] = predictRows(reference, train);
    const [Xte] = predictRows(reference, test);
    const deployed = fitClassifier(o.kind, Xtr!, train.labels, { seed: o.seed, probability: true });
    const explainer = classifierScoreFn(deployed) ? undefined : fitClassifier('logistic', Xtr!, train.labels, { seed: o.seed });
    const metrics = evaluateScores(test.labels, classifierFromJSON(deployed).predictProba(Xte!), o.classes, o.positiveClass);
    const params = reference.countParams();
    await writeBundle(
      o.dir,
      {
        ...o.draft,
        name: `${o.draft.name}-unpruned`,
        features: { selected: all, total: o.fc2, protocol: o.draft.features.protocol },
        classifier: { deployed, explainer } satisfies BundleClassifier,
        pruning: { unpruned: true, paramsAfter: params },
        metrics: { compressed: metrics, finetuned: o.draft.metrics.finetuned, deployed: o.kind },
      },
      reference,
      o.extraFiles,
      { weightsDtype: o.weightsDtype },
    );
    return { dir: o.dir, params, accuracy: metrics.accuracy, sizeBytes: await dirSize(o.dir) };
  } finally {
    reference.dispose();
  }
}
