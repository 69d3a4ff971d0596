/**
 * Chunked payload AEAD (docs/format.md §Payload). Plaintext is cut into
 * 64 KiB chunks; chunk i is sealed under the payload key with the nonce
 *   nonce = i as 11-byte big-endian ‖ flag, flag = 0x01 on the final chunk else 0x00
 * and no associated data (the payload key already binds the header). Only the
 * final chunk may be short; it is empty only when the whole payload is.
 */
import { platform } from '#platform';
import { KeywardError } from '../errors.js';
import type { AeadKey } from '../platform/types.js';
import { CHUNK_SIZE, LIMITS, NONCE_LENGTH, TAG_LENGTH, type PayloadAead } from './constants.js';

export const CIPHER_CHUNK_SIZE = CHUNK_SIZE + TAG_LENGTH;

export function chunkNonce(index: number, last: boolean): Uint8Array {
  if (!Number.isSafeInteger(index) || index < 0 || index >= LIMITS.maxChunks) {
    throw new KeywardError('KW_COUNTER_OVERFLOW', `chunk counter ${index} is outside the format's 2^32 chunks`);
  }
  const n = new Uint8Array(NONCE_LENGTH);
  n[7] = (index >>> 24) & 0xff;
  n[8] = (index >>> 16) & 0xff;
  n[9] = (index >>> 8) & 0xff;
  n[10] = index & 0xff;
  n[11] = last ? 1 : 0;
  return n;
}

/** Number of ciphertext bytes for `n` plaintext bytes. */
export function sealedPayloadLength(n: number): number {
  const chunks = Math.max(1, Math.ceil(n / CHUNK_SIZE));
  return n + chunks * TAG_LENGTH;
}

/** Number of plaintext bytes in `n` bytes of a valid payload's ciphertext (the inverse of sealedPayloadLength). */
export function openedPayloadLength(n: number): number {
  return Math.max(0, n - Math.ceil(n / CIPHER_CHUNK_SIZE) * TAG_LENGTH);
}

/** Seals chunks in order; refuses to reuse a counter or to continue after the final chunk. */
export class ChunkSealer {
  private index = 0;
  private done = false;
  private constructor(private readonly aead: AeadKey) {}

  static async create(alg: PayloadAead, payloadKey: Uint8Array): Promise<ChunkSealer> {
    return new ChunkSealer(await platform.aead(alg, payloadKey));
  }

  /** The nonce for the next chunk; advances the counter. */
  private next(chunk: Uint8Array, last: boolean): Uint8Array {
    if (this.done) throw new KeywardError('KW_INVALID_ARGUMENT', 'the payload is already finished');
    if (chunk.length > CHUNK_SIZE || (!last && chunk.length !== CHUNK_SIZE)) throw new KeywardError('KW_INTERNAL', 'bad chunk length');
    const nonce = chunkNonce(this.index, last);
    this.index++;
    this.done = last;
    return nonce;
  }

  async seal(chunk: Uint8Array, last: boolean): Promise<Uint8Array> {
    return this.aead.seal(this.next(chunk, last), chunk);
  }

  /** As `seal`, writing the sealed chunk into `out` at `offset`; returns its length. */
  async sealInto(chunk: Uint8Array, last: boolean, out: Uint8Array, offset: number): Promise<number> {
    const nonce = this.next(chunk, last);
    if (this.aead.sealInto) await this.aead.sealInto(nonce, chunk, out, offset);
    else out.set(await this.aead.seal(nonce, chunk), offset);
    return chunk.length + TAG_LENGTH;
  }
}

/**
 * Opens chunks in order, telling apart modification, truncation and
 * trailing data: a failed non-final chunk that opens as final means data
 * follows the end (KW_TRAILING_DATA); a failed final chunk that opens as
 * non-final means the end was cut off (KW_TRUNCATED).
 */
export class ChunkOpener {
  private index = 0;
  private constructor(private readonly aead: AeadKey) {}

  static async create(alg: PayloadAead, payloadKey: Uint8Array): Promise<ChunkOpener> {
    return new ChunkOpener(await platform.aead(alg, payloadKey));
  }

  get chunksOpened(): number { return this.index; }

  async open(chunk: Uint8Array, last: boolean): Promise<Uint8Array> {
    const pt = await this.openIndexed(this.index, chunk, last);
    this.index++;
    return pt;
  }

  /** Opens chunk `i` with the checks of `open` (truncation, trailing data), without advancing. */
  async openIndexed(i: number, chunk: Uint8Array, last: boolean): Promise<Uint8Array> {
    checkChunk(i, chunk, last);
    const pt = await this.aead.open(chunkNonce(i, last), chunk);
    if (pt) return pt;
    throw chunkFailure(i, last, await this.aead.open(chunkNonce(i, !last), chunk));
  }

  /** Random access: opens chunk `index` directly. `last` says whether it ends the payload. */
  async openAt(index: number, chunk: Uint8Array, last: boolean): Promise<Uint8Array> {
    const pt = await this.aead.open(chunkNonce(index, last), chunk);
    if (!pt) throw new KeywardError('KW_PAYLOAD_AUTH_FAILED', `chunk ${index} failed authentication`);
    return pt;
  }
}

function checkChunk(i: number, chunk: Uint8Array, last: boolean): void {
  if (chunk.length < TAG_LENGTH) throw new KeywardError('KW_TRUNCATED', 'payload ends inside a chunk tag');
  if (last && i > 0 && chunk.length === TAG_LENGTH) throw new KeywardError('KW_PAYLOAD_AUTH_FAILED', 'empty final chunk after other chunks (non-canonical)');
}

/**
 * The error for chunk `i` that failed to open with its flag: `other` is what it
 * opened to with the opposite flag (wiped here), which tells truncation or
 * trailing data from modification.
 */
function chunkFailure(i: number, last: boolean, other: Uint8Array | null): KeywardError {
  if (other) {
    other.fill(0);
    return last
      ? new KeywardError('KW_TRUNCATED', `payload was cut after chunk ${i}`)
      : new KeywardError('KW_TRAILING_DATA', `data follows the final chunk ${i}`);
  }
  return new KeywardError('KW_PAYLOAD_AUTH_FAILED', `chunk ${i} failed authentication`);
}

/**
 * A payload that is one final chunk (an unsigned envelope of at most 64 KiB),
 * opened synchronously with the checks of `ChunkOpener` and the same errors.
 * Only where the platform has `aeadSync`.
 */
export function openSingleChunkSync(alg: PayloadAead, payloadKey: Uint8Array, chunk: Uint8Array): Uint8Array {
  const sync = platform.aeadSync!;
  if (chunk.length === 0) throw new KeywardError('KW_TRUNCATED', 'the envelope has no payload');
  checkChunk(0, chunk, true);
  const pt = sync.open(alg, payloadKey, chunkNonce(0, true), chunk);
  if (pt) return pt;
  throw chunkFailure(0, true, sync.open(alg, payloadKey, chunkNonce(0, false), chunk));
}

/** Seals `plaintext` (at most one chunk) as the final chunk 0 into `out` at `offset`, synchronously. */
export function sealSingleChunkSync(alg: PayloadAead, payloadKey: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): void {
  if (plaintext.length > CHUNK_SIZE) throw new KeywardError('KW_INTERNAL', 'bad chunk length');
  platform.aeadSync!.sealInto(alg, payloadKey, chunkNonce(0, true), plaintext, out, offset);
}
