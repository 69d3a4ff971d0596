/**
 * The console's session credential, as the API's authentication sees it
 * (docs/console.md §Sessions and CSRF).
 *
 * A console session is a row of the token store: id `ses_…`, the SHA-256 of
 * its secret (never the secret), the principal and admin flag of the token
 * that signed in, and an expiry no later than that token's. Its secret
 * travels only in an HttpOnly, SameSite=Strict cookie (`Secure` and the
 * `__Host-` prefix over TLS), never in a header the page script could read.
 *
 * The cookie alone authenticates nothing. A request that uses it must also
 * carry the CSRF proof in `X-Keyward-CSRF`: HMAC-SHA256 of a fixed label
 * under the session secret, which the page learns from `GET
 * /v1/console/session` (a same-origin read: CORS is closed) and keeps in
 * memory only. The request must also not say it comes from another site
 * (`Sec-Fetch-Site` other than `same-origin`, or an `Origin` other than the
 * request's own host). Anything else is `KW_CSRF_REJECTED` (403), before any
 * authentication or change.
 *
 * A session's token is refused as a bearer token, and a bearer token is not
 * a session: the two kinds of credential never stand in for each other.
 *
 * @example
 * const secret = sessionCookieOf(req.headers);
 * if (secret !== null) checkCsrf(req.headers, secret); // throws KW_CSRF_REJECTED
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { ApiError } from './errors.js';

/** Session cookie over TLS (the `__Host-` prefix: Secure, Path=/, no Domain, set only by this origin). */
export const SESSION_COOKIE_SECURE = '__Host-keyward_session';
/** Session cookie on plain HTTP (loopback or `insecure`): browsers refuse `__Host-` without TLS. */
export const SESSION_COOKIE_PLAIN = 'keyward_session';
/** The request header that carries the CSRF proof. */
export const CSRF_HEADER = 'x-keyward-csrf';
/** Token-store ids of console sessions start with this. */
export const SESSION_ID_PREFIX = 'ses_';
/** Store meta key linking a session to the token that signed in (`console.session:<session id>` → token id). */
export const sessionParentKey = (sessionId: string): string => `console.session:${sessionId}`;

const CSRF_LABEL = 'keyward/v1 console-csrf';
const SECRET_RE = /^kw_[A-Za-z0-9_-]{43}$/;

/** True for the token-store id of a console session. */
export function isSessionId(id: string): boolean {
  return id.startsWith(SESSION_ID_PREFIX);
}

/** The CSRF proof that goes with a session secret (base64url, 43 characters). */
export function csrfProof(sessionSecret: string): string {
  return createHmac('sha256', Buffer.from(sessionSecret, 'utf8')).update(CSRF_LABEL, 'utf8').digest('base64url');
}

/**
 * The session secret in the request's Cookie header, or null when there is
 * no session cookie. A malformed value counts as absent.
 */
export function sessionCookieOf(headers: IncomingHttpHeaders): string | null {
  const raw = headers.cookie;
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 8192) return null;
  let plain: string | null = null;
  for (const part of raw.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (!SECRET_RE.test(value)) continue;
    // The __Host- cookie wins: only this origin, over TLS, can have set it.
    if (name === SESSION_COOKIE_SECURE) return value;
    if (name === SESSION_COOKIE_PLAIN && plain === null) plain = value;
  }
  return plain;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function reject(message: string): ApiError {
  return new ApiError('KW_CSRF_REJECTED', message);
}

/**
 * Refuses a request that says it comes from another site: `Sec-Fetch-Site`
 * present and not `same-origin`, or `Origin` present and not this host.
 * (Browsers send at least one of them on every state-changing fetch.)
 */
export function checkSameOrigin(headers: IncomingHttpHeaders): void {
  const site = header(headers, 'sec-fetch-site');
  if (site !== undefined && site !== 'same-origin') throw reject(`cross-site request refused (Sec-Fetch-Site: ${site.slice(0, 32)})`);
  const origin = header(headers, 'origin');
  if (origin !== undefined) {
    let host: string | null = null;
    try { host = new URL(origin).host; } catch { /* "null" or garbage: refused below */ }
    if (host === null || host !== header(headers, 'host')) throw reject('cross-origin request refused (Origin is not this server)');
  }
}

/**
 * Checks the CSRF proof of a request that carries the session cookie:
 * same origin, and `X-Keyward-CSRF` equal to {@link csrfProof} of the
 * session secret (constant-time). Throws KW_CSRF_REJECTED.
 */
export function checkCsrf(headers: IncomingHttpHeaders, sessionSecret: string): void {
  checkSameOrigin(headers);
  const given = header(headers, CSRF_HEADER);
  if (given === undefined || given.length === 0) throw reject(`requests authenticated by the console session cookie need the ${CSRF_HEADER} header`);
  const want = Buffer.from(csrfProof(sessionSecret), 'utf8');
  const got = Buffer.from(given, 'utf8');
  if (got.length !== want.length || !timingSafeEqual(got, want)) throw reject(`the ${CSRF_HEADER} header does not match the session`);
}
