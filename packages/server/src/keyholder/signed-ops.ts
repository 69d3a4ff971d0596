/**
 * The keyholder's own check of a caller's signed request for the ops whose
 * result is not sealed to the caller — `encrypt`, `sign`, `mac`, `rewrap` —
 * and for an attested `release` whose workload signed its request (docs/mfa.md
 * §Signed policy). As for `datakey` (service.ts `#authorize`), the keyholder
 * checks that the signed request names what the op does (the URL path names
 * the key and the operation; the signed body names the plaintext, message,
 * MAC, wrapped item or nonce, and the context), decides on **its** signed
 * governance snapshot, and only then verifies the signature (spending the
 * nonce). So a policy row edited in the database grants nothing here either.
 *
 * A `rewrap` request carries up to 100 items, each its own keyholder op, all
 * under one signature: {@link VerifiedRequests} remembers a request this
 * keyholder verified (the whole request, body included, by its SHA-256) for
 * the signature's time window, so the later items of the same request pass
 * without its nonce counting as a replay. Only `rewrap` uses it.
 *
 * @example
 * const body = signedBody(req);
 * checkTarget(req.url, ref, 'encrypt');
 * bindEncrypt(body, { plaintext: p.plaintext, context: p.context });
 */
import { createHash } from 'node:crypto';
import { decodeUtf8, toBase64url } from './bytes.js';
import { canonicalJson } from './canonical-json.js';
import { KeyholderProtocolError } from './protocol.js';
import type { Context } from './schemas.js';

/** A JSON object as JSON.parse makes it (no arrays, no class instances). */
export const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && [Object.prototype, null].includes(Object.getPrototypeOf(v) as object | null);

const mismatch = (field: string, what: string) =>
  new KeyholderProtocolError('KW_REQUEST_MISMATCH', `the ${what} differs from the one the caller signed`, { details: { field } });

/** True when `a` (from a signed body) is exactly the context `b`. */
export function sameContext(a: unknown, b: Context): boolean {
  if (!isPlainObject(a)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && kb.every((k) => Object.hasOwn(a, k) && a[k] === b[k]);
}

/** The signed body as a JSON object (KW_REQUEST_MISMATCH otherwise). */
export function signedBody(req: { readonly body: Uint8Array }): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(decodeUtf8(req.body, 'the signed body'));
  } catch (e) {
    throw new KeyholderProtocolError('KW_REQUEST_MISMATCH', 'the signed body is not JSON', { cause: e, details: { field: 'body' } });
  }
  if (!isPlainObject(body)) throw new KeyholderProtocolError('KW_REQUEST_MISMATCH', 'the signed body must be a JSON object', { details: { field: 'body' } });
  return body;
}

/** Signed ops and the route each one's request must target. */
export type SignedOp = 'encrypt' | 'sign' | 'mac' | 'rewrap' | 'release';

/**
 * The signed URL must be the route of this op on this key:
 * `/v1/data/{ns}/{key}/{op}`, or `/v1/attest/{ns}/{key}/release`.
 */
export function checkTarget(url: string, ref: { readonly ns: string; readonly key: string }, op: SignedOp): void {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch (e) {
    throw new KeyholderProtocolError('KW_REQUEST_MISMATCH', 'the signed request has no valid URL', { cause: e, details: { field: 'url' } });
  }
  const want = op === 'release'
    ? `/v1/attest/${encodeURIComponent(ref.ns)}/${encodeURIComponent(ref.key)}/release`
    : `/v1/data/${encodeURIComponent(ref.ns)}/${encodeURIComponent(ref.key)}/${op}`;
  if (path !== want) throw mismatch('url', 'key or operation');
}

const contextOf = (body: Record<string, unknown>): unknown => body.context ?? {};

/** encrypt: the signed body names this plaintext and context. */
export function bindEncrypt(body: Record<string, unknown>, p: { readonly plaintext: Uint8Array; readonly context: Context | undefined }): void {
  if (body.plaintext !== toBase64url(p.plaintext)) throw mismatch('plaintext', 'plaintext');
  if (!sameContext(contextOf(body), p.context ?? {})) throw mismatch('context', 'encryption context');
}

/** sign / mac: the signed body names this message (and, to verify a MAC, this MAC). */
export function bindMessage(body: Record<string, unknown>, p: { readonly message: Uint8Array; readonly mac?: string | undefined }): void {
  if (body.message !== toBase64url(p.message)) throw mismatch('message', 'message');
  if (p.mac !== undefined && body.mac !== p.mac) throw mismatch('mac', 'MAC');
}

/** rewrap: one of the signed body's `items` is exactly this one (version, wrapped data key, context). */
export function bindRewrapItem(body: Record<string, unknown>, p: { readonly version: number; readonly wrapped: Uint8Array; readonly context: Context | undefined }): void {
  const items = body.items;
  const wrapped = toBase64url(p.wrapped);
  const found = Array.isArray(items) && items.some((it) =>
    isPlainObject(it) && it.version === p.version && it.wrapped === wrapped && sameContext(contextOf(it), p.context ?? {}));
  if (!found) throw mismatch('items', 'rewrap item');
}

/** release: the signed body names this nonce, recipient and context. */
export function bindRelease(body: Record<string, unknown>, p: { readonly nonce: Uint8Array; readonly recipient: string; readonly context: Context | undefined }): void {
  if (body.nonce !== toBase64url(p.nonce)) throw mismatch('nonce', 'release nonce');
  if (body.recipient !== p.recipient) throw mismatch('recipient', 'recipient');
  if (!sameContext(contextOf(body), p.context ?? {})) throw mismatch('context', 'encryption context');
}

/** The whole relayed request (method, URL, signature fields, body, device record) as one digest. */
export function requestDigest(req: {
  readonly method: string; readonly url: string; readonly headers: Readonly<Record<string, string | readonly string[]>>; readonly body: Uint8Array;
  readonly device: { readonly keyId: string; readonly principal: string; readonly publicKey: Uint8Array };
}): string {
  const text = canonicalJson({
    method: req.method, url: req.url, headers: req.headers as Record<string, string | string[]>, body: toBase64url(req.body),
    device: { keyId: req.device.keyId, principal: req.device.principal, publicKey: toBase64url(req.device.publicKey) },
  });
  return createHash('sha256').update(text).digest('hex');
}

/** Requests this keyholder verified (by {@link requestDigest}), kept for `ttlMs`; at most `max`, oldest dropped. Memory only. */
export class VerifiedRequests {
  readonly #seen = new Map<string, number>();
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(opts: { ttlMs?: number; max?: number; now?: () => number } = {}) {
    this.#ttlMs = opts.ttlMs ?? 330_000;
    this.#max = opts.max ?? 1024;
    this.#now = opts.now ?? Date.now;
  }

  /** True when `digest` was verified within the window. */
  has(digest: string): boolean {
    const until = this.#seen.get(digest);
    if (until === undefined) return false;
    if (until < this.#now()) {
      this.#seen.delete(digest);
      return false;
    }
    return true;
  }

  add(digest: string): void {
    if (this.#seen.size >= this.#max) this.#seen.delete(this.#seen.keys().next().value!);
    this.#seen.set(digest, this.#now() + this.#ttlMs);
  }

  clear(): void {
    this.#seen.clear();
  }
}
