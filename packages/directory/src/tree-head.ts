/**
 * Tree head signatures (§11.2): Ed25519 over TreeHeadTBS under the
 * Configuration's signature_public_key.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { abytes } from './bytes.js';
import { DirectoryError } from './errors.js';
import { encodeTreeHeadTbs, type Configuration, type TreeHead } from './structs.js';

/**
 * Signs the tree head for (treeSize, root) under `signingKey` (32-byte Ed25519 secret key).
 *
 * @example
 * const head = signTreeHead(config, sk, 8, root);
 */
export function signTreeHead(config: Configuration, signingKey: Uint8Array, treeSize: number, root: Uint8Array): TreeHead {
  abytes(signingKey, 'signing key', 32);
  return { treeSize, signature: ed25519.sign(encodeTreeHeadTbs(config, treeSize, root), signingKey) };
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
    ok = head.signature.length === 64 && ed25519.verify(head.signature, tbs, config.signaturePublicKey, { zip215: false });
  } catch {
    ok = false;
  }
  if (!ok) throw new DirectoryError('KT_BAD_SIGNATURE', `tree head of size ${head.treeSize} does not verify`);
}
