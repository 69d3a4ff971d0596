/**
 * The API's side of the keyholder socket: requests with ids and timeouts,
 * responses checked against their schemas, reconnection with exponential
 * backoff, and one typed error for a keyholder that is not there.
 *
 * - Not running, restarting, killed, or the connection dropped:
 *   KW_KEYHOLDER_UNAVAILABLE (the HTTP layer answers 503). Requests in flight
 *   when a connection drops fail with it too: the operation may or may not
 *   have happened (its audit event, if appended, is recoverable with
 *   `pending-events`).
 * - No answer within the timeout: KW_KEYHOLDER_TIMEOUT (same caveat).
 * - Every other error is the keyholder's own, rebuilt as a
 *   KeyholderProtocolError with the same code.
 *
 * The client never throws anything but KeyholderProtocolError from `call`, and
 * never crashes its process when the keyholder dies.
 *
 * @example
 * const kh = KeyholderClient.unix('/var/lib/keyward/keyholder.sock');
 * const st = await kh.call('status', {});
 * try { await kh.call('datakey', params) }
 * catch (e) { if (isProtocolError(e, 'KW_KEYHOLDER_UNAVAILABLE')) return reply(503) }
 */
import {
  KeyholderProtocolError, OPS, responseSchema,
  type Op, type OpParams, type OpResult,
} from './protocol.js';
import { FrameChannel, UnixSocketTransport, type Decoded, type Transport } from './transport.js';

export interface KeyholderClientOptions {
  readonly transport: Transport;
  /** Per-request timeout; default 10 s. */
  readonly timeoutMs?: number;
  /** Connect timeout; default 1 s. */
  readonly connectTimeoutMs?: number;
  /** Reconnect backoff: first delay and cap (ms); defaults 50 and 2000. */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /** Keep reconnecting in the background after a loss; default true. Timers never keep the process alive. */
  readonly autoReconnect?: boolean;
}

interface InFlight {
  readonly op: Op;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: KeyholderProtocolError) => void;
  readonly timer: NodeJS.Timeout;
}

const unavailable = (message: string, cause?: unknown) =>
  new KeyholderProtocolError('KW_KEYHOLDER_UNAVAILABLE', message, cause === undefined ? undefined : { cause });

