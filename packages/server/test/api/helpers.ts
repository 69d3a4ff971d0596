/** Helpers for the API tests: a real server (real keyholder process, real SQLite), signed requests, unseal. */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { armor } from '@keyward/core';
import { signRequest } from '@keyward/client';
import type { ShareFile } from '../../src/keyholder/custody.js';
import { sealShareForBoot } from '../../src/keyholder/unseal-key.js';
import { startServer, type RunningServer } from '../../src/server.js';
import type { ServerConfigInput } from '../../src/config.js';

export const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
export const unb64u = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'base64url'));

const dirs: string[] = [];
process.once('exit', () => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

export async function newServer(over: ServerConfigInput = {}): Promise<RunningServer> {
  const data = mkdtempSync(join(tmpdir(), 'kw-api-'));
  dirs.push(data);
  return startServer({ data, listen: '127.0.0.1:0', logLevel: 'silent', checkpointMs: 200, ...over });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test responses are checked field by field
export interface Res { status: number; body: any }

export async function call(s: RunningServer, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, opts: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {}): Promise<Res> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let payload: string | undefined;
  if (opts.raw !== undefined) payload = opts.raw;
  else if (opts.body !== undefined) payload = JSON.stringify(opts.body);
  if (payload !== undefined) headers['content-type'] ??= 'application/json';
  const r = await s.fastify.inject({ method, url, headers, ...(payload !== undefined ? { payload } : {}) });
  let body: unknown = r.body;
  try { body = JSON.parse(r.body); } catch { /* text */ }
  return { status: r.statusCode, body };
}

/**
 * Enrolls a first administrator with the bootstrap token of init (the only
 * thing it may do: api/bootstrap.ts) and returns the administrator's token.
 */
export async function enrollAdmin(s: RunningServer, bootstrapToken: string, principal = 'admin'): Promise<string> {
  const r = await call(s, 'POST', '/v1/tokens', { token: bootstrapToken, body: { principal, kind: 'person', admin: true } });
  if (r.status !== 201) throw new Error(`enrolling ${principal}: ${JSON.stringify(r.body)}`);
  return r.body.token as string;
}

export interface Device { keyId: string; seed: Uint8Array; publicKey: Uint8Array }

export function newDeviceKeys(): { seed: Uint8Array; publicKey: Uint8Array } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { seed: unb64u(privateKey.export({ format: 'jwk' }).d!), publicKey: unb64u(publicKey.export({ format: 'jwk' }).x!) };
}

/** A data-plane call signed like a client (RFC 9421, label kw) via inject, with Host kms.test. */
export async function signedCall(s: RunningServer, token: string, device: Device, path: string, body: unknown): Promise<Res & { sig: Record<string, string> }> {
  const text = JSON.stringify(body);
  const url = `http://kms.test${path}`;
  const sig = signRequest({ method: 'POST', url, headers: {}, body: new TextEncoder().encode(text) }, { keyId: device.keyId, privateKey: device.seed, label: 'kw' });
  const r = await call(s, 'POST', path, { token, raw: text, headers: { host: 'kms.test', ...sig } });
  return { ...r, sig };
}

export async function armoredShare(s: RunningServer, share: ShareFile | string): Promise<string> {
  const r = await call(s, 'GET', '/v1/sys/unseal-key');
  if (r.status !== 200) throw new Error(`unseal-key: ${JSON.stringify(r.body)}`);
  return armor(await sealShareForBoot(typeof share === 'string' ? share : share.text, r.body.recipient, r.body.boot));
}

export async function unsealAll(s: RunningServer, shares: readonly ShareFile[]): Promise<Res> {
  let last: Res | undefined;
  for (const sh of shares) last = await call(s, 'POST', '/v1/sys/unseal', { body: { share: await armoredShare(s, sh) } });
  return last!;
}

/** A snapshot of everything the store holds that a refused request must not change (audit aside). */
export async function snapshot(s: RunningServer, ns: string): Promise<string> {
  const keys = await s.store.listKeys(ns);
  const versions = await Promise.all(keys.map((k) => s.store.listKeyVersions(ns, k.name)));
  return JSON.stringify({ keys, versions: versions.map((vs) => vs.map((v) => ({ ...v, wrapped: v.wrapped ? b64u(v.wrapped) : null }))), policies: await s.store.listPolicies(ns) });
}
