// Panel hook: which model bundles are installed (a HEAD request each through the service), the chosen one
// re-checked whenever it is chosen; a run that finds a bundle missing marks it so.
import { useCallback, useEffect, useMemo, useState } from 'react';
import type { Availability } from './models.js';
import type { ZerovarService } from './service.js';

/** Availability by model id. */
export type AvailabilityMap = Partial<Record<string, Availability>>;

/** The panel's line for a model that cannot run, or undefined when there is nothing to say. */
export function availabilityText(id: string, a: Availability | undefined): string | undefined {
  if (a === 'missing') return `${id} model not available`;
  if (a === 'error') return `${id} model: its server did not answer`;
  return undefined;
}

/** The first answer for every model: an answer already there (from a recheck or a run) is kept. */
export function withFirstAnswer(prev: AvailabilityMap, id: string, a: Availability): AvailabilityMap {
  const known = prev[id];
  return { ...prev, [id]: known === undefined || known === 'checking' ? a : known };
}

/** `ids`: every listed model (checked once each, so the choice list can say which are not available). */
export function useModelAvailability(service: ZerovarService, id: string, ids: readonly string[]) {
  const [availability, setAvailability] = useState<AvailabilityMap>({});

  // The chosen model: checked again on every choice.
  useEffect(() => {
    let live = true;
    void service.availability(id).then((a) => live && setAvailability((prev) => ({ ...prev, [id]: a })));
    return () => {
      live = false;
    };
  }, [service, id]);

  // Every listed model once (again only when the list itself changes).
  const key = ids.join('\n');
  useEffect(() => {
    let live = true;
    for (const m of key ? key.split('\n') : []) {
      void service.availability(m).then((a) => live && setAvailability((prev) => withFirstAnswer(prev, m, a)));
    }
    return () => {
      live = false;
    };
  }, [service, key]);

  const markMissing = useCallback((m: string) => setAvailability((a) => ({ ...a, [m]: 'missing' })), []);
  // A model not answered yet reads as being checked (derived here rather than set from the effect).
  const shown = useMemo<AvailabilityMap>(() => ({ ...availability, [id]: availability[id] ?? 'checking' }), [availability, id]);
  return { availability: shown, markMissing };
}
