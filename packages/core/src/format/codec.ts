/**
 * Incremental encoder and decoder of whole envelopes. The byte API, the Web
 * Streams API and the Node adapter all drive these two classes, so there is
 * one implementation of chunking, end-of-payload detection and signatures.
 */
import { KeywardError } from '../errors.js';
import { CHUNK_SIZE, PREAMBLE_LENGTH } from './constants.js';
import { checkMagicPrefix, headerLengthFromPreamble, parseHeader } from './header.js';
import { CIPHER_CHUNK_SIZE, type ChunkOpener } from './payload.js';
import { ByteQueue } from './queue.js';
import { beginSeal, checkSignature, unlockHeader, type EnvelopeInfo, type OpenOptions, type OpenSession, type SealOptions, type SealSession } from './session.js';
import { wipe } from '../bytes.js';
import { platform } from '#platform';
import type { Hasher } from '../platform/types.js';

export class EnvelopeEncoder {
  private readonly queue = new ByteQueue();
  private headerSent = false;
  private constructor(private readonly session: SealSession) {}

  static async create(opts: SealOptions): Promise<EnvelopeEncoder> {
    return new EnvelopeEncoder(await beginSeal(opts));
  }

  private async sealChunk(chunk: Uint8Array, last: boolean, out: Uint8Array[]): Promise<void> {
    const ct = await this.session.sealer.seal(chunk, last);
    this.session.signatureHash?.update(ct);
    out.push(ct);
  }

  private start(out: Uint8Array[]): void {
    if (!this.headerSent) { out.push(this.session.header); this.headerSent = true; }
  }

  /** Accepts plaintext; returns the envelope bytes that are ready. */
  async push(plaintext: Uint8Array): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    this.start(out);
    this.queue.push(plaintext);
    // Hold back at least one byte: the final chunk must be sealed as final.
    while (this.queue.length > CHUNK_SIZE) await this.sealChunk(this.queue.take(CHUNK_SIZE), false, out);
    return out;
  }

  /** Seals the final chunk and appends the signature, if any. */
  async finish(): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    this.start(out);
    await this.sealChunk(this.queue.take(this.queue.length), true, out);
    const sig = await this.session.finish();
    if (sig.length) out.push(sig);
    return out;
  }
}

export class EnvelopeDecoder {
  private readonly queue = new ByteQueue();
  private session: OpenSession | null = null;
  private hash: Hasher | null = null;
  private failed = false;

  constructor(private readonly opts: OpenOptions, private readonly afterHeader?: (info: EnvelopeInfo) => void) {}

  /** Info known once the header is authenticated (signature not yet verified). */
  get info(): EnvelopeInfo | null { return this.session?.info ?? null; }

  private async tryHeader(): Promise<boolean> {
    if (this.queue.length < PREAMBLE_LENGTH) return false;
    const total = headerLengthFromPreamble(this.queue.peek(PREAMBLE_LENGTH));
    if (this.queue.length < total) return false;
    const headerBytes = this.queue.take(total);
    const header = parseHeader(headerBytes);
    this.session = await unlockHeader(header, this.opts);
    if (header.signer) this.hash = platform.sha512().update(headerBytes);
    this.afterHeader?.(this.session.info);
    return true;
  }

  private async guard<T>(f: () => Promise<T>): Promise<T> {
    if (this.failed) throw new KeywardError('KW_INVALID_ARGUMENT', 'the decoder already failed');
    try {
      return await f();
    } catch (e) {
      this.failed = true;
      if (this.session) wipe(this.session.payloadKey);
      throw e;
    }
  }

  /** Accepts envelope bytes; returns plaintext chunks that authenticated (not yet signature-verified). */
  push(bytes: Uint8Array): Promise<Uint8Array[]> {
    return this.guard(async () => {
      this.queue.push(bytes);
      if (!this.session && !(await this.tryHeader())) return [];
      const s = this.session!;
      const out: Uint8Array[] = [];
      // A chunk is final only if nothing but the signature follows it, so hold back one chunk + signature.
      while (this.queue.length > CIPHER_CHUNK_SIZE + s.signatureLength) {
        const ct = this.queue.take(CIPHER_CHUNK_SIZE);
        this.hash?.update(ct);
        out.push(await s.opener.open(ct, false));
      }
      return out;
    });
  }

