// The viewer's app-config.js: our extension and mode by URL, and the data sources: DICOMweb (all same-origin) or
// OHIF's local-files source (files the user drops into the page, read in the browser).
import { writeFileSync } from 'node:fs';

export interface DataSourceSpec {
  /** Name used by `?datasources=NAME` and `defaultDataSourceName`. */
  name: string;
  friendlyName: string;
  /** Same-origin DICOMweb root, e.g. `/dicom-web`; unused for local files. */
  root: string;
  /** Whether it accepts STOW-RS (the panel's "Save to PACS"); OHIF's own flag for it is dicomUploadEnabled. */
  acceptsStore?: boolean;
  /** `local-files`: OHIF's `dicomlocal` source; default DICOMweb. */
  kind?: 'dicomweb' | 'local-files';
}

/** OHIF's own name for its local-files source: its drop page (/local) opens studies with `datasources=dicomlocal`. */
export const LOCAL_FILES_SOURCE = 'dicomlocal';

export interface AppConfigOptions {
  dataSources: DataSourceSpec[];
  defaultDataSource: string;
  extensionUrl?: string;
  modeUrl?: string;
}

export const EXTENSION_URL = '/zerovar/extension.js';
export const MODE_URL = '/zerovar/mode.js';

function dataSource(s: DataSourceSpec): object {
  if (s.kind === 'local-files') {
    if (s.name !== LOCAL_FILES_SOURCE) throw new Error(`the local-files source must be named ${LOCAL_FILES_SOURCE}`);
    return {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomlocal',
      sourceName: s.name,
      configuration: { friendlyName: s.friendlyName, name: s.name },
    };
  }
  return {
    namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
    sourceName: s.name,
    configuration: {
      friendlyName: s.friendlyName,
      name: s.name,
      wadoUriRoot: s.root,
      qidoRoot: s.root,
      wadoRoot: s.root,
      qidoSupportsIncludeField: false,
      imageRendering: 'wadors',
      thumbnailRendering: 'wadors',
      enableStudyLazyLoad: true,
      supportsFuzzyMatching: false,
      supportsWildcard: true,
      omitQuotationForMultipartRequest: true,
      bulkDataURI: { enabled: true },
      dicomUploadEnabled: s.acceptsStore === true,
    },
  };
}

/** The text of app-config.js. */
export function renderAppConfig(o: AppConfigOptions): string {
  if (!o.dataSources.some((s) => s.name === o.defaultDataSource)) {
    throw new Error(`default data source ${o.defaultDataSource} is not among the data sources`);
  }
  const config = {
    routerBasename: '/',
    extensions: [o.extensionUrl ?? EXTENSION_URL],
    modes: [o.modeUrl ?? MODE_URL],
    showStudyList: true,
    maxNumberOfWebWorkers: 2,
    showWarningMessageForCrossOrigin: false,
    showCPUFallbackMessage: true,
    showLoadingIndicator: true,
    strictZSpacingForVolumeViewport: true,
    // One server on loopback: a handful of parallel requests is enough.
    maxNumRequests: { interaction: 20, thumbnail: 4, prefetch: 6 },
    investigationalUseDialog: { option: 'never' },
    defaultDataSourceName: o.defaultDataSource,
    dataSources: o.dataSources.map(dataSource),
  };
  return `// Written by the zerovar viewer host; regenerated on every start.\nwindow.config = ${JSON.stringify(config, null, 2)};\n`;
}

export function writeAppConfig(path: string, o: AppConfigOptions): void {
  writeFileSync(path, renderAppConfig(o));
}
