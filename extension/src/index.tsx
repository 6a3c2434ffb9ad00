// OHIF v3 extension: COVID-19 research panel, attention overlay, toolbar evaluator and commands, all around one
// service (service.ts) registered before the rest of the extension.
import getCommandsModule from './commandsModule.js';
import getPanelModule from './getPanelModule.js';
import getToolbarModule from './getToolbarModule.js';
import { EXTENSION_ID } from './ids.js';
import type { ServicesManager } from './ohif-types.js';
import { ZerovarService } from './service.js';

const extension = {
  id: EXTENSION_ID,
  preRegistration({ servicesManager }: { servicesManager: ServicesManager }) {
    // Model bundles are still fetched only when a panel runs: the service makes its inference client on first use.
    // OHIF calls the service's onModeEnter / onModeExit itself (it follows the viewports, then drops its overlays).
    servicesManager.registerService?.(ZerovarService.REGISTRATION);
  },
  getPanelModule,
  getCommandsModule,
  getToolbarModule,
};

export default extension;
