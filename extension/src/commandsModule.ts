// Commands: toggle / show / hide the attention overlay on the active viewport, draw the test pattern, clear it.
import { getActiveViewport, getCornerstone } from './cornerstone.js';
import { COMMANDS } from './ids.js';
import type { ExtensionParams } from './ohif-types.js';
import { overlayFor, testPattern } from './overlay.js';

export default function getCommandsModule({ servicesManager, extensionManager }: ExtensionParams) {
  const { services } = servicesManager;
  const activeOverlay = () => {
    const viewport = getActiveViewport(services);
    let rendered: string | undefined;
    try {
      rendered = getCornerstone(extensionManager).Enums.Events.IMAGE_RENDERED;
    } catch {
      rendered = undefined;
    }
    return overlayFor(viewport, rendered);
  };
  const notifyFailure = (title: string, err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    services.uiNotificationService?.show({ title, message, type: 'warning', duration: 4000 });
    return { ok: false, message };
  };
  const refresh = () => services.toolbarService.refreshToolbarState?.({});
  const setVisible = (visible: boolean) => {
    try {
      activeOverlay().setVisible(visible);
      refresh();
      return { ok: true, visible };
    } catch (err) {
      return notifyFailure('Attention overlay', err);
    }
  };

  const actions = {
    [COMMANDS.toggleOverlay]: () => {
      try {
        const overlay = activeOverlay();
        overlay.setVisible(!overlay.isVisible());
        refresh();
        return { ok: true, visible: overlay.isVisible() };
      } catch (err) {
        return notifyFailure('Attention overlay', err);
      }
    },
    [COMMANDS.showOverlay]: () => setVisible(true),
    [COMMANDS.hideOverlay]: () => setVisible(false),
    [COMMANDS.showTestPattern]: () => {
      try {
        const overlay = activeOverlay();
        overlay.setHeatmap(testPattern());
        overlay.setVisible(true);
        refresh();
        return { ok: true, visible: true };
      } catch (err) {
        return notifyFailure('Attention overlay', err);
      }
    },
    [COMMANDS.clearOverlay]: () => {
      try {
        const overlay = activeOverlay();
        overlay.setHeatmap(null);
        overlay.setVisible(false);
        refresh();
        return { ok: true, visible: false };
      } catch (err) {
        return notifyFailure('Attention overlay', err);
      }
    },
  };
  const definitions = Object.fromEntries(Object.entries(actions).map(([name, fn]) => [name, { commandFn: fn }]));
  return { actions, definitions, defaultContext: 'VIEWER' };
}
