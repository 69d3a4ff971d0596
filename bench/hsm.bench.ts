/**
 * `npm run bench:hsm`: operations per second through the PKCS#11 backend
 * (packages/server/src/hsm/token.ts) on a private SoftHSM2 token, beside the
 * software keyholder's own primitives (node:crypto / OpenSSL) doing the same
 * operation in process.
 *
 * In HSM-wrapped mode every data-plane operation runs in the keyholder's
 * memory after the auto-unseal (one RFC 5649 unwrap at start), so its
 * throughput is the software keyholder's (docs/benchmarks.md, "the key service
 * under load"); what goes through the HSM is the unseal, the checkpoint
 * signature (signEd25519Sync, at most one a second) and, for HSM-resident
 * keys, every operation — which is what these numbers bound.
 *
 * Then (unless --skip-service) the same through the key service: signed
 * `datakey` over HTTP against a real server process, software custody vs
 * HSM-wrapped (key in the keyholder's memory) vs HSM-resident (AES-GCM in the HSM).
 *
 * Options: --duration-ms=1500  --concurrency=1,4  --sessions=4  --service-duration-ms=3000  --skip-service
 * Needs softhsm2 (scripts/install-test-deps.sh). Prints a Markdown table.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHmac, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Pkcs11Token } from '../packages/server/src/hsm/token.js';
import { aesGcmOpen, aesGcmSeal, aesKwpUnwrap, aesKwpWrap } from '../packages/server/src/keyholder/primitives.js';
import { armor, generateIdentity } from '@keyward/core';
import { signRequest } from '@keyward/client';
import { initDataDir, sealShareForBoot } from '@keyward/server';
import { ROOT } from './lib/fixtures.js';
import { table } from './lib/harness.js';
import { runLoad, type BuiltRequest } from './lib/loadgen.js';

const { values: args } = parseArgs({
  options: {
    'duration-ms': { type: 'string', default: '1500' },
    concurrency: { type: 'string', default: '1,4' },
    sessions: { type: 'string', default: '4' },
    'skip-service': { type: 'boolean', default: false },
    'service-duration-ms': { type: 'string', default: '3000' },
  },
});
const DURATION = Number(args['duration-ms']);
const LEVELS = args.concurrency.split(',').map(Number);
const MODULE = '/usr/lib/softhsm/libsofthsm2.so';

/** Runs `op` with `concurrency` closed-loop workers for DURATION ms; operations per second. */
async function measure(op: () => unknown, concurrency: number): Promise<number> {
  for (let i = 0; i < 20; i++) await op(); // warm up
  let n = 0;
  const end = performance.now() + DURATION;
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      await op();
      n++;
    }
  }));
  return n / ((performance.now() - start) / 1000);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'keyward-bench-hsm-'));
  const tokens = path.join(dir, 'tokens');
  mkdirSync(tokens);
  const conf = path.join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = conf;
  const pin = randomBytes(8).toString('hex');
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'bench', '--pin', pin, '--so-pin', randomBytes(8).toString('hex')], { stdio: 'pipe' });
  const token = await Pkcs11Token.open({ module: MODULE, tokenLabel: 'bench', pin, sessions: Number(args.sessions) });
  try {
    await token.generate('aes', 'kek');
    await token.generate('ed25519', 'sig');
    await token.generate('hmac', 'mac');
    const material = randomBytes(32);
    const blob = await token.wrapPad('kek', material);
    const iv = randomBytes(12);
    const aad = Buffer.from('{"key":"orders","ns":"billing","version":1}');
    const dataKey = randomBytes(32);
    const ct = await token.encryptGcm('kek', iv, aad, dataKey);
    const msg = Buffer.from('keyward.local/audit\n123456\nq6z0x8Xb0bq7Cq5rQ0a1k2m3n4o5p6q7r8s9t0u1v2w=\n');

    // The software keyholder's equivalents (primitives.ts: node:crypto / OpenSSL).
    const swKek = randomBytes(32);
    const swBlob = aesKwpWrap(swKek, material);
    const swCt = aesGcmSeal(swKek, iv, aad, dataKey);
    const { privateKey } = generateKeyPairSync('ed25519');
    const swMac = randomBytes(32);

    const ops: { name: string; hsm: () => unknown; sw: () => unknown }[] = [
      { name: 'RFC 5649 wrap (32-byte key)', hsm: () => token.wrapPad('kek', material), sw: () => aesKwpWrap(swKek, material) },
      { name: 'RFC 5649 unwrap (auto-unseal)', hsm: () => token.unwrapPad('kek', blob), sw: () => aesKwpUnwrap(swKek, swBlob) },
      { name: 'AES-256-GCM encrypt 32 B (resident aes256)', hsm: () => token.encryptGcm('kek', iv, aad, dataKey), sw: () => aesGcmSeal(swKek, iv, aad, dataKey) },
      { name: 'AES-256-GCM decrypt 32 B (resident aes256)', hsm: () => token.decryptGcm('kek', iv, aad, ct), sw: () => aesGcmOpen(swKek, iv, aad, swCt) },
      { name: 'Ed25519 sign (resident ed25519)', hsm: () => token.signEd25519('sig', msg), sw: () => sign(null, msg, privateKey) },
      { name: 'Ed25519 sign, sync session (checkpoints)', hsm: () => token.signEd25519Sync('sig', msg), sw: () => sign(null, msg, privateKey) },
      { name: 'HMAC-SHA256 (resident hmac-sha256)', hsm: () => token.hmacSha256('mac', msg), sw: () => createHmac('sha256', swMac).update(msg).digest() },
    ];
    const rows: string[][] = [];
    for (const op of ops) {
      const sw = await measure(op.sw, 1);
      const row = [op.name];
      for (const c of LEVELS) row.push(Math.round(await measure(op.hsm, op.name.includes('sync') ? 1 : c)).toLocaleString('en-US'));
      row.push(Math.round(sw).toLocaleString('en-US'));
      rows.push(row);
    }
    process.stdout.write(`\nHSM backend (SoftHSM2 ${softhsmVersion()}, pool of ${args.sessions} sessions) vs software keyholder, ops/s, ${DURATION} ms per cell\n`);
    process.stdout.write(`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}, node ${process.version}, ${new Date().toISOString()}\n\n`);
    process.stdout.write(`${table(['operation', ...LEVELS.map((c) => `HSM, ${c} concurrent`), 'software (node:crypto), 1'], rows)}\n`);
    process.stdout.write('\n(sync signing uses one dedicated session: its concurrency is always 1)\n');
  } finally {
    token.close();
  }
  try {
    if (!args['skip-service']) await serviceBench(dir, pin);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// Through the key service: signed `datakey` over HTTP, a real server process
// (bench/lib/server-process.ts) with its keyholder, closed loop.

interface Child { child: ChildProcess; info: Record<string, unknown>; exited: Promise<void> }

function spawnServer(data: string, env: NodeJS.ProcessEnv): Promise<Child> {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', path.join(ROOT, 'bench/lib/server-process.ts'), data], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c: string) => { err = (err + c).slice(-4000); });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`server not ready; stderr: ${err}`)); }, 60_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => {
      out += c;
      const m = /^KW_BENCH_SERVER (.*)$/m.exec(out);
      if (m) { clearTimeout(timer); resolve({ child, info: JSON.parse(m[1]!) as Record<string, unknown>, exited }); }
    });
    void exited.then(() => { clearTimeout(timer); reject(new Error(`server exited; stderr: ${err}`)); });
  });
}

