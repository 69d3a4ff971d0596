/**
 * Shared plumbing of the reference pipeline: the key service process (`keyward
 * server --dev`, with the public-key directory enabled), principals with tokens and device keys, credentials files
 * (0600) and a tiny JSON-lines RPC over a local (unix) socket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { KeywardHttpClient, KmsKeyService } from '@keyward/client';
import { HpkeIdentity, parseIdentity } from '@keyward/core';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(HERE, '../..');
export const NODE_ARGS = ['--conditions=source', '--import', 'tsx'];

export interface Creds { addresses: string[]; token: string; keyId: string; seed: string; identity: string }

export interface KeyService { url: string; admin(method: string, path: string, body?: unknown): Promise<unknown>; logs(): string; stop(): Promise<void> }

/** `keyward server --dev`: the built binary (`npm ci` builds it). */
export async function startKeyService(): Promise<KeyService> {
  const root = `kw_${randomBytes(32).toString('base64url')}`;
  const child: ChildProcess = spawn(process.execPath, [join(REPO, 'packages/cli/bin/keyward.js'), 'server', '--dev', '--listen', '127.0.0.1:0', '--json'], {
    cwd: REPO, env: { ...process.env, KEYWARD_DEV_ROOT_TOKEN: root, KEYWARD_DIRECTORY: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  child.stderr!.on('data', (c: Buffer) => out.push(c));
  const url = await new Promise<string>((res, rej) => {
    let done = false;
    createInterface({ input: child.stdout! }).on('line', (l) => {
      out.push(Buffer.from(`${l}\n`));
      const m = /"url":\s*"(http:\/\/127\.0\.0\.1:\d+)"/.exec(l);
      if (m && !done) { done = true; res(m[1]!); }
    });
    child.once('exit', (c) => rej(new Error(`keyward server exited (${c}): ${Buffer.concat(out).toString().slice(-1500)}`)));
  });
  const admin = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${root}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const j = await r.json() as unknown;
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(j)}`);
    return j;
  };
  return {
    url, admin, logs: () => Buffer.concat(out).toString(),
    stop: async () => { if (child.exitCode === null) { child.kill('SIGTERM'); await once(child, 'exit'); } },
  };
}

/** A service principal: token, registered Ed25519 device key, HPKE identity, and a policy granting `operations` on `keys`. */
export async function enroll(ks: KeyService, ns: string, principal: string, grants: { operations: string[]; keys: string[] }[]): Promise<Creds> {
  const role = `role-${principal}`;
  const t = await ks.admin('POST', '/v1/tokens', { principal, ns, roles: [role] }) as { token: string };
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const reg = await fetch(`${ks.url}/v1/auth/signing-keys`, { method: 'POST', headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ alg: 'ed25519', public_key: publicKey.export({ format: 'jwk' }).x }) });
  const sk = await reg.json() as { key_id: string };
  if (!reg.ok) throw new Error(`signing key: ${JSON.stringify(sk)}`);
  await ks.admin('PUT', `/v1/policies/${ns}/${role}`, { grants: grants.map((g) => ({ roles: [role], ...g })) });
  const identity = await HpkeIdentity.generate('x25519');
  return { addresses: [ks.url], token: t.token, keyId: sk.key_id, seed: privateKey.export({ format: 'jwk' }).d!, identity: identity.toString() };
}

/** A KmsKeyService from a credentials file (read once; the process holding it is the one that can use the keys). */
export async function kmsFrom(file: string): Promise<KmsKeyService> {
  const c = JSON.parse(readFileSync(file, 'utf8')) as Creds;
  const http = new KeywardHttpClient({ addresses: c.addresses, token: c.token, device: { keyId: c.keyId, signingSeed: new Uint8Array(Buffer.from(c.seed, 'base64url')) } });
  const identity = await parseIdentity(c.identity);
  if (!(identity instanceof HpkeIdentity)) throw new Error('the credentials identity is not an HPKE identity');
  return KmsKeyService.create({ http, identity });
}

// ---------------------------------------------------------------------------
// JSON-lines RPC over a unix socket

export type Handler = (req: Record<string, unknown>) => Promise<Record<string, unknown>>;

export function serveRpc(path: string, handler: Handler): Promise<net.Server> {
  const server = net.createServer((sock) => {
    createInterface({ input: sock }).on('line', (line) => {
      void (async () => {
        let res: Record<string, unknown>;
        try {
          res = { ok: true, ...(await handler(JSON.parse(line) as Record<string, unknown>)) };
        } catch (e) {
          res = { ok: false, code: (e as { code?: string }).code ?? 'ERROR' }; // the code only: never a plaintext or a key
        }
        sock.write(`${JSON.stringify(res)}\n`);
      })();
    });
  });
  return new Promise((res) => server.listen(path, () => res(server)));
}

/** A worker's answer: ok with the op's fields, or a code only. */
export interface RpcReply { ok: boolean; code?: string; body?: string; values?: Record<string, string> }

export async function connectRpc(path: string): Promise<{ call(req: Record<string, unknown>): Promise<RpcReply>; close(): void }> {
  const sock = net.createConnection(path);
  await once(sock, 'connect');
  const waiting: ((v: RpcReply) => void)[] = [];
  createInterface({ input: sock }).on('line', (l) => waiting.shift()?.(JSON.parse(l) as RpcReply));
  return {
    call: (req) => new Promise((res) => { waiting.push(res); sock.write(`${JSON.stringify(req)}\n`); }),
    close: () => sock.end(),
  };
}

export const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
export const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
export const preview = (b: Uint8Array, n = 24): string => `${Buffer.from(b.subarray(0, n)).toString('hex')}… (${b.length} bytes)`;
