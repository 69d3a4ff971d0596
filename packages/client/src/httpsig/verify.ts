/**
 * Verifies a request signed by {@link signRequest}: the keyholder's check
 * that a data-plane request comes, unaltered and once, from a registered
 * device key. Pure over plain data; the key registry and the replay cache
 * are supplied by the caller.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { collectHeaders, baseFromParts, DEFAULT_COMPONENTS, fieldValue, isComponentId, type HttpRequestLike } from './base.js';
import { utf8 } from './bytes.js';
import { verifyContentDigest } from './digest.js';
import { HttpSigError } from './errors.js';
import type { NonceContext } from './replay.js';
import { parseSignatureField, parseSignatureInput } from './structured.js';

/** Options of {@link verifyRequest}. */
export interface VerifyOptions {
  /**
   * The registered Ed25519 public key (32 bytes) for a keyid, or `null` when
   * there is none. An exception (e.g. the store is down) propagates unchanged.
   */
  keyLookup: (keyId: string) => Uint8Array | null | undefined | Promise<Uint8Array | null | undefined>;
  /**
   * Replay cache: atomically record the nonce and say whether it was already
   * seen (see `ReplayCache`). Called only once everything else has verified.
   */
  seenNonce: (nonce: string, ctx: NonceContext) => boolean | Promise<boolean>;
  /** The verifier's time, Unix seconds; default now. */
  now?: number;
  /** Oldest acceptable `created`, seconds before now; default 300. */
  maxAgeSeconds?: number;
  /** Newest acceptable `created`, seconds after now; default 30. */
  maxSkewSeconds?: number;
  /**
   * The components a signature must cover: exactly these (any order), no
   * more. `content-digest` is required whether listed or not. Default
   * `DEFAULT_COMPONENTS`.
   */
  requiredComponents?: readonly string[];
  /** Label of the signature to verify; default the only one present. */
  label?: string;
  /** When set, the signature's `tag` parameter must equal it. */
  tag?: string;
  /**
   * Checks the Ed25519 signature (RFC 8032) of `message` under the 32-byte
   * `publicKey`, returning false (never throwing) when it does not verify.
   * Default: `@noble/curves` (strict RFC 8032 encodings), which runs
   * everywhere; a Node verifier passes OpenSSL's (node:crypto `verify`),
   * some ten times faster. Either way only the signature check is swapped:
   * every other step of this profile runs here.
   */
  verifySignature?: (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => boolean;
}

function nobleVerify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    return ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

/** What a verified signature vouches for. */
export interface VerifiedRequest {
  readonly label: string;
  readonly keyId: string;
  readonly created: number;
  readonly expires?: number;
  readonly nonce: string;
  readonly tag?: string;
  /** Covered components, in the signed order. */
  readonly components: readonly string[];
}

function requestBody(body: HttpRequestLike['body']): Uint8Array {
  if (body === undefined || body === null) return new Uint8Array(0);
  if (typeof body === 'string') return utf8.encode(body);
  if (body instanceof Uint8Array) return body;
  throw new HttpSigError('HTTPSIG_MALFORMED', 'body must be a Uint8Array, a string, or absent');
}

function checkSeconds(name: string, v: number, min: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new TypeError(`${name} must be a number ≥ ${min}`);
}

function fail(code: HttpSigError['code'], message: string): never {
  throw new HttpSigError(code, message);
}

/**
 * Verifies the RFC 9421 Ed25519 signature of `req` under this profile:
 * `content-digest` covered and matching the body; `created`, `nonce` and
 * `keyid` present; `created` within `[now - maxAgeSeconds, now + maxSkewSeconds]`
 * and `expires` (if any) not past; `alg`, if present, `ed25519`; no
 * duplicate labels; exactly the required components covered; the nonce
 * not seen before. The nonce is recorded only when everything else holds.
 *
 * @returns what the signature vouches for.
 * @throws HttpSigError with a specific code for every refusal. TypeError for
 *   bad options; errors thrown by `keyLookup` or `seenNonce` propagate.
 * @example
 * const replay = new MemoryReplayCache();
 * const v = await verifyRequest(
 *   { method: req.method, url: `https://${req.headers.host}${req.url}`, headers: req.headers, body },
 *   { keyLookup: (id) => devices.publicKey(id), seenNonce: replay.seen },
 * );
 * // v.keyId is the device that signed
 */
export async function verifyRequest(req: HttpRequestLike, options: VerifyOptions): Promise<VerifiedRequest> {
  const { keyLookup, seenNonce, maxAgeSeconds = 300, maxSkewSeconds = 30, requiredComponents = DEFAULT_COMPONENTS } = options;
  const now = options.now ?? Math.floor(Date.now() / 1000);
  if (typeof keyLookup !== 'function' || typeof seenNonce !== 'function') throw new TypeError('keyLookup and seenNonce are required');
  checkSeconds('now', now, 0);
  checkSeconds('maxAgeSeconds', maxAgeSeconds, 1);
  checkSeconds('maxSkewSeconds', maxSkewSeconds, 0);
  const required = new Set<string>(requiredComponents);
  required.add('content-digest');
  for (const c of required) if (!isComponentId(c)) throw new TypeError(`unsupported required component ${JSON.stringify(c)}`);

  // 1. The two fields, parsed strictly.
  if (req === null || typeof req !== 'object') throw new HttpSigError('HTTPSIG_MALFORMED', 'request must be an object');
  const headers = collectHeaders(req.headers);
  const inputField = fieldValue(headers, 'signature-input');
  const signatureField = fieldValue(headers, 'signature');
  if (inputField === undefined || signatureField === undefined) fail('HTTPSIG_MISSING', 'Signature-Input or Signature is absent');
  const inputs = parseSignatureInput(inputField);
  const signatures = parseSignatureField(signatureField);

  // 2. The one signature to check.
  let label = options.label;
  if (label === undefined) {
    if (inputs.length === 0) fail('HTTPSIG_MISSING', 'Signature-Input is empty');
    if (inputs.length > 1) fail('HTTPSIG_MALFORMED', 'several signatures and no label chosen');
    label = inputs[0]!.label;
  }
  const input = inputs.find((m) => m.label === label) ?? fail('HTTPSIG_MISSING', `no Signature-Input member '${label}'`);
  const signature = signatures.find((m) => m.label === label)?.signature ?? fail('HTTPSIG_MISSING', `no Signature member '${label}'`);
  const { params, components } = input;

  // 3. Parameters.
  if (params.alg !== undefined && params.alg !== 'ed25519') fail('HTTPSIG_ALG', `alg '${params.alg}' is not accepted`);
  const { created, expires, nonce, keyid: keyId } = params;
  if (created === undefined || created < 0) fail('HTTPSIG_MALFORMED', 'created is missing or negative');
  if (nonce === undefined || nonce.length === 0) fail('HTTPSIG_MALFORMED', 'nonce is missing');
  if (keyId === undefined || keyId.length === 0) fail('HTTPSIG_MALFORMED', 'keyid is missing');
  if (expires !== undefined && expires < created) fail('HTTPSIG_MALFORMED', 'expires is before created');
  if (options.tag !== undefined && params.tag !== options.tag) fail('HTTPSIG_MALFORMED', 'tag does not match');

  // 4. Covered components: exactly the required set.
  const covered = new Set<string>();
  for (const c of components) {
    if (covered.has(c)) fail('HTTPSIG_MALFORMED', `component "${c}" is covered twice`);
    covered.add(c);
  }
  for (const r of required) if (!covered.has(r)) fail('HTTPSIG_COMPONENT_MISSING', `component "${r}" is not covered`);
  for (const c of components) if (!required.has(c)) fail('HTTPSIG_MALFORMED', `component "${c}" is not accepted`);

  // 5. Time window.
  if (now - created > maxAgeSeconds) fail('HTTPSIG_EXPIRED', 'signature created too long ago');
  if (created - now > maxSkewSeconds) fail('HTTPSIG_FUTURE', 'signature created in the future');
  if (expires !== undefined && now > expires) fail('HTTPSIG_EXPIRED', 'signature past its expires time');

  // 6. Key.
  const publicKey = await keyLookup(keyId);
  if (publicKey === null || publicKey === undefined) fail('HTTPSIG_UNKNOWN_KEY', 'keyid is not registered');
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) fail('HTTPSIG_UNKNOWN_KEY', 'registered key is not a 32-byte Ed25519 public key');

