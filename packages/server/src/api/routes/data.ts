/**
 * The data plane: bearer token AND an RFC 9421 signature by a registered
 * device key of the same principal. The API authenticates the token, finds
 * the device key named by `keyid`, decides by policy, picks the key version,
 * and relays the raw signed request (method, URL as received, the signature
 * fields, body bytes) with the device key record to the keyholder, which
 * verifies the signature itself and seals the result to the recipient named
 * in the signed body. For encrypt, sign, mac and rewrap the keyholder
 * verifies the relayed signature too and decides on its own signed policy
 * (keyholder/signed-ops.ts); for verify (public-key work) the API verifies
 * the signature (same profile) before relaying.
 *
 * `rewrap` moves up to 100 wrapped data keys to the key's newest version
 * inside the keyholder (one keyholder op and one audit event per item; the
 * data keys never leave it). Every item is checked first — policy for its
 * context, its version usable for decryption — so a refusal changes nothing;
 * a failure of item i in the keyholder fails the request with that item's
 * code (`items[i]: …`), the items before it having been rewrapped and
 * audited (rewrap changes no stored state, so a retry is harmless). Like
 * the other ops, a refusal by a keyholder that lags behind another node's
 * newest signed policy (KW_POLICY_DENIED) is retried once after syncing it
 * (`withGovernance`), resuming at the refused item.
 */
import { MemoryReplayCache, verifyRequest } from '@keyward/client';
import { HpkeRecipient, inspect, type KemType } from '@keyward/core';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { MAX_OPEN_HEADER_BYTES } from '../../keyholder/protocol.js';
import { KEYHOLDER_PROOF_REQUEST_HEADER } from '../../keyholder/response-signing.js';
import { keyholderProofHook, proofParamOf, requestHashHex, setKeyholderProofs, withKeyholderProof } from '../keyholder-proof.js';
import type { KeyRow, KeyVersionRow } from '../../store/index.js';
import { ContextSchema, NsParam, b64uString, type App } from '../app.js';
import { b64u } from '../audit-pipe.js';
import { deviceKeyFor, signatureKeyId } from '../auth.js';
import { requestNonceOf } from '../nonces.js';
import { ApiError, toHttpError, type ApiErrorCode } from '../errors.js';
import { decide, type Operation } from '../policy.js';
import { guarded, policiesOf, requireKey, requireVersion } from './common.js';
import { requireDirectoryDevice } from '../../directory/gate.js';
import { withGovernance } from '../governance.js';

/** Most items one rewrap request may carry. */
export const MAX_REWRAP_ITEMS = 100;

const Params = z.strictObject({ ns: NsParam, name: NsParam });
const Version = z.int().min(1).max(2 ** 31 - 1);
const Recipient = z.string().min(1).max(4096);
const Sealed = z.strictObject({ key: z.string(), version: z.int(), sealed: z.string() });
/** Relayed to the keyholder: the signature fields, and the caller's opt-in to a keyholder-signed response (response-signing.ts). */
const SIGNED_HEADERS = ['signature-input', 'signature', 'content-digest', 'content-type', KEYHOLDER_PROOF_REQUEST_HEADER];

/** The signed request as the keyholder needs it: absolute URL as received, the signature fields, the body. */
export function signedRequestOf(req: FastifyRequest, raw: Uint8Array) {
  const host = req.headers.host;
  if (typeof host !== 'string' || host.length === 0) throw new ApiError('KW_INVALID_ARGUMENT', 'a Host header is required');
  const headers: Record<string, string | string[]> = {};
  for (const name of SIGNED_HEADERS) {
    const v = req.headers[name];
    if (v !== undefined) headers[name] = v;
  }
  return { method: req.method, url: `${req.protocol}://${host}${req.url}`, headers, body: raw };
}

function usable(k: KeyRow, v: KeyVersionRow, decrypting: boolean): KeyVersionRow & { wrapped: Uint8Array } {
  if (v.state === 'destroyed' || v.wrapped === null) throw new ApiError('KW_KEY_VERSION_DESTROYED', `version ${v.version} of ${k.ns}/${k.name} was destroyed`);
  if (v.state !== 'enabled') throw new ApiError('KW_KEY_VERSION_DISABLED', `version ${v.version} of ${k.ns}/${k.name} is ${v.state}`);
  if (decrypting && v.version < k.minDecryptionVersion) throw new ApiError('KW_KEY_VERSION_DISABLED', `version ${v.version} is below the minimum decryption version ${k.minDecryptionVersion}`);
  return v as KeyVersionRow & { wrapped: Uint8Array };
}

