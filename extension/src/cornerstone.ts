// Reaches the viewer's own Cornerstone3D instance and the active viewport through OHIF's services.
import type { CornerstoneLib, CsViewport, ExtensionManager, Services } from './ohif-types.js';

const UTILITY_MODULE = '@ohif/extension-cornerstone.utilityModule.common';

export function getCornerstone(extensionManager: ExtensionManager): CornerstoneLib {
  const entry = extensionManager.getModuleEntry(UTILITY_MODULE);
  const get = entry?.exports?.getCornerstoneLibraries as (() => { cornerstone: CornerstoneLib }) | undefined;
  if (!get) throw new Error('the Cornerstone extension is not loaded in this viewer');
  return get().cornerstone;
}

/** The active viewport, or the reason there is none. */
export function getActiveViewport(services: Services): CsViewport {
  const id = services.viewportGridService.getActiveViewportId();
  if (!id) throw new Error('no active viewport');
  const viewport = services.cornerstoneViewportService.getCornerstoneViewport(id);
  if (!viewport) throw new Error('the active viewport shows no image');
  return viewport;
}
