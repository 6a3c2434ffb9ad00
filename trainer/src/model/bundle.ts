// The model bundle: the contract between the trainer (which writes it) and the viewer (which reads it).
// A bundle is a folder: manifest.json + model/model.json + model/weights.bin (+ optional extra files such as a
// lung segmenter). The manifest lists a sha256 for every other file; a reader verifies all of them before use, so
// a truncated download or an edited weight file is refused rather than silently giving wrong predictions.
// The classifier's large arrays may live in a binary file too (classifier/*.bin, model/classifier-store.ts), and
// model weights may be quantized (model/quantize.ts; tfjs decodes them). Browser-safe: files come through a `FetchBytes` function (HTTP in the viewer, the file system in Node).
// The manifest's types, its validator and BundleError live in manifest.ts and are re-exported here.
import * as tf from '@tensorflow/tfjs';
import {
  BUNDLE_FORMAT,
  BUNDLE_VERSION,
  BundleError,
  MANIFEST_FILE,
  MODEL_PATH,
  checkRelativePath,
  validateManifest,
  type BundleManifest,
} from './manifest.js';
import { storedArrayDtype, unpackClassifier, type ArrayDtype } from './classifier-store.js';

export { BUNDLE_FORMAT, BUNDLE_VERSION, BundleError, MANIFEST_FILE, MODEL_PATH, checkRelativePath, validateManifest };
export type {
  BundleClassifier,
  BundleErrorCode,
  CalibrationInfo,
  ExternalMetrics,
  OodInfo,
  BundleManifest,
  BundleMetrics,
  BundlePruning,
  LayerUnits,
  Provenance,
  PruningStats,
  SegmenterInfo,
  StoredMetrics,
  TrainingSettings,
  UnprunedStats,
} from './manifest.js';
import { concatBytes } from './bytes.js';

/** Reads one file of a bundle by its path relative to the bundle's root. A file that does not exist is reported
 * as BundleError code 'missing-file' (so the reader can tell "no bundle here" from a failed download). */
export type FetchBytes = (relativePath: string) => Promise<Uint8Array>;

export interface LoadedBundle {
  /** The manifest with the classifier's arrays in place (those stored binary are read from their file). */
  manifest: BundleManifest;
  /** How the classifier's large arrays were stored: a binary dtype, or null for JSON numbers (older bundles). */
  classifierArrays: ArrayDtype | null;
  /** Every listed file, checksum verified, by relative path. */
  files: Map<string, Uint8Array>;
}

/** Fetches, checks and verifies a whole bundle. Throws BundleError with a message naming the culprit. */
export async function readBundle(fetchBytes: FetchBytes): Promise<LoadedBundle> {
  let manifestBytes: Uint8Array;
  try {
    manifestBytes = await fetchBytes(MANIFEST_FILE);
  } catch (e) {
    // No manifest at all means no bundle at this location; any other failure is a file that could not be read.
    const absent = e instanceof BundleError && e.code === 'missing-file';
    throw new BundleError(absent ? 'not-found' : 'missing-file', `missing file ${MANIFEST_FILE}: ${errorText(e)}`);
  }
  const manifest = parseManifest(manifestBytes);

  const files = new Map<string, Uint8Array>();
  await Promise.all(
    Object.entries(manifest.files).map(async ([path, expected]) => {
      let bytes: Uint8Array;
      try {
        bytes = await fetchBytes(path);
      } catch (e) {
        throw new BundleError('missing-file', `missing file ${path}: ${errorText(e)}`);
      }
      const actual = await sha256Hex(bytes);
      if (actual !== expected.toLowerCase()) {
        throw new BundleError('checksum', `checksum mismatch for ${path}: expected sha256 ${expected}, got ${actual}`);
      }
      files.set(path, bytes);
    }),
  );
  for (const modelPath of modelPaths(manifest)) checkModelFilesListed(manifest, files, modelPath);
  const classifierArrays = storedArrayDtype(manifest.classifier);
  return { manifest: { ...manifest, classifier: unpackClassifier(manifest.classifier, files) }, files, classifierArrays };
}

/** Parses manifest.json and validates every field (see validateManifest in manifest.ts). */
export function parseManifest(bytes: Uint8Array): BundleManifest {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new BundleError('invalid-field', `${MANIFEST_FILE} is not valid JSON: ${errorText(e)}`);
  }
  return validateManifest(json);
}