  /** Ends the input: opens the final chunk and checks the signature. Fails closed. */
  finish(): Promise<{ chunks: Uint8Array[]; info: EnvelopeInfo }> {
    return this.guard(async () => {
      if (!this.session && !(await this.tryHeader())) {
        if (this.queue.length === 0) throw new KeywardError('KW_MALFORMED_HEADER', 'empty input');
        checkMagicPrefix(this.queue.peek(PREAMBLE_LENGTH));
        throw new KeywardError('KW_MALFORMED_HEADER', 'envelope ends inside its header');
      }
      const s = this.session!;
      const rest = this.queue.take(this.queue.length);
      const { plaintext: last, finalLength: finalLen } = await openTail(s, s.opener.chunksOpened, rest);
      this.hash?.update(rest.subarray(0, finalLen));
      const info = await checkSignature(s, this.hash?.digest() ?? new Uint8Array(0), rest.subarray(finalLen));
      wipe(s.payloadKey);
      return { chunks: [last], info };
    });
  }
}

/**
 * The end of a payload: `rest` is everything after the last non-final chunk
 * (`index` is the final chunk's number): the final chunk, then the signature
 * if the envelope is signed. Shared by the streaming decoder and the Node
 * parallel path so both fail with the same codes.
 */
export async function openTail(s: OpenSession, index: number, rest: Uint8Array): Promise<{ plaintext: Uint8Array; finalLength: number }> {
  const finalLength = rest.length - s.signatureLength;
  if (finalLength <= 0 && index === 0) {
    throw new KeywardError(s.signatureLength && rest.length ? 'KW_SIGNATURE_MISSING' : 'KW_TRUNCATED', 'the envelope has no payload');
  }
  try {
    if (finalLength < 0) throw new KeywardError('KW_TRUNCATED');
    return { plaintext: await s.opener.openIndexed(index, rest.subarray(0, finalLength), true), finalLength };
  } catch (e) {
    const tail = s.signatureLength ? await diagnoseTail(s.opener, index, rest) : null;
    if (tail === 'stripped') throw new KeywardError('KW_SIGNATURE_MISSING', 'the signature was stripped from a signed envelope');
    if (tail === 'cut') throw new KeywardError('KW_TRUNCATED', `payload was cut after chunk ${index + Math.ceil(rest.length / CIPHER_CHUNK_SIZE) - 1}`);
    throw e;
  }
}

/**
 * Diagnoses a signed envelope's tail that is not "final chunk ‖ signature":
 * 'stripped' when it authenticates as the end of an unsigned payload (the
 * signature was removed), 'cut' when it is whole non-final chunks (the
 * envelope was cut at a chunk boundary, signature included), else null.
 */
async function diagnoseTail(opener: ChunkOpener, first: number, rest: Uint8Array): Promise<'stripped' | 'cut' | null> {
  if (rest.length === 0) return null;
  const opens = async (index: number, chunk: Uint8Array, last: boolean) => {
    try {
      (await opener.openAt(index, chunk, last)).fill(0);
      return true;
    } catch {
      return false;
    }
  };
  let index = first;
  let o = 0;
  for (; rest.length - o > CIPHER_CHUNK_SIZE; o += CIPHER_CHUNK_SIZE, index++) {
    if (!(await opens(index, rest.subarray(o, o + CIPHER_CHUNK_SIZE), false))) return null;
  }
  const lastPiece = rest.subarray(o);
  if (await opens(index, lastPiece, true)) return 'stripped';
  if (lastPiece.length === CIPHER_CHUNK_SIZE && (await opens(index, lastPiece, false))) return 'cut';
  return null;
}
