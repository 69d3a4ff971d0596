/**
 * Tree head signatures (§11.2) over TreeHeadTBS under the Configuration's signature_public_key:
 * Ed25519 (RFC 8032, strict) for suite 0x0002; for suite 0x0001, ECDSA P-256 with SHA-256, the
 * signature as the 64-byte r ‖ s (an uncompressed 65-byte SEC1 public key).
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { abytes } from './bytes.js';
import { DirectoryError } from './errors.js';
import { encodeTreeHeadTbs, type Configuration, type TreeHead } from './structs.js';
import { KT_128_SHA256_P256 } from './suite.js';

/**
 * Signs the tree head for (treeSize, root) under `signingKey` (32-byte Ed25519 secret key).
 *
 * @example
 * const head = signTreeHead(config, sk, 8, root);
 */
export function signTreeHead(config: Configuration, signingKey: Uint8Array, treeSize: number, root: Uint8Array): TreeHead {
  abytes(signingKey, 'signing key', 32);
  const tbs = encodeTreeHeadTbs(config, treeSize, root);
  if (config.cipherSuite === KT_128_SHA256_P256) return { treeSize, signature: p256.sign(tbs, signingKey, { prehash: true, lowS: true, format: 'compact' }) };
  return { treeSize, signature: ed25519.sign(tbs, signingKey) };
}

/**
 * Verifies a tree head signature for `root`; throws `KT_BAD_SIGNATURE` otherwise.
 * Verification is strict RFC 8032 (noble's default: canonical encodings, no ZIP-215).
 *
 * @example
 * verifyTreeHead(config, head, root);
 */
export function verifyTreeHead(config: Configuration, head: TreeHead, root: Uint8Array): void {
  const tbs = encodeTreeHeadTbs(config, head.treeSize, root);
  let ok = false;
  try {
    ok =
      head.signature.length === 64 &&
      (config.cipherSuite === KT_128_SHA256_P256
        ? p256.verify(head.signature, tbs, config.signaturePublicKey, { prehash: true, lowS: false, format: 'compact' })
        : ed25519.verify(head.signature, tbs, config.signaturePublicKey, { zip215: false }));
  } catch {
    ok = false;
  }
  if (!ok) throw new DirectoryError('KT_BAD_SIGNATURE', `tree head of size ${head.treeSize} does not verify`);
}
