// Puts the host together: the viewer dist, app-config.js, bundles, models and the chosen DICOMweb sources.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { renderAppConfig, type DataSourceSpec } from './app-config.js';
import { indexDicomFolder } from './dicom-folder.js';
import { createDicomWebSource } from './dicomweb.js';
import { ensureOhifDist } from './ohif.js';
import { EMBEDDED_ROOT, PROXY_ROOT, startHost, type RunningHost } from './server.js';

export interface ViewerOptions {
  projectRoot: string;
  /** Folder of DICOM files served as the embedded DICOMweb source. */
  dicomDir?: string;
  /** Upstream DICOMweb root (a PACS); when given it is the default data source. */
  dicomweb?: string;
  /** Folder of model bundles (`raw/`, `masked/`) served at /zerovar/models/; default the project's models/. */
  modelsDir?: string;
  port?: number;
  host?: string;
  log?: (line: string) => void;
}

export interface RunningViewer extends RunningHost {
  /** Data source names: `local` (embedded folder) and/or `pacs` (proxy). */
  dataSources: DataSourceSpec[];
  defaultDataSource: string;
  skippedFiles: { file: string; reason: string }[];
}

export async function startViewer(o: ViewerOptions): Promise<RunningViewer> {
  const log = o.log ?? (() => {});
  const bundleDir = join(o.projectRoot, 'dist', 'zerovar');
  for (const f of ['extension.js', 'mode.js']) {
    if (!existsSync(join(bundleDir, f))) throw new Error(`${join('dist', 'zerovar', f)} is missing: run npm run build`);
  }
  const ohifDist = await ensureOhifDist(join(o.projectRoot, '.cache', 'ohif'), undefined, log);
  const dataSources: DataSourceSpec[] = [];
  let embedded;
  let skippedFiles: { file: string; reason: string }[] = [];
  if (o.dicomweb) dataSources.push({ name: 'pacs', friendlyName: `PACS ${o.dicomweb}`, root: PROXY_ROOT, acceptsStore: true });
  if (o.dicomDir) {
    const index = indexDicomFolder(o.dicomDir, log);
    skippedFiles = index.skipped;
    log(`embedded DICOMweb: ${index.instances.length} instances from ${o.dicomDir}`);
    embedded = createDicomWebSource(index, EMBEDDED_ROOT);
    dataSources.push({ name: 'local', friendlyName: 'Local DICOM folder', root: EMBEDDED_ROOT });
  }
  if (dataSources.length === 0) throw new Error('no data source: give a DICOM folder or a DICOMweb URL');
  const defaultDataSource = dataSources[0].name;
  const appConfig = renderAppConfig({ dataSources, defaultDataSource });
  const models = o.modelsDir ?? join(o.projectRoot, 'models');
  const host = await startHost({
    ohifDist,
    appConfig,
    bundleDir,
    modelsDir: existsSync(models) ? models : undefined,
    embedded,
    dicomweb: o.dicomweb,
    port: o.port,
    host: o.host,
    log,
  });
  return { ...host, dataSources, defaultDataSource, skippedFiles };
}
