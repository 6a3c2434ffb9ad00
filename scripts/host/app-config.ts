// The viewer's app-config.js: our extension and mode by URL, and the DICOMweb data sources (all same-origin).
import { writeFileSync } from 'node:fs';

export interface DataSourceSpec {
  /** Name used by `?datasources=NAME` and `defaultDataSourceName`. */
  name: string;
  friendlyName: string;
  /** Same-origin DICOMweb root, e.g. `/dicom-web`. */
  root: string;
  /** Whether it accepts STOW-RS (the panel's "Save to PACS"); OHIF's own flag for it is dicomUploadEnabled. */
  acceptsStore?: boolean;
}

export interface AppConfigOptions {
  dataSources: DataSourceSpec[];
  defaultDataSource: string;
  extensionUrl?: string;
  modeUrl?: string;
}

export const EXTENSION_URL = '/zerovar/extension.js';
export const MODE_URL = '/zerovar/mode.js';

function dicomWebSource(s: DataSourceSpec): object {
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
    dataSources: o.dataSources.map(dicomWebSource),
  };
  return `// Written by the zerovar viewer host; regenerated on every start.\nwindow.config = ${JSON.stringify(config, null, 2)};\n`;
}

export function writeAppConfig(path: string, o: AppConfigOptions): void {
  writeFileSync(path, renderAppConfig(o));
}
