// DICOM fixtures for the viewer's end-to-end test: what each study should show, and a folder with broken files.
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dicomParser from 'dicom-parser';

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
  const real = readFileSync(join(dir, names[0]!));
  writeFileSync(join(out, 'corrupt-truncated.dcm'), real.subarray(0, Math.floor(real.length / 2)));
  return { dir: out, corrupt: ['corrupt-noise.dcm', 'corrupt-truncated.dcm'] };
}
