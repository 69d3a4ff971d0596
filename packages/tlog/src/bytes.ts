/**
 * Internal byte helpers and labelled argument checks. Not exported from the
 * package entry point.
 */
import { check } from './errors.js';

/** Length of every hash in an RFC 9162 SHA-256 tree. */
export const HASH_LENGTH = 32;

const encoder = new TextEncoder();

/** UTF-8 bytes of a well-formed string. */
export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Concatenates byte arrays. */
export function concat(...parts: readonly Uint8Array[]): Uint8Array {
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

/** Byte equality whose running time depends only on the lengths. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Asserts `v` is a Uint8Array (optionally of exactly `length` bytes), naming it `label` in the error. */
export function abytes(v: unknown, label: string, length?: number): asserts v is Uint8Array {
  check(v instanceof Uint8Array, `${label} must be a Uint8Array`);
  if (length !== undefined) check(v.length === length, `${label} must be ${length} bytes, got ${v.length}`);
}

/** Asserts `v` is a 32-byte hash. */
export function ahash(v: unknown, label: string): asserts v is Uint8Array {
  abytes(v, label, HASH_LENGTH);
}

/** True when `v` is an array; unlike `Array.isArray` it does not widen the element type to `any`. */
export function isList<T>(v: readonly T[]): boolean {
  return Array.isArray(v);
}

/** Asserts `v` is an array of 32-byte hashes. */
export function ahashes(v: unknown, label: string): asserts v is readonly Uint8Array[] {
  check(Array.isArray(v), `${label} must be an array of 32-byte hashes`);
  (v as unknown[]).forEach((h, i) => ahash(h, `${label}[${i}]`));
}

/** Asserts `v` is a safe non-negative integer (tree sizes and indices). */
export function auint(v: unknown, label: string): asserts v is number {
  check(typeof v === 'number' && Number.isSafeInteger(v) && v >= 0, `${label} must be a non-negative safe integer`);
}

/** Big-endian uint32 from 4 bytes at `off`. */
export function readU32(b: Uint8Array, off = 0): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

/** 4 big-endian bytes of a uint32. */
export function u32be(n: number): Uint8Array {
  return new Uint8Array([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

/** 8 big-endian bytes of a safe non-negative integer. */
export function u64be(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

/** Big-endian uint64 from 8 bytes at `off`, as a bigint. */
export function readU64(b: Uint8Array, off = 0): bigint {
  return new DataView(b.buffer, b.byteOffset + off, 8).getBigUint64(0);
}

/** Lowercase hex of bytes. */
export function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}
