/**
 * Sealing and opening regular files on worker threads.
 *
 * Chunks are independent: each needs only the payload key, its index and
 * whether it is final. The main thread writes the header, hands out batches
 * of chunks in order, and consumes their results in order, so the signature
 * hash (SHA-512 over header ‖ ciphertext) still sees the ciphertext in order
 * and the first failing chunk is the one reported. Workers read and write
 * their batches with positional I/O on the two file descriptors.
 *
 * The bytes are exactly those of the streaming path (EnvelopeEncoder /
 * EnvelopeDecoder), and so are the errors: the final chunk and signature go
 * through the decoder's own openTail. Tests check both paths against each other.
 */
import { platform } from '#platform';
import { wipe } from '../bytes.js';
import { KeywardError, type KeywardErrorCode } from '../errors.js';
import { CHUNK_SIZE, LIMITS, PREAMBLE_LENGTH } from '../format/constants.js';
import { headerLengthFromPreamble, parseHeader } from '../format/header.js';
import { openTail } from '../format/codec.js';
import { CIPHER_CHUNK_SIZE, sealedPayloadLength } from '../format/payload.js';
import {
  beginSeal, checkSignature, unlockHeader, type EnvelopeInfo, type OpenOptions, type SealOptions,
} from '../format/session.js';
import type { AtomicFile } from './atomic.js';
import type { FileInput } from './input.js';
import { sharedPool } from './pool.js';
import type { BatchJob, BatchResult } from './worker.js';

/** Chunks per batch: 2 MiB of plaintext, large enough that a batch costs far more than its messages. */
const BATCH_CHUNKS = 32;
/** Batches queued per worker, so a worker never waits for the main thread between batches. */
const QUEUE_DEPTH = 2;

type Job = Omit<BatchJob, 'id' | 'spare'>;

/**
 * Runs `count` batches on the pool, at most `workers × QUEUE_DEPTH` at a time,
 * and passes each returned ciphertext to `inOrder` in batch order. Waits for
 * every dispatched batch before returning or throwing: the caller closes the
 * file descriptors the workers use.
 */
async function runBatches(workers: number, count: number, job: (batch: number) => Job, inOrder: (ct: Uint8Array) => void): Promise<void> {
  const running = new Map<number, Promise<BatchResult>>();
  const spare: ArrayBuffer[] = [];
  let next = 0;
  // Workers stop when idle (and the caller may have awaited long since it checked): make sure they run.
  if (!(await sharedPool.start(workers))) throw new KeywardError('KW_INTERNAL', 'worker threads are not available');
  try {
    for (let b = 0; b < count; b++) {
      for (; next < count && next < b + workers * QUEUE_DEPTH; next++) {
        const give = spare.splice(0);
        running.set(next, sharedPool.run({ ...job(next), spare: give }, give));
      }
      const r = await running.get(b)!;
      running.delete(b);
      if (!r.ok) throw new KeywardError(r.code as KeywardErrorCode, r.message);
      if (r.ciphertext) {
        inOrder(r.ciphertext);
        spare.push(r.ciphertext.buffer as ArrayBuffer);
      }
    }
  } finally {
    await Promise.allSettled(running.values());
  }
}

/** Seals the regular file `input` (of `size` bytes, at least one chunk) into `out`. */
export async function sealParallel(input: FileInput, out: AtomicFile, opts: SealOptions, workers: number): Promise<void> {
  const { size } = input;
  const chunks = Math.max(1, Math.ceil(size / CHUNK_SIZE));
  if (chunks > LIMITS.maxChunks) throw new KeywardError('KW_COUNTER_OVERFLOW', `the input needs more than the format's 2^32 chunks`);
  const session = await beginSeal(opts);
  try {
    const { header, signatureHash } = session;
    await out.writeAt(header, 0);
    await runBatches(workers, Math.ceil(chunks / BATCH_CHUNKS), (b) => {
      const first = b * BATCH_CHUNKS;
      const n = Math.min(BATCH_CHUNKS, chunks - first);
      const inPos = first * CHUNK_SIZE;
      return {
        op: 'seal', alg: session.aead, key: session.payloadKey,
        firstChunk: first, chunks: n, endsPayload: first + n === chunks,
        inFd: input.fd, inPos, inLength: Math.min(size, inPos + n * CHUNK_SIZE) - inPos,
        outFd: out.fd, outPos: header.length + first * CIPHER_CHUNK_SIZE,
        returnCiphertext: signatureHash !== null,
      };
    }, (ct) => signatureHash!.update(ct));
    await input.checkUnchanged();
    const signature = await session.finish();
    if (signature.length) await out.writeAt(signature, header.length + sealedPayloadLength(size));
  } finally {
    wipe(session.payloadKey);
  }
}

/** Opens the regular file `input` into `out`; resolves only when every chunk and the signature verified. */
export async function openParallel(input: FileInput, out: AtomicFile, opts: OpenOptions, workers: number): Promise<EnvelopeInfo> {
  const { size } = input;
  const headerLength = headerLengthFromPreamble(await input.read(0, PREAMBLE_LENGTH));
  if (size < headerLength) throw new KeywardError('KW_MALFORMED_HEADER', 'envelope ends inside its header');
  const headerBytes = await input.read(0, headerLength);
  const header = parseHeader(headerBytes);
  const s = await unlockHeader(header, opts);
  try {
    const hash = header.signer ? platform.sha512().update(headerBytes) : null;
    // As EnvelopeDecoder.push: every chunk but the last CIPHER_CHUNK_SIZE + signature bytes is a whole, non-final chunk.
    const body = Math.max(0, Math.ceil((size - headerLength - CIPHER_CHUNK_SIZE - s.signatureLength) / CIPHER_CHUNK_SIZE));
    if (body >= LIMITS.maxChunks) throw new KeywardError('KW_COUNTER_OVERFLOW', `chunk counter ${LIMITS.maxChunks} is outside the format's 2^32 chunks`);
    await runBatches(workers, Math.ceil(body / BATCH_CHUNKS), (b) => {
      const first = b * BATCH_CHUNKS;
      const n = Math.min(BATCH_CHUNKS, body - first);
      return {
        op: 'open', alg: s.header.aead, key: s.payloadKey,
        firstChunk: first, chunks: n, endsPayload: false,
        inFd: input.fd, inPos: headerLength + first * CIPHER_CHUNK_SIZE, inLength: n * CIPHER_CHUNK_SIZE,
        outFd: out.fd, outPos: first * CHUNK_SIZE,
        returnCiphertext: hash !== null,
      };
    }, (ct) => hash!.update(ct));
    const restStart = headerLength + body * CIPHER_CHUNK_SIZE;
    const rest = await input.read(restStart, size - restStart);
    const { plaintext, finalLength } = await openTail(s, body, rest);
    hash?.update(rest.subarray(0, finalLength));
    await out.writeAt(plaintext, body * CHUNK_SIZE);
    await input.checkUnchanged();
    return await checkSignature(s, hash?.digest() ?? new Uint8Array(0), rest.subarray(finalLength));
  } finally {
    wipe(s.payloadKey);
  }
}
