// How busy the machine is around a benchmark, so that figures measured beside another job are marked as such: the
// load average, and (Linux) the CPU time other processes took while one case ran: the machine's busy time from
// /proc/stat minus what the benchmark itself used (its own time and its finished children's, /proc/self/stat).
// The load average alone cannot say that during a case: it counts the case's own threads.
import { readFileSync } from 'node:fs';
import os from 'node:os';

/** Other processes' CPU use (in cores, per core of the machine) above which figures are not comparable. */
export const BUSY_PER_CORE = 0.3;

/** /proc's clock ticks per second (USER_HZ, 100 on Linux). */
const TICKS = 100;

export interface CpuSnapshot {
  wallS: number;
  /** Seconds of CPU the whole machine spent busy (every core added up). */
  busyS: number;
  /** Seconds of CPU this process and its waited-for children used. */
  ownS: number;
}

export function cores(): number {
  return os.availableParallelism?.() ?? os.cpus().length;
}

/** The 1-, 5- and 15-minute load averages. */
export function loadAverage(): [number, number, number] {
  const [a, b, c] = os.loadavg();
  return [a, b, c];
}

export function loadLine(): string {
  const l = loadAverage();
  return `load average ${l.map((v) => v.toFixed(2)).join(' ')} (1/5/15 min) on ${cores()} cores`;
}

/** The 1-minute load average is above BUSY_PER_CORE per core. */
export function loadBusy(): boolean {
  return loadAverage()[0] > BUSY_PER_CORE * cores();
}

/** Where /proc is readable (Linux): a snapshot to compare with a later one; elsewhere null. */
export function cpuSnapshot(): CpuSnapshot | null {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already inside user)
    const busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6] + (cpu[7] ?? 0);
    const self = readFileSync('/proc/self/stat', 'utf8');
    const f = self.slice(self.lastIndexOf(')') + 2).split(' ').map(Number); // f[0] is field 3 (state)
    const own = f[11] + f[12] + f[13] + f[14]; // utime stime cutime cstime
    return { wallS: performance.now() / 1000, busyS: busy / TICKS, ownS: own / TICKS };
  } catch {
    return null;
  }
}

/** Cores' worth of CPU other processes used between two snapshots (never below 0: tick rounding). */
export function othersCores(a: CpuSnapshot, b: CpuSnapshot): number {
  const wall = b.wallS - a.wallS;
  if (wall <= 0) return 0;
  return Math.max(0, (b.busyS - a.busyS - (b.ownS - a.ownS)) / wall);
}

/** Other processes used more than BUSY_PER_CORE per core. */
export function othersBusy(others: number): boolean {
  return others > BUSY_PER_CORE * cores();
}
