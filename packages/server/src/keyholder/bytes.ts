/** Byte and text encodings the keyholder's formats use. Strict: non-canonical input is refused, never repaired. */
import { KeyholderError } from './errors.js';

export const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

export const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** Lowercase hex of exactly `length` bytes, or null. */
export function fromHex(s: string, length: number): Uint8Array | null {
  if (s.length !== 2 * length || !/^[0-9a-f]*$/.test(s)) return null;
  return Uint8Array.from(Buffer.from(s, 'hex'));
}

export const toBase64url = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');

/** Canonical unpadded base64url, or null (Node's decoder alone silently skips bad characters). */
export function fromBase64url(s: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) return null;
  const out = Uint8Array.from(Buffer.from(s, 'base64url'));
  return toBase64url(out) === s ? out : null;
}

/** Strict UTF-8 decoding; KW_INVALID_ARGUMENT on malformed input. */
export function decodeUtf8(b: Uint8Array, what: string): string {
  try {
    return utf8Strict.decode(b);
  } catch (e) {
    throw new KeyholderError('KW_INVALID_ARGUMENT', `${what} is not valid UTF-8`, { cause: e });
  }
}
