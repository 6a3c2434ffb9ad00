// Progress with rate and ETA on stderr: a redrawn bar on a terminal, a few plain lines otherwise (CI logs).

export interface ProgressOptions {
  /** Where to write; process.stderr by default. */
  stream?: { write(s: string): unknown; isTTY?: boolean };
  /** Force the terminal (bar) or plain-line mode; defaults to stream.isTTY. */
  tty?: boolean;
  /** Plain mode: at most one line per this fraction of the total (default 0.1), besides the last one. */
  lineEvery?: number;
  /** Plain mode: at least this many ms between lines (default 5000), besides the last one. */
  minIntervalMs?: number;
  /** Clock in ms, for tests. */
  now?: () => number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(sec).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export class Progress {
  private done = 0;
  private readonly start: number;
  private lastTtyDraw = -Infinity;
  private lastLine: number;
  private nextLineAt: number;
  private finished = false;
  private readonly stream: { write(s: string): unknown; isTTY?: boolean };
  private readonly tty: boolean;
  private readonly lineEvery: number;
  private readonly minIntervalMs: number;
  private readonly now: () => number;

  constructor(
    readonly label: string,
    readonly total: number,
    opts: ProgressOptions = {},
  ) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? Boolean(this.stream.isTTY);
    this.lineEvery = opts.lineEvery ?? 0.1;
    this.now = opts.now ?? (() => Date.now());
    this.minIntervalMs = opts.minIntervalMs ?? 5000;
    this.start = this.now();
    this.lastLine = this.start;
    this.nextLineAt = Math.max(1, Math.ceil(total * this.lineEvery));
  }

  /** The status text: `label 12/100 (12%) 3.4/s elapsed 00:03 ETA 00:26 [info]`. */
  status(info?: string): string {
    const elapsed = (this.now() - this.start) / 1000;
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const eta = rate > 0 ? (this.total - this.done) / rate : NaN;
    const pct = this.total > 0 ? Math.floor((100 * this.done) / this.total) : 100;
    const parts = [
      `${this.label} ${this.done}/${this.total} (${pct}%)`,
      `${rate >= 10 ? rate.toFixed(0) : rate.toFixed(2)}/s`,
      `elapsed ${formatDuration(elapsed)}`,
      this.done < this.total ? `ETA ${formatDuration(eta)}` : '',
      info ?? '',
    ];
    return parts.filter(Boolean).join(' ');
  }

  tick(n = 1, info?: string): void {
    if (this.finished) return;
    this.done = Math.min(this.total, this.done + n);
    if (this.done >= this.total) return this.finish(info);
    if (this.tty) {
      const t = this.now();
      if (t - this.lastTtyDraw < 100) return; // redraw at most 10 times a second
      this.lastTtyDraw = t;
      this.stream.write(`\r${this.bar()} ${this.status(info)}\x1b[K`);
    } else if (this.done >= this.nextLineAt && this.now() - this.lastLine >= this.minIntervalMs) {
      this.lastLine = this.now();
      this.nextLineAt = this.done + Math.max(1, Math.ceil(this.total * this.lineEvery));
      this.stream.write(`${this.status(info)}\n`);
    }
  }

  finish(info?: string): void {
    if (this.finished) return;
    this.finished = true;
    this.done = this.total;
    this.stream.write(this.tty ? `\r${this.bar()} ${this.status(info)}\x1b[K\n` : `${this.status(info)}\n`);
  }

  private bar(width = 24): string {
    const filled = this.total > 0 ? Math.round((width * this.done) / this.total) : width;
    return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  }
}
