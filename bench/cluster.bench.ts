/**
 * One, two and three nodes sharing one PostgreSQL database (issue #4): signed
 * `datakey` requests from C concurrent clients for D seconds per phase,
 * against node A alone, then split over A and B, then over A, B and C. Each
 * node is a real process with its own keyholder
 * (packages/server/test/server-runner.mjs).
 *
 * Per phase it prints ops/s, p50/p99 latency, audit appends/s (growth of
 * `audit_head`) and the per-request costs the node-count estimate is built on:
 * - the audit sequencer: the time the nodes held the `audit_head` row lock
 *   (lock granted → commit, from each node's `keyward_audit_sequencer_*`
 *   metrics), per audited event, split into keyholder waits and the rest
 *   (PostgreSQL round trips and the commit); its busy fraction;
 * - CPU per request of PostgreSQL (every `postgres` process, /proc), of the
 *   nodes (server + keyholder processes) and of the load generator.
 *
 *   npm run bench:cluster            (KW_BENCH_CLIENTS=16 KW_BENCH_SECONDS=8 KW_TEST_PG_URL=…)
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import pg from 'pg';
import { HpkeIdentity } from '@keyward/core';
import { Api, REPO, unb64u, type Device, type RunnerInfo } from '../packages/server/test/crash/helpers.js';

const ADMIN_URL = process.env.KW_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const CLIENTS = Number(process.env.KW_BENCH_CLIENTS ?? 16);
const SECONDS = Number(process.env.KW_BENCH_SECONDS ?? 8);
const DB = `kw_bench_${randomBytes(6).toString('hex')}`;
const STORE = (() => { const u = new URL(ADMIN_URL); u.pathname = `/${DB}`; return u.toString(); })();
const RUNNER = fileURLToPath(new URL('../packages/server/test/server-runner.mjs', import.meta.url));
const TICK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);

const kids: number[] = [];
function node(dir: string, init: boolean): Promise<RunnerInfo> {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', RUNNER, dir, '--store', STORE, ...(init ? ['--init'] : [])], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  kids.push(child.pid!);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => { out += c; const m = /^KW_RUNNER_READY (.*)$/m.exec(out); if (m) resolve(JSON.parse(m[1]!) as RunnerInfo); });
    child.once('exit', (c) => reject(new Error(`node exited ${c}`)));
  });
}

async function db(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try { await c.query(sql); } finally { await c.end(); }
}

/** CPU seconds (user + system) of one process, 0 when it is gone. */
function cpuOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK;
  } catch {
    return 0;
  }
}

/** CPU seconds of every process named `postgres` (postmaster, backends, WAL writer, …), by pid. */
function postgresCpu(): Map<number, number> {
  const m = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try { if (readFileSync(`/proc/${e}/comm`, 'utf8').trim() === 'postgres') m.set(Number(e), cpuOf(Number(e))); } catch { /* gone */ }
  }
  return m;
}

