// Panel hooks on the service's viewport events: what the active viewport shows, and whether its attention overlay
// is on. No polling: the service follows OHIF's grid events and Cornerstone's element events.
import { useEffect, useState } from 'react';
import { ZEROVAR_EVENTS, type DisplaySnapshot, type ZerovarService } from './service.js';

/** The displayed image (or why there is none), updated on the service's DISPLAY_CHANGED. */
export function useDisplayedImage(service: ZerovarService): DisplaySnapshot {
  const [snapshot, setSnapshot] = useState<DisplaySnapshot>(() => service.getDisplay());
  useEffect(() => {
    const sub = service.subscribe(ZEROVAR_EVENTS.DISPLAY_CHANGED, () => setSnapshot(service.getDisplay()));
    // Idempotent: also takes the OHIF subscriptions when the panel opens before a mode enter reached the service.
    service.start();
    setSnapshot(service.getDisplay());
    return () => sub.unsubscribe();
  }, [service]);
  return snapshot;
}

/** Whether the active viewport's attention overlay is shown (toolbar button, command or panel toggle alike). */
export function useOverlayVisible(service: ZerovarService): boolean {
  const [visible, setVisible] = useState(() => service.isOverlayVisible());
  useEffect(() => {
    const update = () => setVisible(service.isOverlayVisible());
    const subs = [
      service.subscribe(ZEROVAR_EVENTS.OVERLAY_CHANGED, update),
      service.subscribe(ZEROVAR_EVENTS.DISPLAY_CHANGED, update),
    ];
    update();
    return () => subs.forEach((s) => s.unsubscribe());
  }, [service]);
  return visible;
}
