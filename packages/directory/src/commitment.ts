/**
 * Commitments (§11.6): `commitment = HMAC-SHA256(Kc, CommitmentValue)` with the
 * public constant Kc of §17.1 and a random 16-byte opening.
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { abytes, equalBytes } from './bytes.js';
import { DirectoryError } from './errors.js';
import { encodeCommitmentValue, type UpdateValue } from './structs.js';
import { KC, NC, NH } from './suite.js';

/**
 * The commitment to (label, version, update) under `opening`.
 *
 * @example
 * const c = commit(opening, label, 0, { value: publicKeyBytes });
 */
export function commit(opening: Uint8Array, label: Uint8Array, version: number, update: UpdateValue): Uint8Array {
  return hmac(sha256, KC, encodeCommitmentValue(opening, label, version, update));
}

/**
 * Checks that `opening` opens `commitment` to (label, version, update); throws `KT_BAD_COMMITMENT` otherwise.
 * The comparison is constant-time.
 *
 * @example
 * verifyCommitment(commitment, opening, label, 0, { value });
 */
export function verifyCommitment(commitment: Uint8Array, opening: Uint8Array, label: Uint8Array, version: number, update: UpdateValue): void {
  abytes(commitment, 'commitment', NH);
  if (!equalBytes(commit(opening, label, version, update), commitment)) {
    throw new DirectoryError('KT_BAD_COMMITMENT', 'the opening does not match the commitment');
  }
}

/**
 * A fresh random opening of Nc = 16 bytes (from the platform CSPRNG).
 *
 * @example
 * const opening = randomOpening();
 */
export function randomOpening(): Uint8Array {
  return randomBytes(NC);
}
