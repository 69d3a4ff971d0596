/**
 * JSON over HTTP to the key service's v1 API (docs/key-service-design.md
 * §HTTP API v1), from Node or a browser (`fetch` only).
 *
 * - Every request carries the bearer token (`Authorization: Bearer …`) unless
 *   asked not to (system routes).
 * - Data-plane requests (`/v1/data/{ns}/{name}/{op}`) are also signed with the
 *   device key: RFC 9421, label `kw`, covering `@method @authority @path
 *   @query content-digest`, with `created`, a fresh random `nonce`, `keyid`
 *   and `alg="ed25519"` (`signRequest`). Each attempt is signed anew (its own
 *   nonce, and the `@authority` of the address it goes to), so a failover
 *   never replays a signature.
 * - Errors are {@link KeywardClientError}: the service's `{ error: { code,
 *   message } }` keeps its code and status; what the client detects itself has
 *   a `KW_CLIENT_*` code.
 *
 * ## Failover and retries (the rule)
 *
 * The addresses are tried in turn, starting with the one that answered last,
 * each at most once per call. An attempt *fails over* to the next address on
 * (a) a connection error, (b) a timeout, (c) HTTP 503 (`KW_SEALED`,
 * `KW_KEYHOLDER_UNAVAILABLE`, or a proxy's 503). Any other answer — success
 * or error — ends the call.
 *
 * Failing over sends the operation again, so it is allowed only where
 * repeating it is harmless:
 *
 * - **Retried** (`retry: true`): `GET` requests, and every data-plane
 *   operation. None of them changes the service's state (apart from one more
 *   audit event): `unwrap`, `decrypt`, `verify` and `mac` read; `sign` is
 *   deterministic Ed25519; `datakey`, `encrypt` and `rewrap` return fresh
 *   output, and the output of an attempt whose answer was lost is simply never
 *   used (an unused data key or ciphertext is harmless).
 * - **Not retried** (`retry: false`, the default for every method but `GET`):
 *   administration and system writes (`rotate`, creating keys, version state
 *   changes, tokens, policies, device keys, unseal, seal). After a 503, a
 *   timeout, or a connection lost once the request may have been sent, the
 *   call fails (`KW_…` from the 503, `KW_CLIENT_TIMEOUT`, or
 *   `KW_CLIENT_UNAVAILABLE`) and the caller decides: the operation may have
 *   happened. Such a request moves on to the next address only when the
 *   connection provably never opened (refused, unknown host, unreachable —
 *   detectable in Node; a browser reports no such detail, so there it is never
 *   retried).
 *
 * Redirects are refused (`redirect: 'error'`): the token and the signed
 * `@authority`/`@path` belong to the address that was configured.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { signRequest } from '../httpsig/sign.js';
import { KeywardClientError, type AttemptFailure } from './errors.js';
import { KEYHOLDER_PROOF_HEADER, KEYHOLDER_SIGNATURE_HEADER, KEYHOLDER_SIGNED_OPERATIONS, base64urlDecode, base64urlEncode, keyholderResponseKeyBinding, verifyKeyholderResult, type KeyholderAttestation, type KeyholderEvidenceVerifier } from './keyholder-pin.js';

/** The data-plane operations of the v1 API: `POST /v1/data/{ns}/{name}/{op}`. */
export const DATA_OPERATIONS = ['datakey', 'unwrap', 'rewrap', 'encrypt', 'decrypt', 'sign', 'verify', 'mac', 'open'] as const;
export type DataOperation = (typeof DATA_OPERATIONS)[number];

/**
 * Whether each data-plane operation may be sent again to another address
 * after an attempt with an unknown outcome (see the module comment): all of
 * them, since none changes the service's state.
 */
