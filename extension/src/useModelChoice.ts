// Panel hook: the model the panel opens on (the variant with the higher external AUC, decided by the service from
// both manifests) and the one line that says why; undefined until both manifests were read.
import { useEffect, useState } from 'react';
import type { ModelChoice } from './modelChoice.js';
import type { ZerovarService } from './service.js';

export function useModelChoice(service: ZerovarService): ModelChoice | undefined {
  const [choice, setChoice] = useState<ModelChoice | undefined>(undefined);
  useEffect(() => {
    let live = true;
    void service.modelChoice().then((c) => live && setChoice(c), () => undefined);
    return () => {
      live = false;
    };
  }, [service]);
  return choice;
}
