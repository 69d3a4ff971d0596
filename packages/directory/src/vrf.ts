/**
 * The KEYTRANS VRF (§11.7): ECVRF-EDWARDS25519-SHA512-TAI over the encoded
 * VrfInput (label, version), with the 64-byte output truncated to VRF.Nh = 32
 * bytes. The output is the label-version pair's search key in the prefix tree.
 */
import { ecvrfProveAndHash, ecvrfPublicKey, ecvrfVerify } from './ecvrf.js';
import { ecvrfP256Prove, ecvrfP256PublicKey, ecvrfP256Verify } from './ecvrf-p256.js';
import { encodeVrfInput } from './structs.js';
import { VRF_NH } from './suite.js';

const SUITE = 'ECVRF-EDWARDS25519-SHA512-TAI';

/**
 * The VRF public key for a 32-byte VRF secret key.
 *
 * @example
 * const vrfPk = vrfPublicKey(vrfSk);
 */
export function vrfPublicKey(sk: Uint8Array): Uint8Array {
  return ecvrfPublicKey(sk);
}

/**
 * Evaluates the VRF for (label, version): the 32-byte search key and its 80-byte proof.
 *
 * @example
 * const { output, proof } = vrfEvaluate(vrfSk, label, 0);
 */
export function vrfEvaluate(sk: Uint8Array, label: Uint8Array, version: number): { output: Uint8Array; proof: Uint8Array } {
  // The output is proof_to_hash of the proof just made (RFC 9381 §5.2), not a verification of it:
  // verifying one's own proof would double the cost of every update and ladder proof.
  const { proof, beta } = ecvrfProveAndHash(SUITE, sk, encodeVrfInput(label, version));
  return { output: beta.slice(0, VRF_NH), proof };
}

/**
 * Verifies a VRF proof for (label, version) and returns the 32-byte search key;
 * throws `KT_BAD_VRF_PROOF` otherwise.
 *
 * @example
 * const key = vrfVerify(config.vrfPublicKey, label, 3, proof);
 */
export function vrfVerify(pk: Uint8Array, label: Uint8Array, version: number, proof: Uint8Array): Uint8Array {
  return ecvrfVerify(SUITE, pk, encodeVrfInput(label, version), proof).slice(0, VRF_NH);
}

/**
 * The KEYTRANS VRF of suite KT_128_SHA256_P256 (§11.7): ECVRF-P256-SHA256-TAI over the encoded
 * VrfInput; beta is already VRF.Nh = 32 bytes (no truncation). Returns the search key.
 *
 * @example
 * const key = vrfP256Verify(pk33, label, 0, proof81);
 */
export function vrfP256Verify(pk: Uint8Array, label: Uint8Array, version: number, proof: Uint8Array): Uint8Array {
  return ecvrfP256Verify('ECVRF-P256-SHA256-TAI', pk, encodeVrfInput(label, version), proof);
}

/**
 * Evaluates the suite-1 KEYTRANS VRF: the search key and its 81-byte proof.
 *
 * @example
 * const { output, proof } = vrfP256Evaluate(sk, label, 0);
 */
export function vrfP256Evaluate(sk: Uint8Array, label: Uint8Array, version: number): { output: Uint8Array; proof: Uint8Array } {
  const proof = ecvrfP256Prove('ECVRF-P256-SHA256-TAI', sk, encodeVrfInput(label, version));
  return { output: vrfP256Verify(ecvrfP256PublicKey(sk), label, version, proof), proof };
}
