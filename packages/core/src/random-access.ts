/**
 * Random access: open chunk k (or a byte range) without reading the chunks
 * before it. The header is still authenticated (commitment and MAC) first.
 * A signature covers the whole payload, so data read this way from a signed
 * envelope is typed `unverified`.
 */
import { KeywardError } from './errors.js';
import { CHUNK_SIZE, PREAMBLE_LENGTH, TAG_LENGTH } from './format/constants.js';
import { headerLengthFromPreamble, parseHeader } from './format/header.js';
import { CIPHER_CHUNK_SIZE } from './format/payload.js';
import { unlockHeader, type EnvelopeInfo, type OpenOptions, type OpenSession } from './format/session.js';
import { concat } from './bytes.js';

/** Where the envelope bytes come from: a buffer, or a file/object store that can read ranges. */
export interface RandomAccessSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** Plaintext read by random access. `signature` is 'unverified' for signed envelopes: never 'verified'. */
export interface ChunkRead {
  readonly data: Uint8Array;
  readonly signature: 'none' | 'unverified';
}

export class EnvelopeReader {
  private constructor(
    private readonly source: RandomAccessSource,
    private readonly session: OpenSession,
    private readonly payloadStart: number,
    readonly chunkCount: number,
    readonly plaintextSize: number,
  ) {}

  static async open(input: Uint8Array | RandomAccessSource, opts: OpenOptions): Promise<EnvelopeReader> {
    const source: RandomAccessSource = input instanceof Uint8Array
      ? { size: input.length, read: (o, n) => Promise.resolve(input.subarray(o, o + n)) }
      : input;
    const total = headerLengthFromPreamble(await source.read(0, PREAMBLE_LENGTH));
    if (source.size < total) throw new KeywardError('KW_MALFORMED_HEADER', 'envelope is shorter than its header');
    const header = parseHeader(await source.read(0, total));
    const session = await unlockHeader(header, opts);
    const payloadLength = source.size - total - session.signatureLength;
    if (payloadLength < TAG_LENGTH) throw new KeywardError('KW_TRUNCATED', 'the envelope has no complete payload');
    const chunkCount = Math.ceil(payloadLength / CIPHER_CHUNK_SIZE);
    const lastLength = payloadLength - (chunkCount - 1) * CIPHER_CHUNK_SIZE;
    if (lastLength < TAG_LENGTH) throw new KeywardError('KW_TRUNCATED', 'the final chunk is shorter than its tag');
    // As ChunkOpener.open: the final chunk is empty only when the whole payload is (one canonical form).
    if (chunkCount > 1 && lastLength === TAG_LENGTH) throw new KeywardError('KW_PAYLOAD_AUTH_FAILED', 'empty final chunk after other chunks (non-canonical)');
    return new EnvelopeReader(source, session, total, chunkCount, payloadLength - chunkCount * TAG_LENGTH);
  }

  get info(): EnvelopeInfo { return this.session.info; }

  /** Opens chunk `index` (0-based) alone. */
  async readChunk(index: number): Promise<ChunkRead> {
    if (!Number.isInteger(index) || index < 0 || index >= this.chunkCount) {
      throw new KeywardError('KW_CHUNK_OUT_OF_RANGE', `chunk ${index} is outside [0, ${this.chunkCount})`);
    }
    const offset = this.payloadStart + index * CIPHER_CHUNK_SIZE;
    const last = index === this.chunkCount - 1;
    const length = last ? this.plaintextSize - index * CHUNK_SIZE + TAG_LENGTH : CIPHER_CHUNK_SIZE;
    const ct = await this.source.read(offset, length);
    if (ct.length !== length) throw new KeywardError('KW_TRUNCATED', `chunk ${index} is cut short`);
    const data = await this.session.opener.openAt(index, ct, last);
    return { data, signature: this.session.info.signature ? 'unverified' : 'none' };
  }

  /** Reads `length` plaintext bytes at `position`, opening only the chunks that hold them. */
  async read(position: number, length: number): Promise<ChunkRead> {
    if (!Number.isInteger(position) || !Number.isInteger(length) || position < 0 || length < 0 || position + length > this.plaintextSize) {
      throw new KeywardError('KW_CHUNK_OUT_OF_RANGE', `range [${position}, ${position + length}) is outside the plaintext`);
    }
    const parts: Uint8Array[] = [];
    for (let i = Math.floor(position / CHUNK_SIZE); i * CHUNK_SIZE < position + length; i++) {
      const { data } = await this.readChunk(i);
      const from = Math.max(0, position - i * CHUNK_SIZE);
      parts.push(data.subarray(from, Math.min(data.length, position + length - i * CHUNK_SIZE)));
    }
    return { data: concat(...parts), signature: this.session.info.signature ? 'unverified' : 'none' };
  }
}
