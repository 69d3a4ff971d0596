/**
 * The client side of sealed HTTP bodies (protocol.ts): a `fetch` wrapper that
 * seals the request body to the service's recipient and opens the sealed
 * response with a per-request key.
 *
 * @example
 * const billing = new SealedHttpClient({ recipient: parseRecipient('kwx25519…'), audience: 'billing' });
 * const res = await billing.fetch('https://billing.internal/v1/charges', { method: 'POST', json: { amount: 42 } });
 * const charge = res.json();
 */
import { generateIdentity, type ContextInput, type Recipient, type SigningKey, type VerifyingKey } from '@keyward/core';
import { IntegrationError, INTEGRATION_ERROR_CODES, invalid, type IntegrationErrorCode } from '../errors.js';
import { decodeFrame, encodeFrame } from '../frame.js';
import { openWith, sealWith } from '../sealing.js';
import { BODYLESS_METHODS, ENVELOPE_CONTENT_TYPE, REQUEST_HEADER, requestContext, responseContext } from './protocol.js';

export interface SealedHttpClientOptions {
  /** The receiving service's HPKE recipient (x25519, p256 or xwing). */
  readonly recipient: Recipient;
  /** The service's name, bound into both directions; the service uses the same. */
  readonly audience: string;
  /** A fetch to use (e.g. undici's with a dispatcher); default the global one. */
  readonly fetch?: typeof fetch;
  /** Sign requests (the service then requires it with `verify`). */
  readonly signer?: SigningKey;
  /** Require responses signed by one of these keys. */
  readonly verify?: readonly VerifyingKey[];
  /** Application pairs bound into both directions (both sides alike). */
  readonly context?: ContextInput;
  /** Allowed clock skew for the response's sealed timestamp, ms; default 30 000. */
  readonly maxSkewMs?: number;
}

export interface SealedRequestInit {
  readonly method?: string;
  /** Visible headers (routing, auth for the proxy…). Never put secrets derived from the body here. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Raw body (sealed); or `json`. */
  readonly body?: Uint8Array | string;
  readonly json?: unknown;
  /** The body's content type (sealed inside); default from `json`/`body`. */
  readonly contentType?: string;
  readonly signal?: AbortSignal;
}

export interface SealedResponse {
  readonly status: number;
  readonly headers: Headers;
  /** The opened body. */
  readonly body: Uint8Array;
  /** The body's content type as the service sealed it. */
  readonly contentType: string | undefined;
  /** The request's sealed id (also bound in the response). */
  readonly requestId: string;
  text(): string;
  json(): unknown;
}

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

export class SealedHttpClient {
  readonly audience: string;
  readonly #o: SealedHttpClientOptions;
  readonly #fetch: typeof fetch;

  constructor(options: SealedHttpClientOptions) {
    if (!options || !options.recipient || typeof options.recipient.wrap !== 'function') throw invalid('recipient is required (the service\'s HPKE recipient)');
    if (typeof options.audience !== 'string' || options.audience.length === 0) throw invalid('audience is required');
    this.audience = options.audience;
    this.#o = options;
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  async fetch(url: string | URL, init: SealedRequestInit = {}): Promise<SealedResponse> {
    const u = new URL(url);
    const method = (init.method ?? (init.body !== undefined || init.json !== undefined ? 'POST' : 'GET')).toUpperCase();
    let body: Uint8Array;
    let ct = init.contentType;
    if (init.json !== undefined) {
      body = utf8.encode(JSON.stringify(init.json));
      ct ??= 'application/json';
    } else if (typeof init.body === 'string') {
      body = utf8.encode(init.body);
      ct ??= 'text/plain; charset=utf-8';
    } else {
      body = init.body ?? new Uint8Array(0);
    }
    const bodyless = BODYLESS_METHODS.includes(method);
    if (bodyless && body.length > 0) throw invalid(`${method} carries no body`);
    const path = u.pathname + u.search;

    const ephemeral = await generateIdentity('x25519');
    const rk = (await ephemeral.recipient()).toString();
    const frame = encodeFrame({ body, meta: { ...(ct !== undefined ? { ct } : {}), rk } });
    const envelope = await sealWith({ recipients: [this.#o.recipient], ...(this.#o.signer ? { signer: this.#o.signer } : {}) },
      frame.bytes, requestContext(this.audience, method, path, this.#o.context), `${method} ${u.pathname}`);
    frame.bytes.fill(0);

    const headers = new Headers(init.headers ?? {});
    headers.delete('content-length');
    let res: Response;
    try {
      if (bodyless) {
        headers.set(REQUEST_HEADER, Buffer.from(envelope).toString('base64url'));
        res = await this.#fetch(u, { method, headers, ...(init.signal ? { signal: init.signal } : {}) });
      } else {
        headers.set('content-type', ENVELOPE_CONTENT_TYPE);
        res = await this.#fetch(u, { method, headers, body: envelope as Uint8Array<ArrayBuffer>, ...(init.signal ? { signal: init.signal } : {}) });
      }
    } catch (e) {
      throw new IntegrationError('KW_INT_TRANSPORT_FAILED', `${method} ${u.pathname} failed`, { cause: e });
    }
    const raw = new Uint8Array(await res.arrayBuffer());
    const rct = res.headers.get('content-type') ?? '';
    if (rct !== ENVELOPE_CONTENT_TYPE) {
      // An unsealed answer: a refusal by the service's plugin (its code, unauthenticated) or a proxy's own.
      if (res.status >= 400) {
        let code: string | undefined;
        try { code = (JSON.parse(utf8d.decode(raw)) as { error?: { code?: string } }).error?.code; } catch { /* not JSON */ }
        if (code !== undefined && Object.hasOwn(INTEGRATION_ERROR_CODES, code)) {
          throw new IntegrationError(code as IntegrationErrorCode, `the service refused the sealed request (${res.status} ${code}; unauthenticated report)`);
        }
      }
      throw new IntegrationError('KW_INT_RESPONSE_NOT_SEALED', `the response (${res.status}) is not sealed`);
    }
    const opened = await openWith({ identities: [ephemeral], ...(this.#o.verify ? { verify: this.#o.verify } : {}) },
      raw, responseContext(this.audience, frame.id, this.#o.context), 'the response');
    const rf = decodeFrame(opened.plaintext);
    if (rf.meta.re !== frame.id) throw new IntegrationError('KW_INT_RESPONSE_MISMATCH', 'the sealed response answers another request');
    const skew = this.#o.maxSkewMs ?? 30_000;
    const now = Date.now();
    if (rf.ts < frame.ts - skew) throw new IntegrationError('KW_INT_STALE', 'the sealed response is older than the request');
    if (rf.ts > now + skew) throw new IntegrationError('KW_INT_FUTURE', 'the sealed response is dated in the future');
    const out = rf.body.slice();
    opened.plaintext.fill(0);
    return {
      status: res.status,
      headers: res.headers,
      body: out,
      contentType: rf.meta.ct,
      requestId: frame.id,
      text: () => utf8d.decode(out),
      json: (): unknown => JSON.parse(utf8d.decode(out)),
    };
  }
}
