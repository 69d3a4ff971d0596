/** HKDF-SHA256 (RFC 5869) and HPKE's labeled variants (RFC 9180 §4), over the platform HMAC. */
import { platform } from '#platform';
import { concat, u16be, utf8 } from '../bytes.js';

const HASH_LEN = 32;
const EMPTY = new Uint8Array(0);

export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return platform.hmacSha256(salt.length ? salt : new Uint8Array(HASH_LEN), ikm);
}

export function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (length > 255 * HASH_LEN) throw new RangeError('HKDF output too long');
  if (length <= HASH_LEN) return platform.hmacSha256(prk, info, new Uint8Array([1])).subarray(0, length);
  const out = new Uint8Array(length);
  let t: Uint8Array = EMPTY;
  for (let i = 1, o = 0; o < length; i++) {
    t = platform.hmacSha256(prk, t, info, new Uint8Array([i]));
    out.set(t.subarray(0, Math.min(HASH_LEN, length - o)), o);
    o += HASH_LEN;
  }
  return out;
}

const HPKE_V1 = utf8.encode('HPKE-v1');

/** The few fixed labels, encoded once: encoding one costs more than the HMAC's input handling. */
const labels = new Map<string, Uint8Array>();
function labelBytes(label: string): Uint8Array {
  let b = labels.get(label);
  if (!b) labels.set(label, (b = utf8.encode(label)));
  return b;
}

export function labeledExtract(suiteId: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  return platform.hmacSha256(salt.length ? salt : new Uint8Array(HASH_LEN), HPKE_V1, suiteId, labelBytes(label), ikm);
}

export function labeledExpand(suiteId: Uint8Array, prk: Uint8Array, label: string, info: Uint8Array, length: number): Uint8Array {
  return hkdfExpand(prk, concat(u16be(length), HPKE_V1, suiteId, labelBytes(label), info), length);
}
