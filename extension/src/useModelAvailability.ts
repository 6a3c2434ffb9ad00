// Panel hook: which model bundles are installed (a HEAD request each through the service), re-checked when the
// chosen variant changes; a run that finds a bundle missing marks it so.
import { useCallback, useEffect, useMemo, useState } from 'react';
import type { Availability, ModelVariant } from './models.js';
import { VARIANTS } from './models.js';
import type { ZerovarService } from './service.js';

export type AvailabilityMap = Partial<Record<ModelVariant, Availability>>;

/** The panel's line for a variant that cannot run, or undefined when there is nothing to say. */
export function availabilityText(variant: ModelVariant, a: Availability | undefined): string | undefined {
  if (a === 'missing') return `${variant} model not available`;
  if (a === 'error') return `${variant} model: its server did not answer`;
  return undefined;
}

/** The first answer for every variant: an answer already there (from a recheck or a run) is kept. */
export function withFirstAnswer(prev: AvailabilityMap, variant: ModelVariant, a: Availability): AvailabilityMap {
  const known = prev[variant];
  return { ...prev, [variant]: known === undefined || known === 'checking' ? a : known };
}

export function useModelAvailability(service: ZerovarService, variant: ModelVariant) {
  const [availability, setAvailability] = useState<AvailabilityMap>({});

  // The chosen variant: checked again on every choice.
  useEffect(() => {
    let live = true;
    void service.availability(variant).then((a) => live && setAvailability((prev) => ({ ...prev, [variant]: a })));
    return () => {
      live = false;
    };
  }, [service, variant]);

  // Every variant once, so the choice list can say which are not available.
  useEffect(() => {
    let live = true;
    for (const v of VARIANTS) {
      void service.availability(v).then((a) => live && setAvailability((prev) => withFirstAnswer(prev, v, a)));
    }
    return () => {
      live = false;
    };
  }, [service]);

  const markMissing = useCallback((v: ModelVariant) => setAvailability((a) => ({ ...a, [v]: 'missing' })), []);
  // A variant not answered yet reads as being checked (derived here rather than set from the effect).
  const shown = useMemo<AvailabilityMap>(() => ({ ...availability, [variant]: availability[variant] ?? 'checking' }), [availability, variant]);
  return { availability: shown, markMissing };
}
