// Fixtures for the viewer's end-to-end test: what each study should show, a folder with broken files, a CT
// instance, a lateral chest X-ray as a DX instance (what the out-of-distribution guard must flag), and a tampered
// copy of a model bundle.
import { copyFileSync, cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dicomParser from 'dicom-parser';
import { decodePng } from '../../trainer/src/data/decode.js';
import { buildDicom } from '../helpers/dicom-writer.js';

export interface ExpectedStudy {
  studyUid: string;
  /** `modality columns x rows` of each instance; the viewer shows one of them. */
  images: { modality: string; columns: number; rows: number; file: string }[];
}

/** Reads the folder's files directly with dicom-parser (independently of the host's index). */
export function expectedStudies(dir: string): ExpectedStudy[] {
  const byStudy = new Map<string, ExpectedStudy>();
  for (const name of readdirSync(dir).sort()) {
    const bytes = new Uint8Array(readFileSync(join(dir, name)));
    let ds;
    try {
      ds = dicomParser.parseDicom(bytes);
    } catch {
      ds = dicomParser.parseDicom(bytes, { TransferSyntaxUID: '1.2.840.10008.1.2' });
    }
    const studyUid = ds.string('x0020000d')!;
    const entry = byStudy.get(studyUid) ?? { studyUid, images: [] };
    entry.images.push({
      modality: ds.string('x00080060')!,
      columns: ds.uint16('x00280011')!,
      rows: ds.uint16('x00280010')!,
      file: name,
    });
    byStudy.set(studyUid, entry);
  }
  return [...byStudy.values()];
}

/** A copy of `dir` plus two broken files: random bytes, and a real file cut short inside its pixel data. */
export function folderWithCorruptFiles(dir: string): { dir: string; corrupt: string[] } {
  const out = mkdtempSync(join(tmpdir(), 'zerovar-dicom-'));
  const names = readdirSync(dir).sort();
  for (const name of names) copyFileSync(join(dir, name), join(out, name));
  const noise = new Uint8Array(4096);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 7919 + 13) % 251;
  writeFileSync(join(out, 'corrupt-noise.dcm'), noise);
  const real = readFileSync(join(dir, names[0]));
  writeFileSync(join(out, 'corrupt-truncated.dcm'), real.subarray(0, Math.floor(real.length / 2)));
  return { dir: out, corrupt: ['corrupt-noise.dcm', 'corrupt-truncated.dcm'] };
}

/**
 * A synthetic CT instance (a smooth 16-bit ramp) in its own study: the DICOM writer makes DX files, so the
 * Modality value is patched in place (same length). Returns the study UID.
 */
export function writeCtInstance(file: string): string {
  const size = 128;
  const samples = new Uint16Array(size * size);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) samples[y * size + x] = 40 * x + 20 * y;
  const bytes = buildDicom({ rows: size, columns: size, samples, bitsStored: 16, windowCenter: '3000', windowWidth: '6000' });
  // (0008,0060) CS, length 2, "DX" in explicit VR little endian.
  const pattern = [0x08, 0x00, 0x60, 0x00, 0x43, 0x53, 0x02, 0x00, 0x44, 0x58];
  const at = bytes.findIndex((_, i) => pattern.every((b, k) => bytes[i + k] === b));
  if (at < 0) throw new Error('the DICOM writer no longer writes Modality DX where expected');
  bytes[at + 8] = 0x43; // C
  bytes[at + 9] = 0x54; // T
  writeFileSync(file, bytes);
  return dicomParser.parseDicom(bytes).string('x0020000d')!;
}

/**
 * A lateral chest X-ray (a PNG of the shared out-of-distribution set) as an 8-bit DX instance in a study of its
 * own, View Position LL. Returns the study UID.
 */
export function writeLateralInstance(png: string, file: string): string {
  const grey = decodePng(new Uint8Array(readFileSync(png)));
  const root = '1.2.826.0.1.3680043.2.1125.77';
  const bytes = buildDicom({
    rows: grey.height, columns: grey.width, samples: grey.data, bitsAllocated: 8, bitsStored: 8,
    windowCenter: '127.5', windowWidth: '256', viewPosition: 'LL',
    studyUid: `${root}.2`, seriesUid: `${root}.3`, sopInstanceUid: `${root}.1`,
  });
  writeFileSync(file, bytes);
  return dicomParser.parseDicom(bytes).string('x0020000d')!;
}

/**
 * A copy of a trainer-made models folder whose raw bundle has one byte of its weights flipped: the viewer must
 * refuse it by checksum. Returns the folder (holding `raw/` only).
 */
export function tamperedModels(modelsDir: string): string {
  const out = mkdtempSync(join(tmpdir(), 'zerovar-models-'));
  cpSync(join(modelsDir, 'raw'), join(out, 'raw'), { recursive: true });
  const manifest = JSON.parse(readFileSync(join(out, 'raw', 'manifest.json'), 'utf8')) as { files: Record<string, string> };
  const weights = Object.keys(manifest.files).find((p) => p.startsWith('model/') && p.endsWith('.bin'));
  if (!weights) throw new Error('the raw bundle lists no weight file');
  const path = join(out, 'raw', weights);
  const bytes = readFileSync(path);
  bytes[Math.floor(bytes.length / 2)] ^= 0x01;
  writeFileSync(path, bytes);
  return out;
}
