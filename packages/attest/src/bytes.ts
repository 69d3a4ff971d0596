/** Byte helpers shared by the parsers. @internal */
import { timingSafeEqual } from 'node:crypto';
import { AttestError, check } from './errors.js';

/** Constant-time equality for byte strings (false on different lengths). @internal */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Lower-case hex. @internal */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** True when every byte is zero. @internal */
export function isZero(b: Uint8Array): boolean {
  return b.every((x) => x === 0);
}

/** A copy that owns its buffer. @internal */
export function copy(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

/** Checks that `v` is a Uint8Array, else ATTEST_INVALID_ARGUMENT. @internal */
export function abytes(v: unknown, name: string): Uint8Array {
  check(v instanceof Uint8Array, `${name} must be a Uint8Array`, 'ATTEST_INVALID_ARGUMENT');
  return v;
}

/** Checks `now` is a valid Date. @internal */
export function adate(v: unknown, name = 'now'): Date {
  check(v instanceof Date && !Number.isNaN(v.getTime()), `${name} must be a valid Date`, 'ATTEST_INVALID_ARGUMENT');
  return v;
}

/**
 * A bounds-checked reader over untrusted bytes. Every read that would pass
 * the end throws ATTEST_MALFORMED naming the field. @internal
 */
export class Reader {
  pos = 0;
  constructor(
    readonly buf: Uint8Array,
    private readonly what: string,
  ) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  bytes(n: number, field: string): Uint8Array {
    if (n < 0 || n > this.remaining) throw new AttestError('ATTEST_MALFORMED', `${this.what}: truncated at ${field} (need ${n} bytes at offset ${this.pos}, have ${this.remaining})`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  u8(field: string): number {
    return this.bytes(1, field)[0]!;
  }
  u16be(field: string): number {
    const b = this.bytes(2, field);
    return (b[0]! << 8) | b[1]!;
  }
  u32be(field: string): number {
    const b = this.bytes(4, field);
    return ((b[0]! << 24) >>> 0) + ((b[1]! << 16) | (b[2]! << 8) | b[3]!);
  }
  u64be(field: string): bigint {
    const b = this.bytes(8, field);
    return Buffer.from(b).readBigUInt64BE(0);
  }
  u16le(field: string): number {
    const b = this.bytes(2, field);
    return b[0]! | (b[1]! << 8);
  }
  u32le(field: string): number {
    const b = this.bytes(4, field);
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16)) + ((b[3]! << 24) >>> 0);
  }
  u64le(field: string): bigint {
    const b = this.bytes(8, field);
    return Buffer.from(b).readBigUInt64LE(0);
  }
  /** A TPM2B: big-endian u16 size then that many bytes. */
  tpm2b(field: string, max = 0xffff): Uint8Array {
    const n = this.u16be(`${field}.size`);
    check(n <= max, `${this.what}: ${field} is ${n} bytes, more than ${max}`);
    return this.bytes(n, field);
  }
  end(): void {
    check(this.remaining === 0, `${this.what}: ${this.remaining} trailing bytes`);
  }
}
