// `npm start`: build our bundles, obtain the prebuilt OHIF viewer, serve both with a DICOMweb source (the shared
// sample files when they lie beside the project), or without one with OHIF's local-files source.
//   npm start [-- --port 3000] [--dicom DIR] [--dicomweb http://127.0.0.1:8042/dicom-web] [--models DIR] [--no-build]
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildBundles } from './host/build.js';
import { LOCAL_FILES_SOURCE } from './host/app-config.js';
import { startViewer } from './host/viewer.js';

const projectRoot = resolve(fileURLToPath(new URL('..', import.meta.url)));

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '3000' },
    host: { type: 'string', default: '127.0.0.1' },
    dicom: { type: 'string' },
    dicomweb: { type: 'string' },
    models: { type: 'string' },
    'no-build': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log(`usage: npm start -- [--port N] [--host ADDR] [--dicom DIR] [--dicomweb URL] [--models DIR] [--no-build]
  --dicom DIR      serve a folder of DICOM files as the embedded DICOMweb source (default ../shared/dicom if present)
  --dicomweb URL   use a DICOMweb server (e.g. Orthanc http://127.0.0.1:8042/dicom-web) through a same-origin proxy
                   (with neither a folder nor a URL: local files dropped into the page, read in the browser)
  --models DIR     a folder of model bundles (one per subfolder: raw, masked, ...) served at /zerovar/models/ with
                   their index at /zerovar/models/index.json; the viewer offers each (default: models/)
  --no-build       use the bundles already in dist/zerovar`);
  process.exit(0);
}

const defaultDicom = join(projectRoot, '..', 'shared', 'dicom');
const dicomDir = values.dicom ? resolve(values.dicom) : !values.dicomweb && existsSync(defaultDicom) ? defaultDicom : undefined;
if (values.dicom && !existsSync(values.dicom)) {
  console.error(`no such folder: ${values.dicom}`);
  process.exit(2);
}

if (!values['no-build']) {
  console.log('building dist/zerovar (extension, mode) ...');
  await buildBundles(projectRoot, 'production');
}
const viewer = await startViewer({
  projectRoot,
  dicomDir,
  dicomweb: values.dicomweb,
  modelsDir: values.models ? resolve(values.models) : undefined,
  port: Number(values.port),
  host: values.host,
  log: (line) => console.log(line),
});
console.log(`data sources: ${viewer.dataSources.map((s) => `${s.name} (${s.friendlyName})`).join(', ')}`);
if (viewer.defaultDataSource === LOCAL_FILES_SOURCE) {
  console.log(`no DICOM folder (${defaultDicom} is absent) and no DICOMweb URL: using OHIF's local-files source.`);
  console.log('  Drop DICOM files (or choose "Load files") on the page below; they are read in the browser and nothing leaves it.');
  console.log('  Then pick the study and the "COVID-19 chest X-ray (research)" mode. Sample studies: --dicom DIR or --dicomweb URL.');
}
console.log(`viewer ready: ${viewer.startUrl}`);
const stop = () => void viewer.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
