/**
 * How keyholder messages travel: length-prefixed frames over a byte stream.
 *
 *   frame = u32be(length) ‖ UTF-8 JSON (length bytes, 1 ≤ length ≤ 1 MiB)
 *
 * The stream comes from a {@link Transport}: a Unix domain socket today
 * (mode 0600, in a directory only its owner can write), TCP or an enclave's
 * vsock later — anything that yields a Node `Duplex`. Framing and message
 * handling never depend on which.
 *
 * Bad input never crashes the process: a frame that is not UTF-8 JSON gets
 * an error response and the connection stays usable; a length over the limit
 * (the stream cannot be resynchronised after it) gets an error response and
 * the connection is closed.
 *
 * @example
 * const transport = new UnixSocketTransport('/var/lib/keyward/keyholder.sock');
 * const server = await serveFrames(transport, (message) => service.handle(message));
 * // client side
 * const channel = new FrameChannel(await transport.connect(), { onMessage, onClose });
 */
import { lstat, mkdir, chmod, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Duplex } from 'node:stream';
import { KeyholderProtocolError, MAX_FRAME_BYTES } from './protocol.js';

const HEADER = 4;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

// ---------------------------------------------------------------------------
// Framing

/** Encodes one message as a frame; KW_LIMIT_EXCEEDED if its JSON is over `maxBytes`. */
export function encodeFrame(message: unknown, maxBytes = MAX_FRAME_BYTES): Buffer {
  const json = Buffer.from(JSON.stringify(message), 'utf8');
  if (json.length === 0 || json.length > maxBytes) {
    throw new KeyholderProtocolError('KW_LIMIT_EXCEEDED', `a frame is at most ${maxBytes} bytes; this message is ${json.length}`);
  }
  const out = Buffer.allocUnsafe(HEADER + json.length);
  out.writeUInt32BE(json.length, 0);
  json.copy(out, HEADER);
  return out;
}

/** What a frame decoded to: a JSON value, or why it is not one. */
export type Decoded = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: KeyholderProtocolError };

/** Parses a frame's payload: strict UTF-8, then JSON. Never throws. */
export function decodePayload(payload: Uint8Array): Decoded {
  let text: string;
  try {
    text = strictUtf8.decode(payload);
  } catch {
    return { ok: false, error: new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'the frame is not valid UTF-8') };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false, error: new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'the frame is not JSON') };
  }
}

/**
 * Splits a byte stream into frame payloads. After an oversize or zero length
 * it is `broken` (the stream cannot be resynchronised) and yields nothing more.
 */
export class FrameDecoder {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #broken: KeyholderProtocolError | null = null;

  constructor(readonly maxBytes = MAX_FRAME_BYTES) {}

