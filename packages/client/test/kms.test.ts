/**
 * KmsKeyService and KeywardHttpClient against a real local HTTP server.
 *
 * The server below is a TEST DOUBLE of the key service, for the client's unit
 * tests: it implements just the two data-plane routes the client uses
 * (`datakey`, `unwrap`) per docs/key-service-design.md §HTTP API v1 — bearer
 * token, RFC 9421 signature verified with `verifyRequest`, JSON bodies with
 * unknown fields refused, data keys wrapped under a per-version key and
 * released only sealed (core `seal`) to the recipient named in the signed
 * body with context { kw_request, kw_key, kw_version, ...context } — plus an
 * admin `rotate` route to show what is not retried, and switches to make it
 * misbehave. The end-to-end test against the real key service is added with
 * the server's API (packages/server).
 */
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { base64urlnopad } from '@scure/base';
import {
  generateIdentity, isKeywardError, open, parseRecipient, seal, StanzaContext,
  type ContextInput, type HpkeIdentity, type Stanza,
} from '@keyward/core';
import {
  DataKeyCache,
  DEFAULT_COMPONENTS,
  HttpSigError,
  KeywardClientError,
  KeywardHttpClient,
  KmsKeyService,
  MemoryReplayCache,
  isKeywardClientError,
  kmsIdentity,
  kmsRecipient,
  signedRequestHash,
  verifyRequest,
  type RequestHashCheck,
} from '../src/index.js';

// ---------------------------------------------------------------------------
// Fixtures

const TOKEN = 'kw_test_token_0123456789abcdef';
const KEY_ID = 'dev_test_1';
const SEED = Uint8Array.from({ length: 32 }, (_, i) => 100 + i);
const DEVICE_PUBLIC = ed25519.getPublicKey(SEED);
const DEVICE = await generateIdentity('x25519');
const BOB = await generateIdentity('x25519');
const MALLORY = await generateIdentity('x25519');
const DATA = new TextEncoder().encode('rows of the orders table');
const CTX: ContextInput = [['table', 'orders'], ['tenant', 't-42']];

const b64u = (b: Uint8Array) => base64urlnopad.encode(b);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function code(expected: string) {
  return (e: unknown) => {
    assert.ok(e instanceof KeywardClientError, `expected KeywardClientError ${expected}, got ${String(e)}`);
    assert.equal(e.code, expected, e.message);
    return true;
  };
}

// ---------------------------------------------------------------------------
// The test double of the key service

/** Key material shared by every address of one "service" (as replicas sharing a store). */
interface ServiceState {
  /** "ns/name" → one 32-byte key per version (index = version − 1). */
  readonly keys: Map<string, Uint8Array[]>;
}

/** Ways to make one address misbehave. */
interface Mode {
  /** Answer 503 KW_SEALED to everything. */
  unavailable?: boolean;
  /** Never answer. */
  hang?: boolean;
  /** Key references this principal may not use: 403 KW_FORBIDDEN. */
  deny?: Set<string>;
  /** Seal the key to this recipient instead of the requested one. */
  sealTo?: string;
  /** Change the release context before sealing. */
  releaseContext?: (c: Record<string, string>) => Record<string, string>;
  /** Change the response body. */
  response?: (body: Record<string, unknown>) => Record<string, unknown>;
  /** Answer this instead. */
  raw?: { status: number; body: string; headers?: Record<string, string> };
}

interface Recorded {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: Uint8Array;
}

interface FakeService {
  readonly url: string;
  readonly requests: Recorded[];
  mode: Mode;
  /** Requests per route op (`datakey`, `unwrap`, `rotate`). */
  count(op: string): number;
  close(): Promise<void>;
}

function newState(): ServiceState {
  return { keys: new Map([['app/db', [randomBytes(32)]], ['app/other', [randomBytes(32)]]]) };
}

/** Canonical AAD: members sorted (the keyholder uses RFC 8785; order-insensitive like it). */
function aad(ns: string, key: string, version: number, context: Record<string, string>): Buffer {
  const sorted = Object.fromEntries(Object.entries(context).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return Buffer.from(JSON.stringify({ context: sorted, key, ns, version }));
}

function wrap(kek: Uint8Array, ad: Buffer, dk: Uint8Array): Uint8Array {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', kek, iv).setAAD(ad);
  return Buffer.concat([iv, c.update(dk), c.final(), c.getAuthTag()]);
}

function unwrapBlob(kek: Uint8Array, ad: Buffer, blob: Uint8Array): Uint8Array | null {
  if (blob.length !== 12 + 32 + 16) return null;
  try {
    const d = createDecipheriv('aes-256-gcm', kek, blob.subarray(0, 12)).setAAD(ad);
    d.setAuthTag(blob.subarray(44));
    return Buffer.concat([d.update(blob.subarray(12, 44)), d.final()]);
  } catch {
    return null;
  }
}

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message = code) {
    super(message);
  }
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

function strictKeys(body: Record<string, unknown>, allowed: string[]): void {
  for (const k of Object.keys(body)) if (!allowed.includes(k)) throw new HttpError(400, 'KW_INVALID_ARGUMENT', `unknown field ${k}`);
}

