/**
 * A strict decoder for the subset of CBOR (RFC 8949) that COSE_Sign1 and the
 * AWS Nitro attestation document use: unsigned and negative integers, byte
 * and text strings, arrays, maps, false/true/null. Everything else is refused.
 *
 * Strict means:
 * - every argument (integer, length, count) in its preferred, shortest form
 *   (RFC 8949 §4.2.1), and no indefinite lengths — else ATTEST_NON_CANONICAL;
 * - no tags, floats, `undefined` or other simple values, no reserved
 *   additional-information values, valid UTF-8 in text strings, no duplicate
 *   map keys, map keys only integers or text, no trailing bytes — else
 *   ATTEST_MALFORMED;
 * - input size, nesting depth and items per container bounded — else
 *   ATTEST_LIMIT_EXCEEDED; a declared length is checked against the input
 *   left before anything is allocated.
 *
 * Map key order is NOT checked: real Nitro documents encode their payload map
 * in insertion order, not the deterministic order of §4.2.1. Signed bytes are
 * always verified as received, never re-encoded, so order has no security
 * role here.
 */
import { AttestError, check } from './errors.js';

/** A decoded value. Integers beyond ±2^53 are refused (ATTEST_LIMIT_EXCEEDED). @internal */
export type CborValue = number | Uint8Array | string | boolean | null | CborValue[] | CborMap;
/** A decoded map; keys are integers or text strings. @internal */
export type CborMap = Map<number | string, CborValue>;

/** Limits applied while decoding. @internal */
export interface CborLimits {
  readonly maxBytes: number;
  readonly maxDepth: number;
  readonly maxItems: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes exactly one CBOR data item that spans all of `input`.
 * @internal
 */
export function decodeCbor(input: Uint8Array, limits: CborLimits): CborValue {
  if (input.length > limits.maxBytes) throw new AttestError('ATTEST_LIMIT_EXCEEDED', `CBOR input is ${input.length} bytes, more than ${limits.maxBytes}`);
  const d = new Decoder(input, limits);
  const v = d.item(0);
  check(d.pos === input.length, `CBOR: ${input.length - d.pos} trailing bytes after the data item`);
  return v;
}

class Decoder {
  pos = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly limits: CborLimits,
  ) {}

  private byte(): number {
    check(this.pos < this.buf.length, 'CBOR: truncated');
    return this.buf[this.pos++]!;
  }

  /** Reads the argument for additional information `ai`, enforcing the shortest form. */
  private argument(ai: number): number {
    if (ai < 24) return ai;
    if (ai === 31) throw new AttestError('ATTEST_NON_CANONICAL', 'CBOR: indefinite-length items are not allowed');
    check(ai <= 27, `CBOR: reserved additional information ${ai}`);
    const n = 1 << (ai - 24); // 1, 2, 4 or 8 bytes
    check(this.buf.length - this.pos >= n, 'CBOR: truncated argument');
    let v = 0n;
    for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(this.buf[this.pos++]!);
    const min = n === 1 ? 24n : n === 2 ? 0x100n : n === 4 ? 0x10000n : 0x100000000n;
    if (v < min) throw new AttestError('ATTEST_NON_CANONICAL', `CBOR: argument ${v} not in its shortest encoding`);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new AttestError('ATTEST_LIMIT_EXCEEDED', 'CBOR: integer or length beyond 2^53');
    return Number(v);
  }

  private take(n: number): Uint8Array {
    check(n <= this.buf.length - this.pos, `CBOR: string of ${n} bytes runs past the end of the input`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  item(depth: number): CborValue {
    if (depth > this.limits.maxDepth) throw new AttestError('ATTEST_LIMIT_EXCEEDED', `CBOR: nesting deeper than ${this.limits.maxDepth}`);
    const ib = this.byte();
    const major = ib >> 5;
    const ai = ib & 0x1f;
    switch (major) {
      case 0:
        return this.argument(ai);
      case 1:
        return -1 - this.argument(ai);
      case 2:
        return this.take(this.argument(ai));
      case 3: {
        const raw = this.take(this.argument(ai));
        try {
          return utf8.decode(raw);
        } catch (e) {
          throw new AttestError('ATTEST_MALFORMED', 'CBOR: text string is not valid UTF-8', { cause: e });
        }
      }
      case 4: {
        const n = this.count(ai);
        const out: CborValue[] = [];
        for (let i = 0; i < n; i++) out.push(this.item(depth + 1));
        return out;
      }
      case 5: {
        const n = this.count(ai);
        const out: CborMap = new Map();
        for (let i = 0; i < n; i++) {
          const k = this.item(depth + 1);
          check(typeof k === 'number' || typeof k === 'string', 'CBOR: map keys must be integers or text strings');
          check(!out.has(k), `CBOR: duplicate map key ${JSON.stringify(k)}`);
          out.set(k, this.item(depth + 1));
        }
        return out;
      }
      case 6:
        throw new AttestError('ATTEST_MALFORMED', 'CBOR: tags are not allowed here');
      default: // 7: simple values and floats
        if (ai === 20) return false;
        if (ai === 21) return true;
        if (ai === 22) return null;
        if (ai === 31) throw new AttestError('ATTEST_NON_CANONICAL', 'CBOR: unexpected "break"');
        throw new AttestError('ATTEST_MALFORMED', `CBOR: simple value or float (ai ${ai}) not allowed`);
    }
  }

  private count(ai: number): number {
    const n = this.argument(ai);
    if (n > this.limits.maxItems) throw new AttestError('ATTEST_LIMIT_EXCEEDED', `CBOR: container of ${n} items, more than ${this.limits.maxItems}`);
    // Each item takes at least one byte: refuse counts the input cannot hold.
    check(n <= this.buf.length - this.pos, 'CBOR: container runs past the end of the input');
    return n;
  }
}

/** Encodes a CBOR head (major type and argument) in its shortest form. @internal */
export function encodeHead(major: number, n: number): Uint8Array {
  const m = major << 5;
  if (n < 24) return Uint8Array.of(m | n);
  if (n < 0x100) return Uint8Array.of(m | 24, n);
  if (n < 0x10000) return Uint8Array.of(m | 25, n >> 8, n & 0xff);
  if (n < 0x100000000) return Uint8Array.of(m | 26, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
  check(Number.isSafeInteger(n), 'CBOR: cannot encode an argument beyond 2^53', 'ATTEST_INVALID_ARGUMENT');
  const out = new Uint8Array(9);
  out[0] = m | 27;
  new DataView(out.buffer).setBigUint64(1, BigInt(n));
  return out;
}

/** Encodes a byte string. @internal */
export function encodeBytes(b: Uint8Array): Uint8Array {
  return concat(encodeHead(2, b.length), b);
}

/** Encodes a text string. @internal */
export function encodeText(s: string): Uint8Array {
  const b = new TextEncoder().encode(s);
  return concat(encodeHead(3, b.length), b);
}

/** Concatenates byte strings. @internal */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
