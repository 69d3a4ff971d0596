/**
 * `KmsKeyService`: core's `KmsClient` over the key service's v1 API
 * (docs/key-service-design.md §HTTP API v1, §The kms stanza filled).
 *
 * Sealing: `POST /v1/data/{ns}/{name}/datakey` with `{ recipient, context }`,
 * where `recipient` is this device's own HPKE recipient (x25519 or xwing).
 * The service answers `{ key, version, wrapped, sealed }`; `sealed` is a
 * Keyward envelope of the 32-byte data key sealed to that recipient with the
 * context `{ kw_request, kw_key, kw_version, ...caller context }`. The client
 * opens it locally and accepts the key only when
 *
 * - it opens with the device identity (so nobody but this device can read it),
 * - `key` is the key reference asked for and `version` a valid version,
 * - the sealed context holds exactly `kw_key` = that reference,
 *   `kw_version` = that version, `kw_request`, and the caller's pairs — no
 *   more, no fewer (compared as a set: the service re-serializes the context),
 * - `kw_request` equals the hash of the signed request this client sent
 *   (below), so a sealed key from another request — an earlier answer
 *   replayed by the API, say — is refused;
 * - and the response carries no `plaintext` (a data key that crossed the API
 *   in the clear is refused, not used).
 *
 * Any failure of these checks is `KW_CLIENT_SEALED_KEY_REJECTED` (or
 * `KW_CLIENT_RESPONSE_MISMATCH` for `key`/`version`), never a silently used key.
 *
 * The stanza written is `{ type: 'kms', fields: [utf8(ref), u32be(version), wrapped] }`.
 *
 * Opening: `POST …/unwrap` with `{ version, wrapped, context, recipient }` from
 * the stanza and the envelope's context; the same checks on `sealed`, with
 * `version` required to equal the stanza's. `unwrap` returns null — "this
 * stanza is not for me", so core tries the envelope's other stanzas — when the
 * stanza does not parse strictly, or when the service answers with a `KW_…`
 * error of status 403 or 404 (no access to, or no such, key or version) or
 * `KW_WRAPPED_KEY_MISMATCH` / `KW_KEY_TYPE_MISMATCH` (the blob is not one of
 * this key's). Every other failure throws: an unavailable service, a revoked
 * token (401), a refused signature or a bad response must never look like
 * "not for me".
 *
 * `kw_request`: the keyholder binds the sealed key to the request it answers
 * (key-service-crypto.md §5.1, "hex(SHA-256 of the signed request)"), with
 * the hash defined by the keyholder's `requestHashOf`
 * (packages/server/src/keyholder/service.ts): SHA-256(Signature-Input ‖ LF ‖
 * Signature), the two field values as sent. The client computes it for the
 * attempt that got the answer (`signedRequestHash`) and, by default
 * (`requestHash: 'signed-fields'`), requires equality. `'present'` only
 * requires 64 lowercase hex digits — for a service that hashes otherwise;
 * it gives up the replay binding.
 *
 * With a {@link DataKeyCache}: see that module for the limits. `generateDataKey`
 * uses the cache only when told the plaintext size (`KmsKeyService.seal`, or
 * `kmsRecipient(service, ref, { plaintextBytes })`); `unwrap` always uses it.
 */
import {
  KmsIdentity, KmsRecipient, inspect, open, seal, toBinary,
  type ContextPairs, type Identity, type HpkeIdentity, type KmsClient, type Recipient, type SealOptions, type Stanza, type StanzaContext,
} from '@keyward/core';
import { base64urlnopad } from '@scure/base';
import { DataKeyCache, type DataKeyWithStanza } from '../cache/datakey-cache.js';
import { JsonText, type KeywardHttpClient } from '../http/client.js';
import { KeywardClientError } from '../http/errors.js';
import { decodeKmsStanza, encodeKmsStanza, isKeyVersion, MAX_WRAPPED_BYTES, parseKeyRef, type ParsedKmsStanza } from './stanza.js';

/** How `kw_request` in a sealed response is checked (see the module comment). */
export type RequestHashCheck = 'signed-fields' | 'present';

export interface KmsKeyServiceOptions {
  readonly http: KeywardHttpClient;
  /** This device's HPKE identity (x25519 or xwing): data keys are sealed to its recipient. */
  readonly identity: HpkeIdentity;
  readonly cache?: DataKeyCache;
  /** How `kw_request` is checked; default `'signed-fields'` (equality). */
  readonly requestHash?: RequestHashCheck;
}

