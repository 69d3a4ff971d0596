/**
 * Small helpers shared by the age modules: errors, ASCII, strict base64 and
 * randomness. Nothing here is specific to one part of the format.
 */
import { base64nopad } from '@scure/base';
import { KeywardError, type KeywardErrorCode } from '../errors.js';
import { platform } from '#platform';

// The byte helpers every part of core shares.
export { concat, wipe, equalCT as constantTimeEqual } from '../bytes.js';
/** `n` bytes from the platform CSPRNG. */
export const randomBytes = (n: number): Uint8Array => platform.randomBytes(n);

/** Throws a KeywardError; typed `never` so callers can use it in expressions. */
export function fail(code: KeywardErrorCode, message: string, cause?: unknown): never {
  throw new KeywardError(code, message, cause === undefined ? undefined : { cause });
}

/**
 * Runs `fn`, converting any error that is not already a KeywardError (a bug,
 * or the platform running out of memory) into KW_INTERNAL, so the public API
 * only ever throws KeywardError.
 */
export async function keywardErrorsOnly<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof KeywardError) throw e;
    throw new KeywardError('KW_INTERNAL', `unexpected failure in age processing: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/** Synchronous variant of {@link keywardErrorsOnly}. */
export function keywardErrorsOnlySync<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof KeywardError) throw e;
    throw new KeywardError('KW_INTERNAL', `unexpected failure in age processing: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
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

