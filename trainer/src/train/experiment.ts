// An experiment folder holds everything one run produces: log, per-step state, models, figures, report, bundle.
// Each finished step records its result in state.json before the next starts, so an interrupted run resumes
// where it stopped and never loses finished work.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeJsonAtomic } from '../io/atomic.js';

export const STEPS = ['data', 'train', 'prune', 'select', 'export', 'explain', 'report'] as const;
export type StepName = (typeof STEPS)[number];

export interface StepRecord<T = unknown> {
  finishedAt: string;
  seconds: number;
  result: T;
}

export interface ExperimentState {
  id: string;
  createdAt: string;
  options: Record<string, unknown>;
  /** The command line that created the experiment (what reproduces it). */
  command?: string;
  /** Later command lines that ran on the existing experiment (a --resume, a --redo), oldest first. */
  laterCommands?: { command: string; at: string }[];
  steps: Partial<Record<StepName, StepRecord>>;
}

// The trainer's JSON files (state, reports) go through the one atomic writer; re-exported for their writers.
export { writeJsonAtomic };

export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

export class Experiment {
  readonly dir: string;
  readonly state: ExperimentState;
  private readonly logPath: string;
  quiet = false;

  private constructor(dir: string, state: ExperimentState) {
    this.dir = dir;
    this.state = state;
    this.logPath = join(dir, 'log.txt');
  }

  /** Opens `root/<id>`, creating it, or loading its state when it already exists. */
  static open(root: string, id: string, options: Record<string, unknown> = {}, command?: string): Experiment {
    if (!/^[\w.-]+$/.test(id)) {
      throw new Error(`experiment id '${id}' may only hold letters, digits, '.', '_' and '-'`);
    }
    const dir = resolve(root, id);
    mkdirSync(dir, { recursive: true });
    const statePath = join(dir, 'state.json');
    const state: ExperimentState = existsSync(statePath)
      ? readJson<ExperimentState>(statePath)
      : { id, createdAt: new Date().toISOString(), options, command, steps: {} };
    // A later command on an existing experiment (resumed, or a step redone with other options) is recorded
    // beside the first, so the bundle's provenance names every command its steps came from.
    if (existsSync(statePath) && command !== undefined && command !== state.command) {
      state.laterCommands = [...(state.laterCommands ?? []), { command, at: new Date().toISOString() }];
    }
    const exp = new Experiment(dir, state);
    exp.save();
    return exp;
  }

  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  ensureDir(...parts: string[]): string {
    const p = this.path(...parts);
    mkdirSync(p, { recursive: true });
    return p;
  }

  log(line: string): void {
    appendFileSync(this.logPath, `[${new Date().toISOString()}] ${line}\n`);
    if (!this.quiet) process.stderr.write(line + '\n');
  }

  done(step: StepName): boolean {
    return this.state.steps[step] !== undefined;
  }

  result<T>(step: StepName): T {
    const r = this.state.steps[step];
    if (!r) throw new Error(`step '${step}' has not run in experiment '${this.state.id}' (run it first)`);
    return r.result as T;
  }

  seconds(step: StepName): number | undefined {
    return this.state.steps[step]?.seconds;
  }

  /** Runs a step unless it already finished; records its result and time. */
  async step<T>(step: StepName, run: () => Promise<T>): Promise<T> {
    if (this.done(step)) {
      this.log(`step ${step}: already done, reusing its result`);
      return this.result<T>(step);
    }
    this.log(`step ${step}: start`);
    const t0 = performance.now();
    const result = await run();
    const seconds = (performance.now() - t0) / 1000;
    this.state.steps[step] = { finishedAt: new Date().toISOString(), seconds, result };
    this.save();
    this.log(`step ${step}: done in ${seconds.toFixed(1)} s`);
    return result;
  }

  /** Forgets a step and every step after it, so they run again. */
  invalidateFrom(step: StepName): void {
    for (const s of STEPS.slice(STEPS.indexOf(step))) delete this.state.steps[s];
    this.save();
  }

  save(): void {
    writeJsonAtomic(join(this.dir, 'state.json'), this.state);
  }
}
