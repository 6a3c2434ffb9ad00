// Finds the images of a dataset on disk and labels them: class folders (flat or the Kaggle COVID-19
// Radiography Database layout with masks) or a metadata CSV (the ieee8023 covid-chestxray-dataset layout).
import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';

export interface Sample {
  path: string;
  className: string;
  label: number;
  patientId?: string;
  maskPath?: string;
}

export interface Dataset {
  root: string;
  layout: 'flat' | 'kaggle' | 'csv';
  classes: string[];
  samples: Sample[];
  /** Things worth telling the user: a case-corrected root, rows dropped from a CSV and why. */
  notes?: string[];
  /** CSV layout: rows left out, by reason. */
  dropped?: { unmapped: number; view: number; missingFile: number; duplicate: number };
}

export class DatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetError';
  }
}

export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.dcm'];

function isImageName(name: string): boolean {
  return !name.startsWith('.') && IMAGE_EXTENSIONS.includes(extname(name).toLowerCase());
}

/** Code-point order: the same on every machine and locale, so labels and sample order never drift. */
function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/**
 * Resolves the dataset folder; when it does not exist, a unique case-insensitive match of its last component
 * (e.g. `covid-subset` for `COVID-Subset`) is used and a note says so.
 */
async function resolveRoot(dir: string, notes: string[]): Promise<string> {
  const root = resolve(dir);
  if (await isDir(root)) return root;
  const parent = dirname(root);
  const want = basename(root).toLowerCase();
  let entries: string[] = [];
  try {
    entries = await readdir(parent);
  } catch {
    // parent missing too: fall through to the error
  }
  const matches: string[] = [];
  for (const name of entries) {
    if (name.toLowerCase() === want && (await isDir(join(parent, name)))) matches.push(name);
  }
  if (matches.length === 1) {
    const found = join(parent, matches[0]);
    notes.push(`dataset folder ${root} not found; using ${found} (case differs)`);
    return found;
  }
  if (matches.length > 1) {
    throw new DatasetError(`no such dataset folder: ${root} (several case-insensitive matches: ${matches.join(', ')})`);
  }
  throw new DatasetError(`no such dataset folder: ${root}`);
}

async function visibleEntries(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => !n.startsWith('.')).sort(byCodePoint);
}

/** Image files of a folder, sorted; file types come with the listing, so only symlinks cost a stat. */
async function imageFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(dir, { withFileTypes: true })) {
    if (!isImageName(d.name)) continue;
    if (d.isFile() || (d.isSymbolicLink() && (await isFile(join(dir, d.name))))) out.push(d.name);
  }
  return out.sort(byCodePoint);
}

/**
 * The mask of an image in a masks folder, by name: `<name>`, `<stem>_mask.png` or `<stem>.png`, in that order;
 * undefined when there is no such folder or no such file. Shared by class discovery and segmentation pairs.
 */
export async function maskFinder(dir: string): Promise<(imageName: string) => string | undefined> {
  if (!(await isDir(dir))) return () => undefined;
  const index = new Set((await visibleEntries(dir)).filter(isImageName));
  return (imageName) => {
    const stem = imageName.slice(0, imageName.length - extname(imageName).length);
    for (const candidate of [imageName, `${stem}_mask.png`, `${stem}.png`]) {
      if (index.has(candidate)) return join(dir, candidate);
    }
    return undefined;
  };
}

/** A metadata CSV's rows under its header, whose names are trimmed and lower-cased (a byte-order mark is dropped). */
export function csvTable(text: string): { header: string[]; rows: string[][] } {
  const rows = parseCsv(text.replace(/^\uFEFF/, ''));
  const header = (rows.shift() ?? []).map((h) => h.trim().toLowerCase());
  return { header, rows };
}

function requireTwoClasses(root: string, classes: string[]): void {
  if (classes.length === 0) throw new DatasetError(`no class folders in ${root}`);
  if (classes.length === 1) throw new DatasetError(`need at least two classes, found only '${classes[0]}' in ${root}`);
}

