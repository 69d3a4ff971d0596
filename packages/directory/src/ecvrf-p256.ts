/**
 * RFC 9381 ECVRF over NIST P-256 with SHA-256, in its two suites: ECVRF-P256-SHA256-TAI
 * (suite_string 0x01, the one KEYTRANS cipher suite 1, KT_128_SHA256_P256, uses) and
 * ECVRF-P256-SHA256-SSWU (0x02, RFC 9380 `P256_XMD:SHA-256_SSWU_NU_`).
 *
 * Composition of audited primitives only: point arithmetic, SEC1 encoding and RFC 9380
 * hash-to-curve from `@noble/curves/nist`, the RFC 6979 HMAC-DRBG from `@noble/curves/utils`,
 * SHA-256 and HMAC from `@noble/hashes`. Points are 33-byte SEC1 compressed, integers big-endian,
 * proofs Gamma (33) ‖ c (16) ‖ s (32) = 81 bytes, outputs 32 bytes (§5.5). Decoding is strict:
 * an invalid point, the identity as a public key, or `s ≥ q` is `KT_BAD_VRF_PROOF`.
 */
import { p256, p256_hasher } from '@noble/curves/nist.js';
import { bytesToNumberBE, createHmacDrbg, numberToBytesBE } from '@noble/curves/utils.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { abytes, concat, equalBytes } from './bytes.js';
import { DirectoryError } from './errors.js';

type Point = typeof p256.Point.BASE;
const Point = p256.Point;
const q = Point.Fn.ORDER;
const C_LEN = 16;
const PT_LEN = 33;
const Q_LEN = 32;

/** The two RFC 9381 P-256 suites. */
export type EcvrfP256Suite = 'ECVRF-P256-SHA256-TAI' | 'ECVRF-P256-SHA256-SSWU';

const SUITE_STRING: Record<EcvrfP256Suite, number> = { 'ECVRF-P256-SHA256-TAI': 0x01, 'ECVRF-P256-SHA256-SSWU': 0x02 };

/** Proof length in bytes: Gamma (33) ‖ c (16) ‖ s (32). */
export const ECVRF_P256_PROOF_LENGTH = PT_LEN + C_LEN + Q_LEN;

function decodePoint(b: Uint8Array, what: string): Point {
  try {
    if (b.length !== PT_LEN) throw new Error('not 33 bytes');
    return Point.fromBytes(b);
  } catch (cause) {
    throw new DirectoryError('KT_BAD_VRF_PROOF', `${what} is not a valid compressed P-256 point`, { cause });
  }
}

function encodeToCurve(suite: EcvrfP256Suite, pk: Uint8Array, alpha: Uint8Array): Point {
  const s = SUITE_STRING[suite];
  if (suite === 'ECVRF-P256-SHA256-SSWU') {
    const dst = concat(new TextEncoder().encode('ECVRF_P256_XMD:SHA-256_SSWU_NU_'), new Uint8Array([s]));
    return p256_hasher.encodeToCurve(concat(pk, alpha), { DST: dst });
  }
  // §5.4.1.1 try-and-increment: the hash, prefixed 0x02, read as a compressed point.
  for (let ctr = 0; ctr < 256; ctr++) {
    const hash = sha256(concat(new Uint8Array([s, 0x01]), pk, alpha, new Uint8Array([ctr, 0x00])));
    try {
      return Point.fromBytes(concat(new Uint8Array([0x02]), hash));
    } catch {
      continue;
    }
  }
  throw new DirectoryError('KT_BAD_VRF_PROOF', 'try-and-increment found no point');
}

function challenge(suite: EcvrfP256Suite, points: readonly Point[]): bigint {
  const str = concat(new Uint8Array([SUITE_STRING[suite], 0x02]), ...points.map((p) => p.toBytes(true)), new Uint8Array([0x00]));
  return bytesToNumberBE(sha256(str).subarray(0, C_LEN));
}

/** §5.4.2.1: the RFC 6979 nonce for message `hString` (SHA-256, P-256). */
function nonce(x: bigint, hString: Uint8Array): bigint {
  const h1 = bytesToNumberBE(sha256(hString)) % q; // bits2octets: qlen = hlen = 256, so one reduction
  const seed = concat(numberToBytesBE(x, Q_LEN), numberToBytesBE(h1, Q_LEN));
  const drbg = createHmacDrbg<bigint>(32, Q_LEN, (key: Uint8Array, msg: Uint8Array) => hmac(sha256, key, msg));
  return drbg(seed, (t) => {
    const k = bytesToNumberBE(t);
    return k >= 1n && k < q ? k : undefined;
  });
}

