/**
 * The attested keyholder channel (issue #8; docs/tee.md §Enclave-ready
 * keyholder): the keyholder protocol over any byte stream (TCP, a vsock
 * proxy, …) between an API process and a keyholder it cannot see into.
 *
 * The API (client) checks the keyholder's TEE evidence and pins its
 * measurements before it sends a single request; the keyholder (server)
 * checks the API's key before it does any work; every byte after the
 * handshake is encrypted and authenticated end to end, so the host and the
 * network between them (and any vsock proxy) see ciphertext only.
 * {@link AttestedTransport} wraps an inner Transport and yields plaintext
 * Duplex streams, so framing (transport.ts) and everything above it are
 * unchanged.
 *
 * Handshake (a Noise-NK-like exchange from node:crypto primitives: X25519,
 * HKDF-SHA-256, ChaCha20-Poly1305, Ed25519; frames are u32be(length) ‖ UTF-8
 * JSON, ≤ 64 KiB, binary values base64url):
 *
 *   1. C→S hello      { v: 1, nonce: 32 random bytes, ephemeral: X25519 e_c, client: Ed25519 public key }
 *   2. S→C offer      { v: 1, ephemeral: X25519 e_s (the keyholder's channel key for this connection), platform, offer }
 *   3. C→S challenge  { challenge }          (TPM: MakeCredential for the offered AK, to the offered EK)
 *   4. C→S auth       { signature }          Ed25519 over "keyward/v1 keyholder-channel client\n" ‖ th
 *   5. S→C evidence   { evidence }           (TPM: the activated credential and a quote)
 *
 *   th      = SHA-256(frame1 ‖ frame2 ‖ frame3)   (each frame with its length prefix)
 *   binding = SHA-256("keyward/v1 keyholder-channel binding\n" ‖ th)   → TPM quote extraData / Nitro user_data / report data
 *   k_c2s ‖ k_s2c = HKDF-SHA-256(ikm = X25519(e_c, e_s), salt = th, info = "keyward/v1 keyholder-channel keys", 64)
 *
 * The binding covers the client's fresh nonce and ephemeral key and the
 * keyholder's ephemeral key, so evidence from another handshake (replayed)
 * does not verify here, and only the attested code holds e_s's private key.
 * The keyholder answers `{ error: { code, message } }` and closes when the
 * client key is not authorized or its signature fails
 * (KW_KEYHOLDER_CHANNEL_REFUSED). The client refuses evidence that does not
 * verify (KW_KEYHOLDER_ATTESTATION_FAILED) or does not satisfy its pinned
 * policy (KW_KEYHOLDER_MEASUREMENT_MISMATCH), `details.reason` the
 * @keyward/attest code, and closes without sending anything else.
 *
 * Records: u32be(length) ‖ ChaCha20-Poly1305(key of the direction, nonce =
 * 0⁴ ‖ u64be(sequence), plaintext ≤ 16 KiB); a record that does not
 * authenticate closes the connection. Keys are wiped when it closes.
 */
import {
  createCipheriv, createDecipheriv, createHash, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync,
  randomBytes, sign as edSign, verify as edVerify, type KeyObject,
} from 'node:crypto';
import { Duplex } from 'node:stream';
import { evaluatePolicy, isAttestError, type AttestationClaims, type ReleasePolicy } from '@keyward/attest';
import { KeyholderProtocolError } from './protocol.js';
import type { Transport, TransportListener } from './transport.js';

const LABEL_CLIENT = 'keyward/v1 keyholder-channel client\n';
const LABEL_BINDING = 'keyward/v1 keyholder-channel binding\n';
const LABEL_KEYS = 'keyward/v1 keyholder-channel keys';
/** Largest handshake frame. */
export const MAX_HANDSHAKE_FRAME = 64 * 1024;
/** Largest record plaintext. */
export const MAX_RECORD_PLAINTEXT = 16 * 1024;
const TAG = 16;

// ---------------------------------------------------------------------------
// Evidence: what the keyholder offers and proves, what the API checks

/** The keyholder's side of its attestation (e.g. tpm-evidence.ts's Tpm2ChannelEvidence). */
export interface ChannelEvidenceProvider {
  /** The claims platform, e.g. `tpm2`. */
  readonly platform: string;
  /** Public material the verifier needs to make its challenge (TPM: EK certificate, EK and AK public areas). */
  offer(): Promise<Record<string, unknown>>;
  /** Evidence binding `binding` (TPM: quote extraData), answering the verifier's challenge. */
  prove(challenge: unknown, binding: Uint8Array): Promise<Record<string, unknown>>;
}

