// Writing model bundles to disk, and reading them back through the same verified reader the viewer uses.
// A bundle is assembled in a temporary sibling folder and renamed into place (io/atomic.ts), with manifest.json
// written last, so an interrupted export never leaves a half-written bundle under the final name.
// How the bundle stores its numbers is chosen here (BundleStorage): the network's and the segmenter's weights as
// float32, float16 or uint8 (model/quantize.ts), the classifier's large arrays as JSON numbers or in a binary
// file (model/classifier-store.ts).
import type * as tf from '@tensorflow/tfjs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { writeDirAtomic } from './atomic.js';
import { reencodeModelFiles, saveLayersModel } from './layers-fs.js';
import { classifierArraysPath, packClassifier, type ArrayDtype } from '../model/classifier-store.js';
import type { WeightsDtype } from '../model/quantize.js';
import {
  BUNDLE_FORMAT,
  BUNDLE_VERSION,
  BundleError,
  MANIFEST_FILE,
  MODEL_PATH,
  checkRelativePath,
  readBundle,
  sha256Hex,
  type BundleManifest,
  type FetchBytes,
} from '../model/bundle.js';

/** What the pipeline provides; the writer fills in the format, version, creation time, model path and checksums. */
export type BundleManifestDraft = Omit<BundleManifest, 'files' | 'format' | 'formatVersion' | 'createdAt' | 'model'> & {
  createdAt?: string;
  model: Omit<BundleManifest['model'], 'path'> & { path?: string };
};

/** How a bundle stores its numbers. */
export interface BundleStorage {
  /** The network's weights, and a masked bundle's segmenter's (default float32). */
  weightsDtype?: WeightsDtype;
  /** The classifier's large arrays: in a binary file as this dtype, or 'inline' as JSON numbers (default float32). */
  classifierArrays?: ArrayDtype | 'inline';
}

async function listFiles(root: string, dir = root): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map(async (e) => {
      const p = join(dir, e.name);
      return e.isDirectory() ? listFiles(root, p) : [relative(root, p).split(sep).join('/')];
    }),
  );
  return nested.flat().sort();
}

/**
 * Writes a bundle folder at `dir`: the model under model/, `extraFiles` at their relative paths, then
 * manifest.json with a sha256 of every file. An existing bundle at `dir` is replaced. Returns the manifest.
 * `storage` says how the numbers are stored; a segmenter among `extraFiles` (draft.segmenter.path) is
 * re-encoded to the same weights dtype as the network.
 */
