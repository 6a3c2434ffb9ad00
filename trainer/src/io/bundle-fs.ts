// Writing model bundles to disk, and reading them back through the same verified reader the viewer uses.
// A bundle is assembled in a temporary sibling folder and renamed into place (io/atomic.ts), with manifest.json
// written last, so an interrupted export never leaves a half-written bundle under the final name.
import type * as tf from '@tensorflow/tfjs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { writeDirAtomic } from './atomic.js';
import { saveLayersModel } from './layers-fs.js';
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
 */
export async function writeBundle(
  dir: string,
  draft: BundleManifestDraft,
  model: tf.LayersModel,
  extraFiles: Record<string, Uint8Array> = {},
): Promise<BundleManifest> {
  if (draft.model.path !== undefined && draft.model.path !== MODEL_PATH) {
    throw new Error(`writeBundle stores the model at ${MODEL_PATH}, not ${draft.model.path}`);
  }
  return writeDirAtomic(resolve(dir), async (tmp) => {
    await saveLayersModel(model, join(tmp, dirname(MODEL_PATH)));
    for (const [path, bytes] of Object.entries(extraFiles)) {
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

/**
 * Rewrites an existing bundle with `extraFiles` added (or replaced) and its manifest changed by `amend`, keeping
 * every other file byte for byte: how a guard and a calibration are added to a bundle made before they existed.
 * The old bundle is read through the verifying reader first, and the new one is written atomically. Files in the
 * folder that are not part of the bundle (a README beside it) are carried over as they are.
 */
export async function amendBundle(
  dir: string,
  extraFiles: Record<string, Uint8Array>,
  amend: (manifest: BundleManifest) => BundleManifest,
): Promise<BundleManifest> {
  const old = await readBundle(fsFetcher(dir));
  const files = new Map(old.files);
  const others = (await listFiles(resolve(dir))).filter((p) => p !== MANIFEST_FILE && !files.has(p) && !(p in extraFiles));
  for (const [path, bytes] of Object.entries(extraFiles)) {
    checkRelativePath(path);
    if (path === MANIFEST_FILE) throw new Error(`extra file ${path} would overwrite the manifest`);
    files.set(path, bytes);
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
    const manifest: BundleManifest = { ...amend(old.manifest), files: checksums };
    await writeFile(join(tmp, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  });
}
