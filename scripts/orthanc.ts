// Starts a local Orthanc (DICOMweb on loopback) and optionally uploads a folder of DICOM files; runs until Ctrl-C.
//   node --import tsx scripts/orthanc.ts [--port 8042] [--upload DIR] [--storage DIR]
import { parseArgs } from 'node:util';
import { startOrthanc } from './host/orthanc.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8042' },
    upload: { type: 'string' },
    storage: { type: 'string' },
  },
});

const orthanc = await startOrthanc({ port: Number(values.port), storageDir: values.storage });
console.log(`Orthanc running: ${orthanc.url} (DICOMweb ${orthanc.dicomWebUrl})`);
if (values.upload) {
  const { uploaded, refused } = await orthanc.upload(values.upload);
  console.log(`uploaded ${uploaded.length} file(s)`);
  for (const r of refused) console.log(`refused ${r.file}: ${r.reason}`);
}
console.log(`view with: npm start -- --dicomweb ${orthanc.dicomWebUrl}`);
const stop = () => void orthanc.stop().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
