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
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { PrincipalRow, SigningKeyRow, Store, TokenRow } from '../store/index.js';
import { isBootstrapPrincipal } from './bootstrap.js';
import { checkCsrf, isSessionId, sessionCookieOf, sessionParentKey } from './console-session.js';
import { ApiError } from './errors.js';

export const TOKEN_PREFIX = 'kw_';
const TOKEN_RE = /^kw_[A-Za-z0-9_-]{43}$/;

// ---------------------------------------------------------------------------
// Unauthenticated failures (docs/audit.md §Unauthenticated failures)
//
// A request that fails before anyone is authenticated is never written to the
// audit log one by one: the API counts it in the audit pipe's
// FailureSummarizer. The refusals thrown here carry a short reason code for
// that count (`authFailureReason`); the client only ever sees the same
// KW_UNAUTHENTICATED for all of them (no oracle). `traceAuth` runs a request
// with a trace that says whether a token was accepted, so a KW_RATE_LIMITED
// can be told apart: before authentication (per address) or after (per token).

/** Reasons an unauthenticated failure is counted under. */
export type AuthFailureReason =
  | 'token_missing' | 'token_malformed' | 'token_unknown' | 'token_expired' | 'token_revoked' | 'principal_unknown' | 'principal_disabled'
  | 'device_key_missing' | 'device_key_unknown' | 'csrf_rejected';

const REASONS = new WeakMap<object, AuthFailureReason>();

function refusal(reason: AuthFailureReason, message: string): ApiError {
  const e = new ApiError('KW_UNAUTHENTICATED', message);
  REASONS.set(e, reason);
  const trace = TRACE.getStore();
  if (trace) trace.failure = reason;
  return e;
}

/**
 * The reason an authentication refusal thrown by this module is counted
 * under, or null for any other error.
 *
 * @example
 * try { await authenticate(store, header) } catch (e) { summarizer.record(authFailureReason(e) ?? 'other', ip) }
 */
export function authFailureReason(e: unknown): AuthFailureReason | null {
  return typeof e === 'object' && e !== null ? REASONS.get(e) ?? null : null;
}

/** What one request's authentication did (see {@link traceAuth}). */
export interface AuthTrace {
  /** A bearer token was accepted. */
  authenticated: boolean;
  /** The last refusal's reason, if any. */
  failure: AuthFailureReason | null;
}

const TRACE = new AsyncLocalStorage<AuthTrace>();

/**
 * Runs `fn` (a request's handling) with `trace`, which {@link authenticate}
 * and {@link deviceKeyFor} fill in.
 *
 * @example
 * fastify.addHook('preHandler', (req, _reply, done) => { const t = newAuthTrace(); traces.set(req, t); traceAuth(t, done) });
 */
export function traceAuth(trace: AuthTrace, fn: () => void): void {
  TRACE.run(trace, fn);
}

/** A trace for one request: nothing authenticated, nothing refused yet. */
export function newAuthTrace(): AuthTrace {
  return { authenticated: false, failure: null };
}

/**
 * The reason an error of a request is counted under as an unauthenticated
 * failure, or null when it is not one: an authentication refusal (missing,
 * malformed, unknown, expired or revoked token; missing or unknown device
 * key), or a KW_RATE_LIMITED before any token was accepted.
 *
 * @example
 * const reason = unauthenticatedReason(err, trace); if (reason) audit.failures.record(reason, req.ip);
 */
export function unauthenticatedReason(error: unknown, trace: AuthTrace | undefined): string | null {
  const tagged = authFailureReason(error);
  if (tagged !== null) return tagged;
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  if (code === 'KW_UNAUTHENTICATED') return 'unauthenticated';
  if (code === 'KW_RATE_LIMITED' && trace !== undefined && !trace.authenticated) return 'rate_limited';
  return null;
}

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
  /** A token of the bootstrap principal (`keyward init`): it may only enroll the first administrators (bootstrap.ts). */
  readonly bootstrap: boolean;
}

/** The token text of an `Authorization: Bearer …` header, or null when absent. */
export function bearerOf(header: string | string[] | undefined): string | null {
  if (header === undefined) return null;
  if (typeof header !== 'string') throw refusal('token_malformed', 'one Authorization header is expected');
  const m = /^Bearer ([^\s]+)$/i.exec(header.trim());
  if (!m) throw refusal('token_malformed', 'the Authorization header must be "Bearer <token>"');
  return m[1]!;
}

