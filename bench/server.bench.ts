/**
 * `npm run bench:server`: the key service's data plane under load, over
 * loopback, beside a bare fastify endpoint measured in the same run.
 *
 * - The key service runs as a real separate process (bench/lib/server-process.ts:
 *   `startServer` on a fresh temp data directory, initialised, unsealed over
 *   HTTP with two sealed shares, its keyholder a child process of its own),
 *   SQLite in WAL mode with the synchronous mode it reports (FULL: every
 *   commit fsyncs the WAL), the audit log on (every request's event is
 *   committed, with its leaf appended by the keyholder, before it answers).
 * - The bare endpoint (bench/lib/bare-process.ts) is the same framework with
 *   the same body parsing, in its own process, answering a JSON object.
 * - The load generator (bench/lib/loadgen.ts) runs here: 1, 16 and 64
 *   closed-loop clients on keep-alive connections; every `unwrap` and
 *   `datakey` request is signed (RFC 9421, `@keyward/client` `signRequest`,
 *   the real client's profile, with node:crypto's Ed25519 as its `signer`)
 *   just before it is sent, with a fresh nonce.
 *
 * Options: --levels=1,16,64  --duration-ms=5000  --warmup-ms=1000  --rounds=1
 *   --ops=bare,unwrap,datakey  --log-level=warn  --pool=256  --quick
 *   --noble-signer (sign with @noble/curves, signRequest's default, instead of node:crypto)
 *   --profile=DIR (CPU profiles of the server and keyholder processes into DIR: lib/cpu-profile.mjs)
 * Prints Markdown tables and writes bench/results/server-<date>.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { armor, generateIdentity, open } from '@keyward/core';
import { signRequest } from '@keyward/client';
import { sealShareForBoot } from '@keyward/server';
import { ROOT } from './lib/fixtures.js';
import { fmt, table } from './lib/harness.js';
import { runLoad, type BuiltRequest, type LoadResult } from './lib/loadgen.js';
import { generateKeyPairSync, sign } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { isKeyholderCommand } from '../packages/server/test/crash/helpers.js';

const { values: args } = parseArgs({
  options: {
    levels: { type: 'string', default: '1,16,64' },
    'duration-ms': { type: 'string', default: '5000' },
    'warmup-ms': { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '1' },
    ops: { type: 'string', default: 'bare,unwrap,datakey' },
    'log-level': { type: 'string', default: 'warn' },
    pool: { type: 'string', default: '256' },
    profile: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'noble-signer': { type: 'boolean', default: false },
  },
});
const levels = args.levels.split(',').map(Number);
const durationMs = args.quick ? 2000 : Number(args['duration-ms']);
const warmupMs = args.quick ? 500 : Number(args['warmup-ms']);
const rounds = Number(args.rounds);
const ops = args.ops.split(',') as Op[];
type Op = 'bare' | 'unwrap' | 'datakey';
const log = (s: string) => process.stdout.write(`${s}\n`);
const NS = 'bench';
const KEY = 'orders';

// ---------------------------------------------------------------------------
// Processes

interface Child { readonly child: ChildProcess; readonly info: Record<string, unknown>; readonly exited: Promise<void> }

function spawnReady(script: string, argv: string[], marker: string, env: NodeJS.ProcessEnv = process.env): Promise<Child> {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', path.join(ROOT, 'bench/lib', script), ...argv], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c: string) => { err = (err + c).slice(-4000); });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${script} not ready; stderr: ${err}`)); }, 60_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => {
      out += c;
      const m = new RegExp(`^${marker} (.*)$`, 'm').exec(out);
      if (m) { clearTimeout(timer); resolve({ child, info: JSON.parse(m[1]!) as Record<string, unknown>, exited }); }
    });
    void exited.then(() => { clearTimeout(timer); reject(new Error(`${script} exited; stderr: ${err}`)); });
  });
}

async function stop(c: Child): Promise<void> {
  if (c.child.exitCode !== null || c.child.signalCode !== null) return;
  c.child.kill('SIGTERM');
  await Promise.race([c.exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
}

/** CPU time (user + system) of a process so far, µs, from /proc. */
function cpuOf(pid: number | null): number {
  if (pid === null) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) / 100) * 1e6;
  } catch {
    return NaN;
  }
}

/** The keyholder: the API process's child running it. */
function keyholderPid(apiPid: number): number | null {
  try {
    for (const tid of readFileSync(`/proc/${apiPid}/task/${apiPid}/children`, 'utf8').trim().split(/\s+/)) {
      if (tid && isKeyholderCommand(readFileSync(`/proc/${tid}/cmdline`, 'utf8'))) return Number(tid);
    }
  } catch { /* gone */ }
  return null;
}

// ---------------------------------------------------------------------------
// HTTP helpers for setup