export class KeyholderClient {
  readonly #transport: Transport;
  readonly #timeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #autoReconnect: boolean;
  #channel: FrameChannel | null = null;
  #connecting: Promise<FrameChannel> | null = null;
  readonly #inFlight = new Map<number, InFlight>();
  #nextId = 1;
  #failures = 0;
  #retryAt = 0;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(options: KeyholderClientOptions) {
    this.#transport = options.transport;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 1000;
    this.#initialMs = options.backoff?.initialMs ?? 50;
    this.#maxMs = options.backoff?.maxMs ?? 2000;
    this.#autoReconnect = options.autoReconnect ?? true;
  }

  /** A client of the keyholder listening on the Unix socket `path`. */
  static unix(path: string, options: Omit<KeyholderClientOptions, 'transport'> = {}): KeyholderClient {
    return new KeyholderClient({ ...options, transport: new UnixSocketTransport(path) });
  }

  /** True while a connection is open. */
  get connected(): boolean { return this.#channel !== null && !this.#channel.closed; }

  /** Connects now (otherwise the first call does). Throws KW_KEYHOLDER_UNAVAILABLE. */
  async connect(): Promise<void> {
    await this.#ensureChannel();
  }

  /**
   * Sends one request and resolves with its result (checked against the op's
   * result schema). Rejects with a KeyholderProtocolError: the keyholder's
   * own code, KW_KEYHOLDER_UNAVAILABLE or KW_KEYHOLDER_TIMEOUT.
   */
  async call<O extends Op>(op: O, params: OpParams<O>, options: { timeoutMs?: number } = {}): Promise<OpResult<O>> {
    // Connected: sent now, so calls reach the keyholder in the order they were made (the audit pipe relies on it).
    const open = this.#channel !== null && !this.#channel.closed ? this.#channel : null;
    const channel = open ?? await this.#ensureChannel();
    const id = this.#nextId++;
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    return new Promise<OpResult<O>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#inFlight.delete(id);
        reject(new KeyholderProtocolError('KW_KEYHOLDER_TIMEOUT', `the keyholder did not answer ${op} within ${timeoutMs} ms; it may or may not have happened`));
      }, timeoutMs);
      timer.unref();
      this.#inFlight.set(id, { op, resolve: resolve as (v: unknown) => void, reject, timer });
      try {
        channel.send({ id, op, params });
        if (channel.closed) throw unavailable('the connection to the keyholder closed');
      } catch (e) {
        clearTimeout(timer);
        this.#inFlight.delete(id);
        reject(e instanceof KeyholderProtocolError ? e : unavailable('sending to the keyholder failed', e));
      }
    });
  }

  /** Closes the connection and stops reconnecting; calls in flight fail with KW_KEYHOLDER_UNAVAILABLE. */
  close(): Promise<void> {
    this.#closed = true;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    this.#channel?.destroy();
    this.#channel = null;
    this.#failAll(unavailable('the keyholder client was closed'));
    return Promise.resolve();
  }

  #ensureChannel(): Promise<FrameChannel> {
    if (this.#closed) return Promise.reject(unavailable('the keyholder client was closed'));
    if (this.#channel && !this.#channel.closed) return Promise.resolve(this.#channel);
    if (this.#connecting) return this.#connecting;
    const wait = this.#retryAt - Date.now();
    if (wait > 0) return Promise.reject(unavailable(`the keyholder at ${this.#transport.description} is unavailable; next connection attempt in ${wait} ms`));
    const attempt = this.#open();
    this.#connecting = attempt;
    const clear = () => { if (this.#connecting === attempt) this.#connecting = null; };
    attempt.then(clear, clear);
    return attempt;
  }

  async #open(): Promise<FrameChannel> {
    let stream;
    try {
      stream = await this.#transport.connect({ timeoutMs: this.#connectTimeoutMs });
    } catch (e) {
      this.#failures++;
      this.#retryAt = Date.now() + this.#delay();
      this.#scheduleReconnect();
      // An attested transport's refusal (attested-channel.ts) keeps its own code: the keyholder is there but not trusted.
      if (e instanceof KeyholderProtocolError && (e.code === 'KW_KEYHOLDER_ATTESTATION_FAILED' || e.code === 'KW_KEYHOLDER_MEASUREMENT_MISMATCH' || e.code === 'KW_KEYHOLDER_CHANNEL_REFUSED')) throw e;
      throw unavailable(`the keyholder at ${this.#transport.description} is unavailable (${(e as { code?: string }).code ?? 'connect failed'})`, e);
    }
    if (this.#closed) {
      stream.destroy();
      throw unavailable('the keyholder client was closed');
    }
    this.#failures = 0;
    this.#retryAt = 0;
    const channel: FrameChannel = new FrameChannel(stream, {
      onMessage: (decoded) => this.#onMessage(decoded),
      onClose: () => {
        if (this.#channel === channel) this.#channel = null;
        this.#failAll(unavailable('the connection to the keyholder was lost; the operation may or may not have happened'));
        this.#scheduleReconnect();
      },
    });
    this.#channel = channel;
    return channel;
  }

  #onMessage(decoded: Decoded): void {
    if (!decoded.ok) return; // a keyholder that sends garbage: its requests time out
    const r = responseSchema.safeParse(decoded.value);
    if (!r.success || typeof r.data.id !== 'number') return;
    const entry = this.#inFlight.get(r.data.id);
    if (!entry) return; // answered after its timeout
    this.#inFlight.delete(r.data.id);
    clearTimeout(entry.timer);
    const res = r.data;
    if (!res.ok) {
      entry.reject(KeyholderProtocolError.fromWire(res.error));
      return;
    }
    const checked = OPS[entry.op].result.safeParse(res.result);
    if (checked.success) entry.resolve(checked.data);
    else entry.reject(new KeyholderProtocolError('KW_INTERNAL', `the keyholder's ${entry.op} result does not match the protocol`, { cause: checked.error }));
  }

  #failAll(error: KeyholderProtocolError): void {
    const all = [...this.#inFlight.values()];
    this.#inFlight.clear();
    for (const e of all) {
      clearTimeout(e.timer);
      e.reject(error);
    }
  }

  #delay(): number {
    const base = Math.min(this.#maxMs, this.#initialMs * 2 ** Math.min(this.#failures - 1, 20));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  #scheduleReconnect(): void {
    if (!this.#autoReconnect || this.#closed || this.#reconnectTimer) return;
    const delay = Math.max(0, this.#retryAt - Date.now()) || this.#delay() || this.#initialMs;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      if (this.#closed || this.connected || this.#connecting) return;
      this.#retryAt = 0;
      this.#ensureChannel().catch(() => undefined); // a failure schedules the next attempt
    }, delay);
    this.#reconnectTimer.unref();
  }
}
