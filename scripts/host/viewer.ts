// Puts the host together: the viewer dist, app-config.js, bundles, models and the chosen data sources: DICOMweb
// (a folder, a PACS) or, with neither, OHIF's local-files source so that the viewer starts for anyone.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LOCAL_FILES_SOURCE, renderAppConfig, type DataSourceSpec } from './app-config.js';
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
  /** Folder of model bundles (one per subfolder) served at /zerovar/models/ with their index; default the project's models/. */
  modelsDir?: string;
  port?: number;
  host?: string;
  log?: (line: string) => void;
}

export interface RunningViewer extends RunningHost {
  /** Data source names: `local` (embedded folder) and/or `pacs` (proxy), else `dicomlocal` (local files). */
  dataSources: DataSourceSpec[];
  /** Where to open the viewer: the study list, or the drop page of the local-files source. */
  startUrl: string;
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
  // Nothing to serve: the user's own files, dropped into the page, parsed and shown there (nothing is uploaded).
  if (dataSources.length === 0) dataSources.push({ name: LOCAL_FILES_SOURCE, friendlyName: 'Local files (in the browser)', root: '', kind: 'local-files' });
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
  const startUrl = defaultDataSource === LOCAL_FILES_SOURCE ? `${host.url}/local` : `${host.url}/`;
  return { ...host, dataSources, defaultDataSource, skippedFiles, startUrl };
}
