/**
 * Byte helpers and the TLS presentation-language codec (RFC 8446 §3) that
 * every KEYTRANS structure is written in. Internal: not exported from the
 * package entry point except `hex`/`unhex` helpers.
 */
import { DirectoryError, check } from './errors.js';

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

/** Asserts `v` is a Uint8Array (optionally of exactly `length` bytes), naming it `label`. */
export function abytes(v: unknown, label: string, length?: number): asserts v is Uint8Array {
  check(v instanceof Uint8Array, `${label} must be a Uint8Array`);
  if (length !== undefined) check(v.length === length, `${label} must be ${length} bytes, got ${v.length}`);
}

/** Asserts `v` is a safe non-negative integer no larger than `max`. */
export function auint(v: unknown, label: string, max = Number.MAX_SAFE_INTEGER): asserts v is number {
  check(typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= max, `${label} must be an integer in [0, ${max}]`);
}

/**
 * Lowercase hex of bytes.
 *
 * @example
 * toHex(new Uint8Array([1, 255])) // '01ff'
 */
export function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

/**
 * Bytes of a lowercase or uppercase hex string.
 *
 * @example
 * fromHex('01ff') // Uint8Array [1, 255]
 */
export function fromHex(s: string): Uint8Array {
  check(typeof s === 'string' && s.length % 2 === 0 && /^[0-9a-fA-F]*$/.test(s), 'not a hex string');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Growable buffer writing big-endian integers and length-prefixed vectors. @internal */
export class Writer {
  private chunks: Uint8Array[] = [];

  bytes(b: Uint8Array): this {
    this.chunks.push(b);
    return this;
  }

  u8(n: number): this {
    auint(n, 'uint8', 0xff);
    return this.bytes(new Uint8Array([n]));
  }

  u16(n: number): this {
    auint(n, 'uint16', 0xffff);
    return this.bytes(new Uint8Array([n >>> 8, n & 0xff]));
  }

  u32(n: number): this {
    auint(n, 'uint32', 0xffffffff);
    return this.bytes(new Uint8Array([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]));
  }

  u64(n: number | bigint): this {
    const v = typeof n === 'bigint' ? n : BigInt(n);
    check(v >= 0n && v < 1n << 64n, 'uint64 out of range');
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, v);
    return this.bytes(out);
  }

  /** `opaque data<0..2^(8*prefix)-1>`: a byte-length prefix then the bytes. */
  opaque(b: Uint8Array, prefix: 1 | 2 | 4): this {
    abytes(b, 'opaque vector');
    this.lengthPrefix(b.length, prefix);
    return this.bytes(b);
  }

  /** A vector whose prefix counts *elements* (the KEYTRANS §2.1 convention for vectors of structs). */
  count(n: number, prefix: 1 | 2): this {
    return this.lengthPrefix(n, prefix);
  }

  private lengthPrefix(n: number, prefix: 1 | 2 | 4): this {
    if (prefix === 1) return this.u8(n);
    if (prefix === 2) return this.u16(n);
    return this.u32(n);
  }

  finish(): Uint8Array {
    return concat(...this.chunks);
  }
}

/** Cursor over untrusted bytes; every read is bounds-checked and fails with `KT_MALFORMED`. @internal */
export class Reader {
  private off = 0;

  constructor(private readonly buf: Uint8Array) {}

  get remaining(): number {
    return this.buf.length - this.off;
  }

  bytes(n: number): Uint8Array {
    if (n > this.remaining) throw new DirectoryError('KT_MALFORMED', `truncated: need ${n} bytes, have ${this.remaining}`);
    const out = this.buf.slice(this.off, this.off + n);
    this.off += n;
    return out;
  }

  u8(): number {
    return this.bytes(1)[0]!;
  }

  u16(): number {
    const b = this.bytes(2);
    return (b[0]! << 8) | b[1]!;
  }

  u32(): number {
    const b = this.bytes(4);
    return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  }

  /** uint64 as a number; values above 2^53-1 are refused as malformed. */
  u64(): number {
    const v = new DataView(this.bytes(8).buffer).getBigUint64(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new DirectoryError('KT_MALFORMED', 'uint64 above 2^53-1');
    return Number(v);
  }

  opaque(prefix: 1 | 2 | 4): Uint8Array {
    const n = prefix === 1 ? this.u8() : prefix === 2 ? this.u16() : this.u32();
    return this.bytes(n);
  }

  count(prefix: 1 | 2): number {
    return prefix === 1 ? this.u8() : this.u16();
  }

  /** `optional<T>`: a presence byte 0 or 1. */
  present(): boolean {
    const p = this.u8();
    if (p > 1) throw new DirectoryError('KT_MALFORMED', `optional presence byte ${p}`);
    return p === 1;
  }

  end(): void {
    if (this.remaining !== 0) throw new DirectoryError('KT_MALFORMED', `${this.remaining} trailing bytes`);
  }
}
