// Main-thread side of the inference worker: request / response matched by id, large buffers transferred rather
// than copied. The extension's service holds the one client of the page; its worker starts on first use (so the
// viewer loads no tfjs until Run is pressed).
import type { GreyImage } from '@zerovar/trainer/browser';
import type { ClassifyResult, InitResult, WorkerError, WorkerRequest, WorkerResponse } from './inferenceProtocol.js';
import type { InferenceConfig } from './models.js';

/** An error reported by the worker, keeping its name (e.g. `BundleError`) and whether the model is missing. */
export class InferenceError extends Error {
  readonly missing: boolean;
  constructor(e: WorkerError) {
    super(e.message);
    this.name = e.name;
    this.missing = e.missing ?? false;
  }
}

type Pending = { resolve(v: unknown): void; reject(e: Error): void };
type Distribute<T> = T extends unknown ? Omit<T, 'id'> : never;
type RequestBody = Distribute<WorkerRequest>;

/** The part of `Worker` the client uses (a test can pass a fake). */
export interface WorkerLike {
  postMessage(message: unknown, transfer: Transferable[]): void;
  terminate(): void;
  onmessage: ((e: MessageEvent<WorkerResponse>) => void) | null;
  onerror: ((e: ErrorEvent) => void) | null;
}

export class InferenceClient {
  private worker: WorkerLike | null = null;
  private ready: Promise<InitResult> | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly config: InferenceConfig,
    private readonly createWorker: () => WorkerLike,
  ) {}

  private request<T>(body: RequestBody, transfer: Transferable[] = []): Promise<T> {
    const worker = this.ensureWorker();
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      try {
        worker.postMessage({ ...body, id }, transfer);
      } catch (e) {
        this.pending.delete(id);
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  private ensureWorker(): WorkerLike {
    if (this.worker) return this.worker;
    let worker: WorkerLike;
    try {
      worker = this.createWorker();
    } catch (e) {
      throw new Error(`the inference worker could not start: ${e instanceof Error ? e.message : String(e)}`);
    }
    worker.onmessage = (e) => {
      const msg = e.data;
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new InferenceError(msg.error));
    };
    // A worker that dies (script failed to load, out of memory) fails every request; the next one starts afresh.
    worker.onerror = (e) => {
      e.preventDefault?.();
      const why = e.message || (e.error instanceof Error ? e.error.message : '') || 'its script failed to load or crashed';
      this.fail(new Error(`the inference worker stopped: ${why}`));
    };
    this.worker = worker;
    return worker;
  }

  private fail(err: Error): void {
    this.worker?.terminate();
    this.worker = null;
    this.ready = null;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  /** Selects the backend once; later calls share the answer (a failure is retried next time). */
  init(): Promise<InitResult> {
    this.ready ??= this.request<InitResult>({ type: 'init', backends: this.config.backends, wasmPath: this.config.wasmPath });
    this.ready.catch(() => {
      this.ready = null;
    });
    return this.ready;
  }

  /**
   * Classifies an 8-bit grey image with the bundle at `modelUrl`; the image's buffer is transferred (consumed).
   * `showAnyway`: explain it even when the guard flags it (the user asked, for research).
   */
  async classify(
    modelUrl: string, image: GreyImage, opts: { explain?: boolean; camSize?: number; showAnyway?: boolean } = {},
  ): Promise<ClassifyResult> {
    await this.init();
    return this.request<ClassifyResult>(
      { type: 'classify', modelUrl, image, explain: opts.explain ?? true, camSize: opts.camSize ?? 256, showAnyway: opts.showAnyway ?? false },
      [image.data.buffer],
    );
  }

  dispose(): void {
    this.fail(new Error('the inference worker was shut down'));
  }
}

/** A client whose worker is the extension's inference worker chunk (started on first request). */
export function createInferenceClient(config: InferenceConfig): InferenceClient {
  return new InferenceClient(
    config,
    () => new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'zerovar-inference' }) as unknown as WorkerLike,
  );
}
