/**
 * `npm run bench`: Keyward's seal and open against its peers, side by side in
 * one run, with the issue's targets checked at the end.
 *
 *   (a) bulk: a 512 MiB file, file → file, and the same payload in memory
 *   (b) 1 KiB messages to one X25519 recipient, seal and open separately
 *   (c) fan-out to 1, 10, 100, 1000 recipients: µs per extra recipient
 *   (d) where the worker-thread file path starts to pay
 *
 * Prints Markdown tables and writes the raw numbers to bench/results/*.json.
 * Options: --only=bulk,small,fanout,threshold  --size-mib=512  --rounds=3  --quick
 * Files go to a temp directory under os.tmpdir(), removed at the end.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fixtures, ROOT } from './lib/fixtures.js';
import { MiB, fmt, machine, table } from './lib/harness.js';
import { bulk, bulkTables, type BulkRow } from './sections/bulk.js';
import { cpuSlopeUs, fanout, fanoutTable, slopeUs, COUNTS, type FanoutRow } from './sections/fanout.js';
import { small, smallTable, type SmallRow } from './sections/small.js';
import { threshold, thresholdTable, type ThresholdRow } from './sections/threshold.js';

const { values: args } = parseArgs({
  options: {
    only: { type: 'string', default: 'bulk,small,fanout,threshold' },
    'size-mib': { type: 'string', default: '512' },
    rounds: { type: 'string', default: '3' },
    quick: { type: 'boolean', default: false },
  },
});
const only = new Set(args.only.split(','));
const size = Number(args['size-mib']) * MiB;
const rounds = args.quick ? 1 : Number(args.rounds);
const opMs = args.quick ? 300 : 1500;
const log = (s: string) => process.stdout.write(`${s}\n`);

interface Target { readonly what: string; readonly target: string; readonly measured: string; readonly met: boolean | null }

function targets(b: readonly BulkRow[], s: readonly SmallRow[], fo: readonly FanoutRow[]): Target[] {
  const out: Target[] = [];
  const row = (name: string) => b.find((r) => r.name === name);
  const age = row('age CLI');
  for (const name of ['Keyward sealFile/openFile', 'Keyward CLI']) {
    const k = row(name);
    for (const op of ['seal', 'open'] as const) {
      const kv = k?.[op]?.best;
      const av = age?.[op]?.best;
      out.push({
        what: `bulk ${op}, ${name} vs age CLI`, target: '> 1.00× age',
        measured: kv && av ? `${fmt.rate(kv)} vs ${fmt.rate(av)} MB/s = ${fmt.ratio(kv / av)}` : (k?.note ?? 'not measured'),
        met: kv && av ? kv > av : null,
      });
    }
  }
  const mem = row('Keyward seal/open (in memory)');
  for (const [name, label] of [['raw node:crypto AES-256-GCM (in memory)', 'raw AES-256-GCM (the bound)'], ['raw node:crypto AES-256-GCM, one output buffer', 'raw AES-256-GCM into one buffer']] as const) {
    const raw = row(name);
    for (const op of ['seal', 'open'] as const) {
      const kv = mem?.[op]?.best;
      const rv = raw?.[op]?.best;
      out.push({
        what: `in-memory ${op} vs ${label}`, target: '≥ 0.85×',
        measured: kv && rv ? `${fmt.rate(kv)} vs ${fmt.rate(rv)} MB/s = ${fmt.ratio(kv / rv)}` : 'not measured', met: kv && rv ? kv / rv >= 0.85 : null,
      });
    }
  }
  const k = s.find((r) => r.name === 'Keyward');
  const floor = s.find((r) => r.name.startsWith('floor'));
  for (const [op, goal] of [['seal', 9500], ['open', 20000]] as const) {
    const v = k?.[op]?.best;
    const fv = floor?.[op]?.best;
    const cpu = k?.[`${op}Cpu`];
    out.push({
      what: `1 KiB ${op}`, target: `≥ ${goal.toLocaleString('en')}/s`,
      measured: v ? `${fmt.rate(v)}/s (floor ${fv ? fmt.rate(fv) : '—'}/s, ${v && fv ? fmt.ratio(v / fv) : '—'} of it; ${cpu ? fmt.rate(cpu) : '—'} per CPU-s)` : 'not measured',
      met: v ? v >= goal : null,
    });
  }
  const ours = fo.find((r) => r.name === 'Keyward seal');
  if (ours) {
    for (const n of COUNTS.slice(1)) {
      const us = slopeUs(ours, n);
      const cpu = n === 1000 ? `; ${fmt.us(cpuSlopeUs(ours, n))} µs of CPU time` : '';
      out.push({ what: `fan-out, µs per extra recipient (1→${n})`, target: '≤ 90 µs', measured: `${fmt.us(us)} µs${cpu}`, met: Number.isFinite(us) ? us <= 90 : null });
    }
  }
  return out;
}

async function main(): Promise<void> {
  const m = machine();
  const date = new Date().toISOString();
  log(`Keyward seal benchmarks — ${date}`);
  log(`${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB RAM, Node ${m.node}, OpenSSL ${m.openssl}, ${m.age}; load average ${m.loadavg.join(' ')}\n`);
  const f = await fixtures();
  const cleanup = () => f.cleanup();
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) process.once(signal, () => { cleanup(); process.exit(code); });
  const sections: string[] = [];
  let b: BulkRow[] = [];
  let s: SmallRow[] = [];
  let fo: FanoutRow[] = [];
  let th: { rows: ThresholdRow[]; poolStartMs: number } | null = null;
  const workers = Math.min(availableParallelism(), 8);
  try {
    if (only.has('bulk')) {
      log(`(a) bulk, ${size / MiB} MiB, ${rounds} rounds …`);
      b = await bulk(f, size, rounds, log);
      sections.push(bulkTables(b, size));
      log(`\n${sections.at(-1)}\n`);
    }
    if (only.has('small')) {
      log(`(b) 1 KiB messages, ${rounds} rounds of ${opMs} ms …`);
      s = await small(f, rounds, opMs, log);
      sections.push(smallTable(s));
      log(`\n${sections.at(-1)}\n`);
    }
    if (only.has('fanout')) {
      log(`(c) fan-out, ${rounds} rounds …`);
      fo = await fanout(f, rounds, Math.max(300, opMs / 2), log);
      sections.push(fanoutTable(fo));
      log(`\n${sections.at(-1)}\n`);
    }
    if (only.has('threshold')) {
      log('(d) worker-path threshold …');
      th = await threshold(f, rounds, workers);
      sections.push(thresholdTable(th, workers));
      log(`\n${sections.at(-1)}\n`);
    }
  } finally {
    cleanup();
  }
  const t = targets(b, s, fo);
  const targetTable = table(['target', 'goal', 'measured', 'met'], t.map((x) => [x.what, x.target, x.measured, x.met === null ? '—' : x.met ? 'yes' : 'no']));
  log(`Targets\n\n${targetTable}\n`);
  const dir = path.join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `seal-${date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ date, machine: m, options: { size, rounds, opMs, workers }, bulk: b, small: s, fanout: fo, threshold: th, targets: t }, null, 2));
  log(`results: ${path.relative(ROOT, file)}`);
}

await main();