const storedOf = (k: KeyRow, v: KeyVersionRow & { wrapped: Uint8Array }) => ({
  ns: k.ns, key: k.name, version: v.version, type: k.type, wrapped: b64u(v.wrapped), ...(v.publicKey ? { publicKey: b64u(v.publicKey) } : {}),
});

export function dataRoutes(app: App): void {
  const { ctx } = app;
  const replay = new MemoryReplayCache({ maxEntries: 100_000 });
  // The keyholder's signature over a result (asked for with Keyward-Keyholder-Proof), returned as a header.
  keyholderProofHook(app.fastify);

  /** Token, device key, policy, audit; `run` gets the version to use, the relayed request and the event. */
  async function dataOp<T>(
    op: Operation, req: FastifyRequest, raw: Uint8Array, params: { ns: string; name: string },
    opts: { context?: Record<string, string>; version?: number; decrypting?: boolean; verifyHere?: boolean; recipient?: string },
    /** Sends its one keyholder op before its first await (the audit pipe pipelines them: recordOp `ordered`). */
    run: (a: { key: KeyRow; version: KeyVersionRow & { wrapped: Uint8Array }; request: ReturnType<typeof signedRequestOf> & { device: { keyId: string; principal: string; publicKey: Uint8Array } }; requestHash: string | null; eventB64: string }) => Promise<{ result: T; leaf: number }>,
  ): Promise<T> {
    const signed = signedRequestOf(req, raw);
    const requestHash = requestHashHex(signed.headers); // null when unsigned: refused below
    const k0 = await ctx.store.getKey(params.ns, params.name);
    const target = opts.version ?? k0?.latestVersion;
    // A node whose keyholder has not yet taken another node's newest signed policy is refused by it (KW_POLICY_DENIED):
    // withGovernance syncs it from the store and runs the request once more (api/governance.ts).
    return withGovernance(app, () => guarded(app, req, { op, auditOp: `data.${op}`, ns: params.ns, key: params.name, version: target, context: opts.context ?? {}, auth: 'signature', request: requestHash }, async ({ who, event }) => {
      const device = await deviceKeyFor(ctx.store, who, signatureKeyId(req.headers['signature-input']));
      // Issue #6: only directory devices of the principal sign requests and receive sealed results (directory/gate.ts).
      await requireDirectoryDevice(ctx, who.id, device.keyId, opts.recipient);
      const deviceRecord = { keyId: device.keyId, principal: device.principal, publicKey: device.publicKey };
      if (opts.verifyHere) {
        await verifyRequest(signed, {
          keyLookup: (id) => (id === device.keyId ? device.publicKey : null),
          seenNonce: (nonce, c) => replay.seen(nonce, c),
        });
      }
      const key = await requireKey(ctx.store, params.ns, params.name);
      const version = usable(key, await requireVersion(ctx.store, params.ns, params.name, target ?? key.latestVersion), opts.decrypting ?? false);
      // The op changes no stored state: its event is group-committed with others' (audit-pipe.ts recordOp).
      // Its nonce is recorded with the event (shared by every node): a replay to another node is refused.
      const nonce = requestNonceOf(req.headers['signature-input']) ?? undefined;
      return ctx.audit.recordOp({ ...event, outcome: 'allowed' }, (ev) =>
        run({ key, version, request: { ...signed, device: deviceRecord }, requestHash, eventB64: ev.b64 }), { ...(nonce ? { nonce } : {}), ordered: true });
    }));
  }

  const wireRequest = (r: { method: string; url: string; headers: Record<string, string | string[]>; body: Uint8Array; device: { keyId: string; principal: string; publicKey: Uint8Array } }) => ({
    method: r.method, url: r.url, headers: r.headers, body: b64u(r.body), device: { keyId: r.device.keyId, principal: r.device.principal, publicKey: b64u(r.device.publicKey) },
  });

  app.route({
    method: 'POST', url: '/v1/data/:ns/:name/datakey', summary: 'A new data key: wrapped, and sealed to the recipient in the signed body', tag: 'data', auth: 'signed',
    params: Params, body: z.strictObject({ recipient: Recipient, context: ContextSchema.default({}), plaintext: z.literal(false).optional() }),
    response: z.strictObject({ key: z.string(), version: z.int(), wrapped: z.string(), sealed: z.string() }),
  }, ({ params, body, req, raw }) => dataOp('datakey', req, raw, params, { context: body.context, recipient: body.recipient }, async ({ key, version, request, eventB64 }) => {
    const r = withKeyholderProof(req, await ctx.keyholder.call('datakey', { event: eventB64, version: storedOf(key, version), context: body.context, recipient: body.recipient, request: wireRequest(request) }));
    return { result: { key: `${key.ns}/${key.name}`, version: r.ref.version, wrapped: r.wrapped, sealed: r.sealed }, leaf: r.leaf };
  }));

  app.route({
    method: 'POST', url: '/v1/data/:ns/:name/unwrap', summary: 'Unwrap a data key and seal it to the recipient in the signed body', tag: 'data', auth: 'signed',
    params: Params, body: z.strictObject({ version: Version, wrapped: b64uString(4096), context: ContextSchema.default({}), recipient: Recipient }), response: Sealed,
  }, ({ params, body, req, raw }) => dataOp('unwrap', req, raw, params, { context: body.context, version: body.version, decrypting: true, recipient: body.recipient }, async ({ key, version, request, eventB64 }) => {
    const r = withKeyholderProof(req, await ctx.keyholder.call('unwrap', { event: eventB64, version: storedOf(key, version), context: body.context, wrapped: body.wrapped, recipient: body.recipient, request: wireRequest(request) }));
    return { result: { key: `${key.ns}/${key.name}`, version: r.ref.version, sealed: r.sealed }, leaf: r.leaf };
  }));

  app.route({
    method: 'POST', url: '/v1/data/:ns/:name/decrypt', summary: 'Decrypt a kw:v<N>: ciphertext; the plaintext is sealed to the recipient in the signed body', tag: 'data', auth: 'signed',
    params: Params, body: z.strictObject({ ciphertext: z.string().min(4).max(8192), context: ContextSchema.default({}), recipient: Recipient }), response: Sealed,
  }, ({ params, body, req, raw }) => {
    const m = /^kw:v([1-9][0-9]{0,9}):/.exec(body.ciphertext);
    if (!m) throw new ApiError('KW_INVALID_ARGUMENT', 'ciphertext must start with kw:v<N>:');
    return dataOp('decrypt', req, raw, params, { context: body.context, version: Number(m[1]), decrypting: true, recipient: body.recipient }, async ({ key, version, request, eventB64 }) => {
      const r = withKeyholderProof(req, await ctx.keyholder.call('decrypt', { event: eventB64, version: storedOf(key, version), context: body.context, ciphertext: body.ciphertext, recipient: body.recipient, request: wireRequest(request) }));
      return { result: { key: `${key.ns}/${key.name}`, version: r.ref.version, sealed: r.sealed }, leaf: r.leaf };
    });
  });

  /**
   * The version whose public key a stanza of the header names (by key id);
   * the latest when none does (anonymous stanzas: pass `version`). Read
   * before authorization only to pick the version, as `dataOp` does.
   */
  async function versionForHeader(ns: string, name: string, stanzaKeyIds: readonly string[]): Promise<number | undefined> {
    const k = await ctx.store.getKey(ns, name);
    if (!k || (k.type !== 'x25519' && k.type !== 'xwing')) return k?.latestVersion;
    const wanted = new Set(stanzaKeyIds);
    for (const v of (await ctx.store.listKeyVersions(ns, name)).reverse()) {
      if (!v.publicKey) continue;
      const id = Buffer.from((await HpkeRecipient.fromPublicKey(k.type as KemType, v.publicKey)).keyId).toString('hex');
      if (wanted.has(id)) return v.version;
    }
    return k.latestVersion;
  }

  app.route({
    method: 'POST', url: '/v1/data/:ns/:name/open', summary: 'Open for recipient: the data key of an envelope header sealed to an x25519/xwing key, sealed to the recipient in the signed body', tag: 'data', auth: 'signed',
    params: Params, body: z.strictObject({ header: b64uString(MAX_OPEN_HEADER_BYTES), recipient: Recipient, version: Version.optional() }), response: Sealed,
  }, async ({ params, body, req, raw }) => {
    const header = Uint8Array.from(Buffer.from(body.header, 'base64url'));
    if (Buffer.from(header).toString('base64url') !== body.header || header.length === 0) throw new ApiError('KW_INVALID_ARGUMENT', 'header must be canonical unpadded base64url');
    const d = inspect(header);
    if (d.headerLength !== header.length) throw new ApiError('KW_INVALID_ARGUMENT', 'send the envelope header only (its first headerLength bytes), not the payload');
    const context = Object.fromEntries(d.context);
    const version = body.version ?? (await versionForHeader(params.ns, params.name, d.stanzas.flatMap((st) => (st.keyId ? [st.keyId] : []))));
    return dataOp('open', req, raw, params, { context, ...(version !== undefined ? { version } : {}), decrypting: true, recipient: body.recipient }, async ({ key, version: v, request, eventB64 }) => {
      const r = withKeyholderProof(req, await ctx.keyholder.call('open', { event: eventB64, version: storedOf(key, v), header: body.header, context, recipient: body.recipient, request: wireRequest(request) }));
      return { result: { key: `${key.ns}/${key.name}`, version: r.ref.version, sealed: r.sealed }, leaf: r.leaf };
    });
  });

  app.route({
    method: 'POST', url: '/v1/data/:ns/:name/encrypt', summary: 'Encrypt up to 4 KiB under the latest version', tag: 'data', auth: 'signed',
    params: Params, body: z.strictObject({ plaintext: b64uString(4096), context: ContextSchema.default({}) }), response: z.strictObject({ ciphertext: z.string() }),
  }, ({ params, body, req, raw }) => dataOp('encrypt', req, raw, params, { context: body.context }, async ({ key, version, request, requestHash, eventB64 }) => {
    const r = await ctx.keyholder.call('encrypt', { event: eventB64, version: storedOf(key, version), context: body.context, plaintext: body.plaintext, request: wireRequest(request), ...proofParamOf(req, requestHash) });
    withKeyholderProof(req, r);
    return { result: { ciphertext: r.ciphertext }, leaf: r.leaf };
  }));

  app.route({
    method: 'POST', url: '/v1/data/:ns/:name/sign', summary: 'Sign a message with the latest version', tag: 'data', auth: 'signed',
    params: Params, body: z.strictObject({ message: b64uString(64 * 1024) }), response: z.strictObject({ signature: z.string() }),
  }, ({ params, body, req, raw }) => dataOp('sign', req, raw, params, {}, async ({ key, version, request, requestHash, eventB64 }) => {
    const r = await ctx.keyholder.call('sign', { event: eventB64, version: storedOf(key, version), message: body.message, request: wireRequest(request), ...proofParamOf(req, requestHash) });
    withKeyholderProof(req, r);
    return { result: { signature: r.signature }, leaf: r.leaf };
  }));

  app.route({
    method: 'POST', url: '/v1/data/:ns/:name/verify', summary: 'Verify a kw:v<N>: signature', tag: 'data', auth: 'signed',
    params: Params, body: z.strictObject({ message: b64uString(64 * 1024), signature: z.string().min(4).max(128) }), response: z.strictObject({ valid: z.boolean() }),
  }, ({ params, body, req, raw }) => {
    const m = /^kw:v([1-9][0-9]{0,9}):/.exec(body.signature);
    if (!m) throw new ApiError('KW_INVALID_ARGUMENT', 'signature must start with kw:v<N>:');
    return dataOp('verify', req, raw, params, { version: Number(m[1]), decrypting: true, verifyHere: true }, async ({ key, version, requestHash, eventB64 }) => {
      const r = withKeyholderProof(req, await ctx.keyholder.call('verify', { event: eventB64, version: storedOf(key, version), message: body.message, signature: body.signature, ...proofParamOf(req, requestHash) }));
      return { result: { valid: r.valid }, leaf: r.leaf };
    });
  });

  app.route({
    method: 'POST', url: '/v1/data/:ns/:name/mac', summary: 'HMAC-SHA256 a message with the latest version', tag: 'data', auth: 'signed',
    params: Params, body: z.strictObject({ message: b64uString(64 * 1024) }), response: z.strictObject({ mac: z.string() }),
  }, ({ params, body, req, raw }) => dataOp('mac', req, raw, params, {}, async ({ key, version, request, requestHash, eventB64 }) => {
    const r = await ctx.keyholder.call('mac', { event: eventB64, version: storedOf(key, version), message: body.message, request: wireRequest(request), ...proofParamOf(req, requestHash) });
    withKeyholderProof(req, r);
    return { result: { mac: r.mac! }, leaf: r.leaf };
  }));

  app.route({
    method: 'POST', url: '/v1/data/:ns/:name/rewrap', summary: `Move up to ${MAX_REWRAP_ITEMS} wrapped data keys to the newest version, inside the keyholder`, tag: 'data', auth: 'signed',
    params: Params,
    body: z.strictObject({
      items: z.array(z.strictObject({ version: Version, wrapped: b64uString(4096), context: ContextSchema.default({}) })).min(1, 'items must not be empty').max(MAX_REWRAP_ITEMS, `at most ${MAX_REWRAP_ITEMS} items per request`),
    }),
    response: z.strictObject({ items: z.array(z.strictObject({ version: z.int(), wrapped: z.string() })) }),
  }, async ({ params, body, req, raw }) => {
    const signed = signedRequestOf(req, raw);
    const requestHash = requestHashHex(signed.headers); // null when unsigned: refused below
    const keyRef = `${params.ns}/${params.name}`;
    // As `guarded`, but the policy must grant rewrap for every item's context; a denial is audited once and nothing runs.
    const who = await app.principal(req);
    const event = { ns: params.ns, principal: who.id, auth: 'signature' as const, op: 'data.rewrap', request: requestHash };
    const policies = await policiesOf(ctx.store, params.ns);
    const refused = body.items.findIndex((it) => !decide(who, 'rewrap', keyRef, it.context, policies).allowed);
    if (refused >= 0) {
      await ctx.audit.recordFailure({ ...event, target: { key: params.name, version: body.items[refused]!.version }, outcome: 'denied', code: 'KW_FORBIDDEN', details: { item: refused, items: body.items.length } });
      throw new ApiError('KW_FORBIDDEN', `the policy does not grant rewrap on ${keyRef} to ${who.id} for the context of items[${refused}]`);
    }
    // Items done so far, kept across a withGovernance retry: a retry resumes at the item the keyholder refused
    // (the ones before it were rewrapped and audited, the request's nonce went with item 0's event).
    const out: { version: number; wrapped: string }[] = [];
    const itemProofs: (string | undefined)[] = [];
    const nonce = requestNonceOf(req.headers['signature-input']) ?? undefined;
    // A node whose keyholder has not yet taken another node's newest signed policy is refused by it (KW_POLICY_DENIED,
    // before it verifies the signature or spends anything): withGovernance syncs it and runs the rest once more (api/governance.ts).
    await withGovernance(app, async () => {
      try {
        const device = await deviceKeyFor(ctx.store, who, signatureKeyId(req.headers['signature-input']));
        await requireDirectoryDevice(ctx, who.id, device.keyId);
        // The keyholder verifies the signature itself (once, for every item) and decides each item on its signed policy.
        const request = wireRequest({ ...signed, device: { keyId: device.keyId, principal: device.principal, publicKey: device.publicKey } });
        const key = await requireKey(ctx.store, params.ns, params.name);
        const to = usable(key, await requireVersion(ctx.store, params.ns, params.name, key.latestVersion), false);
        const from = new Map<number, KeyVersionRow & { wrapped: Uint8Array }>();
        for (const [i, it] of body.items.entries()) {
          if (i < out.length || from.has(it.version)) continue;
          try {
            from.set(it.version, usable(key, await requireVersion(ctx.store, params.ns, params.name, it.version), true));
          } catch (e) {
            throw itemError(e, i);
          }
        }
        for (const [i, it] of body.items.entries()) {
          if (i < out.length) continue;
          try {
            const r = await ctx.audit.recordOp(
              { ...event, target: { key: params.name, version: it.version }, outcome: 'allowed', details: { to_version: to.version, item: i, items: body.items.length } },
              async (ev) => {
                const k = await ctx.keyholder.call('rewrap', { event: ev.b64, from: storedOf(key, from.get(it.version)!), to: storedOf(key, to), context: it.context, wrapped: it.wrapped, request, ...proofParamOf(req, requestHash, i) });
                itemProofs[i] = k.proof;
                return { result: { version: k.ref.version, wrapped: k.wrapped }, leaf: k.leaf };
              }, i === 0 && nonce ? { nonce } : {});
            out.push(r);
          } catch (e) {
            throw itemError(e, i);
          }
        }
      } catch (e) {
        const code = toHttpError(e).code;
        if (code !== 'KW_KEYHOLDER_UNAVAILABLE' && code !== 'KW_SEALED') await ctx.audit.recordFailure({ ...event, target: { key: params.name }, outcome: 'error', code });
        throw e;
      }
    });
    setKeyholderProofs(req, itemProofs);
    return { items: out };
  });
}

/** Names the failing item in a 4xx error; 5xx (keyholder down, sealed, internal) pass unchanged. */
function itemError(e: unknown, i: number): unknown {
  const h = toHttpError(e);
  if (h.status >= 500) return e;
  return new ApiError(h.code as ApiErrorCode, `items[${i}]: ${h.message}`, { cause: e });
}
