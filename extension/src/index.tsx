// OHIF v3 extension: COVID-19 research panel, attention overlay, toolbar evaluator and commands.
import getCommandsModule from './commandsModule.js';
import getPanelModule from './getPanelModule.js';
import getToolbarModule from './getToolbarModule.js';
import { EXTENSION_ID } from './ids.js';
import { destroyAllOverlays } from './overlay.js';

const extension = {
  id: EXTENSION_ID,
  preRegistration() {
    // Nothing to set up before registration yet: model bundles are fetched when a panel runs.
  },
  onModeExit() {
    destroyAllOverlays();
  },
  getPanelModule,
  getCommandsModule,
  getToolbarModule,
};

export default extension;
