// Commands: toggle / show / hide the attention overlay on the active viewport, draw the test pattern, clear it.
// Each goes through the extension's service; a failure becomes a notification and an { ok: false } answer.
import { COMMANDS } from './ids.js';
import type { ExtensionParams } from './ohif-types.js';
import { zerovarService } from './serviceAccess.js';

export default function getCommandsModule({ servicesManager }: ExtensionParams) {
  const { services } = servicesManager;
  const notifyFailure = (title: string, err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    services.uiNotificationService?.show({ title, message, type: 'warning', duration: 4000 });
    return { ok: false, message };
  };
  const refresh = () => services.toolbarService.refreshToolbarState?.({});
  /** Runs an overlay action; answers with the overlay's visibility after it. */
  const overlayAction = (act: () => boolean) => {
    try {
      const visible = act();
      refresh();
      return { ok: true, visible };
    } catch (err) {
      return notifyFailure('Attention overlay', err);
    }
  };
  const service = () => zerovarService(servicesManager);

  const actions = {
    [COMMANDS.toggleOverlay]: () => overlayAction(() => service().toggleOverlay()),
    [COMMANDS.showOverlay]: () => overlayAction(() => service().setOverlayVisible(true)),
    [COMMANDS.hideOverlay]: () => overlayAction(() => service().setOverlayVisible(false)),
    [COMMANDS.showTestPattern]: () => overlayAction(() => {
      service().showTestPattern();
      return true;
    }),
    [COMMANDS.clearOverlay]: () => overlayAction(() => {
      service().clearOverlay();
      return false;
    }),
  };
  const definitions = Object.fromEntries(Object.entries(actions).map(([name, fn]) => [name, { commandFn: fn }]));
  return { actions, definitions, defaultContext: 'VIEWER' };
}
