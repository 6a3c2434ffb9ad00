// Picks the inference worker's tfjs backend: the first of an ordered list (WebGPU, WebGL, wasm, cpu by default)
// whose probe passes, and moves on to the next one when a chosen backend fails at runtime. Pure logic: the probe
// (initialise the backend and prove it computes correctly) is injected, so the order and fallbacks can be tested
// without tfjs.
import type { BackendName, InitResult } from './inferenceProtocol.js';

/** Initialises a backend and checks it; throws (with the reason) when it cannot be used. */
export type BackendProbe = (name: BackendName) => Promise<void>;

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class BackendSelector {
  private ready: Promise<InitResult> | null = null;
  private order: BackendName[] = [];
  private prepare: (() => void) | undefined;
  /** Backends dropped after they had been chosen (a model gave wrong results or a kernel failed on them). */
  private readonly dropped: string[] = [];

  constructor(
    private readonly probe: BackendProbe,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Selects the first working backend of `order`, once: later calls share the answer (whatever their list) until
   * a failure, which is forgotten so that a later call tries again (e.g. a GPU that was busy). `prepare` runs
   * before each real selection (e.g. to tell tfjs where its wasm files are).
   */
  select(order: BackendName[], prepare?: () => void): Promise<InitResult> {
    this.order = [...order];
    this.prepare = prepare;
    if (!this.ready) {
      const ready = this.run(this.order);
      this.ready = ready;
      ready.catch(() => {
        if (this.ready === ready) this.ready = null;
      });
    }
    return this.ready;
  }

  private async run(order: BackendName[]): Promise<InitResult> {
    const t0 = this.now();
    this.prepare?.();
    const skipped: string[] = [...this.dropped];
    for (const name of order) {
      try {
        await this.probe(name);
        return { backend: name, skipped, ms: this.now() - t0 };
      } catch (e) {
        skipped.push(`${name}: ${errorText(e)}`);
      }
    }
    throw new Error(`no tfjs backend works in this browser (${skipped.join('; ')})`);
  }

  /** The selected backend; rejects when no selection was asked for yet. */
  current(): Promise<InitResult> {
    return this.ready ?? Promise.reject(new Error('the worker was not initialised'));
  }

  /**
   * Gives up `current` for the backends after it in the list; false (nothing changed) when none is left.
   * Resolves once the next one is selected, and rejects when none of them works. `onDrop` runs just before the
   * next selection (e.g. to free what lived on the dropped backend), only when there is a next one.
   */
  async drop(current: BackendName, why: string, onDrop?: () => void): Promise<boolean> {
    const rest = this.order.slice(this.order.indexOf(current) + 1);
    if (rest.length === 0) return false;
    this.dropped.push(`${current}: ${why}`);
    onDrop?.();
    this.ready = null;
    await this.select(rest, this.prepare);
    return true;
  }

  /** What was dropped at runtime so far, with the reasons (reported with every result). */
  droppedAtRuntime(): string[] {
    return [...this.dropped];
  }
}
