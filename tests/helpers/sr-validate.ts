// Runs the third-party DICOM readers on an SR file: DCMTK's dsrdump (must exit 0 with no E: or F: line; W: warnings pass) and
// dicom3tools' dciodvfy (its "Error" lines are returned; warnings are not errors).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const DSRDUMP = '/usr/bin/dsrdump';
export const DCIODVFY = '/usr/bin/dciodvfy';

export function validateSr(file: string): { dsrdump: string; dciodvfy: string; dciodvfyErrors: string[] } {
  const missing = [DSRDUMP, DCIODVFY].filter((p) => !existsSync(p));
  if (missing.length) throw new Error(`${missing.join(', ')} missing: install the Debian packages dcmtk and dicom3tools (.ci/run does)`);
  const d = spawnSync(DSRDUMP, [file], { encoding: 'utf8' });
  if (d.status !== 0 || /^[EF]:/m.test(d.stderr)) throw new Error(`dsrdump failed (exit ${d.status}): ${d.stderr}`);
  const v = spawnSync(DCIODVFY, [file], { encoding: 'utf8' });
  const out = `${v.stdout}\n${v.stderr}`;
  return { dsrdump: d.stdout + d.stderr, dciodvfy: out, dciodvfyErrors: out.split('\n').filter((l) => /^\s*Error/.test(l)) };
}