export const DATA_OPERATION_RETRY: Readonly<Record<DataOperation, boolean>> = Object.freeze({
  datakey: true, // a fresh key per call; the lost one is never used
  unwrap: true, // read-only
  rewrap: true, // fresh blobs; the store is not touched
  encrypt: true, // fresh ciphertext; the lost one is never used
  decrypt: true, // read-only
  sign: true, // Ed25519 is deterministic: the same signature again
  verify: true, // read-only
  mac: true, // deterministic
  open: true, // read-only (open for recipient: the data key of an envelope header)
});

/** A JSON body given as text, sent byte for byte (for bodies whose member order matters, such as an encryption context). */
export class JsonText {
  constructor(readonly text: string) {
    if (typeof text !== 'string') throw invalid('JsonText holds a string');
  }
}

/** Namespace and key names (as the service accepts them). */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The caller's Ed25519 device key, registered with `POST /v1/auth/signing-keys`. */
export interface DeviceKey {
  /** The `key_id` the service returned at registration; sent as the signature's `keyid`. */
  readonly keyId: string;
  /** The 32-byte Ed25519 seed (RFC 8032 secret key). Copied; `dispose()` wipes the copy. */
  readonly signingSeed: Uint8Array;
}

export interface KeywardHttpClientOptions {
  /** Base URLs of the service, e.g. `https://kms-1.example.com` (a path prefix is kept). At least one. */
  readonly addresses: readonly string[];
  /** The bearer token of the principal. */
  readonly token: string;
  readonly device: DeviceKey;
  /** A `fetch` to use instead of the global one. */
  readonly fetch?: typeof fetch;
  /** Per attempt, connection to end of body; default 10 000 ms. */
  readonly timeoutMs?: number;
  /** Allow `http:` to hosts other than loopback (the token would travel in the clear). Default false. */
  readonly allowInsecureHttp?: boolean;
  /** Largest response body accepted; default 1 MiB. */
  readonly maxResponseBytes?: number;
  /**
   * Pin the keyholder (docs/tee.md §Pinning the keyholder from a client): its
   * evidence is fetched and checked by this verifier once per address, before
   * anything else is sent there (e.g. `tpmKeyholderPin({ roots, measurements })`
   * from `@keyward/client/keyholder-tpm`, or `evidenceKeyholderPin({ platforms })`
   * from `@keyward/client/keyholder-evidence` for a Nitro / SEV-SNP / TDX / SGX
   * keyholder; an address whose keyholder fails is
   * skipped), then every data-plane result and every `release` must carry the
   * attested keyholder's signature (KW_CLIENT_KEYHOLDER_* codes otherwise).
   */
  readonly keyholderPin?: KeyholderEvidenceVerifier;
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface RequestOptions {
  readonly method: HttpMethod;
  /** Absolute path under the base URL, with its query if any: `/v1/keys/billing`. */
  readonly path: string;
  /** A JSON value, serialized with `JSON.stringify`. */
  readonly body?: unknown;
  /** The JSON body as text, sent byte for byte (when member order matters). Overrides `body`. */
  readonly jsonText?: string;
  /** Send the bearer token; default true. */
  readonly auth?: boolean;
  /** Extra request headers (e.g. `Keyward-Step-Up`); they never replace authorization, content-type, accept or signature fields. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Sign with the device key (data plane); default false. */
  readonly sign?: boolean;
  /** May the request be sent again to another address (see the module comment)? Default: only `GET`. */
  readonly retry?: boolean;
  readonly signal?: AbortSignal;
}

export interface JsonResponse<T = unknown> {
  readonly status: number;
  /** The parsed JSON body. */
  readonly body: T;
  /** The base URL that answered. */
  readonly address: string;
  /**
   * Signed requests only: the request hash the keyholder binds into a sealed
   * secret as `kw_request`, for the attempt that got this response:
   * SHA-256(Signature-Input ‖ LF ‖ Signature), the two field values as sent
   * (`requestHashOf` in packages/server/src/keyholder/service.ts). The
   * signature covers method, target, body digest, `created` and `nonce`, and
   * Ed25519 is deterministic, so this names that one signed request.
   */
  readonly requestHash?: Uint8Array;
  /** The `Keyward-Keyholder-Signature` header of the response, when it has one. */
  readonly keyholderSignature?: string;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Error codes (Node / undici) that prove no connection was opened, so nothing was sent. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);
const SERVICE_CODE = /^KW_[A-Z0-9_]{1,64}$/;
const MAX_SERVICE_MESSAGE = 1024;

const invalid = (message: string): KeywardClientError => new KeywardClientError('KW_INVALID_ARGUMENT', message);

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(hostname);
}