  /** Set once a fatal framing error was seen. */
  get broken(): KeyholderProtocolError | null { return this.#broken; }

  /** Feeds bytes; returns the complete payloads, in order. Throws KeyholderProtocolError once, on a fatal length. */
  push(chunk: Uint8Array): Buffer[] {
    if (this.#broken) return [];
    this.#chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.#buffered += chunk.byteLength;
    const out: Buffer[] = [];
    for (;;) {
      if (this.#buffered < HEADER) return out;
      const head = this.#peek(HEADER);
      const length = head.readUInt32BE(0);
      if (length === 0 || length > this.maxBytes) {
        this.#broken = new KeyholderProtocolError('KW_LIMIT_EXCEEDED', length === 0 ? 'a frame must not be empty' : `a frame is at most ${this.maxBytes} bytes; the peer announced ${length}`);
        this.#chunks = [];
        this.#buffered = 0;
        throw this.#broken;
      }
      if (this.#buffered < HEADER + length) return out;
      out.push(this.#take(HEADER + length).subarray(HEADER));
    }
  }

  #peek(n: number): Buffer {
    if (this.#chunks[0]!.length >= n) return this.#chunks[0]!.subarray(0, n);
    const all = Buffer.concat(this.#chunks);
    this.#chunks = [all];
    return all.subarray(0, n);
  }

  #take(n: number): Buffer {
    const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
    const frame = Buffer.from(all.subarray(0, n));
    const rest = all.subarray(n);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#buffered = rest.length;
    return frame;
  }
}

// ---------------------------------------------------------------------------
// A framed connection

export interface FrameChannelHandlers {
  /** One decoded frame (or why it did not decode). */
  onMessage(decoded: Decoded): void;
  /** A fatal framing error: the connection is being closed. */
  onFatal?(error: KeyholderProtocolError): void;
  /** The connection is gone (once). */
  onClose?(cause?: Error): void;
}

/** A Duplex carrying frames in both directions. */
export class FrameChannel {
  readonly #stream: Duplex;
  readonly #decoder: FrameDecoder;
  #closed = false;
  /** Writes are being gathered until the next tick (see send). */
  #corked = false;

  constructor(stream: Duplex, private readonly handlers: FrameChannelHandlers, maxBytes = MAX_FRAME_BYTES) {
    this.#stream = stream;
    this.#decoder = new FrameDecoder(maxBytes);
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    let lastError: Error | undefined;
    stream.on('error', (e: Error) => { lastError = e; });
    stream.on('close', () => this.#finish(lastError));
  }

  get closed(): boolean { return this.#closed; }

  #onData(chunk: Buffer): void {
    let payloads: Buffer[];
    try {
      payloads = this.#decoder.push(chunk);
    } catch (e) {
      const err = e instanceof KeyholderProtocolError ? e : new KeyholderProtocolError('KW_INTERNAL', 'framing failed');
      this.handlers.onFatal?.(err);
      this.end();
      return;
    }
    for (const p of payloads) {
      if (this.#closed) return;
      this.handlers.onMessage(decodePayload(p));
    }
  }

  #finish(cause?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.handlers.onClose?.(cause);
  }

  /**
   * Sends one message; returns false when the stream is closed or buffering (see {@link whenDrained}). Throws KW_LIMIT_EXCEEDED for an oversize message.
   * Frames sent in the same tick leave together (the stream is corked until the next tick): a pipelined group of requests, or
   * the answers finished in one turn of the event loop, cost one write instead of one each.
   */
  send(message: unknown): boolean {
    const frame = encodeFrame(message, this.#decoder.maxBytes);
    if (this.#closed || this.#stream.destroyed || this.#stream.writableEnded) return false;
    if (!this.#corked) {
      this.#corked = true;
      this.#stream.cork();
      process.nextTick(() => {
        this.#corked = false;
        this.#stream.uncork();
      });
    }
    return this.#stream.write(frame);
  }

  /** True while written frames wait for the peer to read them. */
  get needsDrain(): boolean { return this.#stream.writableNeedDrain; }

  /** Calls `cb` once the peer has read what was buffered (or the connection closed). */
  whenDrained(cb: () => void): void {
    if (!this.#stream.writableNeedDrain || this.#closed) { cb(); return; }
    const done = () => { this.#stream.off('drain', done); this.#stream.off('close', done); cb(); };
    this.#stream.once('drain', done);
    this.#stream.once('close', done);
  }

  /** Pauses / resumes reading (backpressure on a peer that sends faster than it is served). */
  pause(): void { this.#stream.pause(); }
  resume(): void { this.#stream.resume(); }

  /** Ends the connection after pending writes flush; destroys it if it does not close soon. */
  end(): void {
    if (this.#stream.writableEnded) return;
    this.#stream.end();
    setTimeout(() => this.#stream.destroy(), 1000).unref();
  }

  /** Closes the connection now. */
  destroy(): void { this.#stream.destroy(); }
}

// ---------------------------------------------------------------------------
// Transports

/** A listening endpoint. */
export interface TransportListener {
  /** Stops accepting connections (existing ones are the caller's to close). */
  close(): Promise<void>;
}

/**
 * Where the keyholder listens and the API connects. Implementations: a Unix
 * domain socket ({@link UnixSocketTransport}); TCP with mutual TLS or an
 * enclave's vsock later — each only has to produce Duplex streams.
 */
export interface Transport {
  /** For logs: where this transport points. */
  readonly description: string;
  listen(onConnection: (stream: Duplex) => void): Promise<TransportListener>;
  /** Connects; rejects (with the system error) when nothing listens. */
  connect(options?: { timeoutMs?: number }): Promise<Duplex>;
}

/**
 * A Unix domain socket. `listen` creates the directory (0700) if needed,
 * refuses a directory others can write to (they could replace the socket),
 * removes a stale socket file (but not a live one, nor a non-socket), and
 * creates the socket with mode 0600.
 */
export class UnixSocketTransport implements Transport {
  constructor(readonly path: string) {}

  get description(): string { return `unix:${this.path}`; }

  async listen(onConnection: (stream: Duplex) => void): Promise<TransportListener> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const d = await lstat(dir);
    if (!d.isDirectory()) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', `${dir} is not a directory`);
    if ((d.mode & 0o022) !== 0) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', `${dir} is writable by group or others: put the keyholder socket in a private directory (mode 0700)`);
    await this.#removeStale();

    const server: Server = createServer({ pauseOnConnect: false }, (s: Socket) => onConnection(s));
    // The socket is created with the process umask: make it 0600 from birth, then chmod to be explicit.
    const old = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.path, () => { server.off('error', reject); resolve(); });
      });
    } finally {
      process.umask(old);
    }
    await chmod(this.path, 0o600);
    server.on('error', () => undefined);
    return {
      close: () => new Promise<void>((resolve) => { server.close(() => resolve()); }),
    };
  }

  async #removeStale(): Promise<void> {
    let st;
    try {
      st = await lstat(this.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    if (!st.isSocket()) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', `${this.path} exists and is not a socket; refusing to replace it`);
    const live = await this.connect({ timeoutMs: 500 }).then((s) => { s.destroy(); return true; }, () => false);
    if (live) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', `another process already listens on ${this.path}`);
    await unlink(this.path);
  }

  connect(options: { timeoutMs?: number } = {}): Promise<Duplex> {
    const timeoutMs = options.timeoutMs ?? 2000;
    return new Promise<Duplex>((resolve, reject) => {
      const s = createConnection(this.path);
      const timer = setTimeout(() => { s.destroy(); reject(new Error(`connecting to ${this.path} timed out`)); }, timeoutMs);
      timer.unref();
      s.once('connect', () => { clearTimeout(timer); s.removeListener('error', reject); resolve(s); });
      s.once('error', (e) => { clearTimeout(timer); reject(e); });
    });
  }
}

// ---------------------------------------------------------------------------
// Serving

export interface ServeOptions {
  /** Connections served at once; more are closed on arrival. */
  readonly maxConnections?: number;
  /** Requests in flight per connection before reading from it pauses. */
  readonly maxInFlight?: number;
  /** Structured log line (never carries message contents). */
  readonly log?: (msg: string, fields?: Record<string, string | number | boolean>) => void;
}

/** A running server: closing it stops listening and closes every connection. */
export interface FrameServer {
  readonly connections: number;
  close(): Promise<void>;
}

/**
 * Serves `handle` over `transport`: every decoded frame goes to `handle`, and
 * what it resolves to is sent back as one frame. `handle` must not throw (the
 * service turns every failure into an error response); if it does anyway,
 * or its answer does not fit a frame, an error response is sent instead.
 * Frames that do not decode get `{ id: null, ok: false, error }`.
 */
export async function serveFrames(transport: Transport, handle: (message: unknown) => Promise<unknown>, options: ServeOptions = {}): Promise<FrameServer> {
  const maxConnections = options.maxConnections ?? 32;
  const maxInFlight = options.maxInFlight ?? 64;
  const log = options.log ?? (() => undefined);
  const channels = new Set<FrameChannel>();

  const listener = await transport.listen((stream) => {
    if (channels.size >= maxConnections) {
      log('connection refused', { reason: 'too many connections', max: maxConnections });
      stream.destroy();
      return;
    }
    let inFlight = 0;
    // Stop reading while too many requests are in flight, or while the peer does not read its responses.
    const flow = (): void => {
      if (inFlight >= maxInFlight || channel.needsDrain) channel.pause();
      else channel.resume();
    };
    const reply = (message: unknown, id: unknown): void => {
      try {
        channel.send(message);
      } catch (e) {
        const err = e instanceof KeyholderProtocolError ? e : new KeyholderProtocolError('KW_INTERNAL', 'the response could not be encoded');
        channel.send({ id: isId(id) ? id : null, ok: false, error: { code: err.code, message: err.message } });
      }
      if (channel.needsDrain) channel.whenDrained(flow);
    };
    const channel: FrameChannel = new FrameChannel(stream, {
      onMessage: (decoded) => {
        if (!decoded.ok) {
          reply({ id: null, ok: false, error: { code: decoded.error.code, message: decoded.error.message } }, null);
          return;
        }
        const id = (decoded.value as { id?: unknown } | null)?.id;
        inFlight++;
        flow();
        handle(decoded.value)
          .catch(() => ({ id: isId(id) ? id : null, ok: false, error: { code: 'KW_INTERNAL', message: 'internal error' } }))
          .then((response) => reply(response, id))
          .finally(() => {
            inFlight--;
            flow();
          })
          .catch(() => undefined);
      },
      onFatal: (error) => {
        log('connection closed', { reason: error.code });
        try {
          channel.send({ id: null, ok: false, error: { code: error.code, message: error.message } });
        } catch { /* closing anyway */ }
      },
      onClose: () => { channels.delete(channel); },
    });
    channels.add(channel);
  });

  return {
    get connections() { return channels.size; },
    close: async () => {
      for (const c of channels) c.destroy();
      channels.clear();
      await listener.close();
    },
  };
}

function isId(id: unknown): id is number | string {
  return (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0) || (typeof id === 'string' && id.length > 0 && id.length <= 64);
}
