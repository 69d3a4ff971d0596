/** A bounds-checked cursor over untrusted bytes. Every overrun is KW_MALFORMED_HEADER. */
import { KeywardError } from '../errors.js';

export class Reader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array, private readonly what = 'header') {}

  get offset(): number { return this.pos; }
  get remaining(): number { return this.buf.length - this.pos; }

  bytes(n: number): Uint8Array {
    if (n > this.remaining) throw new KeywardError('KW_MALFORMED_HEADER', `${this.what} is truncated`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  u8(): number { return this.bytes(1)[0]!; }
  u16(): number { const b = this.bytes(2); return (b[0]! << 8) | b[1]!; }
  u32(): number { const b = this.bytes(4); return ((b[0]! << 24) >>> 0) + (b[1]! << 16) + (b[2]! << 8) + b[3]!; }

  end(): void {
    if (this.remaining !== 0) throw new KeywardError('KW_MALFORMED_HEADER', `${this.what} has ${this.remaining} unexpected trailing bytes`);
  }
}
