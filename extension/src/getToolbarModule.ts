// Toolbar evaluator for the overlay toggle: active while the service shows the overlay on that viewport, disabled
// while that viewport's result is an image the guard flagged (not shown anyway): there is no map to show.
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
        if (!service) return { disabled: false, isActive: false };
        const s = zerovarService(servicesManager);
        return { disabled: s.isOverlayBlocked(id), isActive: s.isOverlayVisible(id) };
      },
    },
  ];
}
