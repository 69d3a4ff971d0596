/**
 * A directory key file: 64 bytes, Ed25519 tree-head signing seed then ECVRF
 * key — the custody before the keyholder held the directory's keys. The
 * server no longer creates one: it imports an existing file into its
 * keyholder once and deletes it (keyholder-keys.ts, docs/directory.md §Key
 * custody). Reading one remains for tools and tests that model a stolen key.
 */
import { readFileSync } from 'node:fs';
import type { DirectoryKeys } from '@keyward/directory';

/**
 * Reads a key file. Refuses a missing file or one of another size.
 *
 * @example
 * const keys = loadDirectoryKeys('/backup/directory.key');
 */
export function loadDirectoryKeys(path: string): DirectoryKeys {
  const b = readFileSync(path);
  if (b.length !== 64) {
    b.fill(0);
    throw new Error(`the directory key file ${path} is not 64 bytes`);
  }
  const keys = { signingKey: new Uint8Array(b.subarray(0, 32)), vrfKey: new Uint8Array(b.subarray(32, 64)) };
  b.fill(0);
  return keys;
}
