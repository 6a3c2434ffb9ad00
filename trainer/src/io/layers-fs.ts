// tfjs IOHandlers for the local file system (Node only). tfjs-node would provide `file://`, but it cannot be
// installed here, so the trainer reads and writes LayersModel folders (model.json + weight shards) itself.
// Weights may be written quantized (float16, uint8: model/quantize.ts); tfjs's own loader decodes them.
import * as tf from '@tensorflow/tfjs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { encodeWeights, type WeightsDtype } from '../model/quantize.js';

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

/** Writes `dir/model.json` and a single `dir/weights.bin`, the weights encoded as `weightsDtype`. */
export function fsSaver(dir: string, weightsDtype: WeightsDtype = 'float32'): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      await mkdir(dir, { recursive: true });
      const weightData = tf.io.CompositeArrayBuffer.join(artifacts.weightData as ArrayBuffer | ArrayBuffer[]);
      const specs = artifacts.weightSpecs ?? [];
      const encoded = weightsDtype === 'float32' ? { specs, data: new Uint8Array(weightData) } : encodeWeights(specs, weightData, weightsDtype);
      const json: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology as object,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: ['weights.bin'], weights: encoded.specs }],
      };
      await writeFile(join(dir, 'weights.bin'), encoded.data);
      await writeFile(join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  };
}

export async function loadLayersModel(path: string): Promise<tf.LayersModel> {
  return tf.loadLayersModel(fsLoader(path));
}

export async function saveLayersModel(model: tf.LayersModel, dir: string, weightsDtype: WeightsDtype = 'float32'): Promise<void> {
  await model.save(fsSaver(dir, weightsDtype));
}

/**
 * A stored model re-encoded: its model.json and weight shards (in the order model.json names them) in, the same
 * model with one `weights.bin` of `weightsDtype` out. The topology is kept as it was, byte for byte apart from
 * the weights manifest. Re-encoding weights that are quantized already starts from their decoded values.
 */
export function reencodeModelFiles(modelJson: Uint8Array, shards: Uint8Array[], weightsDtype: WeightsDtype): { modelJson: Uint8Array; weights: Uint8Array } {
  const json = JSON.parse(new TextDecoder().decode(modelJson)) as tf.io.ModelJSON;
  const specs = (json.weightsManifest ?? []).flatMap((g) => g.weights);
  const joined = Buffer.concat(shards);
  const encoded = encodeWeights(specs, toArrayBuffer(joined), weightsDtype);
  const out: tf.io.ModelJSON = { ...json, weightsManifest: [{ paths: ['weights.bin'], weights: encoded.specs }] };
  return { modelJson: new TextEncoder().encode(JSON.stringify(out)), weights: encoded.data };
}
