// Tests reach the read-only data, weights and DICOM files as ../shared beside the project's root.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const sharedRoot = resolve(process.env.ZEROVAR_SHARED ?? join(projectRoot, '..', 'shared'));

/** Path inside ../shared; throws a clear message when the shared folder or the entry is missing. */
export function sharedPath(...parts: string[]): string {
  const p = join(sharedRoot, ...parts);
  if (!existsSync(p)) {
    throw new Error(
      `missing shared test data: ${p}\n` +
        'The tests need the shared data, weights and DICOM files laid out as ../shared beside the project root ' +
        '(or set ZEROVAR_SHARED to their folder).',
    );
  }
  return p;
}
