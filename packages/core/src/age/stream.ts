/**
 * The age v1 payload: STREAM over ChaCha20-Poly1305.
 *
 *     payload    = nonce(16) || chunk_0 || ... || chunk_n
 *     key        = HKDF-SHA-256(ikm = file key, salt = nonce, info = "payload")
 *     chunk_i    = ChaCha20-Poly1305(key, counter_i(11, big endian) || last(1), plaintext_i)
 *
 * Plaintext chunks are 64 KiB; the final one may be shorter but is empty only
 * when the whole payload is empty.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { PAYLOAD_NONCE_SIZE } from './format.js';
import { ascii, fail, randomBytes, wipe } from './util.js';

/** Plaintext bytes per chunk. */
export const CHUNK_SIZE = 64 * 1024;
const TAG_SIZE = 16;
const ENCRYPTED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE;

function payloadKey(fileKey: Uint8Array, nonce: Uint8Array): Uint8Array {
  return hkdf(sha256, fileKey, nonce, ascii('payload'), 32);
}

/** The 12-byte STREAM nonce: 11-byte big-endian counter, then the last-chunk flag. */
function chunkNonce(counter: number, last: boolean): Uint8Array {
  const n = new Uint8Array(12);
  let c = counter;
  for (let i = 10; i >= 0 && c > 0; i--) {
    n[i] = c % 256;
    c = Math.floor(c / 256);
  }
  n[11] = last ? 1 : 0;
  return n;
}

/** Encrypts `plaintext` as a complete payload (nonce included) under `fileKey`. */
export function encryptPayload(fileKey: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const nonce = randomBytes(PAYLOAD_NONCE_SIZE);
  const key = payloadKey(fileKey, nonce);
  try {
    const chunks = Math.max(1, Math.ceil(plaintext.length / CHUNK_SIZE));
    const out = new Uint8Array(PAYLOAD_NONCE_SIZE + plaintext.length + chunks * TAG_SIZE);
    out.set(nonce, 0);
    let off = PAYLOAD_NONCE_SIZE;
    for (let i = 0; i < chunks; i++) {
      const pt = plaintext.subarray(i * CHUNK_SIZE, Math.min(plaintext.length, (i + 1) * CHUNK_SIZE));
      const ct = chacha20poly1305(key, chunkNonce(i, i === chunks - 1)).encrypt(pt);
      out.set(ct, off);
      off += ct.length;
    }
    return out;
  } finally {
    wipe(key);
  }
}

/** Called with each chunk's plaintext once that chunk is authenticated. */
export type ChunkSink = (plaintext: Uint8Array) => void;

function tryOpen(key: Uint8Array, counter: number, last: boolean, ct: Uint8Array): Uint8Array | null {
  try {
    return chacha20poly1305(key, chunkNonce(counter, last)).decrypt(ct);
  } catch {
    return null;
  }
}

/**
 * Decrypts a complete payload (starting with its nonce). Each authenticated
 * chunk is passed to `sink` in order; the function throws on the first
 * problem, so a sink only ever sees authenticated plaintext, but may have seen
 * a prefix of it when an error is thrown.
 *
 * Errors: KW_TRUNCATED (the payload ends without a valid final chunk),
 * KW_TRAILING_DATA (data after the final chunk), KW_PAYLOAD_AUTH_FAILED (a
 * chunk does not authenticate), KW_AGE_MALFORMED (an empty final chunk in a
 * non-empty payload).
 */
export function decryptPayload(fileKey: Uint8Array, payload: Uint8Array, sink: ChunkSink): void {
  if (payload.length < PAYLOAD_NONCE_SIZE) fail('KW_TRUNCATED', 'age payload ends before its nonce');
  const key = payloadKey(fileKey, payload.subarray(0, PAYLOAD_NONCE_SIZE));
  try {
    let off = PAYLOAD_NONCE_SIZE;
    for (let counter = 0; ; counter++) {
      const rest = payload.length - off;
      if (rest === 0) fail('KW_TRUNCATED', 'age payload ends without a final chunk');
      if (rest < TAG_SIZE) fail('KW_TRUNCATED', `age payload chunk ${counter} is shorter than its tag`);

      if (rest > ENCRYPTED_CHUNK_SIZE) {
        // More data follows, so this must be a full, non-final chunk.
        const ct = payload.subarray(off, off + ENCRYPTED_CHUNK_SIZE);
        const pt = tryOpen(key, counter, false, ct);
        if (pt === null) {
          const last = tryOpen(key, counter, true, ct);
          if (last === null) fail('KW_PAYLOAD_AUTH_FAILED', `age payload chunk ${counter} failed authentication`);
          // A genuine final chunk, then garbage: release the authenticated chunk, then reject the rest.
          sink(last);
          fail('KW_TRAILING_DATA', `age payload has data after its final chunk ${counter}`);
        }
        sink(pt);
        off += ENCRYPTED_CHUNK_SIZE;
        continue;
      }

      // The rest of the payload is one chunk, which must be the final one.
      const ct = payload.subarray(off);
      const pt = tryOpen(key, counter, true, ct);
      if (pt === null) {
        const notLast = tryOpen(key, counter, false, ct);
        if (notLast !== null) {
          // A full non-final chunk at the very end is a file cut at a chunk boundary: the chunk
          // itself is authentic. A short one cannot be non-final, so it is never released.
          if (ct.length === ENCRYPTED_CHUNK_SIZE) sink(notLast);
          fail('KW_TRUNCATED', `age payload ends after non-final chunk ${counter}`);
        }
        fail('KW_PAYLOAD_AUTH_FAILED', `age payload chunk ${counter} failed authentication`);
      }
      if (pt.length === 0 && counter > 0) {
        fail('KW_AGE_MALFORMED', 'age payload has an empty final chunk after other chunks');
      }
      sink(pt);
      return;
    }
  } finally {
    wipe(key);
  }
}