/** Checks a base URL and returns it without a trailing slash. */
function checkAddress(address: unknown, allowInsecureHttp: boolean): string {
  if (typeof address !== 'string') throw invalid('every address must be a string');
  let u: URL;
  try {
    u = new URL(address);
  } catch (cause) {
    throw new KeywardClientError('KW_INVALID_ARGUMENT', `address ${JSON.stringify(address)} is not an absolute URL`, { cause });
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw invalid(`address ${address} must be http or https`);
  if (u.username !== '' || u.password !== '') throw invalid(`address ${address} must not carry userinfo`);
  if (u.search !== '' || u.hash !== '') throw invalid(`address ${address} must not have a query or fragment`);
  if (u.protocol === 'http:' && !allowInsecureHttp && !isLoopback(u.hostname)) {
    throw invalid(`address ${address} uses http to a non-loopback host: use https (or allowInsecureHttp)`);
  }
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
}

/** True when the error (or one in its cause chain) proves the connection never opened. */
function provablyNotSent(e: unknown): boolean {
  const seen = new Set<unknown>();
  let cur: unknown = e;
  while (cur !== null && typeof cur === 'object' && !seen.has(cur)) {
    seen.add(cur);
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && NOT_SENT_CODES.has(code)) return true;
    const errors = (cur as { errors?: unknown }).errors;
    if (Array.isArray(errors) && errors.length > 0 && errors.every((x) => provablyNotSent(x))) return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
}

async function readCapped(res: Response, max: number): Promise<Uint8Array | null> {
  const declared = res.headers.get('content-length');
  if (declared !== null && Number(declared) > max) {
    await res.body?.cancel().catch(() => undefined);
    return null;
  }
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > max) {
      await reader.cancel().catch(() => undefined);
      return null;
    }
    parts.push(value);
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

type Attempt =
  | { readonly kind: 'ok'; readonly response: JsonResponse }
  | { readonly kind: 'http-error'; readonly error: KeywardClientError }
  | { readonly kind: 'network'; readonly notSent: boolean; readonly error: unknown }
  | { readonly kind: 'timeout' };

class TimeoutReason extends Error {
  constructor() {
    super('attempt timed out');
    this.name = 'TimeoutError';
  }
}

/**
 * A client of the v1 API over one or more addresses of the same service.
 *
 * @example
 * const http = new KeywardHttpClient({
 *   addresses: ['https://kms-1.example.com', 'https://kms-2.example.com'],
 *   token, device: { keyId: 'dev_7f3a', signingSeed },
 * });
 * const { body } = await http.data('billing', 'orders', 'datakey', { recipient, context: { table: 'orders' } });
 */
export class KeywardHttpClient {
  readonly addresses: readonly string[];
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  readonly keyId: string;
  readonly #token: string;
  readonly #seed: Uint8Array;
  readonly #fetch: typeof fetch;
  /** Index of the address that answered last; the next call starts there. */
  #preferred = 0;
  readonly #pin: KeyholderEvidenceVerifier | undefined;
  /** keyholderPin: the verified response key of the keyholder behind each address (each API node may have its own). */
  readonly #attested = new Map<string, Promise<{ key: Uint8Array; attestation: KeyholderAttestation }>>();

  constructor(options: KeywardHttpClientOptions) {
    if (options === null || typeof options !== 'object') throw invalid('options are required');
    const { addresses, token, device } = options;
    if (!Array.isArray(addresses) || addresses.length === 0) throw invalid('addresses must be a non-empty array of base URLs');
    this.addresses = Object.freeze(addresses.map((a) => checkAddress(a, options.allowInsecureHttp === true)));
    if (typeof token !== 'string' || !/^[\x21-\x7e]+$/.test(token)) throw invalid('token must be a non-empty string of visible ASCII');
    if (device === null || typeof device !== 'object') throw invalid('device is required');
    if (typeof device.keyId !== 'string' || !/^[\x20-\x7e]+$/.test(device.keyId) || /["\\]/.test(device.keyId)) {
      throw invalid('device.keyId must be a non-empty printable ASCII string without quotes or backslashes');
    }
    if (!(device.signingSeed instanceof Uint8Array) || device.signingSeed.length !== 32) throw invalid('device.signingSeed must be a 32-byte Ed25519 seed');
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 2 ** 31 - 1) throw invalid('timeoutMs must be a positive integer');
    const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    if (!Number.isSafeInteger(maxResponseBytes) || maxResponseBytes < 1) throw invalid('maxResponseBytes must be a positive integer');
    if (options.fetch !== undefined ? typeof options.fetch !== 'function' : typeof globalThis.fetch !== 'function') throw invalid('no fetch: pass options.fetch');
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#token = token;
    if (options.keyholderPin !== undefined && (options.keyholderPin === null || typeof options.keyholderPin.challenge !== 'function')) throw invalid('keyholderPin must be a KeyholderEvidenceVerifier');
    this.#pin = options.keyholderPin;
    this.#seed = device.signingSeed.slice();
    this.keyId = device.keyId;
    this.timeoutMs = timeoutMs;
    this.maxResponseBytes = maxResponseBytes;
  }

  /** Wipes the client's copy of the device seed; signed requests fail afterwards. */
  dispose(): void {
    this.#seed.fill(0);
  }

  /**
   * A signed data-plane call: `POST /v1/data/{ns}/{name}/{op}`, retried on
   * another address as {@link DATA_OPERATION_RETRY} says.
   */
  data<T = unknown>(ns: string, name: string, op: DataOperation, body: JsonText | object, options: { signal?: AbortSignal } = {}): Promise<JsonResponse<T>> {
    if (typeof ns !== 'string' || !NAME_PATTERN.test(ns) || typeof name !== 'string' || !NAME_PATTERN.test(name)) {
      return Promise.reject(invalid('namespace and key names are 1–64 of A–Z a–z 0–9 . _ - and start with a letter or digit'));
    }
    if (!(DATA_OPERATIONS as readonly string[]).includes(op)) return Promise.reject(invalid(`unknown data-plane operation ${String(op)}`));
    const jsonText = body instanceof JsonText ? body.text : JSON.stringify(body);
    const pinned = this.#pin !== undefined && KEYHOLDER_SIGNED_OPERATIONS.includes(op);
    const request: RequestOptions = {
      method: 'POST', path: `/v1/data/${ns}/${name}/${op}`, jsonText, sign: true, retry: DATA_OPERATION_RETRY[op],
      ...(pinned ? { headers: { [KEYHOLDER_PROOF_HEADER]: '1' } } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    };
    if (!pinned) return this.request<T>(request);
    // Pinned: nothing goes to an address before the keyholder behind it verified (a node whose keyholder does not is skipped).
    return this.#send<T>(request, this.#pinGate).then((res) => this.#checkSigned(op, `${ns}/${name}`, jsonText, res, res.requestHash));
  }

  /**
   * An attested key release (docs/tee.md §Release flow): `POST
   * /v1/attest/{ns}/{name}/release` with the nonce, recipient, context and
   * evidence; bearer token only, never retried (it spends the nonce). With
   * `keyholderPin`, the keyholder behind the address is attested first and
   * its signature over the release (bound to the nonce) is checked, as for
   * the data plane.
   */
  release<T = unknown>(ns: string, name: string, body: { nonce: string; recipient: string; context?: Record<string, string>; evidence: unknown }, options: { signal?: AbortSignal } = {}): Promise<JsonResponse<T>> {
    if (typeof ns !== 'string' || !NAME_PATTERN.test(ns) || typeof name !== 'string' || !NAME_PATTERN.test(name)) {
      return Promise.reject(invalid('namespace and key names are 1–64 of A–Z a–z 0–9 . _ - and start with a letter or digit'));
    }
    const nonce = body !== null && typeof body === 'object' && typeof body.nonce === 'string' ? base64urlDecode(body.nonce) : null;
    if (nonce === null || nonce.length !== 32) return Promise.reject(invalid('body.nonce must be the 32-byte base64url nonce of the nonce route'));
    const jsonText = JSON.stringify(body);
    const request: RequestOptions = {
      method: 'POST', path: `/v1/attest/${ns}/${name}/release`, jsonText, retry: false,
      ...(this.#pin !== undefined ? { headers: { [KEYHOLDER_PROOF_HEADER]: '1' } } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    };
    if (this.#pin === undefined) return this.request<T>(request);
    return this.#send<T>(request, this.#pinGate).then((res) => this.#checkSigned('release', `${ns}/${name}`, jsonText, res, nonce));
  }

  /** keyholderPin: attests the keyholder behind `address` (once) before anything is sent there. */
  readonly #pinGate = (address: string): Promise<unknown> => this.#attestationAt(address, false);

  /**
   * keyholderPin: the verified attestation of the keyholder behind `address`
   * (default: the address the next call goes to), fetched and checked once
   * per address, again after `refresh`. Rejects with
   * KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED or KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH.
   */
  async keyholderAttestation(options: { refresh?: boolean; address?: string } = {}): Promise<KeyholderAttestation> {
    return (await this.#attestationAt(options.address ?? this.addresses[this.#preferred]!, options.refresh ?? false)).attestation;
  }

  #attestationAt(address: string, refresh: boolean): Promise<{ key: Uint8Array; attestation: KeyholderAttestation }> {
    if (this.#pin === undefined) return Promise.reject(invalid('no keyholderPin is configured'));
    if (!this.addresses.includes(address)) return Promise.reject(invalid(`${address} is not an address of this client`));
    let p = this.#attested.get(address);
    if (refresh || p === undefined) {
      const fresh = this.#attest(this.#pin, address);
      fresh.catch(() => { if (this.#attested.get(address) === fresh) this.#attested.delete(address); });
      this.#attested.set(address, fresh);
      p = fresh;
    }
    return p;
  }

  /** One request to `address` only (no failover): both attestation steps must reach the same keyholder. */
  async #at<T>(address: string, options: RequestOptions): Promise<JsonResponse<T>> {
    const a = await this.#attempt(address, options, options.body === undefined ? undefined : utf8.encode(JSON.stringify(options.body)), undefined);
    if (a.kind === 'ok') return a.response as JsonResponse<T>;
    if (a.kind === 'http-error') throw a.error;
    if (a.kind === 'timeout') throw new KeywardClientError('KW_CLIENT_TIMEOUT', `${options.method} ${options.path}: no answer from ${address} within ${this.timeoutMs} ms`, { address });
    throw new KeywardClientError('KW_CLIENT_UNAVAILABLE', `${options.method} ${options.path}: ${address}: ${errorMessage(a.error)}`, { address, cause: a.error });
  }

  async #attest(pin: KeyholderEvidenceVerifier, address: string): Promise<{ key: Uint8Array; attestation: KeyholderAttestation }> {
    const fail = (message: string, cause?: unknown) => new KeywardClientError('KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', message, { address, ...(cause === undefined ? {} : { cause }) });
    const offer = (await this.#at<{ platform?: unknown; offer?: unknown; responseKey?: unknown }>(address, { method: 'GET', path: '/v1/sys/keyholder/attestation' })).body;
    const key = typeof offer.responseKey === 'string' ? base64urlDecode(offer.responseKey) : null;
    if (typeof offer.platform !== 'string' || key === null || key.length !== 32 || offer.offer === null || typeof offer.offer !== 'object') throw fail('the keyholder attestation offer is malformed');
    let pending: ReturnType<KeyholderEvidenceVerifier['challenge']>;
    try {
      pending = pin.challenge(offer.platform, offer.offer as Record<string, unknown>);
    } catch (e) {
      throw e instanceof KeywardClientError ? e : fail(`the keyholder attestation offer does not verify: ${errorMessage(e)}`, e);
    }
    const nonce = crypto.getRandomValues(new Uint8Array(32));
    const answer = (await this.#at<{ responseKey?: unknown; evidence?: unknown }>(address, { method: 'POST', path: '/v1/sys/keyholder/attestation', body: { nonce: base64urlEncode(nonce), challenge: pending.challenge } })).body;
    if (answer.responseKey !== offer.responseKey || answer.evidence === null || typeof answer.evidence !== 'object') throw fail('the keyholder evidence is malformed or names another response key');
    let attestation: KeyholderAttestation;
    try {
      attestation = await pending.verify(answer.evidence as Record<string, unknown>, keyholderResponseKeyBinding(nonce, key));
    } catch (e) {
      throw e instanceof KeywardClientError ? e : fail(`the keyholder evidence does not verify: ${errorMessage(e)}`, e);
    }
    return { key, attestation };
  }

  /** Checks the keyholder's signature(s) on a pinned response: bound to `binding` (the request hash; release: the nonce). */
  async #checkSigned<T>(op: string, key: string, requestText: string, res: JsonResponse<T>, binding: Uint8Array | undefined): Promise<JsonResponse<T>> {
    if (res.keyholderSignature === undefined || binding === undefined) {
      throw new KeywardClientError('KW_CLIENT_KEYHOLDER_SIGNATURE_MISSING', `the ${op} response carries no keyholder signature: refused (the pinned keyholder signs every ${op} result)`, { address: res.address });
    }
    let request: unknown = null;
    try { request = JSON.parse(requestText); } catch { /* checked as malformed below */ }
    // rewrap: one signature per item, in order.
    const signatures = op === 'rewrap' ? res.keyholderSignature.split(/\s*,\s*/) : [res.keyholderSignature];
    const items = op === 'rewrap' ? (res.body as { items?: unknown }).items : undefined;
    const count = op === 'rewrap' ? (Array.isArray(items) ? items.length : -1) : 1;
    const check = (k: Uint8Array) => signatures.length === count && signatures.every((signature, i) =>
      verifyKeyholderResult(k, signature, { op, binding, key, ...(op === 'rewrap' ? { item: i } : {}), request, response: res.body }));
    // The keyholder behind the address that answered (attested before the request was sent there).
    if (check((await this.#attestationAt(res.address, false)).key)) return res;
    // The keyholder may have restarted with a new response key: attest once more (fresh evidence), then decide.
    if (check((await this.#attestationAt(res.address, true)).key)) return res;
    throw new KeywardClientError('KW_CLIENT_KEYHOLDER_SIGNATURE_INVALID', `the ${op} response's keyholder signature does not verify under the attested keyholder's response key: refused`, { address: res.address });
  }

  /** Any v1 request; see the module comment for what is retried. */
  request<T = unknown>(options: RequestOptions): Promise<JsonResponse<T>> {
    return this.#send<T>(options);
  }

  /**
   * `request`, with an optional `gate` run before each address is tried
   * (keyholderPin: attest the keyholder behind it). A gate that fails for
   * availability moves on like a failed attempt; any other failure refuses
   * that address (nothing is sent to it) and is thrown when no address answered.
   */
  async #send<T>(options: RequestOptions, gate?: (address: string) => Promise<unknown>): Promise<JsonResponse<T>> {
    const { method, path } = options;
    if (!['GET', 'POST', 'PUT', 'DELETE'].includes(method)) throw invalid(`unsupported method ${String(method)}`);
    if (typeof path !== 'string' || !/^\/[\x21-\x7e]*$/.test(path) || path.startsWith('//') || path.includes('#')) {
      throw invalid('path must start with one "/" and hold only visible ASCII, no fragment');
    }
    let text: string | undefined = options.jsonText;
    if (text === undefined && options.body !== undefined) text = JSON.stringify(options.body);
    if (text !== undefined && typeof text !== 'string') throw invalid('jsonText must be a string');
    const body = text === undefined ? undefined : utf8.encode(text);
    const retry = options.retry ?? method === 'GET';
    const signal = options.signal;
    signal?.throwIfAborted();

    const n = this.addresses.length;
    const start = this.#preferred;
    const attempts: AttemptFailure[] = [];
    let lastUnavailable: KeywardClientError | undefined;
    let lastCause: unknown;
    let refused: KeywardClientError | undefined;
    for (let i = 0; i < n; i++) {
      const index = (start + i) % n;
      const address = this.addresses[index]!;
      if (gate) {
        try {
          await gate(address);
        } catch (e) {
          if (!(e instanceof KeywardClientError)) throw e;
          attempts.push({ address, status: e.status, code: e.code, message: e.message });
          if (e.code === 'KW_CLIENT_UNAVAILABLE' || e.code === 'KW_CLIENT_TIMEOUT' || e.status === 503) lastCause = e;
          else refused ??= e;
          continue;
        }
      }
      const a = await this.#attempt(address, options, body, signal);
      switch (a.kind) {
        case 'ok':
          this.#preferred = index;
          return a.response as JsonResponse<T>;
        case 'http-error':
          if (a.error.status !== 503) throw a.error;
          attempts.push({ address, status: 503, code: a.error.code, message: a.error.message });
          if (!retry) throw withAttempts(a.error, attempts);
          lastUnavailable = a.error;
          break;
        case 'timeout':
          attempts.push({ address, status: 0, code: 'KW_CLIENT_TIMEOUT', message: `no answer within ${this.timeoutMs} ms` });
          if (!retry) {
            throw new KeywardClientError('KW_CLIENT_TIMEOUT', `${method} ${path}: no answer from ${address} within ${this.timeoutMs} ms; the operation may or may not have happened (not retried)`, { address, attempts });
          }
          break;
        case 'network':
          attempts.push({ address, status: 0, code: 'KW_CLIENT_UNAVAILABLE', message: errorMessage(a.error) });
          lastCause = a.error;
          if (!retry && !a.notSent) {
            throw new KeywardClientError('KW_CLIENT_UNAVAILABLE', `${method} ${path}: the connection to ${address} failed after the request may have been sent (not retried): ${errorMessage(a.error)}`, { address, attempts, cause: a.error });
          }
          break;
      }
    }
    // Every address failed over. A refused keyholder says most; a service-reported 503 (KW_SEALED, …) more than a refused connection.
    if (refused) throw withAttempts(refused, attempts);
    if (lastUnavailable) throw withAttempts(lastUnavailable, attempts);
    throw new KeywardClientError('KW_CLIENT_UNAVAILABLE', `${method} ${path}: no address of the key service answered (${attempts.map((x) => `${x.address}: ${x.message}`).join('; ')})`, { attempts, cause: lastCause });
  }

  async #attempt(address: string, options: RequestOptions, body: Uint8Array | undefined, signal: AbortSignal | undefined): Promise<Attempt> {
    const { method, path } = options;
    const url = `${address}${path}`;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(options.headers ?? {})) {
      if (!/^(authorization|content-type|accept|signature|signature-input|content-digest|host)$/i.test(k)) headers[k.toLowerCase()] = v;
    }
    headers.accept = 'application/json';
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (options.auth !== false) headers.authorization = `Bearer ${this.#token}`;
    let requestHash: Uint8Array | undefined;
    if (options.sign) {
      // Fresh created/nonce per attempt, over this address's authority.
      const sig = signRequest({ method, url, headers: {}, body: body ?? null }, { keyId: this.keyId, privateKey: this.#seed, label: 'kw' });
      requestHash = signedRequestHash(sig['Signature-Input'], sig.Signature);
      Object.assign(headers, sig);
    }

    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => controller.abort(new TimeoutReason()), this.timeoutMs);
    let status: number;
    let raw: Uint8Array | null;
    let keyholderSignature: string | null = null;
    try {
      const res = await this.#fetch(url, {
        method, headers, body: body as BodyInit | undefined, signal: controller.signal, redirect: 'error', credentials: 'omit',
      });
      status = res.status;
      keyholderSignature = options.sign || headers[KEYHOLDER_PROOF_HEADER] === '1' ? res.headers.get(KEYHOLDER_SIGNATURE_HEADER) : null;
      raw = await readCapped(res, this.maxResponseBytes);
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      if (controller.signal.reason instanceof TimeoutReason) return { kind: 'timeout' };
      return { kind: 'network', notSent: provablyNotSent(e), error: e };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }

    if (raw === null) {
      return { kind: 'http-error', error: new KeywardClientError('KW_CLIENT_BAD_RESPONSE', `${method} ${path}: the response is larger than ${this.maxResponseBytes} bytes`, { status, address }) };
    }
    let parsed: unknown;
    let parsedOk = true;
    try {
      parsed = JSON.parse(utf8Strict.decode(raw));
    } catch {
      parsedOk = false;
    }
    if (status >= 200 && status < 300) {
      if (!parsedOk || parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        return { kind: 'http-error', error: new KeywardClientError('KW_CLIENT_BAD_RESPONSE', `${method} ${path}: HTTP ${status} with a body that is not a JSON object`, { status, address }) };
      }
      return { kind: 'ok', response: { status, body: parsed, address, ...(requestHash ? { requestHash } : {}), ...(keyholderSignature !== null ? { keyholderSignature } : {}) } };
    }
    const err = (parsedOk && parsed !== null && typeof parsed === 'object' ? (parsed as { error?: unknown }).error : undefined) as { code?: unknown; message?: unknown } | undefined;
    if (err && typeof err === 'object' && typeof err.code === 'string' && SERVICE_CODE.test(err.code) && !err.code.startsWith('KW_CLIENT_')) {
      const message = typeof err.message === 'string' ? err.message.slice(0, MAX_SERVICE_MESSAGE) : err.code;
      return { kind: 'http-error', error: new KeywardClientError(err.code, message, { status, address }) };
    }
    return { kind: 'http-error', error: new KeywardClientError('KW_CLIENT_BAD_RESPONSE', `${method} ${path}: HTTP ${status} without a Keyward error body`, { status, address }) };
  }
}

/**
 * The request hash a sealed secret is bound to (`kw_request`):
 * SHA-256(Signature-Input ‖ LF ‖ Signature), the field values as sent.
 */
export function signedRequestHash(signatureInput: string, signature: string): Uint8Array {
  return sha256.create().update(utf8.encode(signatureInput)).update(Uint8Array.of(0x0a)).update(utf8.encode(signature)).digest();
}

function withAttempts(e: KeywardClientError, attempts: readonly AttemptFailure[]): KeywardClientError {
  return new KeywardClientError(e.code, e.message, { status: e.status, ...(e.address ? { address: e.address } : {}), attempts: [...attempts], cause: e.cause });
}

function errorMessage(e: unknown): string {
  if (e instanceof Error) {
    const code = (e.cause as { code?: unknown } | undefined)?.code;
    return typeof code === 'string' ? `${e.message} (${code})` : e.message;
  }
  return String(e);
}
