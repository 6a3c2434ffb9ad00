// OHIF v3 extension: COVID-19 research panel, attention overlay, toolbar evaluator and commands, all around one
// service (service.ts) registered before the rest of the extension; and the viewer's fixes for images OHIF would
// show black (viewerFixes.ts), installed as early as Cornerstone is reachable.
import getCommandsModule from './commandsModule.js';
import { getCornerstone } from './cornerstone.js';
import getPanelModule from './getPanelModule.js';
import getToolbarModule from './getToolbarModule.js';
import { EXTENSION_ID } from './ids.js';
import type { ExtensionManager, ServicesManager } from './ohif-types.js';
import { ZerovarService } from './service.js';
import { installViewerFixes } from './viewerFixes.js';

const extension = {
  id: EXTENSION_ID,
  preRegistration({ servicesManager, extensionManager }: { servicesManager: ServicesManager; extensionManager: ExtensionManager }) {
    try {
      // Before any study is opened (files dropped on the local-files page are decoded in the viewer later).
      const fixes = installViewerFixes(getCornerstone(extensionManager));
      if (fixes.length) console.info(`zerovar: viewer fixes installed (${fixes.join(', ')})`);
    } catch {
      // Cornerstone is not reachable yet: the service installs them when it starts following a viewport.
    }
    // Model bundles are still fetched only when a panel runs: the service makes its inference client on first use.
    // OHIF calls the service's onModeEnter / onModeExit itself (it follows the viewports, then drops its overlays).
    servicesManager.registerService?.(ZerovarService.REGISTRATION);
  },
  getPanelModule,
  getCommandsModule,
  getToolbarModule,
};

export default extension;
