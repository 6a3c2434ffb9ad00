// The viewer's own fixes in the page (extension/src/viewerFixes.ts), on the shared DICOM files that need them and
// on a fake Cornerstone (metadata providers by priority, a web worker manager): the CR study's Pixel Spacing 0\0
// becomes the image loader's own "no spacing" plane, the DX file's JPEG 2000 frame reaches the decoder without
// its trailer, everything else passes unchanged, and the rules are the host's.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { usableSpacing } from '../../extension/src/pixelSpacing.js';
import { installViewerFixes, repairedDecodeArgs, sanitizedPlane } from '../../extension/src/viewerFixes.js';
import type { CornerstoneLib, CsWebWorkerManager } from '../../extension/src/ohif-types.js';
import { readFrame } from '../../scripts/host/dicom-folder.js';
import { parseDicomBytes } from '../../scripts/host/dicom-json.js';
import { sanitizeSpacing } from '../../scripts/host/viewer-fixes.js';
import { trimJ2kTrailer } from '../../trainer/src/image/j2k.js';
import { sharedPath } from '../helpers/shared.js';

const dataset = (name: string) => parseDicomBytes(new Uint8Array(readFileSync(sharedPath('dicom', name))));
const TS = { j2kLossless: '1.2.840.10008.1.2.4.90', j2kLossy: '1.2.840.10008.1.2.4.91', jpegLs: '1.2.840.10008.1.2.4.81' };

/** A shared file's image plane as Cornerstone's DICOM image loader describes it (spacing as stored). */
function planeOf(name: string) {
  const ds = dataset(name);
  const ps = ds.string('x00280030')?.split('\\').map(Number);
  return { rows: ds.uint16('x00280010'), columns: ds.uint16('x00280011'), pixelSpacing: ps, rowPixelSpacing: ps?.[0] ?? null, columnPixelSpacing: ps?.[1] ?? null, usingDefaultValues: false };
}

/** Cornerstone's metadata registry: the highest priority is asked first, the first answer wins. */
function fakeCornerstone(answer: (type: string, imageId: string) => unknown) {
  const providers: { p: (type: string, id: string) => unknown; priority: number }[] = [];
  const tasks: { worker: string; task: string; args: unknown }[] = [];
  const manager: CsWebWorkerManager = { executeTask: async (worker, task, args) => void tasks.push({ worker, task, args }) };
  const cs = {
    metaData: {
      addProvider(p: (type: string, id: string) => unknown, priority = 0) {
        providers.push({ p, priority });
        providers.sort((a, b) => b.priority - a.priority);
      },
      get(type: string, id: string) {
        for (const { p } of providers) {
          const v = p(type, id);
          if (v !== undefined) return v;
        }
        return undefined;
      },
    },
    getWebWorkerManager: () => manager,
    cache: { getImage: () => undefined },
    Enums: { Events: {} },
  } satisfies CornerstoneLib;
  cs.metaData.addProvider(answer, 9999); // OHIF's provider's priority
  return { cs, tasks, manager };
}

describe('pixel spacing', () => {
  test('the rule: two positive finite numbers (as numbers or DICOM strings)', () => {
    assert.equal(usableSpacing([0.16, 0.16]), true);
    assert.equal(usableSpacing(['0.2', '0.2']), true);
    for (const bad of [[0, 0], [0.1], [-1, 1], ['x', 1], [0.1, 0], [NaN, 1], undefined, null, 0.2]) {
      assert.equal(usableSpacing(bad), false, JSON.stringify(bad));
    }
  });

  test('the CR study\'s Pixel Spacing 0\\0 gives the plane of an image without a spacing; a real spacing is kept', () => {
    for (const name of ['cr-mono1-15bit-jpeg2000-lossy.dcm', 'cr-mono1-15bit-jpegls-near-lossless.dcm']) {
      const plane = planeOf(name);
      assert.deepEqual(plane.pixelSpacing, [0, 0], `${name} stores Pixel Spacing 0\\0`);
      const fixed = sanitizedPlane(plane);
      assert.deepEqual(fixed, { rows: plane.rows, columns: plane.columns, rowPixelSpacing: 1, columnPixelSpacing: 1, usingDefaultValues: true });
      assert.deepEqual(plane.pixelSpacing, [0, 0], 'the provider\'s own object is left as it was');
    }
    const dx = planeOf('dx-mono1-12bit-jpeg2000-lossless.dcm');
    assert.deepEqual(dx.pixelSpacing, [0.16, 0.16]);
    assert.equal(sanitizedPlane(dx), dx, 'a usable spacing: the same object');
    const none = { rows: 2, columns: 2, pixelSpacing: undefined, rowPixelSpacing: 1, columnPixelSpacing: 1, usingDefaultValues: true };
    assert.equal(sanitizedPlane(none), none, 'no spacing given: nothing to change');
    assert.equal(sanitizedPlane({ rowPixelSpacing: 0, columnPixelSpacing: 0 }).rowPixelSpacing, 1, 'row / column alone count too');
  });

  test('the host applies the same rule to the DICOM JSON it serves', () => {
    const json = { '00280030': { vr: 'DS', Value: planeOf('cr-mono1-15bit-jpegls-near-lossless.dcm').pixelSpacing } };
    assert.deepEqual(sanitizeSpacing(json), ['00280030']);
    assert.deepEqual(sanitizeSpacing({ '00280030': { vr: 'DS', Value: [0.16, 0.16] } }), []);
  });
});