  // 7. Body against Content-Digest (strict parse; cheaper than the signature check).
  const digestField = fieldValue(headers, 'content-digest');
  if (digestField === undefined) fail('HTTPSIG_COMPONENT_MISSING', "covered header 'content-digest' is absent from the request");
  verifyContentDigest(digestField, requestBody(req.body));

  // 8. Signature over the rebuilt base (which covers that Content-Digest).
  const base = baseFromParts(req.method, req.url, headers, components, input.serialized);
  let ok = false;
  if (signature.length === 64) {
    try {
      ok = (options.verifySignature ?? nobleVerify)(signature, utf8.encode(base), publicKey) === true;
    } catch {
      ok = false;
    }
  }
  if (!ok) fail('HTTPSIG_BAD_SIGNATURE', 'signature does not verify');

  // 9. Replay, last: only a request that passed everything consumes its nonce.
  const expiresAt = Math.min(created + maxAgeSeconds, expires ?? Number.POSITIVE_INFINITY);
  if (await seenNonce(nonce, { keyId, expiresAt, now })) fail('HTTPSIG_REPLAY', 'nonce already used');

  return {
    label,
    keyId,
    created,
    ...(expires !== undefined ? { expires } : {}),
    nonce,
    ...(params.tag !== undefined ? { tag: params.tag } : {}),
    components: [...components],
  };
}
