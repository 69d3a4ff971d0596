/**
 * The fastify application: body parsing (raw bytes kept for signed requests,
 * 64 KiB limit), the route table (zod schemas, strict, also the source of
 * the OpenAPI document), the error handler (errors.ts registry), metrics,
 * and the shared context the routes use.
 */
import type { WitnessPolicy } from '@keyward/tlog';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { DirectoryService } from '../directory/service.js';
import type { KeyholderClient } from '../keyholder/client.js';
import { isProtocolError } from '../keyholder/protocol.js';
import type { Store } from '../store/index.js';
import type { AuditPipe } from './audit-pipe.js';
import { authenticateRequest, type Principal } from './auth.js';
import { bootstrapAllowsRoute, bootstrapExpired } from './bootstrap.js';
import { ApiError, reasonOf, toHttpError } from './errors.js';
import type { RateLimiter } from './limits.js';
import { MAX_BODY_BYTES } from './limits.js';
import type { ApiMetrics } from './metrics.js';

/** Everything a route needs. */
export interface ApiContext {
  readonly store: Store;
  readonly keyholder: KeyholderClient;
  readonly audit: AuditPipe;
  readonly metrics: ApiMetrics;
  readonly version: string;
  readonly limits: { readonly perToken: RateLimiter; readonly perAddress: RateLimiter };
  /** Last known keyholder facts, for health when it is down. */
  readonly state: { initialized: boolean };
  /**
   * The key lifecycle's clock: creation times of key versions, scheduled
   * deletion dates, and what the scheduler finds due (server config `clock`;
   * default the system clock). Token expiry and audit times use the system clock.
   */
  readonly clock?: () => Date;
  /** The audit log's witnesses (server config `witnesses`), or null when none are configured (docs/witness.md). */
  readonly witnesses?: WitnessPolicy | null;
  /** The public-key directory (docs/directory.md), when enabled (server config `directory`). */
  readonly directory?: { readonly service: DirectoryService; readonly requireDevices: boolean };
}

/** Now, on the key lifecycle's clock ({@link ApiContext.clock}). */
export function lifecycleNow(ctx: Pick<ApiContext, 'clock'>): Date {
  return ctx.clock ? ctx.clock() : new Date();
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** One route of the contract. */
export interface RouteDef<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  readonly method: HttpMethod;
  readonly url: string;
  readonly summary: string;
  readonly tag: string;
  readonly auth: 'none' | 'token' | 'admin' | 'signed';
  readonly params?: P;
  readonly query?: Q;
  readonly body?: B;
  readonly response?: z.ZodType;
  readonly status?: number;
}

export interface RouteInput<P, Q, B> {
  readonly params: P;
  readonly query: Q;
  readonly body: B;
  readonly req: FastifyRequest;
  /** The raw request body bytes (empty when none). */
  readonly raw: Uint8Array;
}

export type AnyRouteDef = RouteDef<z.ZodType, z.ZodType, z.ZodType>;

export interface App {
  readonly fastify: FastifyInstance;
  readonly ctx: ApiContext;
  readonly routes: AnyRouteDef[];
  route<P extends z.ZodType = z.ZodType, Q extends z.ZodType = z.ZodType, B extends z.ZodType = z.ZodType>(
    def: RouteDef<P, Q, B>,
    handler: (input: RouteInput<z.output<P>, z.output<Q>, z.output<B>>) => Promise<unknown>,
  ): void;
  /**
   * Authenticates the bearer token (per-address limit on failures, per-token
   * limit after). A bootstrap token (bootstrap.ts) is refused with
   * KW_BOOTSTRAP_ONLY, audited, on every route outside BOOTSTRAP_ROUTES.
   */
  principal(req: FastifyRequest): Promise<Principal>;
}

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: Uint8Array;
  }
}

function parse<S extends z.ZodType>(schema: S | undefined, value: unknown, where: string): z.output<S> {
  if (!schema) return value as z.output<S>;
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const path = issue && issue.path.length ? ` at ${issue.path.map(String).join('.')}` : '';
  throw new ApiError('KW_INVALID_ARGUMENT', `invalid ${where}${path}: ${issue?.message ?? 'rejected'}`);
}

/**
 * Builds the application (routes are added by the caller with `app.route`).
 * `https` (PEM certificate chain and key, already checked by the caller)
 * makes it serve HTTPS.
 */
