// Atomic writes: everything is written under a temporary sibling name and renamed into place, so an interrupted
// run never leaves a half-written file or folder under the final name (a rename within a folder is atomic).
// Temporary names contain '.tmp-', which is how leftovers of an interrupted write are recognised.
import { renameSync, writeFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';

/** A temporary name beside `path`, unique to this process and call. */
export function tempSibling(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = tempSibling(path);
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/** The synchronous form, for callers that save state between synchronous steps. */
export function writeFileAtomicSync(path: string, data: Uint8Array | string): void {
  const tmp = tempSibling(path);
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomicSync(path, JSON.stringify(value, null, 2));
}

/**
 * Builds a folder at `dir` through `fill` (given a temporary sibling folder to write into), then puts it in
 * place. An existing folder at `dir` is moved aside first and removed only once the new one is in place; on an
 * error the temporary folder is removed and `dir` is left as it was.
 */
export async function writeDirAtomic<T>(dir: string, fill: (tmp: string) => Promise<T>): Promise<T> {
  const tmp = tempSibling(dir);
  try {
    await mkdir(tmp, { recursive: true });
    const result = await fill(tmp);
    await replaceDir(tmp, dir);
    return result;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

async function replaceDir(from: string, to: string): Promise<void> {
  const aside = `${to}.old-${process.pid}-${randomBytes(4).toString('hex')}`;
  let moved = false;
  try {
    await rename(to, aside);
    moved = true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  try {
    await rename(from, to);
  } catch (e) {
    if (moved) await rename(aside, to);
    throw e;
  }
  if (moved) await rm(aside, { recursive: true, force: true });
}