/**
 * Class-folder datasets: `<Class>/*.png|jpg|jpeg|dcm` (flat) or `<Class>/images/*` with optional
 * `<Class>/masks/*` (Kaggle COVID-19 Radiography Database v3+). Class names are kept as written; labels follow
 * their sorted order. Patient ids are not guessed from file names.
 */
export async function discoverDataset(dir: string): Promise<Dataset> {
  const notes: string[] = [];
  const root = await resolveRoot(dir, notes);
  const entries = await visibleEntries(root);
  const classDirs: string[] = [];
  for (const name of entries) if (await isDir(join(root, name))) classDirs.push(name);
  if (classDirs.length === 0) {
    throw new DatasetError(
      `no class folders in ${root} (expected <Class>/*.png|jpg|jpeg|dcm or <Class>/images/*)`,
    );
  }
  if (entries.includes('metadata.csv') && classDirs.includes('images')) {
    throw new DatasetError(
      `${root} has metadata.csv and images/: a CSV dataset, which needs a finding-to-class mapping ` +
        `(e.g. "COVID-19*=COVID,No Finding=Normal")`,
    );
  }
  let kaggle = false;
  const samples: Omit<Sample, 'label'>[] = [];
  const classes: string[] = [];
  for (const className of classDirs) {
    const classDir = join(root, className);
    const imagesDir = join(classDir, 'images');
    const hasImagesDir = await isDir(imagesDir);
    kaggle ||= hasImagesDir;
    const dirWithImages = hasImagesDir ? imagesDir : classDir;
    const maskOf = hasImagesDir ? await maskFinder(join(classDir, 'masks')) : () => undefined;
    const names = await imageFiles(dirWithImages);
    if (names.length === 0) {
      throw new DatasetError(
        `class '${className}' has no images (looked for ${IMAGE_EXTENSIONS.join(' ')} in ${dirWithImages})`,
      );
    }
    classes.push(className);
    for (const name of names) {
      const maskPath = maskOf(name);
      samples.push({ path: join(dirWithImages, name), className, ...(maskPath ? { maskPath } : {}) });
    }
  }
  classes.sort(byCodePoint);
  requireTwoClasses(root, classes);
  return {
    root,
    layout: kaggle ? 'kaggle' : 'flat',
    classes,
    samples: labelled(samples, classes),
    ...(notes.length ? { notes } : {}),
  };
}

function labelled(samples: Omit<Sample, 'label'>[], classes: string[]): Sample[] {
  const index = new Map(classes.map((c, i) => [c, i]));
  return samples
    .map((s) => ({ ...s, label: index.get(s.className)! }))
    .sort((a, b) => a.label - b.label || byCodePoint(a.path, b.path));
}

/**
 * Parses "COVID-19*=COVID,No Finding=Normal" (`;` also separates). A finding that itself contains a comma,
 * like "COVID-19, ARDS=COVID", stays whole: a piece without '=' is joined to the next one.
 */
export function parseFindingMapping(spec: string): Record<string, string> {
  const out: Record<string, string> = {};
  let pending = '';
  for (const piece of spec.split(/[,;]/)) {
    const text = pending ? `${pending},${piece}` : piece;
    const eq = text.lastIndexOf('=');
    if (eq < 0) {
      pending = text;
      continue;
    }
    pending = '';
    const key = text.slice(0, eq).trim();
    const value = text.slice(eq + 1).trim();
    if (!key || !value) throw new DatasetError(`bad finding mapping entry '${text.trim()}' (expected finding=Class)`);
    out[key] = value;
  }
  if (pending.trim()) throw new DatasetError(`bad finding mapping entry '${pending.trim()}' (expected finding=Class)`);
  if (Object.keys(out).length === 0) throw new DatasetError('empty finding mapping (expected e.g. "COVID-19*=COVID,No Finding=Normal")');
  return out;
}

/**
 * The class of a finding: an exact (case-insensitive) pattern first, else the longest matching prefix
 * pattern ('COVID-19*'), else undefined.
 */
