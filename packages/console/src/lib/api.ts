/**
 * The console's only way to the server: the public HTTP API, same origin,
 * authenticated by the HttpOnly session cookie plus the CSRF proof, which
 * lives in this module's memory only (never localStorage/sessionStorage).
 * A 401 anywhere means the session is gone: listeners are told.
 */

export interface Session {
  readonly principal: string;
  readonly ns: string;
  readonly admin: boolean;
  readonly bootstrap: boolean;
  readonly session_id: string;
  readonly expires_at: string;
  readonly csrf: string;
}

/** An error answer of the API: `{ error: { code, message } }`. */
export class ApiFailure extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'ApiFailure';
  }
}

let csrf: string | null = null;
const signedOutListeners: ((why: string) => void)[] = [];

/** Called when the API answers 401 (session expired, signed out elsewhere, revoked). */
export function onSignedOut(fn: (why: string) => void): void {
  signedOutListeners.push(fn);
}

async function request<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, extra: Record<string, string> = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...extra };
  if (csrf !== null) headers['x-keyward-csrf'] = csrf;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method, headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown = null;
  try { parsed = text === '' ? null : JSON.parse(text); } catch { parsed = null; }
  if (!res.ok) {
    const err = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    const failure = new ApiFailure(res.status, err?.code ?? `HTTP_${res.status}`, err?.message ?? res.statusText);
    // KW_MFA_INVALID is a 401 too (a wrong second factor): only an unauthenticated answer ends the session.
    if (res.status === 401 && failure.code === 'KW_UNAUTHENTICATED' && csrf !== null && !path.startsWith('/v1/console/session')) {
      csrf = null;
      for (const fn of signedOutListeners) fn(failure.message);
    }
    throw failure;
  }
  return parsed as T;
}

/** GET a JSON resource of the API. */
export function get<T>(path: string): Promise<T> {
  return request<T>('GET', path);
}

/** POST a JSON body to the API. */
export function post<T>(path: string, body: unknown): Promise<T> {
  return request<T>('POST', path, body);
}

/** Any method, with extra headers (e.g. `Keyward-Step-Up`). */
export function send<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  return request<T>(method, path, body, headers);
}

/** The second step of a sign-in for a person with a second factor (console-mfa.ts on the server). */
export interface SignInChallenge {
  readonly id: string;
  /** The canonical challenge whose SHA-256 is `id` (and the WebAuthn challenge). */
  readonly request: Record<string, unknown>;
  readonly expires_at: string;
  readonly factors: readonly { id: string; kind: string; name: string }[];
  readonly webauthn: Record<string, unknown> | null;
}

/** The current session (after a reload), or null when not signed in. */
export async function currentSession(): Promise<Session | null> {
  try {
    const s = await request<Session>('GET', '/v1/console/session');
    csrf = s.csrf;
    return s;
  } catch (e) {
    if (e instanceof ApiFailure && e.status === 401) return null;
    throw e;
  }
}

/**
 * Exchanges a pasted token for a session cookie. A person with a second
 * factor gets a challenge instead; answer it with the same token and
 * `answer` (the caller keeps the token in memory only until then).
 */
export async function signIn(token: string, ttlSeconds: number, answer?: { id: string; webauthn?: Record<string, unknown>; code?: string }): Promise<Session | SignInChallenge> {
  const r = await request<Session | { second_factor: SignInChallenge }>('POST', '/v1/console/session', { token, ttl_seconds: ttlSeconds, ...(answer ? { second_factor: answer } : {}) });
  if ('second_factor' in r) return r.second_factor;
  csrf = r.csrf;
  return r;
}

/** Revokes the session on the server and forgets the CSRF proof. */
export async function signOut(): Promise<void> {
  try {
    await request<unknown>('DELETE', '/v1/console/session');
  } finally {
    csrf = null;
  }
}

/** Forgets the CSRF proof (the session expired). */
export function forgetSession(): void {
  csrf = null;
}

/** The Prometheus text of /metrics (public). */
export async function metricsText(): Promise<string> {
  const res = await fetch('/metrics', { credentials: 'omit', cache: 'no-store', redirect: 'error' });
  if (!res.ok) throw new ApiFailure(res.status, `HTTP_${res.status}`, 'metrics unavailable');
  return res.text();
}
