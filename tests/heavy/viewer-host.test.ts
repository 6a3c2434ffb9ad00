// The viewer host without a browser: the embedded DICOMweb source, the static server and proxy, app-config, mode.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { sharedPath } from '../helpers/shared.js';
import { indexDicomFolder, readFrame, type DicomFolderIndex } from '../../scripts/host/dicom-folder.js';
import { parseDicomBytes } from '../../scripts/host/dicom-json.js';
import { createDicomWebSource } from '../../scripts/host/dicomweb.js';
import { renderAppConfig } from '../../scripts/host/app-config.js';
import { startHost, type RunningHost } from '../../scripts/host/server.js';
import mode, { isChestRadiographStudy, ROUTE_NAME } from '../../mode/src/index.js';
import { PANEL_ID } from '../../extension/src/ids.js';
import { folderWithCorruptFiles } from '../e2e/fixtures.js';
import { trimJ2kTrailer } from '../../trainer/src/image/j2k.js';

type Json = Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string }>;

describe('embedded DICOMweb source', () => {
  let folder: { dir: string; corrupt: string[] };
  let index: DicomFolderIndex;
  let host: RunningHost;
  let web: string;
  let dist: string;

  before(async () => {
    folder = folderWithCorruptFiles(sharedPath('dicom'));
    index = indexDicomFolder(folder.dir);
    dist = mkdtempSync(join(tmpdir(), 'zerovar-dist-'));
    writeFileSync(join(dist, 'index.html'), '<!doctype html><title>viewer</title>');
    mkdirSync(join(dist, 'assets'));
    writeFileSync(join(dist, 'assets', 'a.css'), 'body{}');
    host = await startHost({
      ohifDist: dist, appConfig: 'window.config = {};', bundleDir: dist, port: 0,
      embedded: createDicomWebSource(index, '/dicom-web'),
    });
    web = `${host.url}/dicom-web`;
  });
  after(async () => {
    await host.close();
    rmSync(folder.dir, { recursive: true, force: true });
    rmSync(dist, { recursive: true, force: true });
  });

  test('indexing skips corrupt and duplicate files and keeps every valid instance', () => {
    const skipped = index.skipped.map((s) => s.file).sort();
    assert.deepEqual(skipped, ['corrupt-noise.dcm', 'corrupt-truncated.dcm', 'cr-mono1-10bit-implicit-le-nometa.dcm']);
    assert.match(index.skipped.find((s) => s.file.includes('nometa'))!.reason, /duplicate SOP Instance UID/);
    assert.equal(index.instances.length, 6);
  });

  test('QIDO-RS lists studies with modalities and counts, and filters by UID', async () => {
    const studies = (await (await fetch(`${web}/studies`)).json()) as Json[];
    assert.equal(studies.length, 5);
    const two = studies.find((s) => s['00201208']?.Value?.[0] === 2);
    assert.ok(two, 'the JPEG 2000 / JPEG-LS study has two instances');
    assert.deepEqual(two['00080061'].Value, ['CR']);
    const uid = String(two['0020000D'].Value![0]);
    const one = (await (await fetch(`${web}/studies?StudyInstanceUID=${uid}`)).json()) as Json[];
    assert.equal(one.length, 1);
    const series = (await (await fetch(`${web}/studies/${uid}/series`)).json()) as Json[];
    assert.equal(series.length, 1);
    assert.equal(series[0]['00201209'].Value![0], 2);
    const dx = (await (await fetch(`${web}/studies?ModalitiesInStudy=DX`)).json()) as Json[];
    assert.equal(dx.length, 1);
  });

  test('WADO-RS metadata carries pixel attributes and a BulkDataURI under the mount root', async () => {
    const inst = index.instances.find((i) => i.file.endsWith('cr-mono1-10bit-explicit-le.dcm'))!;
    const meta = (await (await fetch(`${web}/studies/${inst.studyUid}/series/${inst.seriesUid}/metadata`)).json()) as Json[];
    assert.equal(meta.length, 1);
    const m = meta[0];
    assert.deepEqual(m['00280010'], { vr: 'US', Value: [440] });
    assert.deepEqual(m['00280004'], { vr: 'CS', Value: ['MONOCHROME1'] });
    assert.equal(m['7FE00010'].BulkDataURI, `/dicom-web/studies/${inst.studyUid}/series/${inst.seriesUid}/instances/${inst.sopUid}/frames/1`);
  });

  test('frames come as multipart/related in the stored transfer syntax', async () => {
    for (const inst of index.instances) {
      const r = await fetch(`${web}/studies/${inst.studyUid}/series/${inst.seriesUid}/instances/${inst.sopUid}/frames/1`);
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type')!, /^multipart\/related; type="application\/octet-stream"; boundary=/);
      const body = Buffer.from(await r.arrayBuffer());
      const headerEnd = body.indexOf('\r\n\r\n');
      const header = body.subarray(0, headerEnd).toString('latin1');
      const expectedTs = inst.transferSyntax.startsWith('1.2.840.10008.1.2.4') ? inst.transferSyntax : '1.2.840.10008.1.2.1';
      assert.ok(header.includes(`transfer-syntax=${expectedTs}`), `${inst.file}: ${header}`);
      const payload = body.subarray(headerEnd + 4, body.lastIndexOf('\r\n--'));
      if (expectedTs === '1.2.840.10008.1.2.1') assert.equal(payload.length, 440 * 440 * 2);
      else assert.deepEqual([...payload.subarray(0, 2)], [0xff, expectedTs.endsWith('.90') || expectedTs.endsWith('.91') ? 0x4f : 0xd8]);
    }
    const inst = index.instances[0];
    const bad = await fetch(`${web}/studies/${inst.studyUid}/series/${inst.seriesUid}/instances/${inst.sopUid}/frames/2`);
    assert.equal(bad.status, 404);
    assert.equal((await fetch(`${web}/nonsense`)).status, 404);
  });

  test('frames OHIF rejects are served repaired, and zero pixel spacings are left out of the metadata', async () => {
    const dx = index.instances.find((i) => i.file.endsWith('dx-mono1-12bit-jpeg2000-lossless.dcm'))!;
    const stored = readFrame(parseDicomBytes(new Uint8Array(readFileSync(dx.file))), 0).bytes;
    const repaired = trimJ2kTrailer(stored);
    assert.ok(repaired.length < stored.length, 'the shared DX codestream has a marker after its last tile-part');
    const r = await fetch(`${web}/studies/${dx.studyUid}/series/${dx.seriesUid}/instances/${dx.sopUid}/frames/1`);
    const body = Buffer.from(await r.arrayBuffer());
    const payload = body.subarray(body.indexOf('\r\n\r\n') + 4, body.lastIndexOf('\r\n--'));
    assert.deepEqual(payload, Buffer.from(repaired), 'the served frame is the stored one without its trailer');
    const zero = index.instances.filter((i) => /cr-mono1-15bit/.test(i.file));
    assert.equal(zero.length, 2);
    for (const inst of zero) {
      const [m] = (await (await fetch(`${web}/studies/${inst.studyUid}/series/${inst.seriesUid}/instances/${inst.sopUid}/metadata`)).json()) as Json[];
      assert.equal(m['00280030'], undefined, `${inst.file}: Pixel Spacing 0\\0 is not served`);
      assert.equal(m['00280010'].Value?.[0], parseDicomBytes(new Uint8Array(readFileSync(inst.file))).uint16('x00280010'));
    }
    const [kept] = (await (await fetch(`${web}/studies/${dx.studyUid}/series/${dx.seriesUid}/instances/${dx.sopUid}/metadata`)).json()) as Json[];
    assert.deepEqual(kept['00280030'].Value, [0.16, 0.16], 'a real spacing is kept');
  });

  test('explicit and implicit VR copies of one image give identical native frames', () => {
    const read = (name: string) => readFrame(parseDicomBytes(new Uint8Array(readFileSync(sharedPath('dicom', name)))), 0);
    const a = read('cr-mono1-10bit-explicit-le.dcm');
    const b = read('cr-mono1-10bit-implicit-le-nometa.dcm');
    assert.equal(a.bytes.length, 440 * 440 * 2);
    assert.deepEqual(Buffer.from(a.bytes), Buffer.from(b.bytes));
  });

  test('static files are served cross-origin isolated, routes fall back to index.html, traversal is refused', async () => {
    const css = await fetch(`${host.url}/assets/a.css`);
    assert.equal(css.status, 200);
    assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
    for (const h of [['cross-origin-opener-policy', 'same-origin'], ['cross-origin-embedder-policy', 'require-corp'], ['cross-origin-resource-policy', 'same-origin']]) {
      assert.equal(css.headers.get(h[0]), h[1]);
    }
    const route = await fetch(`${host.url}/${ROUTE_NAME}?StudyInstanceUIDs=1.2.3`);
    assert.match(await route.text(), /<title>viewer<\/title>/);
    assert.equal((await fetch(`${host.url}/app-config.js`)).headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal((await fetch(`${host.url}/zerovar/..%2F..%2F..%2Fetc%2Fpasswd`)).status, 404);
    assert.equal((await fetch(`${host.url}/pacs/dicom-web/studies`)).status, 404, 'no PACS configured');
  });
});

describe('PACS proxy', () => {
  let upstream: Server;
  let upstreamRoot: string;
  let host: RunningHost;
  let dist: string;
  before(async () => {
    upstream = createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/dicom+json', 'Access-Control-Allow-Origin': '*' });
      res.end(JSON.stringify({ path: req.url, accept: req.headers.accept, uri: `${upstreamRoot}/studies/1/series/2/instances/3/bulk/7fe00010` }));
    });
    await new Promise<void>((ok) => upstream.listen(0, '127.0.0.1', ok));
    upstreamRoot = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/dicom-web`;
    dist = mkdtempSync(join(tmpdir(), 'zerovar-dist-'));
    writeFileSync(join(dist, 'index.html'), '<!doctype html>');
    host = await startHost({ ohifDist: dist, appConfig: '', bundleDir: dist, dicomweb: upstreamRoot, port: 0 });
  });
  after(async () => {
    await host.close();
    await new Promise((ok) => upstream.close(ok));
    rmSync(dist, { recursive: true, force: true });
  });

  test('forwards path, query and Accept; rewrites upstream URLs to the proxy; adds isolation headers', async () => {
    const r = await fetch(`${host.url}/pacs/dicom-web/studies?PatientID=7`, { headers: { Accept: 'application/dicom+json' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), null);
    assert.equal(r.headers.get('cross-origin-resource-policy'), 'same-origin');
    const body = (await r.json()) as { path: string; accept: string; uri: string };
    assert.equal(body.path, '/dicom-web/studies?PatientID=7');
    assert.equal(body.accept, 'application/dicom+json');
    assert.equal(body.uri, `${host.url}/pacs/dicom-web/studies/1/series/2/instances/3/bulk/7fe00010`);
  });

  test('repairs JPEG 2000 frames and drops zero pixel spacings in what the PACS answers', async () => {
    const dx = readFrame(parseDicomBytes(new Uint8Array(readFileSync(sharedPath('dicom', 'dx-mono1-12bit-jpeg2000-lossless.dcm')))), 0).bytes;
    const fake = createServer((req, res) => {
      if (req.url?.endsWith('/frames/1')) {
        res.writeHead(200, { 'Content-Type': 'multipart/related; type="application/octet-stream"; boundary=b0' });
        res.end(Buffer.concat([Buffer.from('--b0\r\nContent-Type: application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.90\r\n\r\n'), Buffer.from(dx), Buffer.from('\r\n--b0--\r\n')]));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/dicom+json' });
      res.end(JSON.stringify([{ '00280030': { vr: 'DS', Value: [0, 0] }, '00280010': { vr: 'US', Value: [7] } }]));
    });
    await new Promise<void>((ok) => fake.listen(0, '127.0.0.1', ok));
    const fakeHost = await startHost({ ohifDist: dist, appConfig: '', bundleDir: dist, dicomweb: `http://127.0.0.1:${(fake.address() as AddressInfo).port}/dicom-web`, port: 0 });
    try {
      const base = `${fakeHost.url}/pacs/dicom-web/studies/1/series/2/instances/3`;
      const frames = await fetch(`${base}/frames/1`);
      assert.match(frames.headers.get('content-type')!, /boundary=b0/);
      const body = Buffer.from(await frames.arrayBuffer());
      const payload = body.subarray(body.indexOf('\r\n\r\n') + 4, body.lastIndexOf('\r\n--'));
      assert.deepEqual(payload, Buffer.from(trimJ2kTrailer(dx)));
      assert.deepEqual(await (await fetch(`${base}/metadata`)).json(), [{ '00280010': { vr: 'US', Value: [7] } }]);
    } finally {
      await fakeHost.close();
      await new Promise((ok) => fake.close(ok));
    }
  });

  test('answers 502 when the PACS is down', async () => {
    const down = await startHost({ ohifDist: dist, appConfig: '', bundleDir: dist, dicomweb: 'http://127.0.0.1:9/dicom-web', port: 0 });
    try {
      const r = await fetch(`${down.url}/pacs/dicom-web/studies`);
      assert.equal(r.status, 502);
    } finally {
      await down.close();
    }
  });
});

