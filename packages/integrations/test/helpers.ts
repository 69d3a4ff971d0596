/**
 * Test harness on real parts: the key service as its own process (`keyward
 * server --dev`), PostgreSQL (a fresh database per run), NATS JetStream and
 * RabbitMQ on this machine, and a recording proxy process. Everything the
 * middle sees can be searched for canary plaintexts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { DataKeyCache, KeywardHttpClient, KmsKeyService } from '@keyward/client';
import { HpkeIdentity } from '@keyward/core';
import pg from 'pg';
import { CLI_ARGS } from '../../server/test/built.js';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(HERE, '../../..');
export const NATS_URL = process.env.KW_TEST_NATS ?? '127.0.0.1:4222';
export const AMQP_URL = process.env.KW_TEST_AMQP ?? 'amqp://guest:guest@127.0.0.1:5672';
export const PG_BASE = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), user: process.env.PGUSER ?? 'postgres' };

export const runId = (): string => `${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const unb64u = (s: string) => Uint8Array.from(Buffer.from(s, 'base64url'));

/** Canaries found in `haystack` (as UTF-8 bytes, and as base64/base64url/hex encodings of themselves). */
export function findCanaries(haystack: Uint8Array | string, canaries: readonly string[]): string[] {
  const h = typeof haystack === 'string' ? Buffer.from(haystack) : Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength);
  return canaries.filter((c) => {
    const forms = [c, Buffer.from(c).toString('base64').slice(0, -4), Buffer.from(c).toString('base64url').slice(0, 20), Buffer.from(c).toString('hex')];
    return forms.some((f) => f.length >= 8 && h.includes(Buffer.from(f)));
  });
}

/** A canary: a distinctive plaintext that must never appear in the middle. */
export const canary = (label: string): string => `CANARY-${label}-${randomBytes(6).toString('hex')}`;

// ---------------------------------------------------------------------------
// The key service process

export interface KeyService {
  readonly url: string;
  readonly rootToken: string;
  readonly process: ChildProcess;
  /** Everything the service wrote to stdout and stderr (its logs). */
  logs(): string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test responses are checked field by field
  admin(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
}

/** A `keyward server --dev` process; `env` adds to its environment (e.g. KEYWARD_DIRECTORY=1). */
export async function startKeyService(env: Record<string, string> = {}): Promise<KeyService> {
  const rootToken = `kw_${randomBytes(32).toString('base64url')}`;
  const child = spawn(process.execPath, [...CLI_ARGS, 'server', '--dev', '--listen', '127.0.0.1:0', '--json'], {
    cwd: REPO, env: { ...process.env, ...env, KEYWARD_DEV_ROOT_TOKEN: rootToken }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  child.stderr.on('data', (c: Buffer) => out.push(c));
  const lines = createInterface({ input: child.stdout });
  let url: string | undefined;
  const started = new Promise<string>((res, rej) => {
    lines.on('line', (l) => {
      out.push(Buffer.from(`${l}\n`));
      if (url) return;
      const m = /"url":\s*"(http:\/\/127\.0\.0\.1:\d+)"/.exec(l); // the --json line (pretty-printed)
      if (m) { url = m[1]!; res(url); }
    });
    child.once('exit', (code) => rej(new Error(`keyward server exited (${code}): ${Buffer.concat(out).toString().slice(-2000)}`)));
    setTimeout(() => rej(new Error(`keyward server did not start: ${Buffer.concat(out).toString().slice(-2000)}`)), 60_000).unref();
  });
  const base = await started;
  const admin: KeyService['admin'] = async (method, path, body) => {
    const r = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${rootToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await r.text();
    let parsed: unknown = text;
    try { parsed = JSON.parse(text); } catch { /* text */ }
    return { status: r.status, body: parsed };
  };
  return {
    url: base, rootToken, process: child, admin,
    logs: () => Buffer.concat(out).toString(),
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test responses are checked field by field
export async function must(p: Promise<{ status: number; body: any }>, ok: number[] = [200, 201]): Promise<any> {
  const r = await p;
  if (!ok.includes(r.status)) throw new Error(`admin call failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export interface ServicePrincipal {
  readonly http: KeywardHttpClient;
  readonly kms: KmsKeyService;
  readonly identity: HpkeIdentity;
  readonly cache: DataKeyCache;
}

/**
 * A service principal of namespace `ns`: token, registered device key,
 * a policy granting `operations` on `keys`, and a KmsKeyService with a cache.
 */
export async function enrollPrincipal(ks: KeyService, principal: string, ns: string, operations: readonly string[], keys: readonly string[]): Promise<ServicePrincipal> {
  const role = `role-${principal}`;
  const t = await must(ks.admin('POST', '/v1/tokens', { principal, ns, roles: [role] }));
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = unb64u(privateKey.export({ format: 'jwk' }).d!);
  const pub = unb64u(publicKey.export({ format: 'jwk' }).x!);
  const reg = await fetch(`${ks.url}/v1/auth/signing-keys`, { method: 'POST', headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ alg: 'ed25519', public_key: b64u(pub) }) });
  const sk = await reg.json() as { key_id: string };
  if (!reg.ok) throw new Error(`signing key: ${JSON.stringify(sk)}`);
  await must(ks.admin('PUT', `/v1/policies/${ns}/${role}`, { grants: [{ roles: [role], operations, keys }] }));
  const http = new KeywardHttpClient({ addresses: [ks.url], token: t.token as string, device: { keyId: sk.key_id, signingSeed: seed } });
  const identity = await HpkeIdentity.generate('x25519');
  const cache = new DataKeyCache();
  const kms = await KmsKeyService.create({ http, identity, cache });
  return { http, kms, identity, cache };
}

// ---------------------------------------------------------------------------
// PostgreSQL: a fresh database per run

export interface FreshDb {
  readonly name: string;
  readonly pool: pg.Pool;
  drop(): Promise<void>;
}

export async function freshDatabase(prefix = 'kw_int'): Promise<FreshDb> {
  const name = `${prefix}_${runId()}`;
  const admin = new pg.Client({ ...PG_BASE, database: 'postgres' });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const pool = new pg.Pool({ ...PG_BASE, database: name, max: 4 });
  return {
    name, pool,
    drop: async () => {
      await pool.end();
      const a = new pg.Client({ ...PG_BASE, database: 'postgres' });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await a.end();
    },
  };
}

// ---------------------------------------------------------------------------
// The recording proxy process

export interface RecordingProxy {
  readonly url: string;
  readonly capturePath: string;
  capture(): Buffer;
  stop(): Promise<void>;
}

export async function startRecordingProxy(target: string, capturePath: string): Promise<RecordingProxy> {
  const { readFileSync, existsSync } = await import('node:fs');
  const child = spawn(process.execPath, [join(HERE, 'fixtures/recording-proxy.mjs'), target, capturePath], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await once(createInterface({ input: child.stdout }), 'line') as [string];
  const { port } = JSON.parse(line) as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    capturePath,
    capture: () => (existsSync(capturePath) ? readFileSync(capturePath) : Buffer.alloc(0)),
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}