export function createApp(ctx: ApiContext, opts: { logger?: boolean | object; https?: { cert: Buffer; key: Buffer } } = {}): App {
  const base = { logger: opts.logger ?? false, bodyLimit: MAX_BODY_BYTES, trustProxy: false };
  // The HTTPS instance differs from the HTTP one only in its server type; the routes use neither.
  const fastify = (opts.https
    ? Fastify({ ...base, https: { cert: opts.https.cert, key: opts.https.key, minVersion: 'TLSv1.2' } })
    : Fastify(base)) as unknown as FastifyInstance;
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: MAX_BODY_BYTES }, (req, body: Buffer, done) => {
    req.rawBody = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    if (body.length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body)) as unknown);
    } catch {
      done(new ApiError('KW_INVALID_ARGUMENT', 'the body is not valid UTF-8 JSON'), undefined);
    }
  });

  fastify.setErrorHandler((err, req, reply) => {
    const h = toHttpError(err);
    if (h.status >= 500) req.log.error({ code: h.code, err: { name: (err as Error).name, code: (err as { code?: unknown }).code } }, 'request failed');
    if (isProtocolError(err)) ctx.metrics.keyholderError(err.code);
    const reason = h.status < 500 ? reasonOf(err) : undefined;
    void reply.status(h.status).send({ error: { code: h.code, message: h.message, ...(reason !== undefined ? { reason } : {}) } });
  });
  fastify.setNotFoundHandler((_req, reply) => {
    void reply.status(404).send({ error: { code: 'KW_NOT_FOUND', message: 'no such route' } });
  });
  fastify.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const labels = { route, method: req.method, status: String(reply.statusCode) };
    ctx.metrics.requests.inc(labels);
    ctx.metrics.latency.observe(labels, reply.elapsedTime / 1000);
    done();
  });

  const routes: AnyRouteDef[] = [];
  const app: App = {
    fastify,
    ctx,
    routes,
    route(def, handler) {
      routes.push(def);
      fastify.route({
        method: def.method,
        url: def.url,
        handler: async (req, reply) => {
          const params = parse(def.params, req.params, 'path parameters');
          const query = parse(def.query, req.query, 'query');
          let rawBody: unknown = req.body;
          if (def.body === undefined && rawBody !== undefined) {
            if (!(typeof rawBody === 'object' && rawBody !== null && Object.keys(rawBody).length === 0)) throw new ApiError('KW_INVALID_ARGUMENT', 'this route takes no body');
          }
          if (def.body !== undefined && rawBody === undefined) rawBody = {};
          const body = parse(def.body, rawBody, 'body');
          const result = await handler({ params, query, body, req, raw: req.rawBody ?? new Uint8Array(0) });
          void reply.status(def.status ?? 200);
          return result;
        },
      });
    },
    async principal(req) {
      const ip = req.ip;
      try {
        const who = await authenticateRequest(ctx.store, req.headers);
        if (!ctx.limits.perToken.take(who.principal.tokenId)) throw new ApiError('KW_RATE_LIMITED', 'too many requests for this token');
        if (who.principal.bootstrap) await refuseBootstrapOutsideEnrollment(who.principal, req);
        return who.principal;
      } catch (e) {
        if (e instanceof ApiError && e.code === 'KW_UNAUTHENTICATED' && !ctx.limits.perAddress.take(`auth:${ip}`)) {
          throw new ApiError('KW_RATE_LIMITED', 'too many failed authentications from this address');
        }
        throw e;
      }
    },
  };
  return app;

  async function refuseBootstrapOutsideEnrollment(who: Principal, req: FastifyRequest): Promise<void> {
    const route = req.routeOptions.url;
    const expired = await bootstrapExpired(ctx.store);
    if (!expired && bootstrapAllowsRoute(req.method, route)) return;
    await ctx.audit.recordFailure({
      ns: null, principal: who.id, auth: 'token', op: 'auth.bootstrap_only', outcome: 'denied', code: 'KW_BOOTSTRAP_ONLY',
      details: { route: `${req.method} ${route ?? 'unmatched'}` },
    });
    throw new ApiError('KW_BOOTSTRAP_ONLY', expired
      ? 'the initial admin token has expired: the first administrators are enrolled'
      : 'the initial admin token only enrolls the first administrators (POST /v1/tokens with admin: true for a person); use an administrator\'s token');
  }
}

export const NsParam = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'names are 1–64 of A–Z a–z 0–9 . _ - and start with a letter or digit');
export const b64uString = (max: number) => z.string().max(Math.ceil((max * 4) / 3)).regex(/^[A-Za-z0-9_-]*$/, 'must be unpadded base64url');
export const ContextSchema = z.record(z.string().min(1).max(128), z.string().max(1024));