/**
 * Checks a bearer token against the store. Throws KW_UNAUTHENTICATED (same
 * message for unknown, expired and revoked tokens).
 */
export async function authenticate(store: Store, header: string | string[] | undefined, now = new Date()): Promise<{ principal: Principal; token: TokenRow; row: PrincipalRow }> {
  const token = bearerOf(header);
  if (token === null) throw refusal('token_missing', 'a bearer token is required');
  // One message for every kind of invalid token; the reason is only counted.
  const refuse = (reason: AuthFailureReason) => refusal(reason, 'the bearer token is not valid (unknown, expired or revoked)');
  if (!TOKEN_RE.test(token)) throw refuse('token_malformed');
  const hash = tokenHash(token);
  const row = await store.getTokenByHash(hash);
  if (!row || !timingSafeEqual(Buffer.from(row.tokenHash, 'hex'), Buffer.from(hash, 'hex'))) throw refuse('token_unknown');
  if (row.revokedAt !== null) throw refuse('token_revoked');
  if (row.expiresAt.getTime() <= now.getTime()) throw refuse('token_expired');
  const p = await store.getPrincipal(row.principal);
  if (!p) throw refuse('principal_unknown');
  // Disabling also revokes its tokens; refusing here too keeps a token restored from an older backup refused.
  if (p.disabledAt !== null) throw refuse('principal_disabled');
  const trace = TRACE.getStore();
  if (trace) trace.authenticated = true;
  return { principal: { id: p.id, ns: p.ns, roles: p.roles, admin: row.admin, tokenId: row.id, bootstrap: isBootstrapPrincipal(p) }, token: row, row: p };
}

/**
 * Authenticates a request: its bearer token, or — only when it carries no
 * Authorization header — the console's session cookie together with a valid
 * CSRF proof (console-session.ts; KW_CSRF_REJECTED otherwise, before anything
 * is read). A session is refused as a bearer token, a token as a session, and
 * a session whose signing-in token was revoked or expired is refused.
 */
export async function authenticateRequest(store: Store, headers: IncomingHttpHeaders, now = new Date()): Promise<{ principal: Principal; token: TokenRow; row: PrincipalRow }> {
  const session = headers.authorization === undefined ? sessionCookieOf(headers) : null;
  if (session === null) {
    const who = await authenticate(store, headers.authorization, now);
    if (isSessionId(who.token.id)) throw refusal('token_unknown', 'the bearer token is not valid (unknown, expired or revoked)');
    return who;
  }
  try {
    checkCsrf(headers, session);
  } catch (e) {
    if (typeof e === 'object' && e !== null) REASONS.set(e, 'csrf_rejected');
    throw e;
  }
  return authenticateSession(store, session, now);
}

/**
 * Checks a console session secret (from its cookie; the caller has checked
 * the CSRF proof where one is due): a live `ses_…` row whose signing-in
 * token is neither revoked nor expired. KW_UNAUTHENTICATED otherwise.
 */
export async function authenticateSession(store: Store, secret: string, now = new Date()): Promise<{ principal: Principal; token: TokenRow; row: PrincipalRow }> {
  const refuse = (reason: AuthFailureReason) => refusal(reason, 'the console session is not valid (unknown, expired or signed out)');
  const who = await authenticate(store, `Bearer ${secret}`, now).catch((e: unknown) => {
    const reason = authFailureReason(e);
    throw reason !== null ? refuse(reason) : e;
  });
  if (!isSessionId(who.token.id)) throw refuse('token_unknown');
  const parentId = await store.getMeta(sessionParentKey(who.token.id));
  const parent = parentId === null ? null : await store.getToken(parentId);
  if (!parent) throw refuse('token_unknown');
  if (parent.revokedAt !== null) throw refuse('token_revoked');
  if (parent.expiresAt.getTime() <= now.getTime()) throw refuse('token_expired');
  return who;
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
  if (keyId === null) throw refusal('device_key_missing', 'data-plane requests must be signed (RFC 9421, label "kw", with a keyid)');
  const k = await store.getSigningKey(keyId);
  if (!k || k.principal !== principal.id || k.revokedAt !== null) {
    throw refusal('device_key_unknown', 'the signing key is not a registered, unrevoked device key of this principal');
  }
  return k;
}
