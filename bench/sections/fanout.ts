/**
 * (c) Fan-out: a 1 KiB message sealed to 1, 10, 100 and 1000 X25519
 * recipients, each with its own fresh encapsulation. The cost of one more
 * recipient is the slope (t(N) − t(1)) / (N − 1), which removes fixed costs
 * such as the age CLI's process start.
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { generateIdentity, seal, type HpkeRecipient } from '@keyward/core';
import type { Fixtures } from '../lib/fixtures.js';
import { fmt, opsRates, table, timeMs, timeStat, type Stat } from '../lib/harness.js';

export const COUNTS = [1, 10, 100, 1000] as const;

export interface FanoutRow {
  readonly name: string;
  /** Milliseconds per seal, by recipient count. */
  readonly ms: Record<number, Stat>;
  /** Milliseconds of CPU time per seal (best of the rounds), when measured in this process. */
  readonly cpuMs?: Record<number, number>;
  readonly note?: string;
}

export async function fanout(f: Fixtures, rounds: number, ms: number, log: (s: string) => void): Promise<FanoutRow[]> {
  const pt = randomBytes(1024);
  const rows: FanoutRow[] = [];
  const max = Math.max(...COUNTS);

  const recipients: HpkeRecipient[] = [];
  for (let i = 0; i < max; i++) recipients.push(await (await generateIdentity('x25519')).recipient());
  const ours: Record<number, number[]> = {};
  const cpuMs: Record<number, number> = {};
  for (let round = 0; round < rounds; round++) {
    for (const n of COUNTS) {
      const list = recipients.slice(0, n);
      const r = await opsRates(() => seal(pt, { recipients: list }), ms);
      (ours[n] ??= []).push(1000 / r.wall);
      cpuMs[n] = Math.min(cpuMs[n] ?? Infinity, 1000 / r.cpu);
    }
    log(`  Keyward: ${COUNTS.map((n) => `${n}: ${fmt.us(ours[n]!.at(-1)! * 1000)} µs`).join(', ')}`);
  }
  rows.push({ name: 'Keyward seal', ms: Object.fromEntries(COUNTS.map((n) => [n, timeStat(ours[n]!)])), cpuMs });

  try {
    const keys: string[] = [];
    for (let i = 0; i < max; i++) keys.push(/age1\S+/.exec(execFileSync('age-keygen', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))![0]);
    const input = path.join(f.dir, 'fanout.in');
    writeFileSync(input, pt);
    const age: Record<number, number[]> = {};
    for (let round = 0; round < Math.max(rounds, 5); round++) {
      for (const n of COUNTS) {
        const args = keys.slice(0, n).flatMap((k) => ['-r', k]);
        (age[n] ??= []).push(await timeMs(() => Promise.resolve(execFileSync('age', [...args, '-o', '/dev/null', input]))));
      }
    }
    rows.push({ name: 'age CLI', ms: Object.fromEntries(COUNTS.map((n) => [n, timeStat(age[n]!)])), note: 'one process per seal; the slope removes its start' });
  } catch (e) {
    rows.push({ name: 'age CLI', ms: {}, note: `not measured: ${(e as Error).message.split('\n')[0]}` });
  }
  return rows;
}

/** µs per extra recipient between 1 and n recipients, from medians. */
export function slopeUs(row: FanoutRow, n: number): number {
  const a = row.ms[1];
  const b = row.ms[n];
  return a && b ? ((b.median - a.median) * 1000) / (n - 1) : NaN;
}

/** The same slope in CPU time, where measured. */
export function cpuSlopeUs(row: FanoutRow, n: number): number {
  const a = row.cpuMs?.[1];
  const b = row.cpuMs?.[n];
  return a !== undefined && b !== undefined ? ((b - a) * 1000) / (n - 1) : NaN;
}

export function fanoutTable(rows: readonly FanoutRow[]): string {
  const head = ['implementation', ...COUNTS.map((n) => `${n} recipient${n > 1 ? 's' : ''}, ms`), ...COUNTS.slice(1).map((n) => `µs/extra (1→${n})`), 'µs/extra, CPU time (1→1000)', 'notes'];
  const body = rows.map((r) => [
    r.name,
    ...COUNTS.map((n) => (r.ms[n] ? (r.ms[n].median < 1 ? r.ms[n].median.toFixed(3) : r.ms[n].median.toPrecision(3)) : '—')),
    ...COUNTS.slice(1).map((n) => fmt.us(slopeUs(r, n))),
    fmt.us(cpuSlopeUs(r, 1000)),
    r.note ?? '',
  ]);
  return `(c) Fan-out: 1 KiB sealed to N X25519 recipients — median ms per seal, and µs per extra recipient\n\n${table(head, body)}`;
}
