// tfjs IOHandlers for the local file system (Node only). tfjs-node would provide `file://`, but it cannot be
// installed here, so the trainer reads and writes LayersModel folders (model.json + weight shards) itself.
import * as tf from '@tensorflow/tfjs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

function toArrayBuffer(buf: Buffer): ArrayBuffer {
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
}

/** Reads `dir/model.json` (or the given model.json path) and its weight shards. */
export function fsLoader(path: string): tf.io.IOHandler {
  const modelJson = path.endsWith('.json') ? path : join(path, 'model.json');
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      const json = JSON.parse(await readFile(modelJson, 'utf8')) as tf.io.ModelJSON;
      return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const specs = manifest.flatMap((group) => group.weights);
        const paths = manifest.flatMap((group) => group.paths);
        const shards = await Promise.all(paths.map((p) => readFile(join(dirname(modelJson), p))));
        return [specs, toArrayBuffer(Buffer.concat(shards))];
      });
    },
  };
}

/** Writes `dir/model.json` and a single `dir/weights.bin`. */
export function fsSaver(dir: string): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      await mkdir(dir, { recursive: true });
      const weightData = tf.io.CompositeArrayBuffer.join(artifacts.weightData as ArrayBuffer | ArrayBuffer[]);
      const json: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology as object,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
      };
      await writeFile(join(dir, 'weights.bin'), Buffer.from(weightData));
      await writeFile(join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  };
}

export async function loadLayersModel(path: string): Promise<tf.LayersModel> {
  return tf.loadLayersModel(fsLoader(path));
}

export async function saveLayersModel(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(fsSaver(dir));
}
