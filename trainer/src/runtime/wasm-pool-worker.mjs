// Entry of a kernel pool worker thread (wasm-pool.ts): the TypeScript sources through tsx, as the CLI runs them.
import { workerData } from 'node:worker_threads';
import { tsImport } from 'tsx/esm/api';

const { serve } = await tsImport('./wasm-pool-worker.ts', import.meta.url);
serve(workerData);
