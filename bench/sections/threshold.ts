/**
 * (d) Where the worker-thread path starts to pay: sealFile/openFile on one
 * thread (the streaming path) against the worker path forced on, by file
 * size, with the worker pool already running. PARALLEL_MIN_BYTES is chosen
 * from this table; the pool's start is measured separately.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { openFile, sealFile } from '@keyward/core/node';
import { AtomicFile } from '../../packages/core/src/node/atomic.js';
import { FileInput } from '../../packages/core/src/node/input.js';
import { openParallel, sealParallel } from '../../packages/core/src/node/parallel.js';
import { sharedPool } from '../../packages/core/src/node/pool.js';
import { randomFile, type Fixtures } from '../lib/fixtures.js';
import { MB, MiB, fmt, rateStat, table, timeMs } from '../lib/harness.js';

export const SIZES_MIB = [1, 2, 4, 8, 16, 64] as const;

export interface ThresholdRow {
  readonly mib: number;
  readonly stream: { seal: number; open: number };
  readonly workers: { seal: number; open: number };
}

async function viaWorkers(input: string, output: string, op: 'seal' | 'open', f: Fixtures, workers: number): Promise<void> {
  const file = (await FileInput.openIfLarge(input, 0))!;
  const out = await AtomicFile.create(output);
  try {
    if (op === 'seal') await sealParallel(file, out, { recipients: [f.recipient] }, workers);
    else await openParallel(file, out, { identities: [f.identity] }, workers);
    await out.commit();
  } catch (e) {
    await out.abort();
    throw e;
  } finally {
    await file.close();
  }
}

export async function threshold(f: Fixtures, rounds: number, workers: number): Promise<{ rows: ThresholdRow[]; poolStartMs: number }> {
  await sharedPool.stop();
  const poolStartMs = await timeMs(() => sharedPool.start(workers));
  const input = path.join(f.dir, 'threshold.in');
  const sealed = path.join(f.dir, 'threshold.kw');
  const opened = path.join(f.dir, 'threshold.out');
  const rows: ThresholdRow[] = [];
  for (const mib of SIZES_MIB) {
    const size = mib * MiB;
    randomFile(input, size);
    const rate = (ms: number) => size / MB / (ms / 1000);
    const s = { ss: [] as number[], so: [] as number[], ws: [] as number[], wo: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      s.ss.push(rate(await timeMs(() => sealFile(input, sealed, { recipients: [f.recipient], workers: 0 }))));
      s.so.push(rate(await timeMs(() => openFile(sealed, opened, { identities: [f.identity], workers: 0 }))));
      s.ws.push(rate(await timeMs(() => viaWorkers(input, sealed, 'seal', f, workers))));
      s.wo.push(rate(await timeMs(() => viaWorkers(sealed, opened, 'open', f, workers))));
    }
    rows.push({
      mib,
      stream: { seal: rateStat(s.ss).median, open: rateStat(s.so).median },
      workers: { seal: rateStat(s.ws).median, open: rateStat(s.wo).median },
    });
  }
  for (const p of [input, sealed, opened]) rmSync(p, { force: true });
  return { rows, poolStartMs };
}

export function thresholdTable(t: { rows: readonly ThresholdRow[]; poolStartMs: number }, workers: number): string {
  const body = t.rows.map((r) => [
    `${r.mib} MiB`, fmt.rate(r.stream.seal), fmt.rate(r.workers.seal), fmt.ratio(r.workers.seal / r.stream.seal),
    fmt.rate(r.stream.open), fmt.rate(r.workers.open), fmt.ratio(r.workers.open / r.stream.open),
  ]);
  return `(d) sealFile/openFile by size: one thread (stream path) vs ${workers} worker threads (pool running) — median MB/s; starting the pool took ${t.poolStartMs.toFixed(0)} ms\n\n${
    table(['file size', 'seal, 1 thread', `seal, ${workers} workers`, 'speed-up', 'open, 1 thread', `open, ${workers} workers`, 'speed-up'], body)}`;
}