async function json(url: string, method: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(url, { method, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await r.text();
  let parsed: Record<string, unknown> = {};
  try { parsed = JSON.parse(text) as Record<string, unknown>; } catch { parsed = { text }; }
  return { status: r.status, body: parsed };
}

function must(r: { status: number; body: unknown }, what: string, status = 200): Record<string, unknown> {
  if (r.status !== status) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as Record<string, unknown>;
}

// ---------------------------------------------------------------------------

interface Row extends LoadResult { readonly op: Op; readonly round: number; readonly serverCpuUs: number; readonly keyholderCpuUs: number }

async function main(): Promise<void> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'keyward-bench-server-'));
  const children: Child[] = [];
  const cleanup = () => { rmSync(dataDir, { recursive: true, force: true }); };
  const onSignal = () => { for (const c of children) c.child.kill('SIGKILL'); cleanup(); process.exit(130); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const profileDir = args.profile ? path.resolve(args.profile) : null;
    if (profileDir) mkdirSync(profileDir, { recursive: true });
    // NODE_OPTIONS reaches the keyholder too (the server spawns it with process.execPath); --cpu-prof is not allowed there, a preload is.
    const serverEnv = profileDir
      ? { ...process.env, KW_CPU_PROFILE_DIR: profileDir, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${path.join(ROOT, 'bench/lib/cpu-profile.mjs')}`.trim() }
      : process.env;
    const bare = ops.includes('bare') ? await spawnReady('bare-process.ts', [], 'KW_BENCH_BARE') : null;
    if (bare) children.push(bare);
    const server = await spawnReady('server-process.ts', [dataDir, args['log-level']], 'KW_BENCH_SERVER', serverEnv);
    children.push(server);
    const url = (server.info.url as string).replace(/\/$/, '');
    const init = server.info.init as { shares: string[]; rootToken: string };
    const sqlite = server.info.sqlite as { journalMode: string; synchronous: number };
    const apiPid = server.info.pid as number;
    const khPid = keyholderPid(apiPid);

    // Unseal as `keyward unseal` does: each share sealed to the keyholder's per-boot key.
    for (const share of init.shares.slice(0, 2)) {
      const k = must(await json(`${url}/v1/sys/unseal-key`, 'GET'), 'unseal-key');
      const sealed = armor(await sealShareForBoot(share, k.recipient as string, k.boot as string));
      must(await json(`${url}/v1/sys/unseal`, 'POST', { share: sealed }), 'unseal');
    }
    // The initial token only enrolls administrators (api/bootstrap.ts): enroll one, then work as it.
    const admin = must(await json(`${url}/v1/tokens`, 'POST', { principal: 'bench-admin', kind: 'person', admin: true }, { authorization: `Bearer ${init.rootToken}` }), 'admin token', 201);
    const root = { authorization: `Bearer ${admin.token as string}` };
    must(await json(`${url}/v1/keys/${NS}/${KEY}`, 'POST', { type: 'aes256' }, root), 'create key', 201);
    const tok = must(await json(`${url}/v1/tokens`, 'POST', { principal: 'svc-bench', ns: NS, roles: ['bench-app'] }, root), 'token', 201);
    const svc = { authorization: `Bearer ${tok.token as string}` };
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const seed = Uint8Array.from(Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url'));
    const sk = must(await json(`${url}/v1/auth/signing-keys`, 'POST', { alg: 'ed25519', public_key: publicKey.export({ format: 'jwk' }).x! }, svc), 'signing key', 201);
    const keyId = sk.key_id as string;
    // The client's RFC 9421 signing, with node:crypto's Ed25519 (same bytes as the default @noble/curves, ~20× cheaper here).
    const signer = (m: Uint8Array) => Uint8Array.from(sign(null, m, privateKey));
    const nobleSigner = args['noble-signer'];
    must(await json(`${url}/v1/policies/${NS}/bench-app`, 'PUT', { grants: [{ roles: ['bench-app'], operations: ['datakey', 'unwrap'], keys: [`${NS}/*`] }] }, root), 'policy');
    const identity = await generateIdentity('x25519');
    const recipient = (await identity.recipient()).toString();

    const signed = (route: 'unwrap' | 'datakey', body: unknown): BuiltRequest => {
      const text = JSON.stringify(body);
      const p = `/v1/data/${NS}/${KEY}/${route}`;
      const sig = signRequest({ method: 'POST', url: `${url}${p}`, headers: {}, body: text }, { keyId, privateKey: seed, label: 'kw', ...(nobleSigner ? {} : { signer }) });
      return { path: p, headers: { ...svc, ...sig }, body: text };
    };

    // A pool of wrapped data keys to unwrap (each request unwraps one, round robin).
    const pool: { version: number; wrapped: string; context: Record<string, string> }[] = [];
    for (let i = 0; i < Number(args.pool); i++) {
      const context = { table: 'orders', row: String(i) };
      const r = signed('datakey', { recipient, context });
      const res = must(await json(`${url}${r.path}`, 'POST', JSON.parse(r.body), r.headers), 'datakey (pool)');
      pool.push({ version: res.version as number, wrapped: res.wrapped as string, context });
    }
    // One end-to-end check: an unwrap answer opens to a 32-byte key with the identity.
    {
      const r = signed('unwrap', { ...pool[0]!, recipient });
      const res = must(await json(`${url}${r.path}`, 'POST', JSON.parse(r.body), r.headers), 'unwrap (check)');
      const reqHash = Buffer.from(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`${r.headers['Signature-Input']}\n${r.headers.Signature}`))).toString('hex');
      const opened = await open(Buffer.from(res.sealed as string, 'base64url'), { identities: [identity], context: { kw_request: reqHash, kw_key: `${NS}/${KEY}`, kw_version: String(pool[0]!.version), ...pool[0]!.context } });
      if (opened.plaintext.length !== 32) throw new Error('the unwrapped key is not 32 bytes');
    }

    const builders: Record<Op, (client: number, i: number) => BuiltRequest> = {
      bare: () => ({ path: `/v1/bare/${NS}/${KEY}`, headers: {}, body: JSON.stringify({ ...pool[0]!, recipient }) }),
      unwrap: (c, i) => signed('unwrap', { ...pool[(c * 7919 + i) % pool.length]!, recipient }),
      datakey: (c, i) => signed('datakey', { recipient, context: { table: 'orders', row: `${c}-${i}` } }),
    };
    const urls: Record<Op, string> = { bare: bare ? (bare.info.url as string) : '', unwrap: url, datakey: url };

    const m = machineInfo();
    log(`# Key service under load (${new Date().toISOString()})\n`);
    log(`${m.cpu}, ${m.cores} vCPUs, ${m.ramGiB} GiB, Node ${m.node}; load average at start ${m.loadavg.join(' ')}`);
    log(`SQLite journal_mode=${sqlite.journalMode}, synchronous=${sqlite.synchronous} (${['OFF', 'NORMAL', 'FULL', 'EXTRA'][sqlite.synchronous] ?? '?'}); audit on; signed requests; server log level ${args['log-level']}`);
    log(`levels ${levels.join(', ')} clients; ${durationMs} ms measured after ${warmupMs} ms warm-up; ${rounds} round(s)\n`);

    const rows: Row[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const level of levels) {
        for (const op of ops) {
          const s0 = cpuOf(apiPid);
          const k0 = cpuOf(khPid);
          const r = await runLoad({ url: urls[op], concurrency: level, durationMs, warmupMs, build: builders[op] });
          const n = r.ok + r.errors;
          const row: Row = { ...r, op, round, serverCpuUs: op === 'bare' ? NaN : (cpuOf(apiPid) - s0) / n, keyholderCpuUs: op === 'bare' ? NaN : (cpuOf(khPid) - k0) / n };
          rows.push(row);
          log(`  ${op.padEnd(7)} ${String(level).padStart(3)} clients: ${fmt.rate(r.rps)} req/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, errors ${r.errors}${r.errorSamples.length ? ` (${r.errorSamples[0]})` : ''}`);
        }
      }
    }

    const best = (op: Op, level: number) => rows.filter((r) => r.op === op && r.concurrency === level).sort((a, b) => b.rps - a.rps)[0];
    const out: string[][] = [];
    for (const level of levels) {
      const b = best('bare', level);
      for (const op of ops) {
        const r = best(op, level);
        if (!r) continue;
        out.push([op, String(level), fmt.rate(r.rps), r.p50.toFixed(2), r.p90.toFixed(2), r.p99.toFixed(2), r.max.toFixed(1), String(r.errors),
          b && op !== 'bare' ? fmt.ratio(r.rps / b.rps) : '—', fmt.us(r.serverCpuUs), fmt.us(r.keyholderCpuUs), fmt.us(r.clientCpuUs)]);
      }
    }
    log('');
    log(table(['op', 'clients', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'errors', '÷ bare', 'API CPU µs/req', 'keyholder CPU µs/req', 'load-gen CPU µs/req'], out));
    const u16 = best('unwrap', 16);
    if (u16) {
      const met = u16.rps >= 5000 && u16.p99 < 20;
      log(`\ntarget: ≥ 5,000 unwrap/s at 16 clients with p99 < 20 ms — measured ${fmt.rate(u16.rps)}/s, p99 ${u16.p99.toFixed(2)} ms: ${met ? 'met' : `not met (${fmt.ratio(u16.rps / 5000)} of the rate)`}`);
    }
    const resultsDir = path.join(ROOT, 'bench/results');
    mkdirSync(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `server-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify({ machine: m, sqlite, logLevel: args['log-level'], durationMs, warmupMs, rows }, null, 2));
    log(`\nraw: ${path.relative(ROOT, file)}`);
  } finally {
    for (const c of children.reverse()) await stop(c);
    cleanup();
  }
}

function machineInfo() {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    const mm = /Model name:\s*(.+)/.exec(execFileSync('lscpu', { encoding: 'utf8' }));
    if (mm?.[1]) cpu = mm[1].trim();
  } catch { /* optional */ }
  return { cpu, cores: cpus().length, ramGiB: Math.round(totalmem() / 2 ** 30), node: process.version, loadavg: loadavg().map((x) => Math.round(x * 100) / 100) };
}

await main();