describe('app-config and mode', () => {
  test('app-config names our bundles and data sources, and refuses an unknown default', () => {
    const text = renderAppConfig({ dataSources: [{ name: 'local', friendlyName: 'x', root: '/dicom-web' }], defaultDataSource: 'local' });
    const config = JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)) as {
      extensions: string[]; modes: string[]; defaultDataSourceName: string;
      dataSources: { configuration: { qidoRoot: string; imageRendering: string } }[];
    };
    assert.deepEqual(config.extensions, ['/zerovar/extension.js']);
    assert.deepEqual(config.modes, ['/zerovar/mode.js']);
    assert.equal(config.dataSources[0].configuration.qidoRoot, '/dicom-web');
    assert.equal(config.dataSources[0].configuration.imageRendering, 'wadors');
    assert.throws(() => renderAppConfig({ dataSources: [], defaultDataSource: 'pacs' }), /default data source/);
  });

  test('app-config with OHIF\'s local-files source only (npm start without a folder or a PACS)', () => {
    const text = renderAppConfig({ dataSources: [{ name: 'dicomlocal', friendlyName: 'Local files', root: '', kind: 'local-files' }], defaultDataSource: 'dicomlocal' });
    const config = JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)) as { dataSources: { namespace: string; sourceName: string }[]; defaultDataSourceName: string };
    assert.deepEqual(config.dataSources.map((d) => [d.namespace, d.sourceName]), [['@ohif/extension-default.dataSourcesModule.dicomlocal', 'dicomlocal']]);
    assert.equal(config.defaultDataSourceName, 'dicomlocal');
    assert.throws(() => renderAppConfig({ dataSources: [{ name: 'files', friendlyName: 'x', root: '', kind: 'local-files' }], defaultDataSource: 'files' }), /must be named dicomlocal/);
  });

  test('the mode accepts CR/DX studies only', () => {
    assert.equal(isChestRadiographStudy('CR'), true);
    assert.equal(isChestRadiographStudy('SR\\DX'), true);
    assert.equal(isChestRadiographStudy('CT\\SR'), false);
    assert.equal(isChestRadiographStudy(''), false);
  });

  test('the mode extends the basic mode: our route, our panel on the right, the overlay button on enter', async () => {
    const registered: unknown[] = [];
    const sections: [string, string[]][] = [];
    let baseEntered = 0;
    const basic = {
      modeInstance: {
        id: 'basic',
        routes: [{ path: 'basic', layoutTemplate: () => null, layoutInstance: { id: 'layout', props: { rightPanels: ['x'], rightPanelClosed: true, leftPanels: ['l'] } } }],
        onModeEnter() {
          baseEntered++;
        },
      },
    };
    const instance = (await mode.modeFactory({ loadModules: async () => [basic] })) as unknown as {
      routeName: string; routes: { path: string; layoutInstance: { props: Record<string, unknown> } }[];
      isValidMode(a: { modalities: string }): { valid: boolean };
      onModeEnter(a: unknown): void;
    };
    assert.equal(instance.routeName, ROUTE_NAME);
    assert.equal(instance.routes[0].path, ROUTE_NAME);
    assert.deepEqual(instance.routes[0].layoutInstance.props.rightPanels, [PANEL_ID]);
    assert.equal(instance.routes[0].layoutInstance.props.rightPanelClosed, false);
    assert.deepEqual(instance.routes[0].layoutInstance.props.leftPanels, ['l']);
    assert.equal(instance.isValidMode({ modalities: 'DX' }).valid, true);
    instance.onModeEnter({
      servicesManager: { services: { toolbarService: { register: (b: unknown[]) => registered.push(...b), updateSection: (k: string, ids: string[]) => sections.push([k, ids]) } } },
    });
    assert.equal(baseEntered, 1);
    assert.equal((registered[0] as { id: string }).id, 'zerovar-overlay');
    assert.deepEqual(sections, [['primary', ['zerovar-overlay']]]);
  });
});