describe('JPEG 2000 frames', () => {
  test('the DX file\'s codestream reaches the decoder without its trailer; other frames and syntaxes are untouched', () => {
    const stored = readFrame(dataset('dx-mono1-12bit-jpeg2000-lossless.dcm'), 0).bytes;
    const args = { transferSyntax: TS.j2kLossless, pixelData: stored, imageFrame: { rows: 1 } };
    const fixed = repairedDecodeArgs(args);
    assert.ok(fixed.pixelData.length < stored.length, 'the shared DX codestream has a marker after its last tile-part');
    assert.deepEqual(fixed.pixelData, trimJ2kTrailer(stored), 'the host\'s rule, the same bytes');
    assert.deepEqual([...fixed.pixelData.subarray(-2)], [0xff, 0xd9], 'it ends at EOC');
    assert.equal(fixed.imageFrame, args.imageFrame, 'the other arguments go as they were');
    const lossy = readFrame(dataset('cr-mono1-15bit-jpeg2000-lossy.dcm'), 0).bytes;
    const clean = { transferSyntax: TS.j2kLossy, pixelData: lossy };
    assert.equal(repairedDecodeArgs(clean), clean, 'a clean codestream: the same arguments');
    const ls = { transferSyntax: TS.jpegLs, pixelData: stored };
    assert.equal(repairedDecodeArgs(ls), ls, 'not JPEG 2000: untouched');
  });
});

describe('installed on Cornerstone', () => {
  const planes: Record<string, object> = {
    'dicomfile:0': planeOf('cr-mono1-15bit-jpegls-near-lossless.dcm'),
    'dicomfile:1': planeOf('dx-mono1-12bit-jpeg2000-lossless.dcm'),
  };

  test('imagePlaneModule is answered sanitized from the providers below; other modules and images as before', () => {
    const { cs } = fakeCornerstone((type, id) => (type === 'imagePlaneModule' ? planes[id] : type === 'instance' ? { id } : undefined));
    assert.deepEqual(installViewerFixes(cs), ['pixel spacing', 'JPEG 2000 trailer']);
    const plane = cs.metaData.get('imagePlaneModule', 'dicomfile:0') as Record<string, unknown>;
    assert.deepEqual([plane.rowPixelSpacing, plane.columnPixelSpacing, plane.usingDefaultValues, 'pixelSpacing' in plane], [1, 1, true, false]);
    assert.equal(cs.metaData.get('imagePlaneModule', 'dicomfile:1'), planes['dicomfile:1']);
    assert.equal(cs.metaData.get('imagePlaneModule', 'dicomfile:9'), undefined, 'no plane: none');
    assert.deepEqual(cs.metaData.get('instance', 'dicomfile:0'), { id: 'dicomfile:0' });
    assert.deepEqual(installViewerFixes(cs), [], 'installed once');
    assert.equal((cs.metaData.get('imagePlaneModule', 'dicomfile:0') as Record<string, unknown>).rowPixelSpacing, 1);
  });

  test('decode tasks of the image loader go with a repaired codestream; other tasks as they were', async () => {
    const { cs, tasks, manager } = fakeCornerstone(() => undefined);
    installViewerFixes(cs);
    const stored = readFrame(dataset('dx-mono1-12bit-jpeg2000-lossless.dcm'), 0).bytes;
    const args = { transferSyntax: TS.j2kLossless, pixelData: stored };
    await manager.executeTask('dicomImageLoader', 'decodeTask', args);
    await manager.executeTask('other', 'decodeTask', args);
    await manager.executeTask('dicomImageLoader', 'otherTask', args);
    assert.deepEqual((tasks[0]?.args as typeof args).pixelData, trimJ2kTrailer(stored));
    assert.equal(tasks[1]?.args, args);
    assert.equal(tasks[2]?.args, args);
    installViewerFixes(cs);
    await manager.executeTask('dicomImageLoader', 'decodeTask', args);
    assert.equal(tasks.length, 4, 'wrapped once: one task per call');
  });

  test('a Cornerstone without these APIs gets nothing and no error', () => {
    assert.deepEqual(installViewerFixes({ metaData: { get: () => undefined }, cache: { getImage: () => undefined }, Enums: { Events: {} } }), []);
  });
});