export interface GenerateDataKeyOptions {
  /**
   * The size of the plaintext this key will seal. Given, and with a cache,
   * the key may come from (and counts against) the cache; absent, a fresh key
   * is always requested.
   */
  readonly plaintextBytes?: number;
}

/** `seal` options for {@link KmsKeyService.seal}: core's, plus the key reference. */
export type KmsSealOptions = Omit<SealOptions, 'recipients'> & {
  /** `"ns/name"` of the `aes256` key that provides the data key. */
  readonly key: string;
  /** Further recipients (x25519, xwing, p256) that also get the data key. */
  readonly recipients?: readonly Recipient[];
};

const CALLER_KEM_TYPES: readonly string[] = ['x25519', 'xwing'];
const DATA_KEY_LENGTH = 32;
/** Service codes that mean "this stanza is not one this caller can open" whatever their status. */
const NOT_FOR_ME_CODES = new Set(['KW_WRAPPED_KEY_MISMATCH', 'KW_KEY_TYPE_MISMATCH']);
const RELEASE_KEYS = ['kw_request', 'kw_key', 'kw_version'] as const;

const invalid = (message: string): KeywardClientError => new KeywardClientError('KW_INVALID_ARGUMENT', message);
const badResponse = (message: string, address?: string): KeywardClientError =>
  new KeywardClientError('KW_CLIENT_BAD_RESPONSE', message, address ? { address } : {});
const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/** Why a caller context cannot go to the service (reserved names), or null. */
function contextProblem(context: ContextPairs): string | null {
  for (const [k] of context) {
    if (k.toLowerCase().startsWith('kw_')) return `context key "${k}" is reserved (names starting with "kw_" are the service's own)`;
    if (k === '__proto__') return 'the context key "__proto__" is not allowed';
  }
  return null;
}

