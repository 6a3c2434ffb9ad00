// Toolbar evaluator for the overlay toggle: active while the service shows the overlay on that viewport.
import { OVERLAY_EVALUATOR } from './ids.js';
import type { ExtensionParams } from './ohif-types.js';
import { zerovarService } from './serviceAccess.js';

export default function getToolbarModule({ servicesManager }: ExtensionParams) {
  const { viewportGridService } = servicesManager.services;
  return [
    {
      name: OVERLAY_EVALUATOR,
      evaluate: ({ viewportId }: { viewportId?: string }) => {
        const id = viewportId ?? viewportGridService.getActiveViewportId();
        const service = servicesManager.services.zerovarService;
        return { disabled: false, isActive: service ? zerovarService(servicesManager).isOverlayVisible(id) : false };
      },
    },
  ];
}
