/**
 * The web console (docs/console.md): the static assets of `@keyward/console`
 * (built by the root `npm run build`) at `/console`, and the session
 * endpoints of the public API at `/v1/console/session`. The console's pages
 * call only the public HTTP API; there is no other door.
 *
 * Every console response carries a strict Content-Security-Policy (no inline
 * script or style, no framing, no plugins, no `<base>`, forms only to this
 * origin), `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`,
 * `X-Frame-Options: DENY` and same-origin COOP/CORP. No route sends
 * `Access-Control-Allow-Origin`: CORS stays closed, so another origin can
 * neither read an answer nor send the CSRF header.
 *
 * Sessions (console-session.ts): `POST /v1/console/session` takes a token
 * pasted into the sign-in form once, and answers with an HttpOnly,
 * SameSite=Strict cookie (Secure over TLS) holding a new session secret —
 * a token-store row `ses_…`, hashed at rest, expiring with the signing-in
 * token at the latest — and the CSRF proof the page keeps in memory.
 * `GET` tells the page who is signed in (and the proof again, after a
 * reload); `DELETE` signs out (revokes the row, clears the cookie).
 * Creating and revoking a session are audited (`sessions.create`,
 * `sessions.revoke`).
 *
 * @example
 * consoleRoutes(app); // GET /console, /console/*, and /v1/console/session
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, relative, sep } from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { MfaError, isMfaError } from '../mfa/errors.js';
import type { App } from './app.js';
import { authFailureReason, authenticate, authenticateRequest, authenticateSession, newId, newToken } from './auth.js';
import {
  SESSION_COOKIE_PLAIN, SESSION_COOKIE_SECURE, checkSameOrigin, csrfProof, isSessionId, sessionCookieOf, sessionParentKey,
} from './console-session.js';
import { SecondFactorAnswer, SecondFactorChallengeView, activeSecondFactors, checkSecondFactor, newSignInChallenge, recordSecondFactorFailure, type VerifiedSecondFactor } from './console-mfa.js';
import { ApiError } from './errors.js';
import { serverPackageDir } from '../keyholder/entry.js';

/** Default and longest console session, seconds (a session never outlives the token that signed in). */
export const SESSION_TTL_DEFAULT_S = 8 * 3600;
export const SESSION_TTL_MAX_S = 12 * 3600;

/** The Content-Security-Policy of every console response. */
export const CONSOLE_CSP = [
  "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "connect-src 'self'", "font-src 'self'",
  "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'",
].join('; ');

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
};

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.json': 'application/json', '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json', '.woff2': 'font/woff2',
};

/** Pages of the console app (client-side routes): each is served index.html. `/console/seal` is its own page. */
const APP_PAGES = new Set(['', 'keys', 'audit', 'health', 'directory', 'approvals', 'security']);

interface Asset { readonly body: Buffer; readonly type: string; readonly immutable: boolean }

/** The built console (`@keyward/console`'s dist), or null when it is not built. */
export function consoleDistDir(): string | null {
  try {
    // Resolved from the server package (a dependency of it), wherever this code runs from (keyholder/entry.ts).
    const pkg = createRequire(join(serverPackageDir(), 'package.json')).resolve('@keyward/console/package.json');
    const dist = join(dirname(pkg), 'dist');
    return statSync(join(dist, 'index.html')).isFile() ? dist : null;
  } catch {
    return null;
  }
}

function loadAssets(dir: string): Map<string, Asset> {
  const out = new Map<string, Asset>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) { walk(p); continue; }
      const type = TYPES[extname(e.name)];
      if (!e.isFile() || type === undefined) continue;
      const rel = relative(dir, p).split(sep).join('/');
      out.set(rel, { body: readFileSync(p), type, immutable: rel.startsWith('assets/') });
    }
  };
  walk(dir);
  return out;
}

function secure(reply: FastifyReply): FastifyReply {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) void reply.header(k, v);
  return reply;
}

function cookie(req: FastifyRequest, value: string, maxAgeSeconds: number): string {
  const tls = req.protocol === 'https';
  const name = tls ? SESSION_COOKIE_SECURE : SESSION_COOKIE_PLAIN;
  return `${name}=${value}; Path=/; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Strict${tls ? '; Secure' : ''}`;
}

function clearCookies(req: FastifyRequest): string[] {
  const tls = req.protocol === 'https';
  return [
    ...(tls ? [`${SESSION_COOKIE_SECURE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure`] : []),
    `${SESSION_COOKIE_PLAIN}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict${tls ? '; Secure' : ''}`,
  ];
}

