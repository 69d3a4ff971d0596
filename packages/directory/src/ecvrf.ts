/**
 * RFC 9381 ECVRF over edwards25519 with SHA-512, in its two suites:
 * ECVRF-EDWARDS25519-SHA512-TAI (suite_string 0x03, the one KEYTRANS
 * KT_128_SHA256_Ed25519 uses) and ECVRF-EDWARDS25519-SHA512-ELL2 (0x04).
 *
 * This composes audited primitives only: point arithmetic, encoding and
 * RFC 9380 hash-to-curve come from `@noble/curves/ed25519`, hashing from
 * `@noble/hashes`. Nothing here touches field elements directly.
 *
 * Decoding is strict (RFC 8032 §5.1.3, no ZIP-215 leniency): a non-canonical
 * point encoding or a scalar `s ≥ q` in a proof is refused with
 * `KT_BAD_VRF_PROOF`, and so is a low-order public key (RFC 9381 §5.6.1).
 */
import { mulAddUnsafe } from '@noble/curves/abstract/curve.js';
import { ed25519, ed25519_hasher } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { abytes, concat, equalBytes, toHex } from './bytes.js';
import { DirectoryError } from './errors.js';

type Point = typeof ed25519.Point.BASE;
const Point = ed25519.Point;
const q = Point.Fn.ORDER;
const C_LEN = 16;
const PT_LEN = 32;
const Q_LEN = 32;

/** The two RFC 9381 edwards25519 suites. */
export type EcvrfSuite = 'ECVRF-EDWARDS25519-SHA512-TAI' | 'ECVRF-EDWARDS25519-SHA512-ELL2';

const SUITE_STRING: Record<EcvrfSuite, number> = {
  'ECVRF-EDWARDS25519-SHA512-TAI': 0x03,
  'ECVRF-EDWARDS25519-SHA512-ELL2': 0x04,
};

/** Proof length in bytes: Gamma (32) ‖ c (16) ‖ s (32). */
export const ECVRF_PROOF_LENGTH = PT_LEN + C_LEN + Q_LEN;

function leToBigint(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
  return n;
}