/** The API's side: a challenge for an offer, then the check of the evidence (throws AttestError or KeyholderProtocolError). */
export interface ChannelEvidenceVerifier {
  challenge(platform: string, offer: unknown): { challenge: unknown; verify(evidence: unknown, binding: Uint8Array): AttestationClaims };
}

// ---------------------------------------------------------------------------
// Keys

/** Reads every PEM public key (Ed25519 SPKI) in `text`: the keyholder's authorized API clients. */
export function parseAuthorizedClients(text: string): KeyObject[] {
  const blocks = text.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? [];
  const keys = blocks.map((b) => createPublicKey(b));
  if (keys.length === 0 || keys.some((k) => k.asymmetricKeyType !== 'ed25519')) {
    throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'authorized clients are Ed25519 public keys (PEM "PUBLIC KEY" blocks)');
  }
  return keys;
}

/** Reads the API's Ed25519 private key (PEM PKCS#8). */
export function parseClientKey(pem: string): KeyObject {
  let k: KeyObject;
  try {
    k = createPrivateKey(pem);
  } catch (e) {
    throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'the keyholder client key is not a PEM private key', { cause: e });
  }
  if (k.asymmetricKeyType !== 'ed25519') throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'the keyholder client key must be an Ed25519 key');
  return k;
}

const rawOf = (k: KeyObject): Buffer => Buffer.from(k.export({ format: 'jwk' }).x!, 'base64url');
const okp = (crv: 'X25519' | 'Ed25519', raw: Buffer): KeyObject => createPublicKey({ key: { kty: 'OKP', crv, x: raw.toString('base64url') }, format: 'jwk' });

// ---------------------------------------------------------------------------
// Handshake frames

/** Buffers a raw stream and hands out length-prefixed frames; `release()` detaches and returns what is left. */
class FrameReader {
  #buf = Buffer.alloc(0);
  #waiter: { resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  #failed: Error | null = null;
  readonly #onData = (c: Buffer) => { this.#buf = Buffer.concat([this.#buf, c]); this.#pump(); };
  readonly #onEnd = () => this.#fail(new Error('the peer closed the connection during the handshake'));
  readonly #onError = (e: Error) => this.#fail(e);

