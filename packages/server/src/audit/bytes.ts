/** Small byte helpers of the audit module (node:crypto for SHA-256). @internal */
import { createHash, timingSafeEqual } from 'node:crypto';

/** Lower-case hex of 32 bytes (a SHA-256 hash). */
export const HEX64 = /^[0-9a-f]{64}$/;

/** The `prev` of the first event: 64 zeros. */
export const GENESIS_PREV = '0'.repeat(64);

export const utf8 = {
  encode: (s: string): Uint8Array => new TextEncoder().encode(s),
  decode: (b: Uint8Array): string => new TextDecoder('utf-8', { fatal: true }).decode(b),
};

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** Decodes lower-case hex; returns null when `s` is not even-length lower-case hex. */
export function fromHex(s: string): Uint8Array | null {
  if (typeof s !== 'string' || s.length % 2 !== 0 || !/^[0-9a-f]*$/.test(s)) return null;
  return Uint8Array.from(Buffer.from(s, 'hex'));
}

export function sha256(data: Uint8Array): Uint8Array {
  return Uint8Array.from(createHash('sha256').update(data).digest());
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Constant-time comparison of two byte strings (false for different lengths). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