/** The sequencer metrics of one node. */
async function sequencer(url: string): Promise<{ hold: number; holds: number; events: number; keyholder: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const v = (name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { hold: v('keyward_audit_sequencer_hold_seconds_sum'), holds: v('keyward_audit_sequencer_hold_seconds_count'), events: v('keyward_audit_sequencer_events_total'), keyholder: v('keyward_audit_sequencer_keyholder_seconds_total') };
}

const lscpu = spawnSync('lscpu', [], { encoding: 'utf8' }).stdout ?? '';
const model = /^Model name:\s*(.*)$/m.exec(lscpu)?.[1] ?? cpus()[0]?.model ?? '?';
const pgVersion = await (async () => {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try { return (await c.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v; } finally { await c.end(); }
})();

await db(`CREATE DATABASE ${DB}`);
const dirs = [0, 1, 2].map((i) => mkdtempSync(join(tmpdir(), `kw-bench-${'abc'[i]}-`)));
try {
  const a = await node(dirs[0]!, true);
  for (const d of dirs.slice(1)) copyFileSync(join(dirs[0]!, 'keyholder.json'), join(d, 'keyholder.json'));
  const others = await Promise.all(dirs.slice(1).map((d) => node(d, false)));
  const infos = [a, ...others];
  const apis = infos.map((i) => new Api(i.url));
  for (const api of apis) await api.unseal(a.init!.shares.slice(0, 2));
  const A = apis[0]!;
  const root = (await A.call('POST', '/v1/tokens', { token: a.init!.rootToken, body: { principal: 'bench-admin', kind: 'person', admin: true } })).body.token as string;
  await A.call('POST', '/v1/keys/bench/k', { token: root, body: { type: 'aes256' } });
  const svc = (await A.call('POST', '/v1/tokens', { token: root, body: { principal: 'svc-bench', ns: 'bench', roles: ['app'] } })).body.token as string;
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const sk = await A.call('POST', '/v1/auth/signing-keys', { token: svc, body: { alg: 'ed25519', public_key: publicKey.export({ format: 'jwk' }).x! } });
  const device: Device = { keyId: sk.body.key_id as string, seed: unb64u(privateKey.export({ format: 'jwk' }).d!) };
  await A.call('PUT', '/v1/policies/bench/app', { token: root, body: { grants: [{ roles: ['app'], operations: ['datakey'], keys: ['bench/*'] }] } });
  const recipient = (await (await HpkeIdentity.generate('x25519')).recipient()).toString();
  const auditSize = async (): Promise<number> => {
    const c = new pg.Client({ connectionString: STORE });
    await c.connect();
    try { return Number((await c.query<{ size: string }>('SELECT size FROM audit_head')).rows[0]!.size); } finally { await c.end(); }
  };
  const nodeCpu = () => infos.reduce((n, i) => n + cpuOf(i.pid) + (i.keyholderPid ? cpuOf(i.keyholderPid) : 0), 0);
  const seqAll = async () => (await Promise.all(infos.map((i) => sequencer(i.url)))).reduce((x, y) => ({ hold: x.hold + y.hold, holds: x.holds + y.holds, events: x.events + y.events, keyholder: x.keyholder + y.keyholder }));

  const rows: Record<string, unknown>[] = [];
  async function phase(name: string, n: number, clients = CLIENTS): Promise<void> {
    const on = apis.slice(0, n);
    const lat: number[] = [];
    const errors = new Map<string, number>();
    const s0 = await auditSize();
    const q0 = await seqAll();
    const pg0 = postgresCpu();
    const n0 = nodeCpu();
    const c0 = process.cpuUsage();
    const end = Date.now() + SECONDS * 1000;
    const t0 = Date.now();
    await Promise.all(Array.from({ length: clients }, async (_, i) => {
      const api = on[i % on.length]!;
      while (Date.now() < end) {
        const t = performance.now();
        const r = await api.signed(svc, device, '/v1/data/bench/k/datakey', { recipient, context: {} });
        if (r.status === 200) lat.push(performance.now() - t);
        else { const k = `${r.status} ${String(r.body?.error?.code)}`; errors.set(k, (errors.get(k) ?? 0) + 1); }
      }
    }));
    const secs = (Date.now() - t0) / 1000;
    const c1 = process.cpuUsage(c0);
    const pg1 = postgresCpu();
    let pgCpu = 0;
    for (const [pid, t] of pg1) pgCpu += t - (pg0.get(pid) ?? 0);
    const nCpu = nodeCpu() - n0;
    const q1 = await seqAll();
    const s1 = await auditSize();
    lat.sort((x, y) => x - y);
    const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
    const ops = lat.length;
    const ev = q1.events - q0.events;
    const row = {
      phase: name, nodes: n, clients, seconds: Number(secs.toFixed(1)),
      ops_per_s: Math.round(ops / secs), p50_ms: Number(q(0.5).toFixed(1)), p99_ms: Number(q(0.99).toFixed(1)),
      audit_appends_per_s: Math.round((s1 - s0) / secs),
      seq_busy: Number(((q1.hold - q0.hold) / secs).toFixed(2)),
      seq_events_per_hold: Number((ev / Math.max(1, q1.holds - q0.holds)).toFixed(1)),
      seq_ms_per_event: Number((((q1.hold - q0.hold) * 1000) / Math.max(1, ev)).toFixed(3)),
      seq_db_ms_per_event: Number((((q1.hold - q0.hold - (q1.keyholder - q0.keyholder)) * 1000) / Math.max(1, ev)).toFixed(3)),
      pg_cpu_ms_per_op: Number(((pgCpu * 1000) / Math.max(1, ops)).toFixed(3)),
      node_cpu_ms_per_op: Number(((nCpu * 1000) / Math.max(1, ops)).toFixed(3)),
      client_cpu_ms_per_op: Number((((c1.user + c1.system) / 1000) / Math.max(1, ops)).toFixed(3)),
      errors: Object.fromEntries(errors),
    };
    rows.push(row);
    console.log(`${name.padEnd(12)} ${String(row.ops_per_s).padStart(5)} datakey/s  p50 ${row.p50_ms} ms  p99 ${row.p99_ms} ms  audit ${row.audit_appends_per_s}/s  sequencer busy ${row.seq_busy} (${row.seq_events_per_hold} ev/hold, ${row.seq_ms_per_event} ms/ev, db ${row.seq_db_ms_per_event} ms/ev)  cpu ms/op pg ${row.pg_cpu_ms_per_op} nodes ${row.node_cpu_ms_per_op} client ${row.client_cpu_ms_per_op}  errors ${JSON.stringify(row.errors)}`);
  }

  console.log(`cluster bench ${new Date().toISOString()}: availableParallelism ${availableParallelism()}, ${model}, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}; PostgreSQL ${pgVersion} at ${ADMIN_URL.replace(/\/\/[^@]*@/, '//')}; ${CLIENTS} clients, ${SECONDS} s per phase; clients, nodes, keyholders and PostgreSQL share this machine`);
  await phase('warm-up', 3);
  for (const round of [1, 2]) for (const n of [1, 2, 3]) await phase(`${n} node${n > 1 ? 's' : ''} (${round})`, n);
  // One client on one node: the machine mostly idle, so the hold is the sequencer's own cost per (one-event) group, not CPU queueing.
  await phase('uncontended', 1, 1);

  // The estimate: what one PostgreSQL primary carries, from the measured per-request costs.
  const measured = rows.filter((r) => r.phase !== 'warm-up' && r.phase !== 'uncontended');
  const idle = rows.find((r) => r.phase === 'uncontended')!;
  const mean = (k: string) => measured.reduce((n, r) => n + (r[k] as number), 0) / measured.length;
  const seqMs = mean('seq_ms_per_event');
  const seqDbMs = mean('seq_db_ms_per_event');
  const pgMs = mean('pg_cpu_ms_per_op');
  const nodeMs = mean('node_cpu_ms_per_op');
  console.log(`per audited request (mean of the measured phases): sequencer hold ${seqMs.toFixed(3)} ms (of which PostgreSQL round trips + commit ${seqDbMs.toFixed(3)} ms), PostgreSQL CPU ${pgMs.toFixed(3)} ms, node CPU (server + keyholder) ${nodeMs.toFixed(3)} ms`);
  console.log(`ceilings: sequencer ${Math.round(1000 / seqMs)} ops/s at these group sizes (${Math.round(1000 / seqDbMs)} ops/s if keyholder waits were free); PostgreSQL CPU ${Math.round(1000 / pgMs)} ops/s per core; one node ${Math.round(1000 / nodeMs)} ops/s per core`);
  console.log(`uncontended (1 client, 1 node, one event per hold): sequencer hold ${String(idle.seq_ms_per_event)} ms per event (PostgreSQL part ${String(idle.seq_db_ms_per_event)} ms) → at most ${Math.round(1000 / (idle.seq_ms_per_event as number))} groups/s; PostgreSQL CPU ${String(idle.pg_cpu_ms_per_op)} ms/op`);
  console.log(`JSON ${JSON.stringify({ machine: { availableParallelism: availableParallelism(), model, postgres: pgVersion }, rows, perRequest: { seqMs, seqDbMs, pgMs, nodeMs } })}`);
} finally {
  for (const pid of kids) { try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ } }
  await new Promise((r) => setTimeout(r, 1500));
  for (const pid of kids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await db(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
}