async function startService(state: ServiceState, mode: Mode = {}): Promise<FakeService> {
  const requests: Recorded[] = [];
  const replay = new MemoryReplayCache();
  const svc: FakeService = {
    url: '',
    requests,
    mode,
    count: (op) => requests.filter((r) => r.url.endsWith(`/${op}`)).length,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };

  async function handle(req: IncomingMessage, body: Uint8Array): Promise<{ status: number; json: unknown }> {
    if (req.headers.authorization !== `Bearer ${TOKEN}`) throw new HttpError(401, 'KW_UNAUTHENTICATED');
    const m = /^\/v1\/(data|keys)\/([^/]+)\/([^/]+)\/([a-z]+)$/.exec(req.url ?? '');
    if (!m || req.method !== 'POST') throw new HttpError(404, 'KW_NOT_FOUND', 'no such route');
    const [, plane, ns, name, op] = m as unknown as [string, string, string, string, string];
    const ref = `${ns}/${name}`;
    const versions = state.keys.get(ref);

    if (plane === 'keys') {
      if (op !== 'rotate' || !versions) throw new HttpError(404, 'KW_NOT_FOUND');
      versions.push(randomBytes(32));
      return { status: 200, json: { key: ref, version: versions.length } };
    }

    // Data plane: the signature, verified as the keyholder does.
    let signed: string;
    try {
      const verified = await verifyRequest(
        { method: req.method, url: `http://${req.headers.host}${req.url}`, headers: req.headers, body },
        { keyLookup: (id) => (id === KEY_ID ? DEVICE_PUBLIC : null), seenNonce: replay.seen },
      );
      assert.deepEqual(verified.components, [...DEFAULT_COMPONENTS]);
      // As the keyholder's requestHashOf: SHA-256(Signature-Input ‖ LF ‖ Signature).
      signed = `${String(req.headers['signature-input'])}\n${String(req.headers.signature)}`;
    } catch (e) {
      throw new HttpError(401, 'KW_REQUEST_UNAUTHENTICATED', (e as Error).message);
    }
    if (svc.mode.deny?.has(ref)) throw new HttpError(403, 'KW_FORBIDDEN');
    if (!versions) throw new HttpError(404, 'KW_NOT_FOUND', `no key ${ref}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder().decode(body));
    } catch {
      throw new HttpError(400, 'KW_INVALID_ARGUMENT', 'body is not JSON');
    }
    const b = parsed as Record<string, unknown>;
    const context = b.context ?? {};
    if (!isStringRecord(context) || Object.keys(context).some((k) => k.toLowerCase().startsWith('kw_'))) throw new HttpError(400, 'KW_INVALID_ARGUMENT', 'bad context');
    if (typeof b.recipient !== 'string') throw new HttpError(400, 'KW_INVALID_ARGUMENT', 'recipient');
    const recipient = await parseRecipient(svc.mode.sealTo ?? b.recipient);
    const requestHash = hex(createHash('sha256').update(signed).digest());

    let version: number;
    let dk: Uint8Array;
    let wrapped: Uint8Array | undefined;
    if (op === 'datakey') {
      strictKeys(b, ['recipient', 'context', 'plaintext']);
      version = versions.length;
      dk = randomBytes(32);
      wrapped = wrap(versions[version - 1]!, aad(ns, name, version, context), dk);
    } else if (op === 'unwrap') {
      strictKeys(b, ['version', 'wrapped', 'context', 'recipient']);
      if (typeof b.version !== 'number' || !versions[b.version - 1]) throw new HttpError(404, 'KW_NOT_FOUND', 'no such version');
      if (typeof b.wrapped !== 'string') throw new HttpError(400, 'KW_INVALID_ARGUMENT', 'wrapped');
      version = b.version;
      const opened = unwrapBlob(versions[version - 1]!, aad(ns, name, version, context), base64urlnopad.decode(b.wrapped));
      if (!opened) throw new HttpError(400, 'KW_WRAPPED_KEY_MISMATCH');
      dk = opened;
    } else {
      throw new HttpError(404, 'KW_NOT_FOUND', `no op ${op}`);
    }
    let release: Record<string, string> = { kw_request: requestHash, kw_key: ref, kw_version: String(version), ...context };
    if (svc.mode.releaseContext) release = svc.mode.releaseContext(release);
    const sealed = await seal(dk, { recipients: [recipient], context: release });
    let out: Record<string, unknown> = { key: ref, version, ...(wrapped ? { wrapped: b64u(wrapped) } : {}), sealed: b64u(sealed) };
    if (svc.mode.response) out = svc.mode.response(out);
    return { status: 200, json: out };
  }

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = new Uint8Array(Buffer.concat(chunks));
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (svc.mode.hang) return;
      const reply = (status: number, json: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
      };
      if (svc.mode.raw) {
        res.writeHead(svc.mode.raw.status, svc.mode.raw.headers ?? { 'content-type': 'text/html' }).end(svc.mode.raw.body);
        return;
      }
      if (svc.mode.unavailable) return reply(503, { error: { code: 'KW_SEALED', message: 'the key service is sealed' } });
      handle(req, body).then(
        (r) => reply(r.status, r.json),
        (e: unknown) => (e instanceof HttpError
          ? reply(e.status, { error: { code: e.code, message: e.message } })
          : reply(500, { error: { code: 'KW_INTERNAL', message: String(e) } })),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (svc as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return svc;
}

/** An address where nothing listens (connection refused). */
async function closedAddress(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  await new Promise<void>((r) => s.close(() => r()));
  return url;
}

const services: FakeService[] = [];
async function service(state = newState(), mode: Mode = {}): Promise<FakeService> {
  const s = await startService(state, mode);
  services.push(s);
  return s;
}
after(async () => {
  await Promise.all(services.map((s) => s.close()));
});

function httpClient(addresses: string[], opts: { timeoutMs?: number; token?: string } = {}) {
  return new KeywardHttpClient({ addresses, token: opts.token ?? TOKEN, device: { keyId: KEY_ID, signingSeed: SEED }, timeoutMs: opts.timeoutMs ?? 5000 });
}

async function kmsFor(addresses: string[], opts: { cache?: DataKeyCache; requestHash?: RequestHashCheck; identity?: HpkeIdentity; timeoutMs?: number; token?: string } = {}) {
  return KmsKeyService.create({
    http: httpClient(addresses, opts),
    identity: opts.identity ?? DEVICE,
    ...(opts.cache ? { cache: opts.cache } : {}),
    ...(opts.requestHash ? { requestHash: opts.requestHash } : {}),
  });
}

/** The StanzaContext core would build for a context (for calling the KmsClient directly). */
function stanzaContext(pairs: [string, string][]): StanzaContext {
  const enc = new TextEncoder();
  const parts: number[] = [pairs.length >> 8, pairs.length & 0xff];
  for (const [k, v] of pairs) for (const s of [enc.encode(k), enc.encode(v)]) parts.push(s.length >> 8, s.length & 0xff, ...s);
  return new StanzaContext(randomBytes(32), pairs, Uint8Array.from(parts), false);
}

// ---------------------------------------------------------------------------

void describe('sealing and opening through the key service', () => {
  void test('seal to a kms key and an x25519 recipient; open both ways with core', async () => {
    const svc = await service();
    const kms = await kmsFor([svc.url]);
    const env = await seal(DATA, { recipients: [kmsRecipient(kms, 'app/db'), await BOB.recipient()], context: CTX });
    assert.equal(svc.count('datakey'), 1);

    const viaKms = await open(env, { identities: [kmsIdentity(kms)], context: CTX });
    assert.deepEqual(viaKms.plaintext, DATA);
    assert.equal(viaKms.openedBy, 'kms');
    assert.equal(svc.count('unwrap'), 1);

    const viaBob = await open(env, { identities: [BOB], context: CTX });
    assert.deepEqual(viaBob.plaintext, DATA);
    assert.equal(viaBob.openedBy, 'x25519');
  });

  void test('the request bodies follow the contract, context members in the envelope\'s order', async () => {
    const svc = await service();
    const kms = await kmsFor([svc.url]);
    // "2" would move first in a JS object; the wire keeps the envelope's order.
    const ctx: [string, string][] = [['tenant', 't1'], ['2', 'x']];
    const env = await seal(DATA, { recipients: [kmsRecipient(kms, 'app/db')], context: ctx });
    await open(env, { identities: [kmsIdentity(kms)], context: ctx });
    const [dk, uw] = svc.requests.map((r) => new TextDecoder().decode(r.body));
    assert.equal(dk, `{"recipient":"${kms.recipient}","context":{"tenant":"t1","2":"x"}}`);
    assert.match(uw!, new RegExp(`^\\{"version":1,"wrapped":"[A-Za-z0-9_-]+","context":\\{"tenant":"t1","2":"x"\\},"recipient":"${kms.recipient}"\\}$`));
    assert.deepEqual(svc.requests.map((r) => `${r.method} ${r.url}`), ['POST /v1/data/app/db/datakey', 'POST /v1/data/app/db/unwrap']);
    for (const r of svc.requests) {
      assert.equal(r.headers.authorization, `Bearer ${TOKEN}`);
      assert.equal(r.headers['content-type'], 'application/json');
    }
  });

  void test('the kms stanza is [utf8("ns/name"), u32be(version), wrapped]', async () => {
    const state = newState();
    state.keys.get('app/db')!.push(randomBytes(32), randomBytes(32)); // current version 3
    const svc = await service(state);
    const kms = await kmsFor([svc.url]);
    const { dataKey, stanza } = await kms.generateDataKey('app/db', stanzaContext([['t', 'x']]));
    assert.equal(dataKey.length, 32);
    assert.equal(stanza.type, 'kms');
    assert.equal(stanza.fields.length, 3);
    assert.equal(new TextDecoder().decode(stanza.fields[0]), 'app/db');
    assert.deepEqual(stanza.fields[1], Uint8Array.of(0, 0, 0, 3));
    assert.equal(stanza.fields[2]!.length, 60);
    assert.deepEqual(await kms.unwrap(stanza, stanzaContext([['t', 'x']])), dataKey);
  });

  void test('an xwing device identity works the same', async () => {
    const svc = await service();
    const kms = await kmsFor([svc.url], { identity: await generateIdentity('xwing') });
    assert.match(kms.recipient, /^kwxwing1/);
    const env = await kms.seal(DATA, { key: 'app/db', context: CTX });
    assert.deepEqual((await open(env, { identities: [kmsIdentity(kms)], context: CTX })).plaintext, DATA);
  });

  void test('data-plane requests are signed over the body digest (verifyRequest), each with its own nonce', async () => {
    const svc = await service();
    const kms = await kmsFor([svc.url]);
    const env = await seal(DATA, { recipients: [kmsRecipient(kms, 'app/db')], context: CTX });
    await open(env, { identities: [kmsIdentity(kms)], context: CTX });
    const nonces = new Set<string>();
    for (const r of svc.requests) {
      const req = { method: r.method, url: `${svc.url}${r.url}`, headers: r.headers, body: r.body };
      const v = await verifyRequest(req, { keyLookup: (id) => (id === KEY_ID ? DEVICE_PUBLIC : null), seenNonce: new MemoryReplayCache().seen });
      assert.equal(v.label, 'kw');
      assert.equal(v.keyId, KEY_ID);
      assert.deepEqual(v.components, [...DEFAULT_COMPONENTS]);
      assert.match(String(r.headers['signature-input']), /;alg="ed25519"/);
      nonces.add(v.nonce);
      // One byte of the body changed: the digest no longer matches.
      const body = r.body.slice();
      body[body.length - 2]! ^= 1;
      await assert.rejects(
        verifyRequest({ ...req, body }, { keyLookup: () => DEVICE_PUBLIC, seenNonce: new MemoryReplayCache().seen }),
        (e) => e instanceof HttpSigError && e.code === 'HTTPSIG_DIGEST_MISMATCH',
      );
      // Another path: the signature no longer verifies.
      await assert.rejects(
        verifyRequest({ ...req, url: req.url.replace('/app/db/', '/app/other/') }, { keyLookup: () => DEVICE_PUBLIC, seenNonce: new MemoryReplayCache().seen }),
        (e) => e instanceof HttpSigError && e.code === 'HTTPSIG_BAD_SIGNATURE',
      );
    }
    assert.equal(nonces.size, svc.requests.length);
  });

  void test('KmsKeyService.seal adds further recipients after the kms one', async () => {
    const svc = await service();
    const kms = await kmsFor([svc.url]);
    const env = await kms.seal(DATA, { key: 'app/db', recipients: [await BOB.recipient()], context: CTX });
    assert.deepEqual((await open(env, { identities: [BOB], context: CTX })).plaintext, DATA);
    assert.deepEqual((await open(env, { identities: [kmsIdentity(kms)], context: CTX })).plaintext, DATA);
  });
});

void describe('what the client refuses', () => {
  const cases: [string, Mode, string][] = [
    ['a key sealed to another recipient', { sealTo: '' }, 'KW_CLIENT_SEALED_KEY_REJECTED'],
    ['a wrong kw_key', { releaseContext: (c) => ({ ...c, kw_key: 'app/other' }) }, 'KW_CLIENT_SEALED_KEY_REJECTED'],
    ['a wrong kw_version', { releaseContext: (c) => ({ ...c, kw_version: '2' }) }, 'KW_CLIENT_SEALED_KEY_REJECTED'],
    ['a caller pair changed', { releaseContext: (c) => ({ ...c, tenant: 't-43' }) }, 'KW_CLIENT_SEALED_KEY_REJECTED'],
    ['a caller pair missing', { releaseContext: ({ tenant: _t, ...c }) => c }, 'KW_CLIENT_SEALED_KEY_REJECTED'],
    ['an extra pair', { releaseContext: (c) => ({ ...c, extra: '1' }) }, 'KW_CLIENT_SEALED_KEY_REJECTED'],
    ['no kw_request', { releaseContext: ({ kw_request: _r, ...c }) => c }, 'KW_CLIENT_SEALED_KEY_REJECTED'],
    ['a malformed kw_request', { releaseContext: (c) => ({ ...c, kw_request: 'AB'.repeat(32) }) }, 'KW_CLIENT_SEALED_KEY_REJECTED'],
    ['a response naming another key', { response: (b) => ({ ...b, key: 'app/other' }) }, 'KW_CLIENT_RESPONSE_MISMATCH'],
    ['a version out of range', { response: (b) => ({ ...b, version: 0 }) }, 'KW_CLIENT_BAD_RESPONSE'],
    ['a version that disagrees with the sealed kw_version', { response: (b) => ({ ...b, version: 7 }) }, 'KW_CLIENT_SEALED_KEY_REJECTED'],
    ['a plaintext key in the response', { response: (b) => ({ ...b, plaintext: b64u(new Uint8Array(32)) }) }, 'KW_CLIENT_BAD_RESPONSE'],
    ['non-canonical base64url', { response: (b) => ({ ...b, wrapped: `${String(b.wrapped)}=` }) }, 'KW_CLIENT_BAD_RESPONSE'],
    ['a sealed value that is not an envelope', { response: (b) => ({ ...b, sealed: b64u(new Uint8Array(40)) }) }, 'KW_CLIENT_SEALED_KEY_REJECTED'],
    ['a 200 that is not JSON', { raw: { status: 200, body: '<html>ok</html>' } }, 'KW_CLIENT_BAD_RESPONSE'],
  ];
  for (const [what, mode, expected] of cases) {
    void test(`datakey: ${what} → ${expected}`, async () => {
      const m = { ...mode, ...(mode.sealTo === '' ? { sealTo: (await MALLORY.recipient()).toString() } : {}) };
      const svc = await service(newState(), m);
      const kms = await kmsFor([svc.url]);
      await assert.rejects(kms.seal(DATA, { key: 'app/db', context: CTX }), code(expected));
      assert.equal(svc.count('datakey'), 1, 'not retried');
    });
  }

  void test('unwrap: the same checks, and the version must be the stanza\'s', async () => {
    const state = newState();
    const good = await service(state);
    const env = await (await kmsFor([good.url])).seal(DATA, { key: 'app/db', context: CTX });
    const checks: [Mode, string][] = [
      [{ sealTo: (await MALLORY.recipient()).toString() }, 'KW_CLIENT_SEALED_KEY_REJECTED'],
      [{ releaseContext: (c) => ({ ...c, kw_key: 'app/other' }) }, 'KW_CLIENT_SEALED_KEY_REJECTED'],
      [{ releaseContext: (c) => ({ ...c, table: 'users' }) }, 'KW_CLIENT_SEALED_KEY_REJECTED'],
      [{ response: (b) => ({ ...b, version: 2 }) }, 'KW_CLIENT_RESPONSE_MISMATCH'],
      [{ response: (b) => ({ ...b, key: 'app/other' }) }, 'KW_CLIENT_RESPONSE_MISMATCH'],
    ];
    for (const [mode, expected] of checks) {
      const bad = await service(state, mode);
      const kms = await kmsFor([bad.url]);
      await assert.rejects(open(env, { identities: [kmsIdentity(kms)], context: CTX }), code(expected));
    }
  });

  void test('reserved context names are refused before anything is sent', async () => {
    const svc = await service();
    const kms = await kmsFor([svc.url]);
    const reserved: ContextInput[] = [{ kw_key: 'x' }, { KW_Request: 'x' }, [['__proto__', 'x']]];
    for (const ctx of reserved) {
      await assert.rejects(kms.seal(DATA, { key: 'app/db', context: ctx }), code('KW_INVALID_ARGUMENT'));
    }
    await assert.rejects(kms.seal(DATA, { key: 'app', context: CTX }), code('KW_INVALID_ARGUMENT'));
    await assert.rejects(kms.seal(DATA, { key: 'app/d b', context: CTX }), code('KW_INVALID_ARGUMENT'));
    assert.equal(svc.requests.length, 0);
  });

  void test('a p256 device identity is refused (the service seals to x25519 or xwing only)', async () => {
    await assert.rejects(KmsKeyService.create({ http: httpClient(['http://127.0.0.1:1']), identity: await generateIdentity('p256') }), code('KW_INVALID_ARGUMENT'));
  });

  void test('kw_request must be the hash of the request this client sent (by default); "present" checks only its form', async () => {
    const honest = await service();
    const strict = await kmsFor([honest.url]);
    assert.equal(strict.requestHash, 'signed-fields');
    const env = await strict.seal(DATA, { key: 'app/db', context: CTX });
    assert.deepEqual((await open(env, { identities: [kmsIdentity(strict)], context: CTX })).plaintext, DATA);

    // An earlier answer replayed (the API process keeps one and serves it again): refused.
    let kept: Record<string, unknown> | undefined;
    const replaying = await service(newState(), { response: (b) => (kept ??= b) });
    const kms = await kmsFor([replaying.url]);
    await kms.seal(DATA, { key: 'app/db', context: CTX });
    await assert.rejects(kms.seal(DATA, { key: 'app/db', context: CTX }), code('KW_CLIENT_SEALED_KEY_REJECTED'));

    const other = await service(newState(), { releaseContext: (c) => ({ ...c, kw_request: hex(randomBytes(32)) }) });
    await assert.rejects((await kmsFor([other.url])).seal(DATA, { key: 'app/db', context: CTX }), code('KW_CLIENT_SEALED_KEY_REJECTED'));
    await (await kmsFor([other.url], { requestHash: 'present' })).seal(DATA, { key: 'app/db', context: CTX });
  });

  void test('signedRequestHash is SHA-256(Signature-Input ‖ LF ‖ Signature) of the fields sent', async () => {
    const svc = await service();
    const http = httpClient([svc.url]);
    const r = await http.data('app', 'db', 'datakey', { recipient: (await DEVICE.recipient()).toString(), context: {} });
    const h = svc.requests[0]!.headers;
    const expected = createHash('sha256').update(`${String(h['signature-input'])}\n${String(h.signature)}`).digest();
    assert.deepEqual(r.requestHash, new Uint8Array(expected));
    assert.deepEqual(signedRequestHash(String(h['signature-input']), String(h.signature)), new Uint8Array(expected));
  });
});

void describe('unwrap: "not for me" (null) versus failure (throws)', () => {
  void test('403 and 404 from the service mean null: core tries the other stanzas', async () => {
    const state = newState();
    const svc = await service(state);
    const kms = await kmsFor([svc.url]);
    const env = await seal(DATA, { recipients: [kmsRecipient(kms, 'app/db'), await BOB.recipient()], context: CTX });

    svc.mode = { deny: new Set(['app/db']) };
    assert.deepEqual((await open(env, { identities: [kmsIdentity(kms), BOB], context: CTX })).plaintext, DATA);
    await assert.rejects(open(env, { identities: [kmsIdentity(kms)], context: CTX }), (e) => isKeywardError(e, 'KW_NO_IDENTITY_MATCHED'));

    svc.mode = {};
    state.keys.delete('app/db'); // 404
    await assert.rejects(open(env, { identities: [kmsIdentity(kms)], context: CTX }), (e) => isKeywardError(e, 'KW_NO_IDENTITY_MATCHED'));
  });

  void test('a blob that does not unwrap (KW_WRAPPED_KEY_MISMATCH) is null', async () => {
    const svc = await service();
    const kms = await kmsFor([svc.url]);
    const ctx = stanzaContext([['t', 'x']]);
    const { stanza } = await kms.generateDataKey('app/db', ctx);
    const moved: Stanza = { type: 'kms', fields: [stanza.fields[0]!, stanza.fields[1]!, stanza.fields[2]!.map((b, i) => (i === 20 ? b ^ 1 : b))] };
    assert.equal(await kms.unwrap(moved, ctx), null);
    assert.equal(await kms.unwrap(stanza, stanzaContext([['t', 'y']])), null, 'another context');
  });

  void test('a stanza that does not parse strictly is null without a request', async () => {
    const svc = await service();
    const kms = await kmsFor([svc.url]);
    const ctx = stanzaContext([]);
    const enc = new TextEncoder();
    const v1 = Uint8Array.of(0, 0, 0, 1);
    const w = new Uint8Array(60);
    const bad: Stanza[] = [
      { type: 'x25519', fields: [enc.encode('app/db'), v1, w] },
      { type: 'kms', fields: [enc.encode('app/db'), v1] },
      { type: 'kms', fields: [enc.encode('app/db'), v1, w, w] },
      { type: 'kms', fields: [enc.encode('appdb'), v1, w] },
      { type: 'kms', fields: [enc.encode('app/db/x'), v1, w] },
      { type: 'kms', fields: [Uint8Array.of(0xff, 0x2f, 0x61), v1, w] },
      { type: 'kms', fields: [enc.encode('app/db'), Uint8Array.of(0, 0, 1), w] },
      { type: 'kms', fields: [enc.encode('app/db'), Uint8Array.of(0, 0, 0, 0), w] },
      { type: 'kms', fields: [enc.encode('app/db'), Uint8Array.of(0x80, 0, 0, 0), w] },
      { type: 'kms', fields: [enc.encode('app/db'), v1, new Uint8Array(0)] },
      { type: 'kms', fields: [enc.encode('app/db'), v1, new Uint8Array(4097)] },
    ];
    for (const s of bad) assert.equal(await kms.unwrap(s, ctx), null);
    assert.equal(await kms.unwrap({ type: 'kms', fields: [enc.encode('app/db'), v1, w] }, stanzaContext([['kw_key', 'x']])), null);
    assert.equal(svc.requests.length, 0);
  });

  void test('an unavailable service, a refused token or signature throw: they never look like "not for me"', async () => {
    const state = newState();
    const svc = await service(state);
    const kms = await kmsFor([svc.url]);
    const env = await seal(DATA, { recipients: [kmsRecipient(kms, 'app/db'), await BOB.recipient()], context: CTX });

    svc.mode = { unavailable: true };
    await assert.rejects(open(env, { identities: [kmsIdentity(kms), BOB], context: CTX }), (e) => {
      assert.ok(isKeywardClientError(e, 'KW_SEALED'));
      assert.equal(e.status, 503);
      return true;
    });
    svc.mode = {};
    await assert.rejects(open(env, { identities: [kmsIdentity(await kmsFor([svc.url], { token: 'kw_revoked' }))], context: CTX }), code('KW_UNAUTHENTICATED'));
    const other = await kmsFor([svc.url]);
    (other.http as unknown as { dispose(): void }).dispose(); // wiped seed: signatures no longer verify
    await assert.rejects(open(env, { identities: [kmsIdentity(other)], context: CTX }), code('KW_REQUEST_UNAUTHENTICATED'));
    svc.mode = { raw: { status: 404, body: 'Not Found' } }; // a 404 without a Keyward error: a wrong address, not "no such key"
    await assert.rejects(open(env, { identities: [kmsIdentity(kms)], context: CTX }), (e) => {
      assert.ok(isKeywardClientError(e, 'KW_CLIENT_BAD_RESPONSE'));
      assert.equal(e.status, 404);
      return true;
    });
    await assert.rejects(open(env, { identities: [kmsIdentity(await kmsFor([await closedAddress()]))], context: CTX }), code('KW_CLIENT_UNAVAILABLE'));
  });
});

void describe('failover', () => {
  void test('the first address refuses connections: the second is used, and stays preferred', async () => {
    const state = newState();
    const b = await service(state);
    const kms = await kmsFor([await closedAddress(), b.url]);
    const env = await kms.seal(DATA, { key: 'app/db', context: CTX });
    assert.deepEqual((await open(env, { identities: [kmsIdentity(kms)], context: CTX })).plaintext, DATA);
    assert.deepEqual([b.count('datakey'), b.count('unwrap')], [1, 1]);
  });

  void test('503 moves data-plane calls to the next address, each attempt signed anew', async () => {
    const state = newState();
    const a = await service(state, { unavailable: true });
    const b = await service(state);
    const kms = await kmsFor([a.url, b.url]);
    const env = await kms.seal(DATA, { key: 'app/db', context: CTX });
    assert.deepEqual([a.count('datakey'), b.count('datakey')], [1, 1]);
    const sigA = String(a.requests[0]!.headers.signature);
    const sigB = String(b.requests[0]!.headers.signature);
    assert.notEqual(sigA, sigB);
    assert.notEqual(/nonce="([^"]+)"/.exec(String(a.requests[0]!.headers['signature-input']))![1], /nonce="([^"]+)"/.exec(String(b.requests[0]!.headers['signature-input']))![1]);
    // b answered last, so it is asked first now.
    await open(env, { identities: [kmsIdentity(kms)], context: CTX });
    assert.deepEqual([a.count('unwrap'), b.count('unwrap')], [0, 1]);
    // b goes down, a comes back: unwrap fails over too.
    a.mode = {};
    b.mode = { unavailable: true };
    await open(env, { identities: [kmsIdentity(kms)], context: CTX });
    assert.deepEqual([a.count('unwrap'), b.count('unwrap')], [1, 2]);
  });

  void test('503 on every address: the service\'s error, with every attempt', async () => {
    const state = newState();
    const a = await service(state, { unavailable: true });
    const b = await service(state, { unavailable: true });
    const kms = await kmsFor([a.url, b.url, await closedAddress()]);
    await assert.rejects(kms.seal(DATA, { key: 'app/db', context: CTX }), (e) => {
      assert.ok(isKeywardClientError(e, 'KW_SEALED'));
      assert.equal(e.status, 503);
      assert.deepEqual(e.attempts.map((x) => x.code), ['KW_SEALED', 'KW_SEALED', 'KW_CLIENT_UNAVAILABLE']);
      return true;
    });
  });

  void test('a non-idempotent admin operation is not retried after a 503', async () => {
    const state = newState();
    const a = await service(state, { unavailable: true });
    const b = await service(state);
    const http = httpClient([a.url, b.url]);
    await assert.rejects(http.request({ method: 'POST', path: '/v1/keys/app/db/rotate' }), (e) => {
      assert.ok(isKeywardClientError(e, 'KW_SEALED'));
      assert.equal(e.attempts.length, 1);
      return true;
    });
    assert.equal(a.count('rotate'), 1);
    assert.equal(b.requests.length, 0);
    assert.equal(state.keys.get('app/db')!.length, 1, 'rotated nowhere');
    // retry: true is the caller's explicit statement that repeating is safe.
    await http.request({ method: 'POST', path: '/v1/keys/app/db/rotate', retry: true });
    assert.equal(b.count('rotate'), 1);
  });

  void test('a non-idempotent operation moves on only when the connection provably never opened', async () => {
    const state = newState();
    const b = await service(state);
    const http = httpClient([await closedAddress(), b.url]);
    const r = await http.request<{ version: number }>({ method: 'POST', path: '/v1/keys/app/db/rotate' });
    assert.equal(r.body.version, 2);
    assert.equal(r.address, b.url);
  });

  void test('timeouts: data plane fails over; a non-idempotent operation is not retried (KW_CLIENT_TIMEOUT)', async () => {
    const state = newState();
    const a = await service(state, { hang: true });
    const b = await service(state);
    const kms = await kmsFor([a.url, b.url], { timeoutMs: 300 });
    await kms.seal(DATA, { key: 'app/db', context: CTX });
    assert.deepEqual([a.count('datakey'), b.count('datakey')], [1, 1]);

    const http = httpClient([a.url, b.url], { timeoutMs: 300 });
    await assert.rejects(http.request({ method: 'POST', path: '/v1/keys/app/db/rotate' }), code('KW_CLIENT_TIMEOUT'));
    assert.equal(b.count('rotate'), 0);
  });

  void test('other errors end the call at once (no failover on 4xx, 500, or a proxy\'s 502)', async () => {
    const state = newState();
    const b = await service(state);
    for (const mode of [{ deny: new Set(['app/db']) }, { raw: { status: 502, body: '<html>bad gateway</html>' } }, { raw: { status: 500, body: '{"error":{"code":"KW_INTERNAL","message":"boom"}}' } }] as Mode[]) {
      const a = await service(state, mode);
      const kms = await kmsFor([a.url, b.url]);
      await assert.rejects(kms.seal(DATA, { key: 'app/db', context: CTX }), (e) => e instanceof KeywardClientError && e.status >= 400);
    }
    assert.equal(b.requests.length, 0);
  });
});

void describe('with a data-key cache', () => {
  void test('N seals of one key and context: one datakey call; opening them: one unwrap call', async () => {
    const svc = await service();
    const kms = await kmsFor([svc.url], { cache: new DataKeyCache() });
    const envs = [];
    for (let i = 0; i < 10; i++) envs.push(await kms.seal(DATA, { key: 'app/db', context: CTX }));
    assert.equal(svc.count('datakey'), 1);
    for (const env of envs) assert.deepEqual((await open(env, { identities: [kmsIdentity(kms)], context: CTX })).plaintext, DATA);
    assert.equal(svc.count('unwrap'), 1);
    // Each envelope is still its own: distinct salts, so distinct headers.
    assert.equal(new Set(envs.map((e) => hex(e.subarray(0, 80)))).size, 10);
    // Another reader without the cache opens them too (the stanza is a real one).
    const fresh = await kmsFor([svc.url]);
    assert.deepEqual((await open(envs[9]!, { identities: [kmsIdentity(fresh)], context: CTX })).plaintext, DATA);
  });

  void test('within the limits: messages, bytes and age each force a new datakey call', async () => {
    const svc = await service();
    const c = { t: 0 };
    const kms = await kmsFor([svc.url], { cache: new DataKeyCache({ maxMessages: 4, maxBytes: 10 * DATA.length, maxAgeMs: 60_000, now: () => c.t }) });
    for (let i = 0; i < 10; i++) await kms.seal(DATA, { key: 'app/db', context: CTX });
    assert.equal(svc.count('datakey'), 3, '4 + 4 + 2 messages');
    c.t += 60_000;
    await kms.seal(DATA, { key: 'app/db', context: CTX });
    assert.equal(svc.count('datakey'), 4, 'expired');
    await kms.seal(new Uint8Array(10 * DATA.length + 1), { key: 'app/db', context: CTX });
    assert.equal(svc.count('datakey'), 5, 'larger than maxBytes: a fresh key');
    await kms.seal(DATA, { key: 'app/db', context: CTX });
    assert.equal(svc.count('datakey'), 5, 'the cached entry is still there');
  });

  void test('another context, or another key, is another datakey call', async () => {
    const svc = await service();
    const kms = await kmsFor([svc.url], { cache: new DataKeyCache() });
    await kms.seal(DATA, { key: 'app/db', context: { table: 'a' } });
    await kms.seal(DATA, { key: 'app/db', context: { table: 'b' } });
    await kms.seal(DATA, { key: 'app/other', context: { table: 'a' } });
    await kms.seal(DATA, { key: 'app/db', context: { table: 'a' } });
    assert.equal(svc.count('datakey'), 3);
  });

  void test('a seal of unknown size (plain kmsRecipient) is never served from the cache', async () => {
    const svc = await service();
    const kms = await kmsFor([svc.url], { cache: new DataKeyCache() });
    for (let i = 0; i < 3; i++) await seal(DATA, { recipients: [kmsRecipient(kms, 'app/db')], context: CTX });
    assert.equal(svc.count('datakey'), 3);
    for (let i = 0; i < 3; i++) await seal(DATA, { recipients: [kmsRecipient(kms, 'app/db', { plaintextBytes: DATA.length })], context: CTX });
    assert.equal(svc.count('datakey'), 4);
  });

  void test('a cache shared by two clients never hands one client\'s keys to the other', async () => {
    const svc = await service();
    const cache = new DataKeyCache();
    const one = await kmsFor([svc.url], { cache });
    const two = await kmsFor([svc.url], { cache });
    await one.seal(DATA, { key: 'app/db', context: CTX });
    await two.seal(DATA, { key: 'app/db', context: CTX });
    assert.equal(svc.count('datakey'), 2);
  });

  void test('a refused unwrap is not cached: access granted later works at once', async () => {
    const svc = await service();
    const kms = await kmsFor([svc.url], { cache: new DataKeyCache() });
    const env = await kms.seal(DATA, { key: 'app/db', context: CTX });
    svc.mode = { deny: new Set(['app/db']) };
    await assert.rejects(open(env, { identities: [kmsIdentity(kms)], context: CTX }), (e) => isKeywardError(e, 'KW_NO_IDENTITY_MATCHED'));
    svc.mode = {};
    assert.deepEqual((await open(env, { identities: [kmsIdentity(kms)], context: CTX })).plaintext, DATA);
  });
});

void describe('KeywardHttpClient', () => {
  void test('options are checked', () => {
    const device = { keyId: KEY_ID, signingSeed: SEED };
    const bad: unknown[] = [
      { addresses: [], token: TOKEN, device },
      { addresses: ['http://kms.example.com'], token: TOKEN, device }, // plain http off loopback
      { addresses: ['https://u:p@kms.example.com'], token: TOKEN, device },
      { addresses: ['https://kms.example.com/?x=1'], token: TOKEN, device },
      { addresses: ['ftp://kms.example.com'], token: TOKEN, device },
      { addresses: ['https://kms.example.com'], token: 'has space', device },
      { addresses: ['https://kms.example.com'], token: TOKEN, device: { keyId: KEY_ID, signingSeed: new Uint8Array(31) } },
      { addresses: ['https://kms.example.com'], token: TOKEN, device: { keyId: '', signingSeed: SEED } },
      { addresses: ['https://kms.example.com'], token: TOKEN, device, timeoutMs: 0 },
    ];
    for (const o of bad) assert.throws(() => new KeywardHttpClient(o as never), code('KW_INVALID_ARGUMENT'), JSON.stringify(o));
    const ok = new KeywardHttpClient({ addresses: ['https://kms.example.com/prefix/', 'http://localhost:8200', 'http://kms.internal', 'http://[::1]:1'].slice(0, 2), token: TOKEN, device });
    assert.deepEqual(ok.addresses, ['https://kms.example.com/prefix', 'http://localhost:8200']);
    new KeywardHttpClient({ addresses: ['http://kms.internal'], token: TOKEN, device, allowInsecureHttp: true });
  });

  void test('service errors keep their code and status; a GET is retried, a redirect is refused', async () => {
    const state = newState();
    const a = await service(state, { unavailable: true });
    const b = await service(state);
    const http = httpClient([a.url, b.url]);
    await assert.rejects(http.request({ method: 'GET', path: '/v1/keys/app' }), (e) => {
      assert.ok(isKeywardClientError(e, 'KW_NOT_FOUND'));
      assert.equal(e.status, 404);
      assert.equal(e.address, b.url);
      return true;
    });
    assert.equal(a.requests.length, 1, 'the GET went to a first, then b');

    const r = await service(state, { raw: { status: 302, body: '', headers: { location: `${b.url}/v1/keys/app/db/rotate` } } });
    await assert.rejects(httpClient([r.url]).request({ method: 'GET', path: '/v1/x', retry: false }), code('KW_CLIENT_UNAVAILABLE'));
    assert.equal(b.count('rotate'), 0);
  });

  void test('a response larger than maxResponseBytes is refused', async () => {
    const svc = await service(newState(), { raw: { status: 200, body: JSON.stringify({ pad: 'x'.repeat(5000) }), headers: { 'content-type': 'application/json' } } });
    const http = new KeywardHttpClient({ addresses: [svc.url], token: TOKEN, device: { keyId: KEY_ID, signingSeed: SEED }, maxResponseBytes: 4096 });
    await assert.rejects(http.request({ method: 'GET', path: '/v1/x' }), code('KW_CLIENT_BAD_RESPONSE'));
  });

  void test('a caller abort ends the call with the abort reason, without failover', async () => {
    const state = newState();
    const a = await service(state, { hang: true });
    const b = await service(state);
    const http = httpClient([a.url, b.url]);
    const ac = new AbortController();
    const p = http.request({ method: 'GET', path: '/v1/keys/app', signal: ac.signal });
    setTimeout(() => ac.abort(new Error('caller gave up')), 50);
    await assert.rejects(p, /caller gave up/);
    assert.equal(b.requests.length, 0);
  });
});