/** The context as a JSON object, members in the envelope's order (an object built in JS would move integer-like keys first). */
function contextJson(context: ContextPairs): string {
  return `{${context.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;
}

function decodeB64u(v: unknown, what: string, address: string, max: number): Uint8Array {
  if (typeof v !== 'string') throw badResponse(`${what} is not a string`, address);
  let b: Uint8Array;
  try {
    b = base64urlnopad.decode(v);
  } catch (cause) {
    throw new KeywardClientError('KW_CLIENT_BAD_RESPONSE', `${what} is not canonical unpadded base64url`, { address, cause });
  }
  if (b.length === 0 || b.length > max) throw badResponse(`${what} has ${b.length} bytes (1 to ${max} expected)`, address);
  return b;
}

/**
 * The key service as core's `KmsClient`. Create with {@link KmsKeyService.create}.
 *
 * @example
 * const kms = await KmsKeyService.create({ http, identity: deviceIdentity, cache: new DataKeyCache() });
 * const env = await seal(data, { recipients: [kmsRecipient(kms, 'billing/orders'), backupRecipient], context: { table: 'orders' } });
 * const { plaintext } = await open(env, { identities: [kmsIdentity(kms)], context: { table: 'orders' } });
 */
export class KmsKeyService implements KmsClient {
  readonly http: KeywardHttpClient;
  /** This device's recipient string, sent as `recipient`. */
  readonly recipient: string;
  readonly cache: DataKeyCache | undefined;
  /** This client's partition of the cache (random): a cache shared with another client never serves it this one's keys. */
  readonly cachePartition: string;
  readonly requestHash: RequestHashCheck;
  readonly #identity: HpkeIdentity;

  private constructor(options: KmsKeyServiceOptions, recipient: string) {
    this.http = options.http;
    this.#identity = options.identity;
    this.recipient = recipient;
    this.cache = options.cache;
    this.requestHash = options.requestHash ?? 'signed-fields';
    this.cachePartition = toHex(globalThis.crypto.getRandomValues(new Uint8Array(16)));
  }

  static async create(options: KmsKeyServiceOptions): Promise<KmsKeyService> {
    if (options === null || typeof options !== 'object') throw invalid('options are required');
    if (!options.http || typeof options.http.data !== 'function') throw invalid('http must be a KeywardHttpClient');
    const id = options.identity as Partial<HpkeIdentity> | null;
    if (!id || typeof id.recipient !== 'function' || typeof id.unwrap !== 'function' || typeof id.type !== 'string') throw invalid('identity must be an HpkeIdentity');
    if (!CALLER_KEM_TYPES.includes(options.identity.type)) throw invalid(`data keys are sealed to x25519 or xwing identities, not ${options.identity.type}`);
    if (options.cache !== undefined && !(options.cache instanceof DataKeyCache)) throw invalid('cache must be a DataKeyCache');
    if (options.requestHash !== undefined && options.requestHash !== 'present' && options.requestHash !== 'signed-fields') {
      throw invalid("requestHash must be 'signed-fields' or 'present'");
    }
    const recipient = (await options.identity.recipient()).toString();
    return new KmsKeyService(options, recipient);
  }

  /** A new data key under `keyRef` (`"ns/name"`), bound to the envelope's context, and its `kms` stanza. */
  async generateDataKey(keyRef: string, ctx: StanzaContext, options: GenerateDataKeyOptions = {}): Promise<DataKeyWithStanza> {
    const ref = parseKeyRef(keyRef);
    if (!ref) throw invalid(`key reference ${JSON.stringify(keyRef)} is not "ns/name"`);
    const problem = contextProblem(ctx.context);
    if (problem) throw invalid(problem);
    const bytes = options.plaintextBytes;
    if (bytes !== undefined && (!Number.isSafeInteger(bytes) || bytes < 0)) throw invalid('plaintextBytes must be a non-negative integer');
    if (this.cache && bytes !== undefined) {
      return this.cache.getSealingKey({ partition: this.cachePartition, keyRef, context: ctx.context }, bytes, () => this.#datakey(keyRef, ctx.context));
    }
    return this.#datakey(keyRef, ctx.context);
  }

  /** The data key of a `kms` stanza, or null when the stanza is not one this caller can open. */
  async unwrap(stanza: Stanza, ctx: StanzaContext): Promise<Uint8Array | null> {
    const parsed = decodeKmsStanza(stanza);
    // A context with reserved names can never have been sealed through the service.
    if (!parsed || contextProblem(ctx.context)) return null;
    if (this.cache) {
      return this.cache.getUnwrappedKey({ partition: this.cachePartition, stanza, context: ctx.context }, () => this.#unwrap(parsed, ctx.context));
    }
    return this.#unwrap(parsed, ctx.context);
  }

  /**
   * Seals `plaintext` with a data key of `options.key` (and for any further
   * recipients). Knows the size, so a cache serves the key within its limits.
   */
  async seal(plaintext: Uint8Array, options: KmsSealOptions): Promise<Uint8Array> {
    if (!(plaintext instanceof Uint8Array)) throw invalid('plaintext must be a Uint8Array');
    const { key, recipients = [], ...rest } = options;
    return seal(plaintext, { ...rest, recipients: [kmsRecipient(this, key, { plaintextBytes: plaintext.length }), ...recipients] });
  }

  async #datakey(keyRef: string, context: ContextPairs): Promise<DataKeyWithStanza> {
    const { ns, name } = parseKeyRef(keyRef)!;
    const res = await this.http.data(ns, name, 'datakey', new JsonText(`{"recipient":${JSON.stringify(this.recipient)},"context":${contextJson(context)}}`));
    const body = res.body as Record<string, unknown>;
    if (Object.hasOwn(body, 'plaintext')) throw badResponse('the datakey response carries a plaintext key; refused (a data key must travel only sealed)', res.address);
    this.#checkKey(body.key, keyRef, res.address);
    if (!isKeyVersion(body.version)) throw badResponse('version is not an integer from 1 to 2^31 − 1', res.address);
    const version = body.version;
    const wrapped = decodeB64u(body.wrapped, 'wrapped', res.address, MAX_WRAPPED_BYTES);
    const sealed = decodeB64u(body.sealed, 'sealed', res.address, this.http.maxResponseBytes);
    const dataKey = await this.#openSealed(sealed, keyRef, version, context, res.requestHash, res.address);
    return { dataKey, stanza: encodeKmsStanza(keyRef, version, wrapped) };
  }

  async #unwrap(p: ParsedKmsStanza, context: ContextPairs): Promise<Uint8Array | null> {
    const text = `{"version":${p.version},"wrapped":${JSON.stringify(base64urlnopad.encode(p.wrapped))},"context":${contextJson(context)},"recipient":${JSON.stringify(this.recipient)}}`;
    let res;
    try {
      res = await this.http.data(p.ns, p.name, 'unwrap', new JsonText(text));
    } catch (e) {
      if (e instanceof KeywardClientError && !e.code.startsWith('KW_CLIENT_') && e.status !== 0 &&
          (e.status === 403 || e.status === 404 || NOT_FOR_ME_CODES.has(e.code))) {
        return null;
      }
      throw e;
    }
    const body = res.body as Record<string, unknown>;
    if (Object.hasOwn(body, 'plaintext')) throw badResponse('the unwrap response carries a plaintext key; refused', res.address);
    this.#checkKey(body.key, p.keyRef, res.address);
    if (body.version !== p.version) {
      throw new KeywardClientError('KW_CLIENT_RESPONSE_MISMATCH', `the unwrap response names version ${JSON.stringify(body.version)}, not the stanza's ${p.version}`, { address: res.address });
    }
    const sealed = decodeB64u(body.sealed, 'sealed', res.address, this.http.maxResponseBytes);
    return this.#openSealed(sealed, p.keyRef, p.version, context, res.requestHash, res.address);
  }

  /**
   * Open for recipient: the data key of an envelope sealed to the service's
   * x25519 or xwing key `keyRef` (`POST …/open` with the envelope's header),
   * sealed to this device and checked as for `unwrap` (the context being the
   * envelope's). `version` is needed only for anonymous envelopes sealed to
   * an older version. Core re-checks the key against the header's
   * commitment and MAC when it opens the envelope ({@link serviceKeyIdentities}).
   */
  async openHeader(keyRef: string, header: Uint8Array, context: ContextPairs, options: { version?: number } = {}): Promise<Uint8Array> {
    const ref = parseKeyRef(keyRef);
    if (!ref) throw invalid(`key reference ${JSON.stringify(keyRef)} is not "ns/name"`);
    if (!(header instanceof Uint8Array) || header.length === 0) throw invalid('header must be the envelope header bytes');
    const problem = contextProblem(context);
    if (problem) throw invalid(problem);
    if (options.version !== undefined && !isKeyVersion(options.version)) throw invalid('version must be an integer from 1 to 2^31 − 1');
    const text = `{"header":${JSON.stringify(base64urlnopad.encode(header))},"recipient":${JSON.stringify(this.recipient)}${options.version !== undefined ? `,"version":${options.version}` : ''}}`;
    const res = await this.http.data(ref.ns, ref.name, 'open', new JsonText(text));
    const body = res.body as Record<string, unknown>;
    if (Object.hasOwn(body, 'plaintext')) throw badResponse('the open response carries a plaintext key; refused', res.address);
    this.#checkKey(body.key, keyRef, res.address);
    if (!isKeyVersion(body.version) || (options.version !== undefined && body.version !== options.version)) {
      throw new KeywardClientError('KW_CLIENT_RESPONSE_MISMATCH', `the open response names version ${JSON.stringify(body.version)}`, { address: res.address });
    }
    const sealed = decodeB64u(body.sealed, 'sealed', res.address, this.http.maxResponseBytes);
    return this.#openSealed(sealed, keyRef, body.version, context, res.requestHash, res.address);
  }

  #checkKey(key: unknown, keyRef: string, address: string): void {
    if (typeof key !== 'string') throw badResponse('key is not a string', address);
    if (key !== keyRef) throw new KeywardClientError('KW_CLIENT_RESPONSE_MISMATCH', `the response names key ${JSON.stringify(key)}, not ${JSON.stringify(keyRef)}`, { address });
  }

  /** Opens the sealed key with the device identity and checks its binding (module comment). */
  async #openSealed(sealed: Uint8Array, keyRef: string, version: number, context: ContextPairs, requestHash: Uint8Array | undefined, address: string): Promise<Uint8Array> {
    const reject = (why: string, cause?: unknown) =>
      new KeywardClientError('KW_CLIENT_SEALED_KEY_REJECTED', `the sealed key for ${keyRef} v${version} is refused: ${why}`, { address, ...(cause === undefined ? {} : { cause }) });
    let opened;
    try {
      opened = await open(sealed, { identities: [this.#identity], anyContext: true });
    } catch (e) {
      throw reject('it does not open with this device identity', e);
    }
    const key = opened.plaintext;
    try {
      if (opened.openedBy !== this.#identity.type) throw reject(`opened by a ${opened.openedBy} stanza`);
      if (key.length !== DATA_KEY_LENGTH) throw reject(`it holds ${key.length} bytes, not a 32-byte key`);
      const got = new Map(opened.context.map(([k, v]) => [k, v]));
      if (got.get('kw_key') !== keyRef) throw reject(`kw_key is ${JSON.stringify(got.get('kw_key'))}`);
      if (got.get('kw_version') !== String(version)) throw reject(`kw_version is ${JSON.stringify(got.get('kw_version'))}`);
      const req = got.get('kw_request');
      if (req === undefined || !/^[0-9a-f]{64}$/.test(req)) throw reject('kw_request is missing or not 64 lowercase hex digits');
      if (this.requestHash === 'signed-fields' && (requestHash === undefined || req !== toHex(requestHash))) {
        throw reject('kw_request is not the hash of the request this client sent');
      }
      if (opened.context.length !== context.length + RELEASE_KEYS.length) throw reject('its context has other pairs than the request');
      for (const [k, v] of context) {
        if (got.get(k) !== v) throw reject(`its context differs from the request's at "${k}"`);
      }
      return key;
    } catch (e) {
      key.fill(0);
      throw e;
    }
  }
}

/**
 * A core `Recipient` that has the key service provide the envelope's data key
 * under `keyRef`. With `plaintextBytes` (the size of each message sealed with
 * it) a cache of the service may serve the key; without, every seal asks the
 * service.
 */
export function kmsRecipient(service: KmsKeyService, keyRef: string, options: GenerateDataKeyOptions = {}): KmsRecipient {
  if (!parseKeyRef(keyRef)) throw invalid(`key reference ${JSON.stringify(keyRef)} is not "ns/name"`);
  if (options.plaintextBytes === undefined) return new KmsRecipient(service, keyRef);
  const sized: KmsClient = {
    generateDataKey: (ref, ctx) => service.generateDataKey(ref, ctx, options),
    unwrap: (stanza, ctx) => service.unwrap(stanza, ctx),
  };
  return new KmsRecipient(sized, keyRef);
}

/**
 * Core identities that open the `x25519` and `xwing` stanzas of `envelope`
 * addressed to the service key `keyRef` (open for recipient): the first
 * stanza of either type asks the service once, with the envelope's header;
 * core then checks the returned key against the header's commitment and MAC.
 * A stanza with another key id is "not for me" (null) without a request.
 *
 * @example
 * const ids = serviceKeyIdentities(kms, 'mail/inbox', envelope);
 * const { plaintext } = await open(envelope, { identities: ids, context });
 */
export function serviceKeyIdentities(service: KmsKeyService, keyRef: string, envelope: Uint8Array, options: { version?: number; keyIds?: readonly Uint8Array[] } = {}): Identity[] {
  if (!parseKeyRef(keyRef)) throw invalid(`key reference ${JSON.stringify(keyRef)} is not "ns/name"`);
  const d = inspect(envelope);
  const header = toBinary(envelope).subarray(0, d.headerLength);
  const context = d.context;
  let answer: Promise<Uint8Array | null> | null = null;
  const ask = (): Promise<Uint8Array | null> => {
    answer ??= service.openHeader(keyRef, header, context, options).catch((e: unknown) => {
      // As for kms stanzas: no access to, or no such, key or version, or no stanza of this key — not for me.
      if (e instanceof KeywardClientError && !e.code.startsWith('KW_CLIENT_') && e.status !== 0 &&
          (e.status === 403 || e.status === 404 || e.code === 'KW_NO_IDENTITY_MATCHED' || NOT_FOR_ME_CODES.has(e.code))) return null;
      throw e;
    });
    return answer;
  };
  const wanted = options.keyIds?.map((k) => toHex(k));
  const identity = (type: 'x25519' | 'xwing'): Identity => ({
    type,
    async unwrap(stanza: Stanza) {
      const id = stanza.fields[0];
      if (wanted && id && id.length > 0 && !wanted.includes(toHex(id))) return null;
      const dk = await ask();
      return dk ? dk.slice() : null;
    },
  });
  return [identity('x25519'), identity('xwing')];
}

/** A core `Identity` that opens `kms` stanzas through the key service. */
export function kmsIdentity(service: KmsKeyService): KmsIdentity {
  return new KmsIdentity(service);
}
