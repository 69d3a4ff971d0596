/**
 * Two data-plane operations of the key service that return no key to open:
 *
 * - `mac`: HMAC-SHA256 of a message under the newest version of an
 *   `hmac-sha256` key, inside the keyholder: `{ message }` →
 *   `{ mac: "kw:v<N>:<base64url(32-byte tag)>" }`. Deterministic, so it can
 *   serve as a keyed blind index.
 * - `rewrap`: moves up to {@link MAX_REWRAP_ITEMS} wrapped data keys (the
 *   blob of a `kms` stanza, its version and the envelope's encryption context)
 *   to the newest version of the key, inside the keyholder — the data keys
 *   never leave it. `{ items: [{ version, wrapped, context }] }` →
 *   `{ items: [{ version, wrapped }] }`, in order.
 *
 * Both are signed (RFC 9421) like every data-plane call and checked strictly:
 * anything off is `KW_CLIENT_BAD_RESPONSE`.
 *
 * @example
 * const { mac } = await kmsMac(http, 'app/index', utf8('alice@example.com'));
 * const [moved] = await kmsRewrap(http, 'app/rows', [{ version: 1, wrapped, context }]);
 */
import type { ContextPairs } from '@keyward/core';
import { base64urlnopad } from '@scure/base';
import { JsonText, type KeywardHttpClient } from '../http/client.js';
import { KeywardClientError } from '../http/errors.js';
import { isKeyVersion, MAX_WRAPPED_BYTES, parseKeyRef } from './stanza.js';

/** Most items one `rewrap` request may carry (the service's limit). */
export const MAX_REWRAP_ITEMS = 100;
/** Largest message `mac` accepts: 64 KiB. */
export const MAX_MAC_MESSAGE_BYTES = 64 * 1024;

const MAC_PATTERN = /^kw:v([1-9][0-9]{0,9}):([A-Za-z0-9_-]{43})$/;

export interface MacResult {
  /** The key version that made it. */
  readonly version: number;
  /** `kw:v<N>:<base64url tag>` as the service wrote it. */
  readonly mac: string;
  /** The 32-byte HMAC-SHA256 tag. */
  readonly tag: Uint8Array;
}

export interface RewrapItem {
  readonly version: number;
  readonly wrapped: Uint8Array;
  /** The envelope's encryption context, in its order. */
  readonly context: ContextPairs;
}

export interface RewrappedKey {
  readonly version: number;
  readonly wrapped: Uint8Array;
}

const invalid = (m: string) => new KeywardClientError('KW_INVALID_ARGUMENT', m);
const bad = (m: string, address: string) => new KeywardClientError('KW_CLIENT_BAD_RESPONSE', m, { address });

function refOf(keyRef: string) {
  const ref = parseKeyRef(keyRef);
  if (!ref) throw invalid(`key reference ${JSON.stringify(keyRef)} is not "ns/name"`);
  return ref;
}

/** HMAC-SHA256 of `message` under the newest version of `keyRef` (an `hmac-sha256` key). */
export async function kmsMac(http: KeywardHttpClient, keyRef: string, message: Uint8Array): Promise<MacResult> {
  const { ns, name } = refOf(keyRef);
  if (!(message instanceof Uint8Array) || message.length > MAX_MAC_MESSAGE_BYTES) throw invalid(`message must be a Uint8Array of at most ${MAX_MAC_MESSAGE_BYTES} bytes`);
  const res = await http.data(ns, name, 'mac', new JsonText(`{"message":${JSON.stringify(base64urlnopad.encode(message))}}`));
  const body = res.body as Record<string, unknown>;
  const m = typeof body.mac === 'string' ? MAC_PATTERN.exec(body.mac) : null;
  if (!m) throw bad('mac is not "kw:v<N>:" and a 32-byte base64url tag', res.address);
  const version = Number(m[1]);
  if (!isKeyVersion(version)) throw bad('the mac names an invalid version', res.address);
  let tag: Uint8Array;
  try {
    tag = base64urlnopad.decode(m[2]!);
  } catch (cause) {
    throw new KeywardClientError('KW_CLIENT_BAD_RESPONSE', 'the mac tag is not canonical base64url', { address: res.address, cause });
  }
  return { version, mac: body.mac as string, tag };
}

/** Rewraps `items` (blobs of `keyRef`) to its newest version; the result is in the same order. */
export async function kmsRewrap(http: KeywardHttpClient, keyRef: string, items: readonly RewrapItem[]): Promise<RewrappedKey[]> {
  const { ns, name } = refOf(keyRef);
  const list: readonly RewrapItem[] = items; // (Array.isArray would narrow `items` to any[])
  if (!Array.isArray(items) || list.length === 0 || list.length > MAX_REWRAP_ITEMS) throw invalid(`give 1 to ${MAX_REWRAP_ITEMS} items`);
  const parts = list.map((it, i) => {
    if (!isKeyVersion(it.version)) throw invalid(`items[${i}].version is not a key version`);
    if (!(it.wrapped instanceof Uint8Array) || it.wrapped.length === 0 || it.wrapped.length > MAX_WRAPPED_BYTES) throw invalid(`items[${i}].wrapped is not a wrapped key`);
    // Members in the envelope's order (an object built in JS would move integer-like keys first).
    const ctx = `{${it.context.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;
    return `{"version":${it.version},"wrapped":${JSON.stringify(base64urlnopad.encode(it.wrapped))},"context":${ctx}}`;
  });
  const res = await http.data(ns, name, 'rewrap', new JsonText(`{"items":[${parts.join(',')}]}`));
  const out = (res.body as Record<string, unknown>).items;
  if (!Array.isArray(out) || out.length !== items.length) throw bad(`rewrap answered ${Array.isArray(out) ? out.length : 'no'} items for ${items.length}`, res.address);
  return out.map((o: unknown, i) => {
    const r = o as Record<string, unknown> | null;
    if (!r || !isKeyVersion(r.version) || typeof r.wrapped !== 'string') throw bad(`items[${i}] is not { version, wrapped }`, res.address);
    const asked = list[i]!.version;
    if (r.version < asked) throw bad(`items[${i}] moved back from v${asked} to v${r.version}`, res.address);
    let wrapped: Uint8Array;
    try {
      wrapped = base64urlnopad.decode(r.wrapped);
    } catch (cause) {
      throw new KeywardClientError('KW_CLIENT_BAD_RESPONSE', `items[${i}].wrapped is not canonical base64url`, { address: res.address, cause });
    }
    if (wrapped.length === 0 || wrapped.length > MAX_WRAPPED_BYTES) throw bad(`items[${i}].wrapped has ${wrapped.length} bytes`, res.address);
    return { version: r.version, wrapped };
  });
}