function bigintToLe(n: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

function decodePoint(b: Uint8Array, what: string): Point {
  try {
    return Point.fromBytes(b, false);
  } catch (cause) {
    throw new DirectoryError('KT_BAD_VRF_PROOF', `${what} is not a valid edwards25519 point encoding`, { cause });
  }
}

/** RFC 9381 §5.4.1.1 try-and-increment; returns null when no counter < 256 works (never, in practice). */
function encodeToCurveTai(suite: number, pk: Uint8Array, alpha: Uint8Array): Point {
  for (let ctr = 0; ctr < 256; ctr++) {
    const hash = sha512(concat(new Uint8Array([suite, 0x01]), pk, alpha, new Uint8Array([ctr, 0x00])));
    let candidate: Point;
    try {
      candidate = Point.fromBytes(hash.subarray(0, 32), false);
    } catch {
      continue;
    }
    const h = candidate.clearCofactor();
    if (!h.is0()) return h;
  }
  throw new DirectoryError('KT_BAD_VRF_PROOF', 'try-and-increment found no point');
}

function encodeToCurve(suite: EcvrfSuite, pk: Uint8Array, alpha: Uint8Array): Point {
  const s = SUITE_STRING[suite];
  if (suite === 'ECVRF-EDWARDS25519-SHA512-TAI') return encodeToCurveTai(s, pk, alpha);
  // RFC 9381 §5.4.1.2: encode_to_curve of RFC 9380, suite edwards25519_XMD:SHA-512_ELL2_NU_,
  // DST = "ECVRF_" ‖ h2c_suite_ID_string ‖ suite_string.
  const dst = concat(new TextEncoder().encode('ECVRF_edwards25519_XMD:SHA-512_ELL2_NU_'), new Uint8Array([s]));
  return ed25519_hasher.encodeToCurve(concat(pk, alpha), { DST: dst });
}

/** RFC 9381 §5.4.3 over already-encoded points (each encoding computed once by the caller). */
function challenge(suite: EcvrfSuite, encoded: readonly Uint8Array[]): bigint {
  const s = SUITE_STRING[suite];
  const str = concat(new Uint8Array([s, 0x02]), ...encoded, new Uint8Array([0x00]));
  return leToBigint(sha512(str).subarray(0, C_LEN));
}

/** RFC 9381 §5.2 from the decoded Gamma: SHA-512(suite ‖ 0x03 ‖ point_to_string(8·Gamma) ‖ 0x00). */
function gammaToHash(suite: EcvrfSuite, Gamma: Point): Uint8Array {
  return sha512(concat(new Uint8Array([SUITE_STRING[suite], 0x03]), Gamma.clearCofactor().toBytes(), new Uint8Array([0x00])));
}

/**
 * Decoded, validated public keys (RFC 9381 §5.6.1), by their encoding. Public data only: a
 * directory client verifies dozens of proofs per answer under one key, and decoding (a square
 * root) plus the small-order check cost about as much as a third of a verification.
 */
const PUBLIC_KEYS = new Map<string, { Y: Point; uses: number }>();
const PUBLIC_KEYS_MAX = 64;
/**
 * From its 4th verification on, a key gets a noble wNAF table (window 6: 1,408 points, built
 * once, about two verifications' worth): c·Y then costs 44 additions instead of ~128 doublings
 * and ~30 additions.
 */
const PRECOMPUTE_AFTER = 3;

function publicKeyPoint(pk: Uint8Array): Point {
  const id = toHex(pk);
  const cached = PUBLIC_KEYS.get(id);
  if (cached) {
    if (++cached.uses === PRECOMPUTE_AFTER) cached.Y.precompute(6);
    return cached.Y;
  }
  const Y = decodePoint(pk, 'VRF public key');
  if (Y.clearCofactor().is0()) throw new DirectoryError('KT_BAD_VRF_PROOF', 'VRF public key has small order');
  if (PUBLIC_KEYS.size >= PUBLIC_KEYS_MAX) PUBLIC_KEYS.delete(PUBLIC_KEYS.keys().next().value!);
  PUBLIC_KEYS.set(id, { Y, uses: 0 });
  return Y;
}

function secretScalars(sk: Uint8Array): { x: bigint; prefix: Uint8Array; pk: Uint8Array } {
  const { scalar, prefix, pointBytes } = ed25519.utils.getExtendedPublicKey(sk);
  return { x: scalar, prefix, pk: pointBytes };
}

/**
 * The public key (RFC 8032 encoding) of a 32-byte ECVRF secret key.
 *
 * @example
 * const pk = ecvrfPublicKey(sk); // 32 bytes
 */
export function ecvrfPublicKey(sk: Uint8Array): Uint8Array {
  abytes(sk, 'VRF secret key', 32);
  return secretScalars(sk).pk;
}

/**
 * ECVRF_prove (RFC 9381 §5.1): an 80-byte proof for `alpha` under `sk`.
 *
 * @example
 * const pi = ecvrfProve('ECVRF-EDWARDS25519-SHA512-TAI', sk, alpha);
 * const beta = ecvrfProofToHash('ECVRF-EDWARDS25519-SHA512-TAI', pi);
 */
export function ecvrfProve(suite: EcvrfSuite, sk: Uint8Array, alpha: Uint8Array): Uint8Array {
  return ecvrfProveAndHash(suite, sk, alpha).proof;
}

/**
 * ECVRF_prove and ECVRF_proof_to_hash in one pass: the 80-byte proof and its 64-byte beta,
 * without decoding the proof again or verifying it.
 *
 * Every multiplication by a secret scalar (x, k) is noble's constant-time `multiply` (the base
 * point's on its precomputed, blinded table); only public values are encoded and hashed. The
 * cost is two constant-time multiplications of the hashed point H, two of the base point (the
 * public key and k·B), and the try-and-increment square roots of the TAI suite (two on average).
 *
 * @example
 * const { proof, beta } = ecvrfProveAndHash('ECVRF-EDWARDS25519-SHA512-TAI', sk, alpha);
 */
export function ecvrfProveAndHash(suite: EcvrfSuite, sk: Uint8Array, alpha: Uint8Array): { proof: Uint8Array; beta: Uint8Array } {
  abytes(sk, 'VRF secret key', 32);
  abytes(alpha, 'alpha');
  const { x, prefix, pk } = secretScalars(sk);
  try {
    const H = encodeToCurve(suite, pk, alpha);
    const hString = H.toBytes();
    const Gamma = H.multiply(x);
    const gammaString = Gamma.toBytes();
    // RFC 9381 §5.4.2.2: k = SHA-512(hashed_sk[32..64] ‖ h_string) mod q.
    const k = leToBigint(sha512(concat(prefix, hString))) % q;
    const c = challenge(suite, [pk, hString, gammaString, Point.BASE.multiply(k).toBytes(), H.multiply(k).toBytes()]);
    const s = (k + c * x) % q;
    return { proof: concat(gammaString, bigintToLe(c, C_LEN), bigintToLe(s, Q_LEN)), beta: gammaToHash(suite, Gamma) };
  } finally {
    prefix.fill(0);
  }
}

function decodeProof(pi: Uint8Array): { Gamma: Point; c: bigint; s: bigint } {
  if (!(pi instanceof Uint8Array) || pi.length !== ECVRF_PROOF_LENGTH) {
    throw new DirectoryError('KT_BAD_VRF_PROOF', `VRF proof must be ${ECVRF_PROOF_LENGTH} bytes`);
  }
  const Gamma = decodePoint(pi.subarray(0, PT_LEN), 'proof Gamma');
  const c = leToBigint(pi.subarray(PT_LEN, PT_LEN + C_LEN));
  const s = leToBigint(pi.subarray(PT_LEN + C_LEN));
  if (s >= q) throw new DirectoryError('KT_BAD_VRF_PROOF', 'proof scalar s is not reduced (s ≥ q)');
  return { Gamma, c, s };
}

/**
 * ECVRF_proof_to_hash (RFC 9381 §5.2): the 64-byte output beta of a proof.
 * Only meaningful for a proof that {@link ecvrfVerify} accepted.
 *
 * @example
 * const beta = ecvrfProofToHash('ECVRF-EDWARDS25519-SHA512-TAI', pi);
 */
export function ecvrfProofToHash(suite: EcvrfSuite, pi: Uint8Array): Uint8Array {
  return gammaToHash(suite, decodeProof(pi).Gamma);
}

/**
 * ECVRF_verify (RFC 9381 §5.3) with key validation (§5.6.1): returns beta, or
 * throws `KT_BAD_VRF_PROOF`.
 *
 * @example
 * const beta = ecvrfVerify('ECVRF-EDWARDS25519-SHA512-TAI', pk, alpha, pi);
 */
export function ecvrfVerify(suite: EcvrfSuite, pk: Uint8Array, alpha: Uint8Array, pi: Uint8Array): Uint8Array {
  abytes(alpha, 'alpha');
  if (!(pk instanceof Uint8Array) || pk.length !== PT_LEN) throw new DirectoryError('KT_BAD_VRF_PROOF', 'VRF public key must be 32 bytes');
  const Y = publicKeyPoint(pk);
  const { Gamma, c, s } = decodeProof(pi);
  const H = encodeToCurve(suite, pk, alpha);
  // U = s·B − c·Y, V = s·H − c·Gamma (public values: variable-time is fine). B has noble's
  // precomputed table; V is one Strauss–Shamir walk (a shared doubling chain for both terms).
  const U = Point.BASE.multiplyUnsafe(s).subtract(Y.multiplyUnsafe(c));
  const V = mulAddUnsafe(Point, [H, Gamma.negate()], [s, c]);
  const c2 = challenge(suite, [pk, H.toBytes(), pi.subarray(0, PT_LEN), U.toBytes(), V.toBytes()]);
  if (!equalBytes(bigintToLe(c, C_LEN), bigintToLe(c2, C_LEN))) {
    throw new DirectoryError('KT_BAD_VRF_PROOF', 'VRF proof does not verify');
  }
  return gammaToHash(suite, Gamma);
}