const SignIn = z.strictObject({
  token: z.string().min(1).max(256),
  ttl_seconds: z.int().min(1).max(SESSION_TTL_MAX_S).optional(),
  /** Step 2 for a person with a second factor: the answer to the challenge step 1 returned (console-mfa.ts). */
  second_factor: SecondFactorAnswer.optional(),
});
const SessionView = z.strictObject({
  principal: z.string(), ns: z.string(), admin: z.boolean(), bootstrap: z.boolean(), session_id: z.string(), expires_at: z.string(),
  /** The CSRF proof: send it as X-Keyward-CSRF with every request; keep it in memory only. */
  csrf: z.string(),
});

export interface ConsoleOptions {
  /** Where the built assets are (default: `@keyward/console`'s dist; null: not built). */
  readonly distDir?: string | null;
}

/** Registers the console's static pages and the session endpoints. */
export function consoleRoutes(app: App, opts: ConsoleOptions = {}): void {
  const { ctx, fastify } = app;
  const dir = opts.distDir === undefined ? consoleDistDir() : opts.distDir;
  const assets = dir === null ? null : loadAssets(dir);

  // --- static pages -----------------------------------------------------------

  const serve = (req: FastifyRequest<{ Params: { '*'?: string } }>, reply: FastifyReply) => {
    secure(reply);
    if (assets === null) {
      return reply.status(503).header('cache-control', 'no-store').send({ error: { code: 'KW_CONSOLE_NOT_BUILT', message: 'The web console assets are not built (run npm run build, or install a release that ships them).' } });
    }
    const path = (req.params['*'] ?? '').replace(/\/+$/, '');
    const file = APP_PAGES.has(path) ? 'index.html' : path === 'seal' ? 'seal.html' : path;
    const a = assets.get(file);
    if (a === undefined || file.includes('..')) {
      return reply.status(404).header('cache-control', 'no-store').send({ error: { code: 'KW_NOT_FOUND', message: 'no such console page' } });
    }
    return reply
      .header('content-type', a.type)
      .header('cache-control', a.immutable ? 'public, max-age=31536000, immutable' : 'no-store')
      .send(a.body);
  };
  fastify.get('/console', serve);
  fastify.get('/console/*', serve);

  // --- sessions ---------------------------------------------------------------

  app.routes.push({
    method: 'POST', url: '/v1/console/session', summary: 'Console sign-in: exchange a token (and, for a person with a second factor, the answer to the 200 challenge) for an HttpOnly session cookie and a CSRF proof', tag: 'console', auth: 'none',
    body: SignIn, response: z.union([SessionView, SecondFactorChallengeView]), status: 201,
  });
  fastify.post('/v1/console/session', async (req, reply) => {
    secure(reply).header('cache-control', 'no-store');
    // Login CSRF: another site must not sign the victim in to its own session.
    checkSameOrigin(req.headers);
    const parsed = SignIn.safeParse(req.body ?? {});
    if (!parsed.success) throw new ApiError('KW_INVALID_ARGUMENT', `invalid body: ${parsed.error.issues[0]?.message ?? 'rejected'}`);
    const now = new Date();
    let who: Awaited<ReturnType<typeof authenticate>>;
    try {
      who = await authenticate(ctx.store, `Bearer ${parsed.data.token}`, now);
      // A session does not make sessions: sign in with a real token.
      if (isSessionId(who.token.id)) throw new ApiError('KW_UNAUTHENTICATED', 'the bearer token is not valid (unknown, expired or revoked)');
    } catch (e) {
      if ((authFailureReason(e) !== null || (e instanceof ApiError && e.code === 'KW_UNAUTHENTICATED')) && !ctx.limits.perAddress.take(`auth:${req.ip}`)) {
        throw new ApiError('KW_RATE_LIMITED', 'too many failed authentications from this address');
      }
      throw e;
    }
    // A person with a second factor: first a challenge (200, no cookie), then the same token with the answer.
    const factors = who.principal.bootstrap ? [] : await activeSecondFactors(ctx, who.principal.id);
    let second: VerifiedSecondFactor | null = null;
    if (factors.length > 0) {
      const ev = { ns: null, principal: who.principal.id, auth: 'token' as const, details: { token: { id: who.token.id }, client: { address: req.ip } } };
      const answer = parsed.data.second_factor;
      if (answer === undefined) {
        const challenge = await ctx.audit.record({ ...ev, op: 'sessions.challenge', outcome: 'allowed' }, async (tx) => ({
          result: await newSignInChallenge(ctx, tx, who.principal.id, who.token.id, factors),
        }));
        return reply.status(200).send(challenge);
      }
      try {
        second = await checkSecondFactor(ctx, who.principal.id, who.token.id, answer);
      } catch (e) {
        if (isMfaError(e) && (e.code === 'KW_MFA_INVALID' || e.code === 'KW_MFA_REPLAY')) {
          let locked = false;
          await ctx.audit.record({ ...ev, op: 'sessions.create', outcome: 'denied', code: e.code }, async (tx) => {
            locked = await recordSecondFactorFailure(ctx, tx, who.principal.id);
            return { result: undefined };
          });
          throw locked ? new MfaError('KW_MFA_LOCKED', 'too many failed second-factor attempts') : e;
        }
        if (isMfaError(e)) await ctx.audit.recordFailure({ ...ev, op: 'sessions.create', outcome: 'denied', code: e.code });
        throw e;
      }
    }
    const ttl = parsed.data.ttl_seconds ?? SESSION_TTL_DEFAULT_S;
    const expiresAt = new Date(Math.min(who.token.expiresAt.getTime(), now.getTime() + ttl * 1000));
    const { token: secret, hash } = newToken();
    const id = newId('ses_');
    await ctx.audit.record({
      ns: null, principal: who.principal.id, auth: 'token', op: 'sessions.create', outcome: 'allowed',
      details: {
        token_id: id, token: { id: who.token.id }, expires_at: expiresAt.toISOString(), client: { address: req.ip },
        ...(second !== null ? { second_factor: { factor: second.factor.id, kind: second.factor.kind } } : {}),
      },
    }, async (tx) => {
      await second?.commit(tx);
      await tx.createToken({ id, tokenHash: hash, principal: who.principal.id, admin: who.token.admin, expiresAt, created: now });
      await tx.setMeta(sessionParentKey(id), who.token.id);
      return { result: undefined };
    });
    const maxAge = Math.max(1, Math.floor((expiresAt.getTime() - now.getTime()) / 1000));
    return reply.status(201).header('set-cookie', cookie(req, secret, maxAge)).send({
      principal: who.principal.id, ns: who.principal.ns, admin: who.token.admin, bootstrap: who.principal.bootstrap,
      session_id: id, expires_at: expiresAt.toISOString(), csrf: csrfProof(secret),
    });
  });

  app.routes.push({ method: 'GET', url: '/v1/console/session', summary: 'The signed-in console session (cookie) and its CSRF proof', tag: 'console', auth: 'none', response: SessionView });
  fastify.get('/v1/console/session', async (req, reply) => {
    secure(reply).header('cache-control', 'no-store');
    checkSameOrigin(req.headers);
    const secret = sessionCookieOf(req.headers);
    if (secret === null) throw new ApiError('KW_UNAUTHENTICATED', 'not signed in to the console');
    const who = await authenticateSession(ctx.store, secret);
    if (!ctx.limits.perToken.take(who.token.id)) throw new ApiError('KW_RATE_LIMITED', 'too many requests for this session');
    return {
      principal: who.principal.id, ns: who.principal.ns, admin: who.token.admin, bootstrap: who.principal.bootstrap,
      session_id: who.token.id, expires_at: who.token.expiresAt.toISOString(), csrf: csrfProof(secret),
    };
  });

  app.routes.push({ method: 'DELETE', url: '/v1/console/session', summary: 'Console sign-out: revoke the session and clear its cookie (needs the CSRF proof)', tag: 'console', auth: 'token' });
  fastify.delete('/v1/console/session', async (req, reply) => {
    secure(reply).header('cache-control', 'no-store');
    if (sessionCookieOf(req.headers) === null || req.headers.authorization !== undefined) throw new ApiError('KW_UNAUTHENTICATED', 'not signed in to the console');
    const who = await authenticateRequest(ctx.store, req.headers);
    await ctx.audit.record({
      ns: null, principal: who.principal.id, auth: 'token', op: 'sessions.revoke', outcome: 'allowed',
      details: { token_id: who.token.id, client: { address: req.ip } },
    }, async (tx) => ({ result: await tx.revokeToken(who.token.id, new Date()) }));
    return reply.header('set-cookie', clearCookies(req)).send({ signed_out: true });
  });
}
