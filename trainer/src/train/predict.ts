// Scoring files and folders of images with a bundle (`zerovar predict`, after torchxrayvision's process_batch.py):
// discovery of the images under the inputs, calibrated probabilities and the out-of-distribution verdict per
// file through BundleModel (so the answer is the viewer's), optional Grad-CAM overlays, and the result as JSON
// or CSV. An unreadable file is reported and skipped, never fatal: one broken file must not cost a batch.
import { open, readdir, realpath, stat } from 'node:fs/promises';
import { basename, extname, join, relative, resolve, sep } from 'node:path';
import { detectFormat, ImageDecodeError, readGreyImage } from '../data/decode.js';
import { IMAGE_EXTENSIONS } from '../data/dataset.js';
import { attentionOverlay } from '../image/colormap.js';
import { resizeGrey, type GreyImage } from '../image/pixels.js';
import { fsFetcher } from '../io/bundle-fs.js';
import { BundleModel, type Prediction } from '../model/inference.js';
import { writeRgbaPng } from '../report/png.js';
import { initBackend } from '../runtime/backend.js';

/** A file found under one of the inputs; `rel` is its path below that input (its base name for a file input). */
export interface InputFile {
  path: string;
  rel: string;
}

export interface SkippedInput {
  file: string;
  reason: string;
}

export interface Discovery {
  files: InputFile[];
  /** Inputs that do not exist or cannot be listed. */
  skipped: SkippedInput[];
  /** Files under the input folders that are not images (neither by extension nor by content). */
  ignored: number;
}

const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Enough bytes for every signature detectFormat knows (DICOM's 'DICM' marker sits at 128). */
const SNIFF_BYTES = 132;

async function sniff(path: string): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const buf = new Uint8Array(SNIFF_BYTES);
    const { bytesRead } = await fh.read(buf, 0, SNIFF_BYTES, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** An image by its extension, or, for a file without one (DICOM exports often have none), by its content. */
async function isImageFile(path: string): Promise<boolean> {
  const ext = extname(path).toLowerCase();
  if (IMAGE_EXTENSIONS.includes(ext)) return true;
  if (ext !== '') return false;
  try {
    return detectFormat(await sniff(path), path) !== undefined;
  } catch {
    return false;
  }
}

/**
 * The image files under the inputs: a file input is taken as it is (and reported later if it is no image), a
 * folder is searched recursively for PNG, JPEG and DICOM files, leaving out hidden files and folders. Each
 * folder's files come in code-point order of their relative paths, inputs in the order given, each file once.
 */
export async function discoverInputs(inputs: string[]): Promise<Discovery> {
  const files: InputFile[] = [];
  const skipped: SkippedInput[] = [];
  const seen = new Set<string>();
  let ignored = 0;
  const add = (f: InputFile) => {
    const key = resolve(f.path);
    if (seen.has(key)) return;
    seen.add(key);
    files.push(f);
  };

  for (const input of inputs) {
    let st;
    try {
      st = await stat(input);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      skipped.push({ file: input, reason: code === 'ENOENT' ? 'no such file or folder' : `cannot read (${code ?? String(e)})` });
      continue;
    }
    if (!st.isDirectory()) {
      add({ path: input, rel: basename(input) });
      continue;
    }
    const found: InputFile[] = [];
    // Real paths of the folders walked, so a symbolic link back up the tree cannot loop.
    const walked = new Set<string>();
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        const real = await realpath(dir);
        if (walked.has(real)) return;
        walked.add(real);
        entries = await readdir(dir, { withFileTypes: true });
      } catch (e) {
        skipped.push({ file: dir, reason: `cannot list the folder (${(e as NodeJS.ErrnoException).code ?? String(e)})` });
        return;
      }
      for (const e of entries) {
        if (e.name.startsWith('.')) continue;
        const p = join(dir, e.name);
        let isDir = e.isDirectory();
        let isFile = e.isFile();
        if (e.isSymbolicLink()) {
          const t = await stat(p).catch(() => null);
          isDir = t?.isDirectory() ?? false;
          isFile = t?.isFile() ?? false;
        }
        if (isDir) await walk(p);
        else if (isFile && (await isImageFile(p))) found.push({ path: p, rel: relative(input, p) });
        else if (isFile) ignored++;
      }
    };
    await walk(input);
    found.sort((a, b) => byCodePoint(a.rel.split(sep).join('/'), b.rel.split(sep).join('/')));
    found.forEach(add);
  }
  return { files, skipped, ignored };
}