export async function writeBundle(
  dir: string,
  draft: BundleManifestDraft,
  model: tf.LayersModel,
  extraFiles: Record<string, Uint8Array> = {},
  storage: BundleStorage = {},
): Promise<BundleManifest> {
  if (draft.model.path !== undefined && draft.model.path !== MODEL_PATH) {
    throw new Error(`writeBundle stores the model at ${MODEL_PATH}, not ${draft.model.path}`);
  }
  const weightsDtype = storage.weightsDtype ?? 'float32';
  const arrays = storage.classifierArrays ?? 'float32';
  let toWrite = { ...extraFiles };
  if (draft.segmenter && weightsDtype !== 'float32') toWrite = reencodeModelAt(toWrite, draft.segmenter.path, weightsDtype);
  let classifier = draft.classifier;
  if (arrays !== 'inline') {
    const packed = packClassifier(draft.classifier, arrays);
    for (const p of Object.keys(packed.files)) if (p in toWrite) throw new Error(`extra file ${p} would overwrite the classifier's arrays`);
    classifier = packed.classifier;
    toWrite = { ...toWrite, ...packed.files };
  }
  return writeDirAtomic(resolve(dir), async (tmp) => {
    await saveLayersModel(model, join(tmp, dirname(MODEL_PATH)), weightsDtype);
    for (const [path, bytes] of Object.entries(toWrite)) {
      checkRelativePath(path);
      if (path === MANIFEST_FILE) throw new Error(`extra file ${path} would overwrite the manifest`);
      if (path.startsWith(`${dirname(MODEL_PATH)}/`)) throw new Error(`extra file ${path} would collide with the model`);
      await mkdir(dirname(join(tmp, path)), { recursive: true });
      await writeFile(join(tmp, path), bytes);
    }
    const files: Record<string, string> = {};
    for (const path of await listFiles(tmp)) files[path] = await sha256Hex(new Uint8Array(await readFile(join(tmp, path))));
    const manifest: BundleManifest = {
      format: BUNDLE_FORMAT,
      formatVersion: BUNDLE_VERSION,
      ...draft,
      classifier,
      createdAt: draft.createdAt ?? new Date().toISOString(),
      model: { ...draft.model, path: MODEL_PATH },
      files,
    };
    if (manifest.segmenter && !(manifest.segmenter.path in files)) {
      throw new Error(`segmenter.path ${manifest.segmenter.path} is not among the bundle's files`);
    }
    await writeFile(join(tmp, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  });
}

/** Reads bundle files from a folder on disk; refuses paths that would leave it. */
export function fsFetcher(dir: string): FetchBytes {
  const root = resolve(dir);
  return async (path) => {
    checkRelativePath(path);
    let buf: Buffer;
    try {
      buf = await readFile(join(root, path));
    } catch (e) {
      // An absent file is the reader's 'missing-file' (hence "no bundle here" for manifest.json).
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new BundleError('missing-file', (e as Error).message);
      throw e;
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  };
}

/** `files` with the model whose model.json is at `modelPath` re-encoded into one weights.bin beside it. */
function reencodeModelAt<T extends Record<string, Uint8Array> | Map<string, Uint8Array>>(files: T, modelPath: string, dtype: WeightsDtype): T {
  const map = files instanceof Map ? new Map(files) : new Map(Object.entries(files));
  const json = map.get(modelPath);
  if (!json) throw new Error(`no model at ${modelPath} to re-encode`);
  const base = modelPath.includes('/') ? modelPath.slice(0, modelPath.lastIndexOf('/') + 1) : '';
  const shardPaths = ((JSON.parse(new TextDecoder().decode(json)) as tf.io.ModelJSON).weightsManifest ?? []).flatMap((g) => g.paths.map((p) => base + p));
  const shards = shardPaths.map((p) => {
    const b = map.get(p);
    if (!b) throw new Error(`missing weight file ${p} of ${modelPath}`);
    return b;
  });
  const out = reencodeModelFiles(json, shards, dtype);
  for (const p of shardPaths) map.delete(p);
  map.set(modelPath, out.modelJson);
  map.set(`${base}weights.bin`, out.weights);
  return (files instanceof Map ? map : Object.fromEntries(map)) as T;
}

/**
 * Rewrites an existing bundle with `extraFiles` added (or replaced) and its manifest changed by `amend`, keeping
 * every other file byte for byte: how a guard and a calibration are added to a bundle made before they existed.
 * The old bundle is read through the verifying reader first, and the new one is written atomically. Files in the
 * folder that are not part of the bundle (a README beside it) are carried over as they are. The classifier's
 * arrays are stored as they were (re-encoding the values read gives the same bytes) unless `storage` says
 * otherwise; with `storage.weightsDtype` the network (and segmenter) weights are re-encoded too.
 */
export async function amendBundle(
  dir: string,
  extraFiles: Record<string, Uint8Array>,
  amend: (manifest: BundleManifest) => BundleManifest,
  storage: BundleStorage = {},
): Promise<BundleManifest> {
  const old = await readBundle(fsFetcher(dir));
  let files = new Map(old.files);
  const others = (await listFiles(resolve(dir))).filter((p) => p !== MANIFEST_FILE && !files.has(p) && !(p in extraFiles));
  for (const [path, bytes] of Object.entries(extraFiles)) {
    checkRelativePath(path);
    if (path === MANIFEST_FILE) throw new Error(`extra file ${path} would overwrite the manifest`);
    files.set(path, bytes);
  }
  if (storage.weightsDtype) {
    for (const p of [old.manifest.model.path, ...(old.manifest.segmenter ? [old.manifest.segmenter.path] : [])]) {
      files = reencodeModelAt(files, p, storage.weightsDtype);
    }
  }
  let manifest = amend(old.manifest);
  for (const role of ['deployed', 'explainer'] as const) files.delete(classifierArraysPath(role));
  const arrays = storage.classifierArrays ?? old.classifierArrays ?? 'inline';
  if (arrays !== 'inline') {
    const packed = packClassifier(manifest.classifier, arrays);
    manifest = { ...manifest, classifier: packed.classifier };
    for (const [p, bytes] of Object.entries(packed.files)) files.set(p, bytes);
  }
  return writeDirAtomic(resolve(dir), async (tmp) => {
    const checksums: Record<string, string> = {};
    for (const [path, bytes] of [...files].sort(([a], [b]) => a.localeCompare(b))) {
      await mkdir(dirname(join(tmp, path)), { recursive: true });
      await writeFile(join(tmp, path), bytes);
      checksums[path] = await sha256Hex(bytes);
    }
    for (const p of others) {
      await mkdir(dirname(join(tmp, p)), { recursive: true });
      await writeFile(join(tmp, p), await readFile(join(resolve(dir), p)));
    }
    const written: BundleManifest = { ...manifest, files: checksums };
    await writeFile(join(tmp, MANIFEST_FILE), `${JSON.stringify(written, null, 2)}\n`);
    return written;
  });
}
