/**
 * Group commit on one node vs two nodes sharing one PostgreSQL database
 * (issue #4): signed `datakey` requests from C concurrent clients for D
 * seconds, against node A alone, then split over A and B. Prints ops/s, p50/p99
 * latency and audit appends/s (store growth). Each node is a real process
 * with its own keyholder (packages/server/test/cluster/node-runner.ts).
 *
 *   npm run bench:cluster            (KW_BENCH_CLIENTS=16 KW_BENCH_SECONDS=5 KW_TEST_PG_URL=…)
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import pg from 'pg';
import { HpkeIdentity } from '@keyward/core';
import { Api, REPO, unb64u, type Device, type RunnerInfo } from '../packages/server/test/crash/helpers.js';

const ADMIN_URL = process.env.KW_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const CLIENTS = Number(process.env.KW_BENCH_CLIENTS ?? 16);
const SECONDS = Number(process.env.KW_BENCH_SECONDS ?? 5);
const DB = `kw_bench_${randomBytes(6).toString('hex')}`;
const STORE = (() => { const u = new URL(ADMIN_URL); u.pathname = `/${DB}`; return u.toString(); })();
const RUNNER = fileURLToPath(new URL('../packages/server/test/cluster/node-runner.ts', import.meta.url));

const kids: number[] = [];
function node(dir: string, init: boolean): Promise<RunnerInfo> {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', RUNNER, dir, STORE, ...(init ? ['init'] : [])], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
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

await db(`CREATE DATABASE ${DB}`);
const dirA = mkdtempSync(join(tmpdir(), 'kw-bench-a-'));
const dirB = mkdtempSync(join(tmpdir(), 'kw-bench-b-'));
try {
  const a = await node(dirA, true);
  copyFileSync(join(dirA, 'keyholder.json'), join(dirB, 'keyholder.json'));
  const b = await node(dirB, false);
  const A = new Api(a.url);
  const B = new Api(b.url);
  await A.unseal(a.init!.shares.slice(0, 2));
  await B.unseal(a.init!.shares.slice(0, 2));
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

  async function phase(name: string, apis: Api[]): Promise<void> {
    const lat: number[] = [];
    const errors = new Map<string, number>();
    const s0 = await auditSize();
    const end = Date.now() + SECONDS * 1000;
    const t0 = Date.now();
    await Promise.all(Array.from({ length: CLIENTS }, async (_, i) => {
      const api = apis[i % apis.length]!;
      while (Date.now() < end) {
        const t = performance.now();
        const r = await api.signed(svc, device, '/v1/data/bench/k/datakey', { recipient, context: {} });
        if (r.status === 200) lat.push(performance.now() - t);
        else { const k = `${r.status} ${String(r.body?.error?.code)}`; errors.set(k, (errors.get(k) ?? 0) + 1); }
      }
    }));
    const secs = (Date.now() - t0) / 1000;
    const s1 = await auditSize();
    lat.sort((x, y) => x - y);
    const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]?.toFixed(1) ?? '-';
    console.log(`${name.padEnd(10)} clients ${CLIENTS}  ${(lat.length / secs).toFixed(0).padStart(5)} datakey/s  p50 ${q(0.5)} ms  p99 ${q(0.99)} ms  audit appends ${((s1 - s0) / secs).toFixed(0)}/s  errors ${JSON.stringify([...errors])}`);
  }

  console.log(`cluster bench: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), PostgreSQL ${ADMIN_URL.replace(/\/\/[^@]*@/, '//')}, ${SECONDS} s per phase; clients, nodes and PostgreSQL share this machine`);
  await phase('warm-up', [A, B]);
  await phase('one node', [A]);
  await phase('two nodes', [A, B]);
  await phase('one node', [A]);
  await phase('two nodes', [A, B]);
} finally {
  for (const pid of kids) { try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ } }
  await new Promise((r) => setTimeout(r, 1500));
  for (const pid of kids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  rmSync(dirA, { recursive: true, force: true });
  rmSync(dirB, { recursive: true, force: true });
  await db(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
}