export interface PredictedFile {
  file: string;
  predicted: string;
  /** Calibrated probabilities keyed by the bundle's class names. */
  probabilities: Record<string, number>;
  /** The guard's verdict; null when the bundle has no guard. */
  outOfDistribution: boolean | null;
  oodScore: number | null;
  oodThreshold: number | null;
  /** The Grad-CAM overlay written for this file (with an attention folder). */
  attention?: string;
}

export interface PredictResult {
  bundle: string;
  /** The bundle's name (manifest.name). */
  name: string;
  classes: string[];
  /** Whether the bundle carries an out-of-distribution guard. */
  guard: boolean;
  results: PredictedFile[];
  skipped: SkippedInput[];
  /** Non-image files under the input folders, left out. */
  ignored: number;
  /** Problems that concern no single file's score (e.g. why an overlay could not be drawn), each once. */
  warnings: string[];
}

export interface PredictOptions {
  bundle: string;
  inputs: string[];
  backend?: 'auto' | 'wasm' | 'cpu';
  /** Images per network pass (default 16); at most this many decoded images are held at once. */
  batchSize?: number;
  /** Write each image's Grad-CAM overlay as a PNG here, at the image's own size, mirroring the input folders. */
  attentionDir?: string;
  /** Called before the first batch and after each with the files handled so far (scored or skipped) and the total found. */
  onProgress?: (done: number, total: number) => void;
}

const ATTENTION_OPACITY = 0.5;

/** Names for the overlays: the input's relative path with .png for its extension, made unique within a run. */
class AttentionNames {
  private readonly used = new Set<string>();
  next(rel: string): string {
    const stem = rel.slice(0, rel.length - extname(rel).length) || rel;
    for (const candidate of [`${stem}.png`, `${rel}.png`]) {
      if (!this.used.has(candidate)) {
        this.used.add(candidate);
        return candidate;
      }
    }
    for (let k = 2; ; k++) {
      const candidate = `${stem}-${k}.png`;
      if (!this.used.has(candidate)) {
        this.used.add(candidate);
        return candidate;
      }
    }
  }
}

function toResult(file: string, classes: string[], p: Prediction, guarded: boolean): PredictedFile {
  const probabilities: Record<string, number> = {};
  classes.forEach((c, i) => (probabilities[c] = p.probabilities[i]));
  return {
    file,
    predicted: p.className,
    probabilities,
    outOfDistribution: guarded && p.ood ? p.ood.flagged : null,
    oodScore: guarded && p.ood ? p.ood.score : null,
    oodThreshold: guarded && p.ood ? p.ood.threshold : null,
  };
}

const reasonOf = (e: unknown): string => (e instanceof ImageDecodeError ? e.reason : e instanceof Error ? e.message : String(e));

/**
 * Scores every image under the inputs with a loaded bundle. A batch the network refuses is retried image by
 * image, so only the images at fault are skipped.
 */
