// Toolbar evaluator for the overlay toggle: active while the overlay is shown on that viewport.
import { OVERLAY_EVALUATOR } from './ids.js';
import type { ExtensionParams } from './ohif-types.js';
import { existingOverlay } from './overlay.js';

export default function getToolbarModule({ servicesManager }: ExtensionParams) {
  const { viewportGridService } = servicesManager.services;
  return [
    {
      name: OVERLAY_EVALUATOR,
      evaluate: ({ viewportId }: { viewportId?: string }) => {
        const id = viewportId ?? viewportGridService.getActiveViewportId();
        return { disabled: false, isActive: existingOverlay(id)?.isVisible() ?? false };
      },
    },
  ];
}
