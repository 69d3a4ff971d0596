/**
 * Signs a request with the caller's Ed25519 device key (RFC 9421 §3.1,
 * algorithm `ed25519`, §3.3.6), covering the body through Content-Digest.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { base64, base64urlnopad } from '@scure/base';
import { baseFromParts, collectHeaders, DEFAULT_COMPONENTS, isComponentId, type HttpRequestLike } from './base.js';
import { utf8 } from './bytes.js';
import { contentDigest } from './digest.js';
import { isKey, isSfString, serializeSignatureParams, type SignatureParams } from './structured.js';

/** Options of {@link signRequest}. */
export interface SignOptions {
  /** The keyid the verifier looks the public key up by. */
  readonly keyId: string;
  /** The 32-byte Ed25519 seed (RFC 8032 secret key). */
  readonly privateKey: Uint8Array;
  /** Dictionary key of the signature; default `kw`. */
  readonly label?: string;
  /** Creation time, Unix seconds; default now. */
  readonly created?: number;
  /** Unique per request; default 16 random bytes, base64url. */
  readonly nonce?: string;
  /** Covered components, in order; must include `content-digest`. Default {@link DEFAULT_COMPONENTS}. */
  readonly components?: readonly string[];
  /** When set, adds `expires = created + expiresIn` (seconds, > 0). */
  readonly expiresIn?: number;
  /** Application tag (RFC 9421 §2.3), e.g. to keep the signatures of one protocol out of another. */
  readonly tag?: string;
  /**
   * Makes the Ed25519 signature (RFC 8032, 64 bytes) of the signature base
   * with the key whose seed is `privateKey`, instead of `@noble/curves`: a
   * Node caller passes node:crypto's `sign` (OpenSSL, some twenty times
   * faster). Ed25519 is deterministic, so the result is the same bytes.
   */
  readonly signer?: (message: Uint8Array) => Uint8Array;
}

/** Fields to add to the request, names as sent. */
export type SignatureHeaders = {
  'Content-Digest': string;
  'Signature-Input': string;
  Signature: string;
};

const MAX_SF_INTEGER = 999_999_999_999_999;
const OWN_FIELDS = ['content-digest', 'signature-input', 'signature'] as const;

function requestBody(body: HttpRequestLike['body']): Uint8Array {
  if (body === undefined || body === null) return new Uint8Array(0);
  if (typeof body === 'string') return utf8.encode(body);
  if (body instanceof Uint8Array) return body;
  throw new TypeError('body must be a Uint8Array, a string, or absent');
}

/**
 * The WHATWG-normalized target (what `fetch` will send), without fragment.
 * Signing the normalized form means the signed path is the path on the wire.
 */
function normalizedUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch (cause) {
    throw new TypeError('url must be an absolute URL', { cause });
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new TypeError('url must be http or https');
  if (u.username !== '' || u.password !== '') throw new TypeError('url must not carry userinfo');
  return `${u.protocol}//${u.host}${u.pathname}${u.search}`;
}

function checkTime(name: string, v: number, min: number): void {
  if (!Number.isSafeInteger(v) || v < min || v > MAX_SF_INTEGER) throw new TypeError(`${name} must be an integer ≥ ${min}`);
}

/**
 * Signs `req` and returns the three fields to add to it. `req.url` is taken
 * in its WHATWG-normalized form (the form `fetch` sends); covered header
 * fields are read from `req.headers`, and Content-Digest is computed from
 * `req.body`. Pure: the request is not modified and nothing is sent.
 *
 * @throws TypeError on bad options (key length, label, keyId, components,
 *   times) or when `req.headers` already has Content-Digest, Signature-Input
 *   or Signature; HttpSigError `HTTPSIG_COMPONENT_MISSING` when a covered
 *   header is absent, `HTTPSIG_MALFORMED` when a covered value cannot be signed.
 * @example
 * const body = JSON.stringify({ key: 'app/db', context: { tenant: 't1' } });
 * const sig = signRequest(
 *   { method: 'POST', url: 'https://kms.example/v1/datakey', headers: { 'content-type': 'application/json' }, body },
 *   { keyId: 'device-7f3a', privateKey: deviceSeed },
 * );
 * await fetch('https://kms.example/v1/datakey', { method: 'POST', body, headers: { 'content-type': 'application/json', ...sig } });
 */
export function signRequest(req: HttpRequestLike, options: SignOptions): SignatureHeaders {
  const { keyId, privateKey, label = 'kw', expiresIn, tag } = options;
  const rawComponents: unknown = options.components ?? DEFAULT_COMPONENTS;
  if (!(privateKey instanceof Uint8Array) || privateKey.length !== 32) throw new TypeError('privateKey must be a 32-byte Ed25519 seed');
  if (typeof keyId !== 'string' || keyId.length === 0 || !isSfString(keyId)) throw new TypeError('keyId must be a non-empty printable ASCII string');
  if (typeof label !== 'string' || !isKey(label)) throw new TypeError('label must be a structured-field key (lowercase, e.g. "kw")');
  if (tag !== undefined && (typeof tag !== 'string' || !isSfString(tag))) throw new TypeError('tag must be a printable ASCII string');
  if (!Array.isArray(rawComponents) || rawComponents.length === 0) throw new TypeError('components must be a non-empty array');
  const components = rawComponents as unknown[];
  if (new Set(components).size !== components.length) throw new TypeError('components must not repeat');
  for (const c of components) if (typeof c !== 'string' || !isComponentId(c)) throw new TypeError(`unsupported component ${JSON.stringify(c)}`);
  const covered = components as string[];
  if (!covered.includes('content-digest')) throw new TypeError('components must include content-digest');

  const created = options.created ?? Math.floor(Date.now() / 1000);
  checkTime('created', created, 0);
  if (expiresIn !== undefined) {
    checkTime('expiresIn', expiresIn, 1);
    checkTime('created + expiresIn', created + expiresIn, 0);
  }
  const nonce = options.nonce ?? base64urlnopad.encode(globalThis.crypto.getRandomValues(new Uint8Array(16)));
  if (typeof nonce !== 'string' || nonce.length === 0 || !isSfString(nonce)) throw new TypeError('nonce must be a non-empty printable ASCII string');

  const body = requestBody(req.body);
  const headers = collectHeaders(req.headers);
  for (const f of OWN_FIELDS) if (headers.has(f)) throw new TypeError(`req.headers already has ${f}`);
  const digest = contentDigest(body);
  headers.set('content-digest', [digest]);

  const params: SignatureParams = { created, nonce, keyid: keyId, alg: 'ed25519' };
  if (expiresIn !== undefined) params.expires = created + expiresIn;
  if (tag !== undefined) params.tag = tag;
  const signatureParams = serializeSignatureParams(covered, params);
  const base = baseFromParts(req.method, normalizedUrl(req.url), headers, covered, signatureParams);
  const signature = options.signer ? options.signer(utf8.encode(base)) : ed25519.sign(utf8.encode(base), privateKey);
  if (!(signature instanceof Uint8Array) || signature.length !== 64) throw new TypeError('the signer must return a 64-byte Ed25519 signature');
  return {
    'Content-Digest': digest,
    'Signature-Input': `${label}=${signatureParams}`,
    Signature: `${label}=:${base64.encode(signature)}:`,
  };
}