async function stopServer(c: Child): Promise<void> {
  if (c.child.exitCode !== null || c.child.signalCode !== null) return;
  c.child.kill('SIGTERM');
  await Promise.race([c.exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
}

async function call(url: string, method: string, body?: unknown, headers: Record<string, string> = {}, status = 200): Promise<Record<string, unknown>> {
  const r = await fetch(url, { method, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await r.text();
  if (r.status !== status) throw new Error(`${method} ${url}: ${r.status} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** Sets up keys `keys` (name → create body), a service token with a signing key and a policy; returns request builders. */
async function provision(url: string, rootToken: string, keys: Record<string, Record<string, unknown>>): Promise<(key: string) => (c: number, i: number) => BuiltRequest> {
  const NS = 'bench';
  const admin = await call(`${url}/v1/tokens`, 'POST', { principal: 'bench-admin', kind: 'person', admin: true }, { authorization: `Bearer ${rootToken}` }, 201);
  const root = { authorization: `Bearer ${admin.token as string}` };
  for (const [name, body] of Object.entries(keys)) await call(`${url}/v1/keys/${NS}/${name}`, 'POST', body, root, 201);
  const tok = await call(`${url}/v1/tokens`, 'POST', { principal: 'svc-bench', ns: NS, roles: ['bench-app'] }, root, 201);
  const svc = { authorization: `Bearer ${tok.token as string}` };
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = Uint8Array.from(Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url'));
  const sk = await call(`${url}/v1/auth/signing-keys`, 'POST', { alg: 'ed25519', public_key: publicKey.export({ format: 'jwk' }).x! }, svc, 201);
  await call(`${url}/v1/policies/${NS}/bench-app`, 'PUT', { grants: [{ roles: ['bench-app'], operations: ['datakey'], keys: [`${NS}/*`] }] }, root);
  const recipient = (await (await generateIdentity('x25519')).recipient()).toString();
  const signer = (m: Uint8Array) => Uint8Array.from(sign(null, m, privateKey));
  return (key) => (c, i) => {
    const p = `/v1/data/${NS}/${key}/datakey`;
    const text = JSON.stringify({ recipient, context: { row: `${c}-${i}` } });
    const sig = signRequest({ method: 'POST', url: `${url}${p}`, headers: {}, body: text }, { keyId: sk.key_id as string, privateKey: seed, label: 'kw', signer });
    return { path: p, headers: { ...svc, ...sig }, body: text };
  };
}

async function serviceBench(dir: string, pin: string): Promise<void> {
  const levels = args.concurrency.split(',').map(Number);
  const durationMs = Number(args['service-duration-ms']);
  const rows: string[][] = [];
  const measureKey = async (label: string, url: string, build: (c: number, i: number) => BuiltRequest) => {
    const row = [label];
    for (const c of levels) {
      const r = await runLoad({ url, concurrency: c, durationMs, warmupMs: 500, build });
      row.push(`${Math.round(r.rps).toLocaleString('en-US')} (p99 ${r.p99.toFixed(1)} ms${r.errors ? `, ${r.errors} errors` : ''})`);
    }
    rows.push(row);
  };

  // Software custody (Shamir shares), as `npm run bench:server` runs it.
  const swDir = path.join(dir, 'sw');
  mkdirSync(swDir, { mode: 0o700 });
  const sw = await spawnServer(swDir, process.env);
  try {
    const url = (sw.info.url as string).replace(/\/$/, '');
    const init = sw.info.init as { shares: string[]; rootToken: string };
    for (const share of init.shares.slice(0, 2)) {
      const k = await call(`${url}/v1/sys/unseal-key`, 'GET');
      await call(`${url}/v1/sys/unseal`, 'POST', { share: armor(await sealShareForBoot(share, k.recipient as string, k.boot as string)) });
    }
    const b = await provision(url, init.rootToken, { soft: { type: 'aes256' } });
    await measureKey('software keyholder (Shamir), aes256', url, b('soft'));
  } finally {
    await stopServer(sw);
  }

  // HSM-wrapped custody on the same SoftHSM2 token: a wrapped key (in the keyholder's memory) and an HSM-resident key.
  const hsmDir = path.join(dir, 'hsm');
  const r = await initDataDir(hsmDir, { shares: 2, threshold: 2, tokenToFile: true, hsm: { module: MODULE, tokenLabel: 'bench', pin, wrapMechanism: 'pad', auditKey: true } });
  const hs = await spawnServer(hsmDir, { ...process.env, KW_BENCH_HSM_PIN: pin });
  try {
    const url = (hs.info.url as string).replace(/\/$/, '');
    const deadline = Date.now() + 30_000;
    while ((await call(`${url}/v1/sys/health`, 'GET')).sealed !== false) {
      if (Date.now() > deadline) throw new Error('the HSM-wrapped server did not auto-unseal');
      await new Promise((res) => setTimeout(res, 200));
    }
    const b = await provision(url, r.token, { wrapped: { type: 'aes256' }, resident: { type: 'aes256', hsm_resident: true } });
    await measureKey('HSM-wrapped, aes256 (crypto in the keyholder)', url, b('wrapped'));
    await measureKey('HSM-resident aes256 (AES-GCM in the HSM)', url, b('resident'));
  } finally {
    await stopServer(hs);
  }
  process.stdout.write(`\nThrough the key service: signed datakey over HTTP (audit on, SQLite), req/s, ${durationMs} ms per cell after 500 ms warm-up\n`);
  process.stdout.write(`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}, node ${process.version}, ${new Date().toISOString()}\n\n`);
  process.stdout.write(`${table(['key', ...levels.map((c) => `${c} client${c === 1 ? '' : 's'}`)], rows)}\n`);
}

function softhsmVersion(): string {
  try {
    return execFileSync('softhsm2-util', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return '?';
  }
}

await main();
