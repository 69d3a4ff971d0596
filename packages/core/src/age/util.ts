/**
 * Small helpers shared by the age modules: errors, ASCII, strict base64 and
 * randomness. Nothing here is specific to one part of the format.
 */
import { base64nopad } from '@scure/base';
import { KeywardError, type KeywardErrorCode } from '../errors.js';

/** Throws a KeywardError; typed `never` so callers can use it in expressions. */
export function fail(code: KeywardErrorCode, message: string, cause?: unknown): never {
  throw new KeywardError(code, message, cause === undefined ? undefined : { cause });
}

/** Encodes an ASCII string (every char < 0x80) as bytes. */
export function ascii(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) throw new KeywardError('KW_INTERNAL', 'non-ASCII text in an ASCII-only field');
    out[i] = c;
  }
  return out;
}

/** Decodes bytes as Latin-1 (one char per byte); callers validate the range. */
export function latin1(bytes: Uint8Array, start = 0, end = bytes.length): string {
  let s = '';
  // Chunked to keep String.fromCharCode argument lists small.
  for (let i = start; i < end; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, Math.min(end, i + 8192)));
  }
  return s;
}

/** Concatenates byte arrays into a fresh array. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** `n` bytes from the platform CSPRNG (works in browsers and Node). */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  const c = globalThis.crypto;
  if (c === undefined || typeof c.getRandomValues !== 'function') {
    fail('KW_UNSUPPORTED', 'globalThis.crypto.getRandomValues is not available');
  }
  // getRandomValues fills at most 65536 bytes per call.
  for (let off = 0; off < n; off += 65536) c.getRandomValues(out.subarray(off, Math.min(n, off + 65536)));
  return out;
}

/** Overwrites secret buffers with zeros. */
export function wipe(...buffers: (Uint8Array | null | undefined)[]): void {
  for (const b of buffers) b?.fill(0);
}

/** Canonical unpadded base64 (RFC 4648 §4 alphabet, no `=`). */
export function b64encode(bytes: Uint8Array): string {
  return base64nopad.encode(bytes);
}

const B64_CHARS = /^[A-Za-z0-9+/]*$/;

/**
 * Decodes canonical unpadded base64, or returns `null` when `s` is not the
 * canonical encoding of some byte string (bad characters, padding, impossible
 * length, non-zero trailing bits).
 */
export function b64decodeCanonical(s: string): Uint8Array | null {
  if (!B64_CHARS.test(s) || s.length % 4 === 1) return null;
  let out: Uint8Array;
  try {
    out = base64nopad.decode(s);
  } catch {
    return null;
  }
  // Belt and braces: the re-encoding must reproduce the input exactly.
  return b64encode(out) === s ? out : null;
}

/** Constant-time equality of two byte arrays (length is not secret). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