function secret(sk: Uint8Array): bigint {
  abytes(sk, 'VRF secret key', Q_LEN);
  const x = bytesToNumberBE(sk);
  if (x < 1n || x >= q) throw new DirectoryError('KT_INVALID_ARGUMENT', 'VRF secret key is not a P-256 scalar');
  return x;
}

/**
 * The SEC1 compressed public key of a 32-byte P-256 VRF secret key.
 *
 * @example
 * const pk = ecvrfP256PublicKey(sk); // 33 bytes
 */
export function ecvrfP256PublicKey(sk: Uint8Array): Uint8Array {
  return Point.BASE.multiply(secret(sk)).toBytes(true);
}

/**
 * ECVRF_prove (RFC 9381 §5.1): an 81-byte proof for `alpha` under `sk`.
 *
 * @example
 * const pi = ecvrfP256Prove('ECVRF-P256-SHA256-TAI', sk, alpha);
 */
export function ecvrfP256Prove(suite: EcvrfP256Suite, sk: Uint8Array, alpha: Uint8Array): Uint8Array {
  abytes(alpha, 'alpha');
  const x = secret(sk);
  const Y = Point.BASE.multiply(x);
  const H = encodeToCurve(suite, Y.toBytes(true), alpha);
  const Gamma = H.multiply(x);
  const k = nonce(x, H.toBytes(true));
  const c = challenge(suite, [Y, H, Gamma, Point.BASE.multiply(k), H.multiply(k)]);
  const s = (k + c * x) % q;
  return concat(Gamma.toBytes(true), numberToBytesBE(c, C_LEN), numberToBytesBE(s, Q_LEN));
}

function decodeProof(pi: Uint8Array): { Gamma: Point; c: bigint; s: bigint } {
  if (!(pi instanceof Uint8Array) || pi.length !== ECVRF_P256_PROOF_LENGTH) {
    throw new DirectoryError('KT_BAD_VRF_PROOF', `VRF proof must be ${ECVRF_P256_PROOF_LENGTH} bytes`);
  }
  const Gamma = decodePoint(pi.subarray(0, PT_LEN), 'proof Gamma');
  const c = bytesToNumberBE(pi.subarray(PT_LEN, PT_LEN + C_LEN));
  const s = bytesToNumberBE(pi.subarray(PT_LEN + C_LEN));
  if (s >= q) throw new DirectoryError('KT_BAD_VRF_PROOF', 'proof scalar s is not reduced (s ≥ q)');
  return { Gamma, c, s };
}

/**
 * ECVRF_proof_to_hash (RFC 9381 §5.2): the 32-byte beta of a proof ({@link ecvrfP256Verify} first).
 *
 * @example
 * const beta = ecvrfP256ProofToHash('ECVRF-P256-SHA256-TAI', pi);
 */
export function ecvrfP256ProofToHash(suite: EcvrfP256Suite, pi: Uint8Array): Uint8Array {
  const { Gamma } = decodeProof(pi);
  return sha256(concat(new Uint8Array([SUITE_STRING[suite], 0x03]), Gamma.toBytes(true), new Uint8Array([0x00])));
}

/**
 * ECVRF_verify (RFC 9381 §5.3) with public key validation: returns beta, or throws
 * `KT_BAD_VRF_PROOF`.
 *
 * @example
 * const beta = ecvrfP256Verify('ECVRF-P256-SHA256-TAI', pk, alpha, pi);
 */
export function ecvrfP256Verify(suite: EcvrfP256Suite, pk: Uint8Array, alpha: Uint8Array, pi: Uint8Array): Uint8Array {
  abytes(alpha, 'alpha');
  if (!(pk instanceof Uint8Array)) throw new DirectoryError('KT_BAD_VRF_PROOF', 'VRF public key must be bytes');
  const Y = decodePoint(pk, 'VRF public key');
  const { Gamma, c, s } = decodeProof(pi);
  const H = encodeToCurve(suite, pk, alpha);
  const U = Point.BASE.multiplyUnsafe(s).subtract(Y.multiplyUnsafe(c));
  const V = H.multiplyUnsafe(s).subtract(Gamma.multiplyUnsafe(c));
  const c2 = challenge(suite, [Y, H, Gamma, U, V]);
  if (!equalBytes(numberToBytesBE(c, C_LEN), numberToBytesBE(c2, C_LEN))) throw new DirectoryError('KT_BAD_VRF_PROOF', 'VRF proof does not verify');
  return ecvrfP256ProofToHash(suite, pi);
}