  constructor(private readonly raw: Duplex, private readonly max: number) {
    raw.on('data', this.#onData);
    raw.on('end', this.#onEnd);
    raw.on('close', this.#onEnd);
    raw.on('error', this.#onError);
  }

  next(): Promise<Buffer> {
    if (this.#failed) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => { this.#waiter = { resolve, reject }; this.#pump(); });
  }

  #pump(): void {
    if (!this.#waiter || this.#buf.length < 4) return;
    const n = this.#buf.readUInt32BE(0);
    if (n === 0 || n > this.max) { this.#fail(new KeyholderProtocolError('KW_LIMIT_EXCEEDED', `a handshake frame is 1..${this.max} bytes`)); return; }
    if (this.#buf.length < 4 + n) return;
    const frame = this.#buf.subarray(0, 4 + n);
    this.#buf = this.#buf.subarray(4 + n);
    const w = this.#waiter;
    this.#waiter = null;
    w.resolve(Buffer.from(frame));
  }

  #fail(e: Error): void {
    this.#failed ??= e;
    const w = this.#waiter;
    this.#waiter = null;
    w?.reject(this.#failed);
  }

  release(): Buffer {
    this.raw.off('data', this.#onData);
    this.raw.off('end', this.#onEnd);
    this.raw.off('close', this.#onEnd);
    this.raw.off('error', this.#onError);
    return this.#buf;
  }
}

function frameOf(message: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(message), 'utf8');
  if (json.length > MAX_HANDSHAKE_FRAME) throw new KeyholderProtocolError('KW_LIMIT_EXCEEDED', 'a handshake message is too large');
  const out = Buffer.alloc(4 + json.length);
  out.writeUInt32BE(json.length, 0);
  json.copy(out, 4);
  return out;
}

function parseFrame(frame: Buffer): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(frame.subarray(4)));
  } catch {
    throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'a handshake frame is not UTF-8 JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'a handshake frame is not a JSON object');
  return v as Record<string, unknown>;
}

function bytesField(o: Record<string, unknown>, name: string, length?: number): Buffer {
  const s = o[name];
  const b = typeof s === 'string' && /^[A-Za-z0-9_-]*$/.test(s) ? Buffer.from(s, 'base64url') : null;
  if (b === null || b.toString('base64url') !== s || (length !== undefined && b.length !== length)) {
    throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', `handshake field ${name} must be base64url${length !== undefined ? ` of ${length} bytes` : ''}`);
  }
  return b;
}

/** The error a peer sent instead of its next message, rebuilt; null when the frame is not one. */
function peerError(o: Record<string, unknown>): KeyholderProtocolError | null {
  const e = o.error as { code?: unknown; message?: unknown } | undefined;
  if (!e || typeof e !== 'object') return null;
  const code = e.code === 'KW_KEYHOLDER_CHANNEL_REFUSED' ? 'KW_KEYHOLDER_CHANNEL_REFUSED' : 'KW_KEYHOLDER_UNAVAILABLE';
  return new KeyholderProtocolError(code, typeof e.message === 'string' ? e.message.slice(0, 512) : undefined);
}

function transcript(...frames: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const f of frames) h.update(f);
  return h.digest();
}

/** The value the keyholder's evidence must carry for transcript hash `th`. */
export function channelBinding(th: Uint8Array): Buffer {
  return createHash('sha256').update(LABEL_BINDING).update(th).digest();
}

function channelKeys(own: KeyObject, peerRaw: Buffer, th: Buffer): { c2s: Buffer; s2c: Buffer } {
  const shared = diffieHellman({ privateKey: own, publicKey: okp('X25519', peerRaw) });
  if (shared.every((b) => b === 0)) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'the peer ephemeral key is a low-order point');
  const okm = Buffer.from(hkdfSync('sha256', shared, th, LABEL_KEYS, 64));
  shared.fill(0);
  const out = { c2s: Buffer.from(okm.subarray(0, 32)), s2c: Buffer.from(okm.subarray(32)) };
  okm.fill(0);
  return out;
}

// ---------------------------------------------------------------------------
// Records

/** The plaintext side of an established channel: a Duplex that encrypts what is written and decrypts what arrives. */
class SecureStream extends Duplex {
  #sendSeq = 0n;
  #recvSeq = 0n;
  #buf: Buffer;
  readonly #onData = (c: Buffer) => { this.#buf = this.#buf.length === 0 ? c : Buffer.concat([this.#buf, c]); this.#drain(); };

  constructor(private readonly raw: Duplex, private readonly sendKey: Buffer, private readonly recvKey: Buffer, leftover: Buffer) {
    super({ allowHalfOpen: false });
    this.#buf = leftover;
    raw.on('data', this.#onData);
    raw.on('end', () => this.push(null));
    raw.on('error', (e: Error) => this.destroy(e));
    raw.on('close', () => this.destroy());
    if (leftover.length > 0) queueMicrotask(() => this.#drain());
  }

  static nonce(seq: bigint): Buffer {
    const n = Buffer.alloc(12);
    n.writeBigUInt64BE(seq, 4);
    return n;
  }

  #drain(): void {
    while (this.#buf.length >= 4 && !this.destroyed) {
      const n = this.#buf.readUInt32BE(0);
      if (n < TAG + 1 || n > MAX_RECORD_PLAINTEXT + TAG) { this.destroy(new KeyholderProtocolError('KW_LIMIT_EXCEEDED', 'a channel record has an invalid length')); return; }
      if (this.#buf.length < 4 + n) return;
      const rec = this.#buf.subarray(4, 4 + n);
      this.#buf = this.#buf.subarray(4 + n);
      let plain: Buffer;
      try {
        const d = createDecipheriv('chacha20-poly1305', this.recvKey, SecureStream.nonce(this.#recvSeq++), { authTagLength: TAG });
        d.setAuthTag(rec.subarray(rec.length - TAG));
        plain = Buffer.concat([d.update(rec.subarray(0, rec.length - TAG)), d.final()]);
      } catch {
        this.destroy(new KeyholderProtocolError('KW_REQUEST_UNAUTHENTICATED', 'a channel record does not authenticate'));
        return;
      }
      if (!this.push(plain)) this.raw.pause();
    }
  }

  override _read(): void {
    this.raw.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    const out: Buffer[] = [];
    for (let off = 0; off < chunk.length; off += MAX_RECORD_PLAINTEXT) {
      const part = chunk.subarray(off, off + MAX_RECORD_PLAINTEXT);
      const c = createCipheriv('chacha20-poly1305', this.sendKey, SecureStream.nonce(this.#sendSeq++), { authTagLength: TAG });
      const body = Buffer.concat([c.update(part), c.final(), c.getAuthTag()]);
      const head = Buffer.alloc(4);
      head.writeUInt32BE(body.length, 0);
      out.push(head, body);
    }
    if (this.raw.destroyed) { cb(new Error('the channel is closed')); return; }
    this.raw.write(Buffer.concat(out), cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.raw.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.raw.off('data', this.#onData);
    this.raw.destroy();
    this.sendKey.fill(0);
    this.recvKey.fill(0);
    cb(err);
  }
}

// ---------------------------------------------------------------------------
// The transport

export interface AttestedServerOptions {
  readonly provider: ChannelEvidenceProvider;
  /** The API clients allowed to connect (Ed25519 public keys). */
  readonly authorizedClients: readonly KeyObject[];
  readonly handshakeTimeoutMs?: number;
  readonly log?: (msg: string, fields?: Record<string, string | number | boolean>) => void;
}

export interface AttestedClientOptions {
  /** The API's Ed25519 private key (its public key is in the keyholder's authorized clients). */
  readonly key: KeyObject;
  readonly verifier: ChannelEvidenceVerifier;
  /** What the keyholder's verified claims must satisfy: platforms, pinned measurements, debug, minimum versions. */
  readonly policy: ReleasePolicy;
  readonly now?: () => Date;
  /** Default 20 s (a TPM activation and quote take a moment). */
  readonly handshakeTimeoutMs?: number;
  /** Called with the claims of every keyholder this client accepted (logs, metrics). */
  readonly onAttested?: (claims: AttestationClaims) => void;
}

/**
 * Wraps `inner` (TCP, …) in the attested channel. `server` options make
 * `listen` work (the keyholder), `client` options make `connect` work (the API).
 *
 * @example
 * // keyholder
 * await serveFrames(new AttestedTransport(TcpTransport.parse('tcp:0.0.0.0:7300'), { server: { provider, authorizedClients } }), handle);
 * // API
 * new KeyholderClient({ transport: new AttestedTransport(TcpTransport.parse('tcp:10.0.0.5:7300'), { client: { key, verifier, policy } }) });
 */
export class AttestedTransport implements Transport {
  constructor(readonly inner: Transport, private readonly opts: { server?: AttestedServerOptions; client?: AttestedClientOptions }) {}

  get description(): string { return `attested+${this.inner.description}`; }

  listen(onConnection: (stream: Duplex) => void): Promise<TransportListener> {
    const s = this.opts.server;
    if (!s) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'an attested transport listens only with server options');
    const log = s.log ?? (() => undefined);
    return this.inner.listen((raw) => {
      const timer = setTimeout(() => raw.destroy(), s.handshakeTimeoutMs ?? 30_000);
      timer.unref();
      serverHandshake(raw, s).then((secure) => {
        clearTimeout(timer);
        onConnection(secure);
      }, (e: unknown) => {
        clearTimeout(timer);
        log('channel refused', { code: (e as { code?: string }).code ?? 'handshake failed' });
        // A refusal frame was ended onto the stream: let it flush, then make sure the connection goes.
        if (raw.writableEnded) setTimeout(() => raw.destroy(), 1000).unref();
        else raw.destroy();
      });
    });
  }

  async connect(options: { timeoutMs?: number } = {}): Promise<Duplex> {
    const c = this.opts.client;
    if (!c) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'an attested transport connects only with client options');
    const raw = await this.inner.connect(options);
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        clientHandshake(raw, c),
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new KeyholderProtocolError('KW_KEYHOLDER_UNAVAILABLE', 'the keyholder channel handshake timed out')), c.handshakeTimeoutMs ?? 20_000); timer.unref(); }),
      ]);
    } catch (e) {
      raw.destroy();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }
}

async function serverHandshake(raw: Duplex, s: AttestedServerOptions): Promise<Duplex> {
  const reader = new FrameReader(raw, MAX_HANDSHAKE_FRAME);
  const refuse = (message: string): never => {
    raw.end(frameOf({ error: { code: 'KW_KEYHOLDER_CHANNEL_REFUSED', message } }));
    throw new KeyholderProtocolError('KW_KEYHOLDER_CHANNEL_REFUSED', message);
  };
  const f1 = await reader.next();
  const hello = parseFrame(f1);
  if (hello.v !== 1) refuse('unsupported channel version');
  bytesField(hello, 'nonce', 32);
  const clientEphemeral = bytesField(hello, 'ephemeral', 32);
  const clientRaw = bytesField(hello, 'client', 32);
  const client = s.authorizedClients.find((k) => rawOf(k).equals(clientRaw));
  if (!client) refuse('this API client key is not authorized by the keyholder');

  const eph = generateKeyPairSync('x25519');
  const f2 = frameOf({ v: 1, ephemeral: rawOf(eph.publicKey).toString('base64url'), platform: s.provider.platform, offer: await s.provider.offer() });
  raw.write(f2);
  const f3 = await reader.next();
  const challenge = parseFrame(f3);
  const f4 = await reader.next();
  const auth = parseFrame(f4);
  const th = transcript(f1, f2, f3);
  const sig = bytesField(auth, 'signature', 64);
  if (!edVerify(null, Buffer.concat([Buffer.from(LABEL_CLIENT), th]), client!, sig)) refuse('the API client signature over the handshake does not verify');

  const keys = channelKeys(eph.privateKey, clientEphemeral, th);
  let evidence: Record<string, unknown>;
  try {
    evidence = await s.provider.prove(challenge.challenge, channelBinding(th));
  } catch (e) {
    keys.c2s.fill(0);
    keys.s2c.fill(0);
    raw.end(frameOf({ error: { code: 'KW_KEYHOLDER_UNAVAILABLE', message: 'the keyholder could not produce its evidence' } }));
    throw e;
  }
  raw.write(frameOf({ evidence }));
  return new SecureStream(raw, keys.s2c, keys.c2s, reader.release());
}

async function clientHandshake(raw: Duplex, c: AttestedClientOptions): Promise<Duplex> {
  const reader = new FrameReader(raw, MAX_HANDSHAKE_FRAME);
  try {
    const eph = generateKeyPairSync('x25519');
    const clientPub = rawOf(createPublicKey(c.key));
    const f1 = frameOf({ v: 1, nonce: randomBytes(32).toString('base64url'), ephemeral: rawOf(eph.publicKey).toString('base64url'), client: clientPub.toString('base64url') });
    raw.write(f1);
    const f2 = await reader.next();
    const offer = parseFrame(f2);
    const err = peerError(offer);
    if (err) throw err;
    if (offer.v !== 1 || typeof offer.platform !== 'string') throw new KeyholderProtocolError('KW_KEYHOLDER_ATTESTATION_FAILED', 'the keyholder offer is malformed', { details: { reason: 'ATTEST_MALFORMED' } });
    const serverEphemeral = bytesField(offer, 'ephemeral', 32);
    let pending;
    try {
      pending = c.verifier.challenge(offer.platform, offer.offer);
    } catch (e) {
      throw attestationFailure(e);
    }
    const f3 = frameOf({ challenge: pending.challenge });
    const th = transcript(f1, f2, f3);
    const signature = edSign(null, Buffer.concat([Buffer.from(LABEL_CLIENT), th]), c.key);
    raw.write(Buffer.concat([f3, frameOf({ signature: signature.toString('base64url') })]));
    const f5 = await reader.next();
    const answer = parseFrame(f5);
    const err5 = peerError(answer);
    if (err5) throw err5;
    let claims: AttestationClaims;
    try {
      claims = pending.verify(answer.evidence, channelBinding(th));
    } catch (e) {
      throw attestationFailure(e);
    }
    const decision = evaluatePolicy(c.policy, claims, (c.now ?? (() => new Date()))());
    if (!decision.allowed) throw new KeyholderProtocolError('KW_KEYHOLDER_MEASUREMENT_MISMATCH', `the keyholder's evidence does not satisfy the pinned policy: ${decision.reason}`.slice(0, 1024), { details: { reason: decision.code } });
    const keys = channelKeys(eph.privateKey, serverEphemeral, th);
    c.onAttested?.(claims);
    return new SecureStream(raw, keys.c2s, keys.s2c, reader.release());
  } catch (e) {
    reader.release();
    throw e instanceof KeyholderProtocolError ? e : new KeyholderProtocolError('KW_KEYHOLDER_UNAVAILABLE', `the keyholder channel handshake failed: ${e instanceof Error ? e.message : String(e)}`.slice(0, 512), { cause: e });
  }
}

function attestationFailure(e: unknown): KeyholderProtocolError {
  if (e instanceof KeyholderProtocolError) return e;
  if (isAttestError(e)) return new KeyholderProtocolError('KW_KEYHOLDER_ATTESTATION_FAILED', `the keyholder's evidence does not verify: ${e.message}`.slice(0, 1024), { cause: e, details: { reason: e.code } });
  return new KeyholderProtocolError('KW_KEYHOLDER_ATTESTATION_FAILED', "the keyholder's evidence is malformed", { cause: e, details: { reason: 'ATTEST_MALFORMED' } });
}
