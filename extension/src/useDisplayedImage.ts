// Panel hooks on the service's viewport events: what the active viewport shows, and whether its attention overlay
// is on. No polling: the service follows OHIF's grid events and Cornerstone's element events.
import { useCallback, useSyncExternalStore } from 'react';
import { ZEROVAR_EVENTS, type DisplaySnapshot, type ZerovarService } from './service.js';

/** The displayed image (or why there is none), updated on the service's DISPLAY_CHANGED. The service keeps one
 * snapshot object until something changes, as useSyncExternalStore requires. */
export function useDisplayedImage(service: ZerovarService): DisplaySnapshot {
  const subscribe = useCallback(
    (onChange: () => void) => {
      const sub = service.subscribe(ZEROVAR_EVENTS.DISPLAY_CHANGED, onChange);
      // Idempotent: also takes the OHIF subscriptions when the panel opens before a mode enter reached the service.
      service.start();
      return () => sub.unsubscribe();
    },
    [service],
  );
  return useSyncExternalStore(subscribe, () => service.getDisplay());
}

/** Whether the active viewport's attention overlay is shown (toolbar button, command or panel toggle alike). */
export function useOverlayVisible(service: ZerovarService): boolean {
  const subscribe = useCallback(
    (onChange: () => void) => {
      const subs = [
        service.subscribe(ZEROVAR_EVENTS.OVERLAY_CHANGED, onChange),
        service.subscribe(ZEROVAR_EVENTS.DISPLAY_CHANGED, onChange),
      ];
      return () => subs.forEach((s) => s.unsubscribe());
    },
    [service],
  );
  return useSyncExternalStore(subscribe, () => service.isOverlayVisible());
}