export function mapFinding(finding: string, mapping: Record<string, string>): string | undefined {
  const f = finding.trim().toLowerCase();
  let best: string | undefined;
  let bestLen = -1;
  for (const [pattern, cls] of Object.entries(mapping)) {
    const p = pattern.trim().toLowerCase();
    if (p.endsWith('*')) {
      const prefix = p.slice(0, -1);
      if (f.startsWith(prefix) && prefix.length > bestLen) {
        best = cls;
        bestLen = prefix.length;
      }
    } else if (p === f) {
      return cls;
    }
  }
  return best;
}

/** RFC 4180 CSV (quoted fields with commas, doubled quotes, CRLF) -> rows of fields. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      field = '';
      if (row.length > 1 || row[0] !== '') rows.push(row);
      row = [];
    } else field += ch;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/**
 * Metadata-CSV datasets (ieee8023 covid-chestxray-dataset: columns filename, finding, patientid, view,
 * folder). Rows are mapped to classes through `mapping`; unmapped rows, other views, files missing on disk and
 * repeated file names are dropped and counted. Masks come from `masks/<stem>_mask.png` when present.
 */
export async function discoverCsvDataset(
  dir: string,
  opts: { csv?: string; mapping: Record<string, string>; imageDir?: string; views?: string[] },
): Promise<Dataset> {
  const notes: string[] = [];
  const root = await resolveRoot(dir, notes);
  const csvPath = join(root, opts.csv ?? 'metadata.csv');
  if (Object.keys(opts.mapping).length === 0) throw new DatasetError('empty finding mapping');
  let text: string;
  try {
    text = await readFile(csvPath, 'utf8');
  } catch {
    throw new DatasetError(`no metadata CSV at ${csvPath}`);
  }
  const { header, rows } = csvTable(text);
  const col = (name: string) => header.indexOf(name);
  const iFile = col('filename');
  const iFinding = col('finding');
  if (iFile < 0 || iFinding < 0) {
    throw new DatasetError(`${csvPath} needs 'filename' and 'finding' columns (found: ${header.join(', ')})`);
  }
  const iPatient = col('patientid');
  const iView = col('view');
  const iFolder = col('folder');
  const views = opts.views?.map((v) => v.trim().toLowerCase());
  const maskOf = await maskFinder(join(root, 'masks'));
  const dropped = { unmapped: 0, view: 0, missingFile: 0, duplicate: 0 };
  const seen = new Set<string>();
  const samples: Omit<Sample, 'label'>[] = [];
  for (const r of rows) {
    const filename = (r[iFile] ?? '').trim();
    const className = mapFinding(r[iFinding] ?? '', opts.mapping);
    if (!filename || !className) {
      dropped.unmapped++;
      continue;
    }
    if (views && !views.includes((r[iView] ?? '').trim().toLowerCase())) {
      dropped.view++;
      continue;
    }
    const folder = opts.imageDir ?? ((iFolder >= 0 && r[iFolder]?.trim()) || 'images');
    const path = join(root, folder, filename);
    if (seen.has(path)) {
      // The same image listed twice (e.g. under two patient ids) would otherwise leak across splits.
      dropped.duplicate++;
      continue;
    }
    if (!(await isFile(path))) {
      dropped.missingFile++;
      continue;
    }
    seen.add(path);
    const patientId = iPatient >= 0 ? r[iPatient]?.trim() : undefined;
    const maskPath = maskOf(basename(filename));
    samples.push({
      path,
      className,
      ...(patientId ? { patientId } : {}),
      ...(maskPath ? { maskPath } : {}),
    });
  }
  const present = [...new Set(samples.map((s) => s.className))].sort(byCodePoint);
  for (const cls of new Set(Object.values(opts.mapping))) {
    if (!present.includes(cls)) throw new DatasetError(`class '${cls}' has no images (no row of ${csvPath} maps to it with a file on disk)`);
  }
  requireTwoClasses(root, present);
  if (dropped.missingFile) notes.push(`${dropped.missingFile} rows dropped: image file missing on disk`);
  if (dropped.duplicate) notes.push(`${dropped.duplicate} rows dropped: file listed more than once`);
  return { root, layout: 'csv', classes: present, samples: labelled(samples, present), notes, dropped };
}
