/**
 * Bearer tokens and device signing keys.
 *
 * Tokens are 256 random bits, written `kw_` + base64url (43 characters). The
 * store holds only SHA-256 (hex) of the token; a request's token is hashed,
 * looked up by hash, and the stored hash is compared again in constant time.
 * Expired or revoked tokens are refused with the same KW_UNAUTHENTICATED as
 * unknown ones (no oracle). Tokens never appear in logs or audit events.
 *
 * @example
 * const { token, hash } = newToken();
 * await store.createToken({ id, tokenHash: hash, principal, admin: false, expiresAt, created: new Date() });
 * const who = await authenticate(store, request.headers.authorization);
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { PrincipalRow, SigningKeyRow, Store, TokenRow } from '../store/index.js';
import { ApiError } from './errors.js';

export const TOKEN_PREFIX = 'kw_';
const TOKEN_RE = /^kw_[A-Za-z0-9_-]{43}$/;

/** A new bearer token and the hash the store keeps. */
export function newToken(): { token: string; hash: string } {
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  return { token, hash: tokenHash(token) };
}

/** SHA-256 hex of a token. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A short random identifier with a prefix (token ids, signing key ids). */
export function newId(prefix: string): string {
  return prefix + randomBytes(12).toString('base64url');
}

/** Who is calling. */
export interface Principal {
  readonly id: string;
  readonly ns: string;
  readonly roles: readonly string[];
  /** The token carries admin rights (control plane only; never data-plane access by itself). */
  readonly admin: boolean;
  readonly tokenId: string;
}

/** The token text of an `Authorization: Bearer …` header, or null when absent. */
export function bearerOf(header: string | string[] | undefined): string | null {
  if (header === undefined) return null;
  if (typeof header !== 'string') throw new ApiError('KW_UNAUTHENTICATED', 'one Authorization header is expected');
  const m = /^Bearer ([^\s]+)$/i.exec(header.trim());
  if (!m) throw new ApiError('KW_UNAUTHENTICATED', 'the Authorization header must be "Bearer <token>"');
  return m[1]!;
}

/**
 * Checks a bearer token against the store. Throws KW_UNAUTHENTICATED (same
 * message for unknown, expired and revoked tokens).
 */
export async function authenticate(store: Store, header: string | string[] | undefined, now = new Date()): Promise<{ principal: Principal; token: TokenRow; row: PrincipalRow }> {
  const token = bearerOf(header);
  if (token === null) throw new ApiError('KW_UNAUTHENTICATED', 'a bearer token is required');
  const refuse = () => new ApiError('KW_UNAUTHENTICATED', 'the bearer token is not valid (unknown, expired or revoked)');
  if (!TOKEN_RE.test(token)) throw refuse();
  const hash = tokenHash(token);
  const row = await store.getTokenByHash(hash);
  if (!row || !timingSafeEqual(Buffer.from(row.tokenHash, 'hex'), Buffer.from(hash, 'hex'))) throw refuse();
  if (row.revokedAt !== null || row.expiresAt.getTime() <= now.getTime()) throw refuse();
  const p = await store.getPrincipal(row.principal);
  if (!p) throw refuse();
  return { principal: { id: p.id, ns: p.ns, roles: p.roles, admin: row.admin, tokenId: row.id }, token: row, row: p };
}

/** The `keyid` parameter of a Signature-Input field (label `kw`), or null. */
export function signatureKeyId(header: string | string[] | undefined): string | null {
  const text = Array.isArray(header) ? header.join(', ') : header;
  if (typeof text !== 'string') return null;
  const m = /(?:^|[,\s])kw=\([^)]*\)[^,]*?;keyid="([^"\\]{1,255})"/.exec(text);
  return m ? m[1]! : null;
}

/**
 * The registered, unrevoked device key `keyId` of `principal`, or
 * KW_UNAUTHENTICATED. (The keyholder verifies the signature itself.)
 */
export async function deviceKeyFor(store: Store, principal: Principal, keyId: string | null): Promise<SigningKeyRow> {
  if (keyId === null) throw new ApiError('KW_UNAUTHENTICATED', 'data-plane requests must be signed (RFC 9421, label "kw", with a keyid)');
  const k = await store.getSigningKey(keyId);
  if (!k || k.principal !== principal.id || k.revokedAt !== null) {
    throw new ApiError('KW_UNAUTHENTICATED', 'the signing key is not a registered, unrevoked device key of this principal');
  }
  return k;
}
