/** Timing, statistics, tables and the machine description shared by the bench sections. */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';

/** One measured quantity over several rounds: the best and the median. */
export interface Stat {
  readonly best: number;
  readonly median: number;
  readonly samples: readonly number[];
}

/** Best (highest) and median of rates (higher is better). */
export function rateStat(samples: readonly number[]): Stat {
  const s = [...samples].sort((a, b) => a - b);
  return { best: s[s.length - 1] ?? NaN, median: s[Math.floor((s.length - 1) / 2)] ?? NaN, samples };
}

/** Best (lowest) and median of durations (lower is better). */
export function timeStat(samples: readonly number[]): Stat {
  const s = [...samples].sort((a, b) => a - b);
  return { best: s[0] ?? NaN, median: s[Math.floor((s.length - 1) / 2)] ?? NaN, samples };
}

/** Milliseconds of wall time that `f` takes. */
export async function timeMs(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

/** Operations per second of `op`, run back to back for about `ms` milliseconds (after a short warm-up). */
export async function opsPerSecond(op: () => Promise<unknown>, ms: number): Promise<number> {
  return (await opsRates(op, ms)).wall;
}

/**
 * Operations per second of wall time, and per second of this process's CPU
 * time (user + system, all threads): the second does not count time other
 * processes take from us on a shared machine.
 */
export async function opsRates(op: () => Promise<unknown>, ms: number): Promise<{ wall: number; cpu: number }> {
  const warm = performance.now();
  while (performance.now() - warm < Math.min(200, ms / 4)) await op();
  let n = 0;
  const c0 = process.cpuUsage();
  const t = performance.now();
  let now = t;
  while (now - t < ms) {
    for (let i = 0; i < 16; i++) await op();
    n += 16;
    now = performance.now();
  }
  const c = process.cpuUsage(c0);
  return { wall: n / ((now - t) / 1000), cpu: n / ((c.user + c.system) / 1e6) };
}

/** Flushes dirty pages, so a timed file run does not pay for the writeback of the previous one. */
export function syncDisks(): void {
  execFileSync('sync');
}

export const fmt = {
  rate: (x: number) => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toPrecision(3)) : '—'),
  ratio: (x: number) => (Number.isFinite(x) ? `${x >= 10 ? x.toFixed(0) : x.toFixed(2)}×` : '—'),
  us: (x: number) => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(1)) : '—'),
};

/** A Markdown table (also readable as plain text). */
export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(width[i]!) : c.padStart(width[i]!))).join(' | ')} |`;
  return [line(head), `| ${width.map((w, i) => (i === 0 ? '-'.repeat(w) : '-'.repeat(w - 1) + ':')).join(' | ')} |`, ...rows.map(line)].join('\n');
}

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly ramGiB: number;
  readonly node: string;
  readonly openssl: string;
  readonly loadavg: readonly number[];
  readonly age: string;
}

export function machine(): Machine {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /Model name:\s*(.+)/.exec(execFileSync('lscpu', { encoding: 'utf8' }));
    if (m?.[1]) cpu = m[1].trim();
  } catch {
    // lscpu is optional
  }
  let age = 'not installed';
  try {
    age = execFileSync('age', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    // reported as not installed
  }
  return {
    cpu, cores: cpus().length, ramGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version, openssl: process.versions.openssl ?? 'unknown', loadavg: loadavg().map((x) => Math.round(x * 100) / 100), age,
  };
}

export const MB = 1e6;
export const MiB = 2 ** 20;
