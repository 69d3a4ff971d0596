/**
 * Bech32 (BIP 173) as age uses it for recipients and identities: the
 * checksum and character set of BIP 173, without its 90-character limit (age
 * does not enforce it either; identities naming file paths are longer), one
 * case throughout. An encoding, not cryptography.
 */
import { invalid } from '../errors.js';

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: readonly number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GENERATOR[i]!;
  }
  return chk >>> 0;
}

function hrpExpand(hrp: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) >> 5);
  out.push(0);
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) & 31);
  return out;
}

function convertBits(data: Iterable<number>, from: number, to: number, pad: boolean): number[] | null {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  const maxv = (1 << to) - 1;
  for (const value of data) {
    acc = (acc << from) | value;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((acc >> bits) & maxv);
    }
    acc &= (1 << bits) - 1;
  }
  if (pad) {
    if (bits > 0) out.push((acc << (to - bits)) & maxv);
  } else if (bits >= from || ((acc << (to - bits)) & maxv) !== 0) {
    return null;
  }
  return out;
}

/** `hrp` + `1` + data + checksum, lowercase (uppercase the result for identities). */
export function bech32Encode(hrp: string, data: Uint8Array): string {
  const h = hrp.toLowerCase();
  const words = convertBits(data, 8, 5, true)!;
  const mod = polymod([...hrpExpand(h), ...words, 0, 0, 0, 0, 0, 0]) ^ 1;
  const checksum = Array.from({ length: 6 }, (_, i) => (mod >>> (5 * (5 - i))) & 31);
  return `${h}1${[...words, ...checksum].map((w) => CHARSET[w]).join('')}`;
}

/** The (lowercase) HRP and data of a Bech32 string; refuses mixed case, bad characters, checksum or padding. */
export function bech32Decode(s: string, what: string): { hrp: string; data: Uint8Array } {
  if (typeof s !== 'string' || s.length < 8) throw invalid(`${what} is not a Bech32 string`);
  if (s !== s.toLowerCase() && s !== s.toUpperCase()) throw invalid(`${what} mixes upper and lower case`);
  const lower = s.toLowerCase();
  const sep = lower.lastIndexOf('1');
  if (sep < 1 || sep + 7 > lower.length) throw invalid(`${what} is not a Bech32 string`);
  const hrp = lower.slice(0, sep);
  for (let i = 0; i < hrp.length; i++) {
    const c = hrp.charCodeAt(i);
    if (c < 33 || c > 126) throw invalid(`${what} has an invalid prefix`);
  }
  const words: number[] = [];
  for (const ch of lower.slice(sep + 1)) {
    const w = CHARSET.indexOf(ch);
    if (w < 0) throw invalid(`${what} has a character outside the Bech32 set`);
    words.push(w);
  }
  if (polymod([...hrpExpand(hrp), ...words]) !== 1) throw invalid(`${what} has a wrong Bech32 checksum (mistyped or truncated?)`);
  const bytes = convertBits(words.slice(0, -6), 5, 8, false);
  if (!bytes) throw invalid(`${what} has invalid Bech32 padding`);
  return { hrp, data: Uint8Array.from(bytes) };
}
