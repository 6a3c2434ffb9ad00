// The classifier's large arrays (an SVM's support vectors and dual coefficients, a k-NN's training set, a wide
// logistic regression's weights, the scaler's means and scales) stored as little-endian binary in a bundle file
// instead of JSON numbers: a JSON number costs ~20 bytes of text, a float32 4. The manifest keeps every array's
// place as a reference (file, dtype, byte offset, shape) beside the small scalars; the reader resolves the
// references against the verified files and hands `classifierFromJSON` the same ClassifierJSON as before, so the
// predict code never sees the difference. Bundles with the arrays inline still load as they are. Browser-safe.
import type { BundleClassifier } from './manifest.js';
import { BundleError } from './manifest.js';
import type { ClassifierJSON } from './classifiers.js';
import { fromHalfBits, toHalfBits } from './quantize.js';
import { concatBytes } from './bytes.js';

/** How the arrays are stored: float32 (the fitted values to float32), float16, or float64 (exactly as fitted). */
export type ArrayDtype = 'float64' | 'float32' | 'float16';
export const ARRAY_DTYPES: readonly ArrayDtype[] = ['float64', 'float32', 'float16'];
const BYTES: Record<ArrayDtype, number> = { float64: 8, float32: 4, float16: 2 };

/** Arrays with fewer values than this stay inline (a handful of numbers is smaller as text than as a reference). */
export const MIN_BINARY_VALUES = 64;

/** Where an array lives: `shape` [n] for a vector, [rows, cols] for a matrix; `offset` in bytes into `binary`. */
export interface BinaryArrayRef {
  binary: string;
  dtype: ArrayDtype;
  offset: number;
  shape: number[];
}

export function isBinaryRef(v: unknown): v is BinaryArrayRef {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'binary' in v;
}

/** The array fields of each classifier kind that may be stored binary (a random forest's trees stay JSON). */
const ARRAY_FIELDS: Record<string, [string, string][]> = {
  svm: [['svm', 'supportVectors'], ['svm', 'dualCoef']],
  logistic: [['logistic', 'weights']],
  knn: [['knn', 'X']],
};

function fieldsOf(json: ClassifierJSON): [string, string][] {
  const own = json.kind.startsWith('svm-') ? ARRAY_FIELDS.svm : (ARRAY_FIELDS[json.kind] ?? []);
  return [['scaler', 'mean'], ['scaler', 'scale'], ...own];
}

/** The bundle file a role's arrays go to. */
export function classifierArraysPath(role: keyof BundleClassifier): string {
  return `classifier/${role}.bin`;
}

/** Every binary reference in a stored classifier, with its manifest path (for the validator's messages). */
export function binaryRefs(classifier: BundleClassifier): { at: string; ref: BinaryArrayRef }[] {
  const out: { at: string; ref: BinaryArrayRef }[] = [];
  for (const role of ['deployed', 'explainer'] as const) {
    const c = classifier[role];
    if (!c) continue;
    for (const [group, field] of fieldsOf(c)) {
      const v = (c as unknown as Record<string, Record<string, unknown> | undefined>)[group]?.[field];
      if (isBinaryRef(v)) out.push({ at: `manifest.classifier.${role}.${group}.${field}`, ref: v });
    }
  }
  return out;
}

/** The dtype the classifier's arrays are stored in (null: inline JSON numbers). */
export function storedArrayDtype(classifier: BundleClassifier): ArrayDtype | null {
  return binaryRefs(classifier)[0]?.ref.dtype ?? null;
}

/**
 * Moves the classifiers' large arrays into one binary file per role, as `dtype`. Returns the classifier with
 * references in their place and the files to put in the bundle.
 */
