/**
 * The service side of sealed HTTP bodies (protocol.ts): a fastify plugin that
 * opens sealed requests before validation and seals every reply to the
 * request's response key.
 *
 * - A request must be sealed (`content-type: application/vnd.keyward.envelope`,
 *   or the `keyward-request` header for GET/HEAD); otherwise 415
 *   `KW_INT_NOT_SEALED`. Refusals before the request opened are plain JSON
 *   `{ error: { code, message } }` (there is no key to seal them to) and name
 *   only the code: 400 (`KW_INT_CONTEXT_MISMATCH`, `KW_INT_OPEN_FAILED`,
 *   `KW_INT_MALFORMED_FRAME`, `KW_INT_STALE`, `KW_INT_FUTURE`), 409
 *   (`KW_INT_REPLAY`), 503 (`KW_INT_KEY_SERVICE_FAILED`,
 *   `KW_INT_REPLAY_GUARD_FULL`).
 * - After it opened, `request.body` is the inner body (parsed JSON for a
 *   JSON content type, a string for `text/*`, else a Buffer) and
 *   `request.keyward` says it was sealed; every reply of that request —
 *   errors included — is sealed.
 * - The plugin applies to the context it is registered in (register it
 *   inside your own plugin to seal only those routes).
 *
 * @example
 * await app.register(sealedHttpPlugin, { identities: [serviceIdentity], audience: 'billing' });
 * app.post('/v1/charges', async (req) => ({ ok: true, amount: (req.body as { amount: number }).amount }));
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parseRecipient, type Recipient, type SigningKey } from '@keyward/core';
import { IntegrationError, type IntegrationErrorCode } from '../errors.js';
import { decodeFrame, encodeFrame } from '../frame.js';
import { ReplayGuard, type ReplayGuardOptions } from '../replay.js';
import { checkOpening, openWith, sealWith, type OpeningOptions } from '../sealing.js';
import { BODYLESS_METHODS, ENVELOPE_CONTENT_TYPE, REQUEST_HEADER, requestContext, responseContext } from './protocol.js';

export interface SealedHttpServerOptions extends OpeningOptions {
  /** This service's name, as clients bind it. */
  readonly audience: string;
  readonly replay?: ReplayGuard | ReplayGuardOptions;
  /** Sign responses. */
  readonly signer?: SigningKey;
  /** Largest sealed request body, bytes; default 1 MiB. */
  readonly bodyLimit?: number;
  /** The path bound into the context; default `request.url` (path and query as received). */
  readonly pathOf?: (request: FastifyRequest) => string;
}

/** What `request.keyward` holds for a request that opened. */
export interface SealedRequestInfo {
  readonly id: string;
  readonly ts: number;
  readonly contentType: string | undefined;
  readonly signer: string | undefined;
  /** @internal the response key */
  readonly responseTo: Recipient;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the sealed-HTTP plugin when the request arrived sealed and opened. */
    keyward: SealedRequestInfo | null;
  }
}

const STATUS: Partial<Record<IntegrationErrorCode, number>> = {
  KW_INT_NOT_SEALED: 415,
  KW_INT_REPLAY: 409,
  KW_INT_KEY_SERVICE_FAILED: 503,
  KW_INT_REPLAY_GUARD_FULL: 503,
};
const utf8d = new TextDecoder('utf-8', { fatal: true });
const utf8 = new TextEncoder();

function refuse(reply: FastifyReply, e: unknown): FastifyReply {
  const err = e instanceof IntegrationError ? e : new IntegrationError('KW_INT_OPEN_FAILED', 'the sealed request does not open', { cause: e });
  // Only the code and the generic explanation: nothing from the request.
  return reply.code(STATUS[err.code] ?? 400).header('content-type', 'application/json; charset=utf-8')
    .send(JSON.stringify({ error: { code: err.code, message: err.message } }));
}

