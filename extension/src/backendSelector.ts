// Picks the inference worker's tfjs backend from an ordered list (WebGPU, WebGL, wasm, cpu by default): the fastest
// one whose answer matches the reference check. A GPU backend on a software adapter or renderer (SwiftShader,
// llvmpipe, Microsoft Basic Render Driver: common on virtual desktops) is skipped before it is initialised, since
// there wasm with the project's kernels answers far sooner; a hardware GPU that passes the check is taken; a GPU
// whose renderer cannot be told is timed on a warm-up against the next CPU backend and the faster one wins. It
// moves on to the next backend when a chosen one fails at runtime. Pure logic: the probe (initialise, check, time)
// and the renderer inspection are injected, so the policy can be tested without tfjs.
import type { BackendName, InitResult } from './inferenceProtocol.js';

/** What a passing probe measured: the warm-up computation's time once warm (ms). */
export interface ProbeReport {
  warmMs: number;
}

/** Initialises a backend and checks it; throws (with the reason) when it cannot be used. */
export type BackendProbe = (name: BackendName) => Promise<ProbeReport | void>;

/** A GPU backend's adapter or renderer, read before the backend is initialised. */
export interface RendererInfo {
  /** The adapter's or renderer's name as the browser reports it. */
  renderer: string;
  software: boolean;
}

/** Reads a GPU backend's renderer; undefined when the browser does not say (the backend is then timed). */
export type RendererInspector = (name: BackendName) => Promise<RendererInfo | undefined>;

/** Activates a backend again (a later probe may have left another one active). */
export type BackendActivator = (name: BackendName) => Promise<void>;

const SOFTWARE = /swiftshader|llvmpipe|softpipe|lavapipe|basic render driver|software (rasterizer|renderer|adapter)|\bsoftware\b/i;

/** Whether an adapter or renderer name is a software one (a CPU emulating the GPU). */
export function isSoftwareRenderer(text: string): boolean {
  return SOFTWARE.test(text);
}

const GPU_BACKENDS: readonly BackendName[] = ['webgpu', 'webgl'];
const LABEL: Record<BackendName, string> = { webgpu: 'WebGPU', webgl: 'WebGL', wasm: 'wasm', cpu: 'cpu' };
const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));
const fmt = (t: number) => `${t < 10 ? t.toFixed(1) : Math.round(t)} ms`;

export interface SelectorDeps {
  probe: BackendProbe;
  inspect?: RendererInspector;
  activate?: BackendActivator;
  now?: () => number;
}

export class BackendSelector {
  private ready: Promise<InitResult> | null = null;
  private order: BackendName[] = [];
  private prepare: (() => void) | undefined;
  /** Backends dropped after they had been chosen (a model gave wrong results or a kernel failed on them). */
  private readonly dropped: string[] = [];
  private readonly deps: Required<Omit<SelectorDeps, 'inspect' | 'activate'>> & Pick<SelectorDeps, 'inspect' | 'activate'>;

  constructor(deps: SelectorDeps | BackendProbe, now?: () => number) {
    const d = typeof deps === 'function' ? { probe: deps } : deps;
    this.deps = { ...d, now: d.now ?? now ?? (() => performance.now()) };
  }

  /**
   * Selects a backend of `order`, once: later calls share the answer (whatever their list) until a failure, which
   * is forgotten so that a later call tries again (e.g. a GPU that was busy). `prepare` runs before each real
   * selection (e.g. to tell tfjs where its wasm files are).
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
    const t0 = this.deps.now();
    this.prepare?.();
    const skipped: string[] = [...this.dropped];
    const software: string[] = [];
    /** Passing backends whose speed was measured because no hardware GPU was recognised before them. */
    const timed: { name: BackendName; warmMs: number }[] = [];
    /** The last backend a probe initialised (or tried to): the chosen one must be active again if it is not. */
    let lastProbed: BackendName | undefined;
    const done = async (backend: BackendName, why: string): Promise<InitResult> => {
      if (lastProbed !== backend) await this.deps.activate?.(backend);
      return { backend, skipped, why, ms: this.deps.now() - t0 };
    };
    for (const name of order) {
      const gpu = GPU_BACKENDS.includes(name);
      let info: RendererInfo | undefined;
      if (gpu && this.deps.inspect) {
        try {
          info = await this.deps.inspect(name);
        } catch {
          info = undefined; // an unreadable renderer is timed like an unknown one
        }
      }
      if (info?.software) {
        skipped.push(`${name}: software renderer (${info.renderer}), slower than the CPU backends`);
        software.push(`${LABEL[name]} renders in software here (${info.renderer})`);
        continue;
      }
      let report: ProbeReport | void;
      lastProbed = name;
      try {
        report = await this.deps.probe(name);
      } catch (e) {
        skipped.push(`${name}: ${errorText(e)}`);
        continue;
      }
      const warmMs = report?.warmMs;
      if (gpu && info && timed.length === 0) return done(name, `first in the order, on a hardware GPU (${info.renderer})`);
      if (warmMs === undefined) {
        // A probe that does not time: the first passing backend wins, as in a plain ordered list.
        if (timed.length === 0) return done(name, this.firstWhy(name, software));
        continue;
      }
      timed.push({ name, warmMs });
      if (!gpu) break; // a CPU backend passed: nothing after it in the order can be faster
    }
    if (timed.length === 0) throw new Error(`no tfjs backend works in this browser (${skipped.join('; ')})`);
    const best = timed.reduce((a, b) => (b.warmMs < a.warmMs ? b : a));
    if (timed.length === 1) return done(best.name, this.firstWhy(best.name, software));
    const figures = timed.map((t) => `${t.name} ${fmt(t.warmMs)}`).join(', ');
    return done(best.name, `fastest on a warm-up (${figures})${software.length ? `; ${software.join('; ')}` : ''}`);
  }

  private firstWhy(name: BackendName, software: string[]): string {
    if (software.length) return `${software.join('; ')}: ${LABEL[name]} answers sooner`;
    return GPU_BACKENDS.includes(name) ? 'first in the order that passed the check' : `first in the order that passed the check (no GPU backend works)`;
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