export async function predictWithModel(bm: BundleModel, discovery: Discovery, o: Omit<PredictOptions, 'bundle' | 'inputs' | 'backend'> & { bundle?: string } = {}): Promise<PredictResult> {
  const batchSize = o.batchSize ?? 16;
  const guarded = bm.guard !== null;
  const results: PredictedFile[] = [];
  const skipped: SkippedInput[] = [...discovery.skipped];
  const warnings = new Set<string>();
  const names = new AttentionNames();
  // The network sees the image resized to its input either way; a raw bundle without overlays can resize at
  // once (greyToInput would do the same resize), a masked one segments at the image's own size as the viewer does.
  const keepNative = o.attentionDir !== undefined || bm.masked;
  const { size } = bm.spec;
  const files = discovery.files;
  o.onProgress?.(0, files.length);
  for (let start = 0; start < files.length; start += batchSize) {
    const chunk = files.slice(start, start + batchSize);
    const kept: InputFile[] = [];
    const images: GreyImage[] = [];
    for (const f of chunk) {
      try {
        const grey = await readGreyImage(f.path);
        images.push(keepNative ? grey : resizeGrey(grey, size, size));
        kept.push(f);
      } catch (e) {
        skipped.push({ file: f.path, reason: reasonOf(e) });
      }
    }
    let predictions: (Prediction | Error)[];
    try {
      predictions = bm.classifyBatch(images);
    } catch {
      predictions = images.map((img) => {
        try {
          return bm.classify(img);
        } catch (e) {
          return e instanceof Error ? e : new Error(String(e));
        }
      });
    }
    for (let i = 0; i < kept.length; i++) {
      const f = kept[i];
      const p = predictions[i];
      if (p instanceof Error) {
        skipped.push({ file: f.path, reason: `cannot be classified: ${p.message}` });
        continue;
      }
      const r = toResult(f.path, bm.classes, p, guarded);
      if (o.attentionDir !== undefined) {
        try {
          const image = images[i];
          const e = bm.explain(image, p.classIndex);
          const out = join(o.attentionDir, names.next(f.rel));
          await writeRgbaPng(out, attentionOverlay(image, e.cam, e.width, e.height, ATTENTION_OPACITY), image.width, image.height);
          r.attention = out;
        } catch (e) {
          warnings.add(`no attention overlay: ${(e as Error).message}`);
        }
      }
      results.push(r);
    }
    o.onProgress?.(Math.min(files.length, start + chunk.length), files.length);
  }
  return {
    bundle: o.bundle ?? bm.manifest.name,
    name: bm.manifest.name,
    classes: [...bm.classes],
    guard: guarded,
    results,
    skipped,
    ignored: discovery.ignored,
    warnings: [...warnings],
  };
}

/** Loads the bundle (verified, as the viewer does), finds the images under the inputs and scores them. */
export async function predictFiles(o: PredictOptions): Promise<PredictResult> {
  await initBackend(o.backend ?? 'auto');
  const bm = await BundleModel.load(fsFetcher(o.bundle));
  try {
    const discovery = await discoverInputs(o.inputs);
    return await predictWithModel(bm, discovery, o);
  } finally {
    bm.dispose();
  }
}

/** One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break, quotes doubled. */
export function csvField(v: string | number | boolean | null | undefined): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'number' && !Number.isFinite(v) ? '' : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The columns of the CSV form: the file, the prediction, one probability per class, the guard's verdict. */
export function predictionCsvHeader(classes: string[]): string[] {
  return ['file', 'predicted', ...classes.map((c) => `p_${c}`), 'outOfDistribution', 'oodScore', 'oodThreshold'];
}

/** The results as CSV (RFC 4180: CRLF line ends), a header and one row per scored file. */
export function predictionsToCsv(r: Pick<PredictResult, 'classes' | 'results'>): string {
  const rows = [predictionCsvHeader(r.classes)];
  for (const x of r.results) {
    rows.push([x.file, x.predicted, ...r.classes.map((c) => x.probabilities[c]), x.outOfDistribution, x.oodScore, x.oodThreshold].map(csvField));
  }
  rows[0] = rows[0].map(csvField);
  return rows.map((row) => row.join(',')).join('\r\n') + '\r\n';
}
