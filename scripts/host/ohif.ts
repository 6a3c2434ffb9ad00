// Obtains the prebuilt OHIF viewer: `npm pack @ohif/app@VERSION` once, keep its `package/dist` in a cache folder.
// (Installing @ohif/app as a dependency does not resolve on the registry; the packed tarball is complete.)
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const OHIF_VERSION = '3.13.2';

/** Folder that holds `index.html` of the given viewer version under `cacheDir`. */
export function ohifDistDir(cacheDir: string, version = OHIF_VERSION): string {
  return join(resolve(cacheDir), `app-${version}`, 'dist');
}

/**
 * Returns the viewer's dist folder, downloading and extracting it on first use. Safe against interrupted runs:
 * the tarball is unpacked in a temporary folder and moved into place only when complete.
 */
export async function ensureOhifDist(
  cacheDir: string,
  version = OHIF_VERSION,
  log: (line: string) => void = () => {},
): Promise<string> {
  const dist = ohifDistDir(cacheDir, version);
  if (existsSync(join(dist, 'index.html'))) return dist;
  mkdirSync(resolve(cacheDir), { recursive: true });
  const work = mkdtempSync(join(resolve(cacheDir), '.pack-'));
  try {
    log(`fetching the prebuilt OHIF viewer @ohif/app@${version} (npm pack, ~50 MB, once)`);
    const { stdout } = await run('npm', ['pack', `@ohif/app@${version}`, '--json', '--pack-destination', work], {
      cwd: work,
      maxBuffer: 64 * 1024 * 1024,
    });
    const packed = JSON.parse(stdout) as { filename: string }[];
    const tarball = join(work, packed[0].filename.replace(/^.*\//, ''));
    await run('tar', ['-xzf', tarball, '-C', work, 'package/dist']);
    if (!existsSync(join(work, 'package', 'dist', 'index.html'))) throw new Error('the packed viewer has no dist/index.html');
    mkdirSync(join(dist, '..'), { recursive: true });
    rmSync(dist, { recursive: true, force: true });
    renameSync(join(work, 'package', 'dist'), dist);
    return dist;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
