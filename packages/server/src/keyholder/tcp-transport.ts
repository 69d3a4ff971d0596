/**
 * A TCP transport for the keyholder protocol (docs/tee.md §Enclave-ready
 * keyholder). Plain TCP carries nothing readable: it is always wrapped in
 * the attested channel (attested-channel.ts), which authenticates both ends
 * and encrypts every byte, so the network and the API host see ciphertext.
 *
 * vsock: Node has no AF_VSOCK socket. Inside a Nitro Enclave (or next to a
 * confidential VM) a vsock↔TCP proxy maps the vsock port onto this
 * transport — e.g. `socat VSOCK-LISTEN:5000,fork TCP:127.0.0.1:5000` in the
 * enclave and `socat TCP-LISTEN:5000,fork VSOCK-CONNECT:16:5000` on the
 * parent (CID 16 = the enclave), or AWS's `vsock-proxy`. The proxies see
 * only the attested channel's ciphertext, so they need no trust.
 *
 * @example
 * const tcp = new TcpTransport('127.0.0.1', 7300);
 * await tcp.listen((stream) => …);   // tcp.port is the bound port (0 = any)
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { KeyholderProtocolError } from './protocol.js';
import type { Transport, TransportListener } from './transport.js';

/** Parses `tcp:HOST:PORT` (`[v6]:PORT` allowed). Throws KW_INVALID_ARGUMENT. */
export function parseTcpAddress(spec: string): { host: string; port: number } {
  const m = /^tcp:(?:\[([0-9a-fA-F:]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(spec);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', `${JSON.stringify(spec)} is not tcp:HOST:PORT`);
  return { host: m[1] ?? m[2]!, port };
}

export class TcpTransport implements Transport {
  #port: number;

  constructor(readonly host: string, port: number) {
    this.#port = port;
  }

  /** `tcp:HOST:PORT`. */
  static parse(spec: string): TcpTransport {
    const a = parseTcpAddress(spec);
    return new TcpTransport(a.host, a.port);
  }

  /** The port: after `listen` with port 0, the one bound. */
  get port(): number { return this.#port; }

  get description(): string { return `tcp:${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.#port}`; }

  async listen(onConnection: (stream: Duplex) => void): Promise<TransportListener> {
    const server: Server = createServer((s: Socket) => {
      s.setNoDelay(true);
      onConnection(s);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, this.host, () => { server.off('error', reject); resolve(); });
    });
    const a = server.address();
    if (typeof a === 'object' && a !== null) this.#port = a.port;
    server.on('error', () => undefined);
    return { close: () => new Promise<void>((resolve) => { server.close(() => resolve()); }) };
  }

  connect(options: { timeoutMs?: number } = {}): Promise<Duplex> {
    const timeoutMs = options.timeoutMs ?? 2000;
    return new Promise<Duplex>((resolve, reject) => {
      const s = createConnection({ host: this.host, port: this.#port });
      const timer = setTimeout(() => { s.destroy(); reject(new Error(`connecting to ${this.description} timed out`)); }, timeoutMs);
      timer.unref();
      s.once('connect', () => { clearTimeout(timer); s.removeListener('error', reject); s.setNoDelay(true); resolve(s); });
      s.once('error', (e) => { clearTimeout(timer); reject(e); });
    });
  }
}
