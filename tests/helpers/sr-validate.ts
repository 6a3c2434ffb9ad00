// Runs the third-party DICOM readers on an SR file: DCMTK's dsrdump (must exit 0 with no E: or F: line; W: warnings pass) and
// dicom3tools' dciodvfy (its "Error" lines are returned; warnings are not errors); dciodvfy alone for other IODs.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const DSRDUMP = '/usr/bin/dsrdump';
export const DCIODVFY = '/usr/bin/dciodvfy';

export function validateSr(file: string): { dsrdump: string; dciodvfy: string; dciodvfyErrors: string[] } {
  const missing = [DSRDUMP, DCIODVFY].filter((p) => !existsSync(p));
  if (missing.length) throw new Error(`${missing.join(', ')} missing: install the Debian packages dcmtk and dicom3tools (.ci/run does)`);
  const d = spawnSync(DSRDUMP, [file], { encoding: 'utf8' });
  if (d.status !== 0 || /^[EF]:/m.test(d.stderr)) throw new Error(`dsrdump failed (exit ${d.status}): ${d.stderr}`);
  return { dsrdump: d.stdout + d.stderr, ...verifyIod(file) };
}

/** dciodvfy on any DICOM file (e.g. the attention map's Secondary Capture): its output and its "Error" lines. */
export function verifyIod(file: string): { dciodvfy: string; dciodvfyErrors: string[] } {
  if (!existsSync(DCIODVFY)) throw new Error(`${DCIODVFY} missing: install the Debian package dicom3tools (.ci/run does)`);
  const v = spawnSync(DCIODVFY, [file], { encoding: 'utf8' });
  const out = `${v.stdout}\n${v.stderr}`;
  return { dciodvfy: out, dciodvfyErrors: out.split('\n').filter((l) => /^\s*Error/.test(l)) };
}
