/**
 * The KEYTRANS cipher suite this package implements (draft-ietf-keytrans-protocol-05
 * §11.1, registry §17.1): KT_128_SHA256_Ed25519 (0x0002) — SHA-256, Ed25519
 * signatures, ECVRF-EDWARDS25519-SHA512-TAI truncated to 32 bytes, Nc = 16.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { concat } from './bytes.js';

/** IANA `CipherSuite` value of KT_128_SHA256_Ed25519. */
export const KT_128_SHA256_ED25519 = 0x0002;
/**
 * IANA `CipherSuite` value of KT_128_SHA256_P256 (ECDSA P-256/SHA-256 signatures,
 * ECVRF-P256-SHA256-TAI, VRF.Np = 81). Its primitives, tree-head signatures and VRF are here;
 * `DirectoryBuilder`/`DirectoryClient` and the response codecs speak suite 2 only.
 */
export const KT_128_SHA256_P256 = 0x0001;
/** `Hash.Nh`: SHA-256 output length. */
export const NH = 32;
/** `Nc`: commitment opening length. */
export const NC = 16;
/** `VRF.Nh`: the truncated VRF output length (the prefix-tree search key). */
export const VRF_NH = 32;
/** `VRF.Np`: ECVRF proof length. */
export const VRF_NP = 80;
/** The fixed commitment key `Kc` of §17.1 (a public constant, not a secret). */
export const KC = new Uint8Array([0xd8, 0x21, 0xf8, 0x79, 0x0d, 0x97, 0x70, 0x97, 0x96, 0xb4, 0xd7, 0x90, 0x33, 0x57, 0xc3, 0xf5]);
/** The all-zero hash: a missing prefix-tree child (§11.9). */
export const ZERO_HASH = new Uint8Array(NH);

/** SHA-256 of the concatenation of `parts`. @internal */
export function hash(...parts: readonly Uint8Array[]): Uint8Array {
  return sha256(concat(...parts));
}
