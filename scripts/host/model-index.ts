// The models folder's index (GET /zerovar/models/index.json): one entry per bundle folder directly under it, so the
// viewer can offer whatever `--models DIR` holds. A folder without manifest.json is not a bundle and is left out;
// one whose manifest cannot be read or validated, or that lacks a file its manifest lists, is listed with an
// `error` (the viewer shows it as not usable, rather than the bundle silently vanishing).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseManifest } from '../../trainer/src/model/bundle.js';
import { MANIFEST_FILE } from '../../trainer/src/model/manifest.js';
import {
  describeManifest, MODEL_INDEX_FORMAT, MODEL_INDEX_VERSION, type ModelDescription, type ModelEntry, type ModelIndex,
} from '../../extension/src/modelIndex.js';

/** Where the host serves the models folder. */
export const MODELS_ROOT = '/zerovar/models/';
export const MODEL_INDEX_PATH = `${MODELS_ROOT}index.json`;

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

interface Parsed {
  /** manifest.json's mtime and size when it was read: a changed file is read again. */
  stamp: string;
  described: { description: ModelDescription; files: string[] } | { error: string };
}

/**
 * A reader of a models folder's index. Manifests (megabytes, for a bundle whose classifier is stored inline) are
 * parsed once per change of the file; the folder listing and the file sizes are read on every call, so a bundle
 * copied in while the host runs is listed at once.
 */
export function modelIndexReader(modelsDir: string, urlRoot = MODELS_ROOT): () => ModelIndex {
  const parsed = new Map<string, Parsed>();
  return () => {
    const models: ModelEntry[] = [];
    const ids = readdirSync(modelsDir, { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(join(modelsDir, d.name, MANIFEST_FILE)))
      .map((d) => d.name)
      .sort();
    for (const id of ids) {
      const dir = join(modelsDir, id);
      const url = `${urlRoot}${encodeURIComponent(id)}/`;
      const manifestPath = join(dir, MANIFEST_FILE);
      let st;
      try {
        st = statSync(manifestPath);
      } catch (e) {
        models.push({ id, url, error: `${MANIFEST_FILE} cannot be read: ${message(e)}` });
        continue;
      }
      const stamp = `${st.mtimeMs}:${st.size}`;
      let p = parsed.get(id);
      if (p?.stamp !== stamp) {
        p = { stamp, described: readManifest(manifestPath) };
        parsed.set(id, p);
      }
      if ('error' in p.described) {
        models.push({ id, url, error: p.described.error });
        continue;
      }
      const size = bundleBytes(dir, st.size, p.described.files);
      models.push('error' in size ? { id, url, error: size.error } : { id, url, ...p.described.description, bytes: size.bytes });
    }
    return { format: MODEL_INDEX_FORMAT, version: MODEL_INDEX_VERSION, models };
  };
}

/** Validates a manifest with the trainer's bundle contract and describes it in the index's words. */
function readManifest(path: string): Parsed['described'] {
  try {
    const manifest = parseManifest(new Uint8Array(readFileSync(path)));
    const description = describeManifest(manifest);
    if ('error' in description) return description;
    return { description, files: Object.keys(manifest.files) };
  } catch (e) {
    return { error: message(e) };
  }
}

/** manifest.json plus every file it lists; a listed file that is absent makes the bundle unusable. */
function bundleBytes(dir: string, manifestBytes: number, files: string[]): { bytes: number } | { error: string } {
  let bytes = manifestBytes;
  for (const f of files) {
    try {
      bytes += statSync(join(dir, f)).size;
    } catch {
      return { error: `missing file ${f} (listed in ${MANIFEST_FILE})` };
    }
  }
  return { bytes };
}
