// Panel hook: the models to choose from and the one the panel opens on (the better external AUC among bundles of
// one two-class task, with the line that says why), decided by the service; undefined until the list was read.
import { useEffect, useState } from 'react';
import type { ModelList } from './modelList.js';
import type { ZerovarService } from './service.js';

export function useModelList(service: ZerovarService): ModelList | undefined {
  const [list, setList] = useState<ModelList | undefined>(undefined);
  useEffect(() => {
    let live = true;
    void service.modelList().then((l) => live && setList(l), () => undefined);
    return () => {
      live = false;
    };
  }, [service]);
  return list;
}
