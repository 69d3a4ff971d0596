/**
 * Helpers for the keyholder process tests: spawn the real process on a real
 * Unix socket, build `keyward init` material, seal shares to the boot key,
 * sign caller requests (RFC 9421, @keyward/client), build audit events.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HpkeIdentity, open } from '@keyward/core';
import { signRequest } from '@keyward/client';
import { canonicalJson } from '../../src/keyholder/canonical-json.js';
import { initCustody, type ShareFile } from '../../src/keyholder/custody.js';
import { releaseContext } from '../../src/keyholder/ops/caller.js';
import { KeyholderClient } from '../../src/keyholder/client.js';
import { isProtocolError, type OpParams, type OpResult, type ProtocolErrorCode } from '../../src/keyholder/protocol.js';
import type { VersionRef } from '../../src/keyholder/schemas.js';
import { requestHashOf } from '../../src/keyholder/service.js';
import { buildInitState, type InitState } from '../../src/keyholder/state.js';
import { sealShareForBoot } from '../../src/keyholder/unseal-key.js';
import { KEYHOLDER_ARGS } from '../built.js';

export const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

export const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
export const unb64u = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'base64url'));
export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
export const sha256hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Asserts `fn` rejects with a KeyholderProtocolError of `code` (and returns it). */
export async function rejectsCode(fn: () => Promise<unknown>, code: ProtocolErrorCode, field?: string): Promise<void> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected ${code}, but it succeeded`);
  assert.ok(isProtocolError(caught), `expected a KeyholderProtocolError ${code}, got ${caught instanceof Error ? `${caught.name}: ${caught.message}` : typeof caught}`);
  assert.equal(caught.code, code, `expected ${code}, got ${caught.code}: ${caught.message}`);
  if (field !== undefined) assert.equal(caught.details.field, field, `expected field ${field}: ${caught.message}`);
}

// ---------------------------------------------------------------------------
// The process

export interface Running {
  readonly child: ChildProcess;
  readonly dir: string;
  readonly socket: string;
  readonly stderr: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly client: KeyholderClient;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const dirs: string[] = [];
process.once('exit', () => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** A fresh private directory for a socket and state file, removed when the test process exits. */
export function newDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'kw-kh-'));
  dirs.push(d);
  return d;
}

/** Spawns the keyholder (built or from source: test/built.ts) and waits for its "ready" line. */
export async function startKeyholder(dir: string = newDir(), extraArgs: string[] = []): Promise<Running> {
  const socket = join(dir, 'keyholder.sock');
  const child = spawn(process.execPath, [...KEYHOLDER_ARGS, '--socket', socket, ...extraArgs], {
    cwd: REPO,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`keyholder did not start:\n${stderr.join('\n')}`)), 30_000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        stderr.push(line);
        if (line.includes('"msg":"ready"')) { clearTimeout(timer); resolve(); }
      }
    });
    void exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`keyholder exited (${code}) before it was ready:\n${stderr.join('\n')}`)); });
  });
  const client = KeyholderClient.unix(socket, { backoff: { initialMs: 20, maxMs: 200 }, timeoutMs: 20_000 });
  return {
    child, dir, socket, stderr, exited, client,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      await client.close();
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

// ---------------------------------------------------------------------------
// Init and unseal

export interface InitMaterial {
  readonly state: InitState;
  readonly shares: readonly ShareFile[];
  readonly origin: string;
}

export async function makeInit(shares = 5, threshold = 3, origin = 'kms.test/audit'): Promise<InitMaterial> {
  const init = await initCustody({ shares, threshold });
  const state = buildInitState({ masterKey: init.masterKey, custody: init.state, origin });
  init.masterKey.fill(0);
  return { state, shares: init.shares, origin };
}

/** What a custodian's CLI does: seal the share file to the keyholder's current boot key. */
export async function sealedShare(client: KeyholderClient, share: ShareFile): Promise<string> {
  const { recipient, bootId } = await client.call('unseal-key', {});
  return b64u(await sealShareForBoot(share.text, recipient, bootId));
}

export async function unsealWith(client: KeyholderClient, shares: readonly ShareFile[]): Promise<OpResult<'unseal'>> {
  let last: OpResult<'unseal'> | undefined;
  for (const s of shares) last = await client.call('unseal', { share: await sealedShare(client, s) });
  return last!;
}

// ---------------------------------------------------------------------------
// Audit events (the shape of audit/event.ts, built here so the tests do not depend on it)

export class EventLog {
  readonly events: Uint8Array[] = [];
  #prev = '0'.repeat(64);

  get next(): number { return this.events.length; }

  /** The canonical bytes of the next event (not yet recorded: call `commit` once the keyholder appended it). */
  make(fields: { op: string; ns?: string | null; target?: { key?: string; version?: number }; outcome?: string; index?: number }): Uint8Array {
    const event = {
      v: 1,
      index: fields.index ?? this.next,
      time: new Date().toISOString(),
      ns: fields.ns === undefined ? 'billing' : fields.ns,
      principal: 'alice',
      auth: 'signature',
      op: fields.op,
      target: fields.target ?? {},
      outcome: fields.outcome ?? 'allowed',
      code: null,
      request: null,
      details: {},
      hmac_key_version: null,
      prev: this.#prev,
    };
    return utf8(canonicalJson(event));
  }

  commit(bytes: Uint8Array): void {
    this.events.push(bytes);
    this.#prev = sha256hex(bytes);
  }

  /** make + commit, returning base64url for a request. */
  add(fields: Parameters<EventLog['make']>[0]): string {
    const bytes = this.make(fields);
    this.commit(bytes);
    return b64u(bytes);
  }
}

// ---------------------------------------------------------------------------
// Callers: device keys, signed requests, identities

export interface Device {
  readonly keyId: string;
  readonly principal: string;
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
}

export function newDevice(keyId = 'device-alice', principal = 'alice'): Device {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const d = privateKey.export({ format: 'jwk' }).d!;
  const x = publicKey.export({ format: 'jwk' }).x!;
  return { keyId, principal, seed: unb64u(d), publicKey: unb64u(x) };
}

export type WireSignedRequest = OpParams<'datakey'>['request'];

/** Signs a data-plane request the way a client does; returns its wire form and request hash. */
export function signedRequest(
  device: Device,
  body: Record<string, unknown>,
  opts: { url?: string; created?: number; nonce?: string } = {},
): { request: WireSignedRequest; hash: Uint8Array; bodyText: string } {
  const bodyText = JSON.stringify(body);
  const base = { method: 'POST', url: opts.url ?? 'https://kms.test/v1/ns/billing/keys/orders:datakey', headers: { 'content-type': 'application/json' }, body: bodyText };
  const sig = signRequest(base, {
    keyId: device.keyId,
    privateKey: device.seed,
    ...(opts.created !== undefined ? { created: opts.created } : {}),
    ...(opts.nonce !== undefined ? { nonce: opts.nonce } : {}),
  });
  const headers: Record<string, string> = { ...base.headers, ...sig };
  return {
    request: { method: base.method, url: base.url, headers, body: b64u(utf8(bodyText)), device: { keyId: device.keyId, principal: device.principal, publicKey: b64u(device.publicKey) } },
    hash: requestHashOf(headers),
    bodyText,
  };
}

export async function identity(): Promise<{ id: HpkeIdentity; recipient: string }> {
  const id = await HpkeIdentity.generate('x25519');
  return { id, recipient: (await id.recipient()).toString() };
}

/** Opens a secret sealed to `id` for request `hash`, key version `ref` and `context`. */
export async function openReleased(sealed: string, id: HpkeIdentity, hash: Uint8Array, ref: VersionRef, context: Record<string, string> = {}): Promise<Uint8Array> {
  return (await open(unb64u(sealed), { identities: [id], context: releaseContext(hash, ref, context) })).plaintext;
}

export const ref = (over: Partial<VersionRef> = {}): VersionRef => ({ ns: 'billing', key: 'orders', version: 1, type: 'aes256', ...over });

/** A generated version as the store keeps it (what the API passes back). */
export type Stored = OpParams<'datakey'>['version'];

/** Generates a key version over the protocol, with its event. */
export async function generate(client: KeyholderClient, log: EventLog, r: VersionRef): Promise<Stored> {
  const event = log.make({ op: r.version === 1 ? 'keys.create' : 'keys.rotate', target: { key: r.key, version: r.version } });
  const g = await client.call('generate-version', { event: b64u(event), ref: r });
  log.commit(event);
  return { ...r, wrapped: g.wrapped, ...(g.publicKey ? { publicKey: g.publicKey } : {}) };
}