function innerBody(ct: string | undefined, body: Uint8Array): unknown {
  const type = (ct ?? '').split(';')[0]!.trim().toLowerCase();
  try {
    if (type === 'application/json' || type.endsWith('+json')) return body.length === 0 ? undefined : JSON.parse(utf8d.decode(body)) as unknown;
    if (type.startsWith('text/')) return utf8d.decode(body);
  } catch (cause) {
    throw new IntegrationError('KW_INT_MALFORMED_FRAME', `the sealed body is not valid ${type}`, { cause });
  }
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/** The plugin; register with `app.register(sealedHttpPlugin, options)`. */
export function sealedHttpPlugin(app: FastifyInstance, options: SealedHttpServerOptions, done: (err?: Error) => void): void {
  try {
    install(app, options);
  } catch (e) {
    done(e instanceof Error ? e : new Error(String(e)));
    return;
  }
  done();
}

function install(app: FastifyInstance, options: SealedHttpServerOptions): void {
  const o = checkOpening(options, 'sealed HTTP');
  if (typeof options.audience !== 'string' || options.audience.length === 0) throw new IntegrationError('KW_INT_INVALID_ARGUMENT', 'audience is required');
  const audience = options.audience;
  const replay = options.replay instanceof ReplayGuard ? options.replay : new ReplayGuard(options.replay);
  const pathOf = options.pathOf ?? ((r: FastifyRequest) => r.url);

  app.addContentTypeParser(ENVELOPE_CONTENT_TYPE, { parseAs: 'buffer', bodyLimit: options.bodyLimit ?? 1024 * 1024 }, (_req, body, done) => done(null, body));
  if (!app.hasRequestDecorator('keyward')) app.decorateRequest('keyward', null);

  app.addHook('preValidation', async (req, reply) => {
    let envelope: Uint8Array | null = null;
    const ct = req.headers['content-type'];
    const header = req.headers[REQUEST_HEADER];
    if (typeof ct === 'string' && ct === ENVELOPE_CONTENT_TYPE && Buffer.isBuffer(req.body)) envelope = req.body;
    else if (BODYLESS_METHODS.includes(req.method) && typeof header === 'string' && /^[A-Za-z0-9_-]+$/.test(header)) envelope = Buffer.from(header, 'base64url');
    if (!envelope) return refuse(reply, new IntegrationError('KW_INT_NOT_SEALED', 'this route takes sealed requests only'));
    try {
      const opened = await openWith(o, envelope, requestContext(audience, req.method, pathOf(req), o.context), 'the sealed request');
      const frame = decodeFrame(opened.plaintext);
      const rk = frame.meta.rk;
      let responseTo: Recipient;
      try {
        responseTo = await parseRecipient(rk ?? '');
      } catch (cause) {
        throw new IntegrationError('KW_INT_MALFORMED_FRAME', 'the sealed request carries no valid response key', { cause });
      }
      replay.accept(frame.id, frame.ts);
      req.body = innerBody(frame.meta.ct, frame.body);
      req.keyward = { id: frame.id, ts: frame.ts, contentType: frame.meta.ct, signer: opened.signature?.verified ? opened.signature.keyId : undefined, responseTo };
    } catch (e) {
      return refuse(reply, e);
    }
  });

  app.addHook('onSend', async (req, reply, payload) => {
    const k = req.keyward;
    if (!k) return payload;
    let body: Uint8Array;
    if (payload === null || payload === undefined) body = new Uint8Array(0);
    else if (typeof payload === 'string') body = utf8.encode(payload);
    else if (Buffer.isBuffer(payload)) body = payload;
    else throw new IntegrationError('KW_INT_UNSUPPORTED', 'sealed replies must be strings, buffers or JSON (not streams)');
    const rct = reply.getHeader('content-type');
    const frame = encodeFrame({ body, meta: { ...(typeof rct === 'string' ? { ct: rct } : {}), re: k.id } });
    const sealed = await sealWith({ recipients: [k.responseTo], ...(options.signer ? { signer: options.signer } : {}) },
      frame.bytes, responseContext(audience, k.id, o.context), 'the response');
    frame.bytes.fill(0);
    reply.header('content-type', ENVELOPE_CONTENT_TYPE);
    reply.removeHeader('content-length');
    return Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  });
}
// Applies to the context it is registered in, like fastify-plugin (no encapsulation of its hooks).
(sealedHttpPlugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