export function packClassifier(
  classifier: BundleClassifier,
  dtype: ArrayDtype,
  minValues = MIN_BINARY_VALUES,
): { classifier: BundleClassifier; files: Record<string, Uint8Array> } {
  const files: Record<string, Uint8Array> = {};
  const packed: BundleClassifier = { deployed: classifier.deployed };
  for (const role of ['deployed', 'explainer'] as const) {
    const c = classifier[role];
    if (!c) continue;
    const copy = structuredClone(c) as unknown as Record<string, Record<string, unknown>>;
    const path = classifierArraysPath(role);
    const chunks: Uint8Array[] = [];
    let offset = 0;
    for (const [group, field] of fieldsOf(c)) {
      const v = copy[group]?.[field];
      if (!Array.isArray(v)) continue;
      const matrix = v.length > 0 && Array.isArray(v[0]);
      const shape = matrix ? [v.length, (v[0] as number[]).length] : [v.length];
      if (matrix && !(v as number[][]).every((r) => r.length === shape[1])) continue;
      const flat = matrix ? (v as number[][]).flat() : (v as number[]);
      if (flat.length < minValues) continue;
      const bytes = encodeArray(flat, dtype);
      chunks.push(bytes);
      copy[group][field] = { binary: path, dtype, offset, shape } satisfies BinaryArrayRef;
      offset += bytes.length;
      // Keep every array's start aligned to 8 bytes, so a reader may view it in place.
      const pad = (8 - (offset % 8)) % 8;
      if (pad) {
        chunks.push(new Uint8Array(pad));
        offset += pad;
      }
    }
    packed[role] = copy as unknown as ClassifierJSON;
    if (chunks.length) files[path] = concatBytes(chunks);
  }
  return { classifier: packed, files };
}

/**
 * Replaces every binary reference by its array, read from the bundle's (verified) files. A reference to a file
 * the bundle lacks, or reaching past its end, is refused with BundleError('invalid-field') naming the field.
 */
export function unpackClassifier(classifier: BundleClassifier, files: Map<string, Uint8Array>): BundleClassifier {
  if (binaryRefs(classifier).length === 0) return classifier;
  const out: BundleClassifier = { deployed: classifier.deployed };
  for (const role of ['deployed', 'explainer'] as const) {
    const c = classifier[role];
    if (!c) continue;
    const copy = { ...c } as unknown as Record<string, Record<string, unknown>>;
    for (const [group, field] of fieldsOf(c)) {
      const v = copy[group]?.[field];
      if (!isBinaryRef(v)) continue;
      const at = `manifest.classifier.${role}.${group}.${field}`;
      copy[group] = { ...copy[group], [field]: readArray(v, files, at) };
    }
    out[role] = copy as unknown as ClassifierJSON;
  }
  return out;
}

function readArray(ref: BinaryArrayRef, files: Map<string, Uint8Array>, at: string): number[] | number[][] {
  const bytes = files.get(ref.binary);
  if (!bytes) throw new BundleError('invalid-field', `${at}: refers to ${ref.binary}, which the bundle does not have`);
  const n = ref.shape.reduce((a, b) => a * b, 1);
  const size = BYTES[ref.dtype];
  if (ref.offset + n * size > bytes.byteLength) {
    throw new BundleError('invalid-field', `${at}: ${n} ${ref.dtype} values at byte ${ref.offset} reach past the end of ${ref.binary} (${bytes.byteLength} bytes)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + ref.offset, n * size);
  const flat = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    flat[i] = ref.dtype === 'float64' ? view.getFloat64(i * 8, true)
      : ref.dtype === 'float32' ? view.getFloat32(i * 4, true)
        : fromHalfBits(view.getUint16(i * 2, true));
  }
  if (ref.shape.length === 1) return flat;
  const cols = ref.shape[1];
  return Array.from({ length: ref.shape[0] }, (_, r) => flat.slice(r * cols, (r + 1) * cols));
}

function encodeArray(values: number[], dtype: ArrayDtype): Uint8Array {
  const out = new Uint8Array(values.length * BYTES[dtype]);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    if (dtype === 'float64') view.setFloat64(i * 8, v, true);
    else if (dtype === 'float32') view.setFloat32(i * 4, v, true);
    else view.setUint16(i * 2, toHalfBits(v), true);
  });
  return out;
}

