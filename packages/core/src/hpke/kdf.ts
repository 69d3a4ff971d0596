/** HKDF-SHA256 (RFC 5869) and HPKE's labeled variants (RFC 9180 §4), over the platform HMAC. */
import { platform } from '#platform';
import { concat, u16be, utf8 } from '../bytes.js';

const HASH_LEN = 32;
const EMPTY = new Uint8Array(0);
const ZERO_SALT = new Uint8Array(HASH_LEN);
/** The counter byte of HKDF-Expand's first block (read only). */
const ONE = new Uint8Array([1]);

export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return platform.hmacSha256(salt.length ? salt : ZERO_SALT, ikm);
}

export function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  return hkdfExpandParts(prk, [info], length);
}

/**
 * HKDF-Expand with `info` given as consecutive parts (fed to the HMAC one
 * after the other, as if concatenated): saves building `info` for every call.
 */
export function hkdfExpandParts(prk: Uint8Array, info: readonly Uint8Array[], length: number): Uint8Array {
  if (length > 255 * HASH_LEN) throw new RangeError('HKDF output too long');
  if (length <= HASH_LEN) {
    const t = platform.hmacSha256(prk, ...info, ONE);
    return length === HASH_LEN ? t : t.subarray(0, length);
  }
  const out = new Uint8Array(length);
  let t: Uint8Array = EMPTY;
  for (let i = 1, o = 0; o < length; i++) {
    t = platform.hmacSha256(prk, t, ...info, new Uint8Array([i]));
    out.set(t.subarray(0, Math.min(HASH_LEN, length - o)), o);
    o += HASH_LEN;
  }
  return out;
}

const HPKE_V1 = utf8.encode('HPKE-v1');

/**
 * The constant prefixes of labeled inputs, built once per suite and label:
 *   extract: "HPKE-v1" ‖ suite_id ‖ label
 *   expand:  I2OSP(L, 2) ‖ "HPKE-v1" ‖ suite_id ‖ label
 * Encoding them costs more than the HMAC's input handling. Keyed by the suite id's
 * identity (suites keep theirs); a new array just misses the cache.
 */
const prefixes = new WeakMap<Uint8Array, Map<string, Map<number, Uint8Array>>>();
function prefix(suiteId: Uint8Array, label: string, length: number): Uint8Array {
  let bySuite = prefixes.get(suiteId);
  if (!bySuite) prefixes.set(suiteId, (bySuite = new Map<string, Map<number, Uint8Array>>()));
  let byLength = bySuite.get(label);
  if (!byLength) bySuite.set(label, (byLength = new Map<number, Uint8Array>()));
  let p = byLength.get(length);
  if (!p) {
    const body = concat(HPKE_V1, suiteId, utf8.encode(label));
    p = length < 0 ? body : concat(u16be(length), body);
    byLength.set(length, p);
  }
  return p;
}

export function labeledExtract(suiteId: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  return platform.hmacSha256(salt.length ? salt : ZERO_SALT, prefix(suiteId, label, -1), ikm);
}

export function labeledExpand(suiteId: Uint8Array, prk: Uint8Array, label: string, info: Uint8Array, length: number): Uint8Array {
  return hkdfExpandParts(prk, [prefix(suiteId, label, length), info], length);
}

/** labeledExpand with `info` in consecutive parts (e.g. enc ‖ pkR), not concatenated. */
export function labeledExpandParts(suiteId: Uint8Array, prk: Uint8Array, label: string, info: readonly Uint8Array[], length: number): Uint8Array {
  return hkdfExpandParts(prk, [prefix(suiteId, label, length), ...info], length);
}