function modelPaths(manifest: BundleManifest): string[] {
  return manifest.segmenter ? [manifest.model.path, manifest.segmenter.path] : [manifest.model.path];
}

function dirOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i + 1);
}

function parseModelJson(files: Map<string, Uint8Array>, modelPath: string): tf.io.ModelJSON {
  const bytes = files.get(modelPath);
  if (!bytes) throw new BundleError('missing-file', `missing file ${modelPath}`);
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as tf.io.ModelJSON;
  } catch (e) {
    throw new BundleError('invalid-field', `${modelPath} is not valid JSON: ${errorText(e)}`);
  }
}

/** Weight shards named by a model.json, as bundle-relative paths. */
function weightPaths(json: tf.io.ModelJSON, modelPath: string): string[] {
  const base = dirOf(modelPath);
  return (json.weightsManifest ?? []).flatMap((group) => group.paths.map((p) => base + p));
}

function checkModelFilesListed(manifest: BundleManifest, files: Map<string, Uint8Array>, modelPath: string): void {
  const json = parseModelJson(files, modelPath);
  for (const p of weightPaths(json, modelPath)) {
    checkRelativePath(p);
    if (!(p in manifest.files)) {
      throw new BundleError('invalid-field', `model file ${p} (named by ${modelPath}) is not listed in the manifest's files`);
    }
  }
}

/** A tfjs IOHandler that loads a LayersModel from a verified bundle's bytes (no further fetching). */
export function modelIOHandler(
  manifest: BundleManifest,
  files: Map<string, Uint8Array>,
  modelPath: string = manifest.model.path,
): tf.io.IOHandler {
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      const json = parseModelJson(files, modelPath);
      return tf.io.getModelArtifactsForJSON(json, async (weightsManifest) => {
        const specs = weightsManifest.flatMap((group) => group.weights);
        const shards = weightsManifest.flatMap((group) =>
          group.paths.map((p) => {
            const bytes = files.get(dirOf(modelPath) + p);
            if (!bytes) throw new BundleError('missing-file', `missing file ${dirOf(modelPath) + p}`);
            return bytes;
          }),
        );
        return [specs, concatBytes(shards).buffer as ArrayBuffer];
      });
    },
  };
}

/** Loads the bundle's classification model (or, with `modelPath`, another model it carries). */
export async function loadBundleModel(bundle: LoadedBundle, modelPath?: string): Promise<tf.LayersModel> {
  return tf.loadLayersModel(modelIOHandler(bundle.manifest, bundle.files, modelPath));
}

/** Fetches bundle files over HTTP(S) relative to `baseUrl` (the bundle's folder), for browsers and workers. */
export function httpFetcher(baseUrl: string): FetchBytes {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  return async (path) => {
    const response = await fetch(base + path);
    if (!response.ok) {
      const text = `HTTP ${response.status} ${response.statusText} for ${base + path}`;
      // 404 / 410: the file is not there; other statuses are a server or network failure.
      if (response.status === 404 || response.status === 410) throw new BundleError('missing-file', text);
      throw new Error(text);
    }
    return new Uint8Array(await response.arrayBuffer());
  };
}

/** sha256 as lower-case hex: WebCrypto where available, else a small built-in implementation (WebCrypto is
 * missing in pages served over plain HTTP to another host). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (subtle) {
    const digest = await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
    return toHex(new Uint8Array(digest));
  }
  return toHex(sha256(bytes));
}

function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

const K256 = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);

/** Plain SHA-256 (FIPS 180-4); exported for tests, used only when WebCrypto is unavailable. */
export function sha256(bytes: Uint8Array): Uint8Array {
  const bitLen = bytes.length * 8;
  const padded = new Uint8Array(Math.ceil((bytes.length + 9) / 64) * 64);
  padded.set(bytes);
  padded[bytes.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bitLen / 2 ** 32));
  view.setUint32(padded.length - 4, bitLen >>> 0);
  const h = new Uint32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]);
  const w = new Uint32Array(64);
  const rotr = (x: number, n: number): number => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) >>> 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) >>> 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  const out = new Uint8Array(32);
  const outView = new DataView(out.buffer);
  h.forEach((v, i) => outView.setUint32(i * 4, v));
  return out;
}


function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
