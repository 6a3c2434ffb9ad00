// What the viewer changes in the page so that OHIF shows every real image whatever serves it (files dropped into
// the local-files source above all, which the host never sees): the host's two rules (scripts/host/viewer-fixes.ts)
// applied where Cornerstone reads the image. A JPEG 2000 codestream loses the markers after its last tile-part
// before OHIF's decoder gets it (OpenJPEG decodes nothing from it otherwise), and an unusable pixel spacing is
// left out of the image plane Cornerstone builds its camera from. Both go through Cornerstone's public API: a
// metadata provider of its own, and the one call through which every frame goes to the decoding worker.
import { trimJ2kTrailer } from '@zerovar/trainer/browser';
import type { CornerstoneLib } from './ohif-types.js';
import { usableSpacing } from './pixelSpacing.js';

/** JPEG 2000 lossless and lossy. */
export const J2K_TRANSFER_SYNTAXES: ReadonlySet<string> = new Set(['1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.91']);

type Plane = Partial<Record<'pixelSpacing' | 'rowPixelSpacing' | 'columnPixelSpacing', unknown>>;
const given = (v: unknown) => v !== undefined && v !== null;

/**
 * An image plane (Cornerstone's imagePlaneModule) with an unusable spacing replaced as the image loader's own
 * provider describes an image without one: one pixel a unit, flagged as default values (Cornerstone takes a plane
 * that says it holds defaults as it is, so the spacing must be a usable one, not just absent). The same object
 * when the spacing is usable or absent.
 */
export function sanitizedPlane<T extends object>(plane: T): T {
  const p = plane as Plane;
  const pair = given(p.pixelSpacing) ? p.pixelSpacing
    : given(p.rowPixelSpacing) || given(p.columnPixelSpacing) ? [p.rowPixelSpacing, p.columnPixelSpacing] : undefined;
  if (pair === undefined || usableSpacing(pair)) return plane;
  const out = { ...plane, rowPixelSpacing: 1, columnPixelSpacing: 1, usingDefaultValues: true } as Record<string, unknown>;
  delete out.pixelSpacing;
  return out as T;
}

/** The arguments of a decode task, as Cornerstone's DICOM image loader sends them to its worker. */
export interface DecodeTaskArgs {
  transferSyntax?: string;
  pixelData?: unknown;
}

/** A decode task's arguments with a JPEG 2000 codestream repaired; the same object when nothing changes. */
export function repairedDecodeArgs<T extends DecodeTaskArgs>(args: T): T {
  if (!args || !J2K_TRANSFER_SYNTAXES.has(String(args.transferSyntax)) || !(args.pixelData instanceof Uint8Array)) return args;
  const fixed = trimJ2kTrailer(args.pixelData);
  return fixed === args.pixelData ? args : { ...args, pixelData: fixed };
}

/** The image loader's worker and task names in Cornerstone's web worker manager. */
const DECODE_WORKER = 'dicomImageLoader';
const DECODE_TASK = 'decodeTask';
/** Above OHIF's and the image loader's own providers (the highest priority answers first). */
const PROVIDER_PRIORITY = 100_000;

const fixed = new WeakSet<object>();

/**
 * Installs both fixes on a Cornerstone instance, once; returns the ones installed (none again on a second call).
 * The metadata provider answers imagePlaneModule from the providers below it, sanitized; the decode hook passes
 * every other task through unchanged.
 */
export function installViewerFixes(cs: CornerstoneLib): string[] {
  const done: string[] = [];
  const { metaData } = cs;
  if (metaData.addProvider && !fixed.has(metaData)) {
    fixed.add(metaData);
    const resolving = new Set<string>();
    metaData.addProvider((type, imageId) => {
      if (type !== 'imagePlaneModule' || resolving.has(imageId)) return undefined;
      resolving.add(imageId); // asked again from here, this provider steps aside for the ones below it
      let plane: unknown;
      try {
        plane = metaData.get(type, imageId);
      } finally {
        resolving.delete(imageId);
      }
      return plane && typeof plane === 'object' ? sanitizedPlane(plane) : undefined;
    }, PROVIDER_PRIORITY);
    done.push('pixel spacing');
  }
  const manager = cs.getWebWorkerManager?.();
  if (manager && !fixed.has(manager)) {
    fixed.add(manager);
    const execute = manager.executeTask.bind(manager);
    manager.executeTask = (worker, task, args, options) =>
      execute(worker, task, worker === DECODE_WORKER && task === DECODE_TASK ? repairedDecodeArgs(args as DecodeTaskArgs) : args, options);
    done.push('JPEG 2000 trailer');
  }
  return done;
}
