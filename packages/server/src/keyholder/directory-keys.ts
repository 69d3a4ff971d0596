/**
 * The directory's secret keys in the keyholder (issue #6, docs/directory.md
 * §Key custody): the KEYTRANS tree-head signing key (Ed25519) and the VRF key
 * (ECVRF-EDWARDS25519-SHA512), 64 bytes `signing seed ‖ VRF key`, kept in
 * `keyholder.json` wrapped under the master key like the checkpoint key:
 *
 *   directory: { keysWrapped: b64u(wrap(mk, "directory-keys", { init }, sk ‖ vrf)),
 *                signaturePublicKey, vrfPublicKey, source: "derived" | "imported",
 *                lastHead: { size, root } | null }
 *
 * The keys are made the first time the API enables the directory
 * (`directory-keys`): derived from the master key, HKDF-SHA256(mk, salt =
 * initId, info = "keyward/v1 directory-keys", 64), so every node of a
 * deployment (same master key, same initId) gets the same keys without
 * copying anything; or imported once from a pre-keyholder `directory.key`
 * file. They never leave the keyholder: it answers VRF proofs
 * (`directory-vrf`) and signs tree heads (`directory-sign-head`) only after
 * checking that the head's Configuration names its own public keys and that
 * the head extends the last one it signed: the same size and root, or a
 * larger size with a consistency proof from the last head (checkConsistent),
 * so a compromised API process cannot have it sign a fork, not even one that
 * grows. `lastHead` is written (atomically, state.ts) before a signature for a
 * new head is returned.
 */
import { decodeConfiguration, evaluateBatch, isDirectoryError, vrfEvaluate, vrfPublicKey } from '@keyward/directory';
import { fromBase64url, toBase64url, utf8 } from './bytes.js';
import { KeyholderProtocolError } from './protocol.js';
import { ed25519PrivateKey, ed25519PublicBytes, ed25519Sign, equalCT, hkdfSha256, wipe, type SecretInput } from './primitives.js';
import type { DirectoryState } from './state.js';
import { unwrap, wrap } from './wrap.js';

/** Wrap purpose of the directory keys (wrap.ts binds it into HKDF info and the AAD). */
export const DIRECTORY_KEYS_PURPOSE = 'directory-keys';
/** HKDF info of derived directory keys. */
export const DIRECTORY_KEYS_INFO = 'keyward/v1 directory-keys';
const KEYS_LENGTH = 64;

const aad = (initId: string) => ({ init: initId });

/** The public keys of 64 bytes `signing seed ‖ VRF key`. */
function publicKeys(keys: Uint8Array): { signaturePublicKey: Uint8Array; vrfPublicKey: Uint8Array } {
  const seed = keys.subarray(0, 32);
  return { signaturePublicKey: ed25519PublicBytes(ed25519PrivateKey(seed)), vrfPublicKey: vrfPublicKey(keys.subarray(32, 64)) };
}

/**
 * The state fragment for `keys` (derived from `mk` when absent), wrapped under `mk`.
 * The caller's `keys` buffer is left to the caller; derived bytes are wiped here.
 */
export function buildDirectoryState(mk: SecretInput, initId: string, imported?: Uint8Array): DirectoryState {
  const keys = imported ?? hkdfSha256(mk, utf8.encode(initId), utf8.encode(DIRECTORY_KEYS_INFO), KEYS_LENGTH);
  try {
    if (keys.length !== KEYS_LENGTH) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', `directory keys are ${KEYS_LENGTH} bytes`);
    const pub = publicKeys(keys);
    return {
      keysWrapped: toBase64url(wrap(mk, DIRECTORY_KEYS_PURPOSE, aad(initId), keys)),
      signaturePublicKey: toBase64url(pub.signaturePublicKey),
      vrfPublicKey: toBase64url(pub.vrfPublicKey),
      source: imported ? 'imported' : 'derived',
      lastHead: null,
    };
  } finally {
    if (!imported) wipe(keys);
  }
}

/** True when `imported` (64 bytes) are the keys the state holds (compares public keys). */
export function sameDirectoryKeys(state: DirectoryState, imported: Uint8Array): boolean {
  if (imported.length !== KEYS_LENGTH) return false;
  const pub = publicKeys(imported);
  return equalCT(pub.signaturePublicKey, fromBase64url(state.signaturePublicKey)!) && equalCT(pub.vrfPublicKey, fromBase64url(state.vrfPublicKey)!);
}

/** Runs `fn` with the unwrapped keys, wiped afterwards. */
function withKeys<T>(mk: SecretInput, initId: string, state: DirectoryState, fn: (keys: Uint8Array) => T): T {
  let keys: Uint8Array;
  try {
    keys = unwrap(mk, DIRECTORY_KEYS_PURPOSE, aad(initId), fromBase64url(state.keysWrapped)!);
  } catch (e) {
    throw new KeyholderProtocolError('KW_INTERNAL', 'the master key does not open the directory keys in the state file', { cause: e });
  }
  try {
    return fn(keys);
  } finally {
    wipe(keys);
  }
}

/** The VRF output and proof for (label, version), as `@keyward/directory`'s vrfEvaluate. */
export function directoryVrf(mk: SecretInput, initId: string, state: DirectoryState, label: Uint8Array, version: number): { output: Uint8Array; proof: Uint8Array } {
  return withKeys(mk, initId, state, (keys) => vrfEvaluate(keys.subarray(32, 64), label, version));
}

/** A §11.2 TreeHeadTBS split into its parts: Configuration ‖ uint64 tree_size ‖ root[32]. */
export interface ParsedTbs {
  readonly treeSize: number;
  readonly root: Uint8Array;
}

/**
 * Parses a TreeHeadTBS and checks that its Configuration names this
 * keyholder's keys (Ed25519 suite): else KW_DIRECTORY_KEY_MISMATCH.
 * A malformed TBS is KW_INVALID_ARGUMENT.
 */
export function parseTbs(state: DirectoryState, tbs: Uint8Array): ParsedTbs {
  if (tbs.length < 41) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'a TreeHeadTBS is Configuration ‖ uint64 size ‖ 32-byte root');
  const root = tbs.slice(tbs.length - 32);
  const sizeView = new DataView(tbs.buffer, tbs.byteOffset + tbs.length - 40, 8);
  const size = sizeView.getBigUint64(0);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'the tree size is out of range');
  let config;
  try {
    config = decodeConfiguration(tbs.subarray(0, tbs.length - 40));
  } catch (e) {
    throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'the TreeHeadTBS does not start with a KEYTRANS Configuration', { cause: e });
  }
  if (
    config.cipherSuite !== 0x0002 ||
    !equalCT(config.signaturePublicKey, fromBase64url(state.signaturePublicKey)!) ||
    !equalCT(config.vrfPublicKey, fromBase64url(state.vrfPublicKey)!)
  ) {
    throw new KeyholderProtocolError('KW_DIRECTORY_KEY_MISMATCH', "the tree head's Configuration does not name this keyholder's directory keys");
  }
  return { treeSize: Number(size), root };
}

/**
 * Refuses a head that does not extend the last one signed: a smaller size
 * (rollback), or the same size with another root (fork).
 */
export function checkExtends(state: DirectoryState, head: ParsedTbs): void {
  const last = state.lastHead;
  if (!last) return;
  if (head.treeSize < last.size) {
    throw new KeyholderProtocolError('KW_DIRECTORY_HEAD_REGRESSION', `refusing to sign a tree head of size ${head.treeSize}: size ${last.size} was signed already`);
  }
  if (head.treeSize === last.size && !equalCT(head.root, fromBase64url(last.root)!)) {
    throw new KeyholderProtocolError('KW_DIRECTORY_HEAD_REGRESSION', `refusing to sign another root for tree size ${head.treeSize} (a fork)`);
  }
}

/** The consistency evidence of a `directory-sign-head` request (protocol.ts). */
export interface HeadConsistency {
  readonly from: number;
  readonly fromHeads: readonly Uint8Array[];
  readonly proof: readonly Uint8Array[];
}

/**
 * Refuses a larger head that is not proven to extend the last one signed
 * (KW_DIRECTORY_HEAD_INCONSISTENT): `from` must be the last signed size,
 * `fromHeads` (that log's full-subtree heads) must recompute the last signed
 * root, and the §12.1 consistency proof over them must recompute the new
 * root. Call after {@link checkExtends}; a head of the last size, or the
 * first head, needs nothing.
 */
export function checkConsistent(state: DirectoryState, head: ParsedTbs, c: HeadConsistency | undefined): void {
  const last = state.lastHead;
  if (!last || last.size === 0 || head.treeSize <= last.size) return;
  const refuse = (why: string, cause?: unknown): never => {
    throw new KeyholderProtocolError('KW_DIRECTORY_HEAD_INCONSISTENT', `refusing to sign a tree head of size ${head.treeSize}: ${why}`, cause === undefined ? undefined : { cause });
  };
  if (!c) refuse(`no consistency proof from size ${last.size}, the last head signed`);
  if (c!.from !== last.size) refuse(`the consistency proof is from size ${c!.from}; the last head signed has size ${last.size}`);
  try {
    const lastRoot = evaluateBatch(last.size, [], [], { size: last.size, heads: c!.fromHeads });
    if (!equalCT(lastRoot, fromBase64url(last.root)!)) refuse(`the full-subtree heads given for size ${last.size} are not those of the root signed for it`);
    const root = evaluateBatch(head.treeSize, [], c!.proof, { size: last.size, heads: c!.fromHeads });
    if (!equalCT(root, head.root)) refuse(`the log of this root does not extend the one of size ${last.size} signed before (a fork)`);
  } catch (e) {
    if (isDirectoryError(e)) refuse(`the consistency proof from size ${last.size} does not verify: ${e.message}`, e);
    throw e;
  }
}

/** The Ed25519 signature over `tbs`. */
export function directorySign(mk: SecretInput, initId: string, state: DirectoryState, tbs: Uint8Array): Uint8Array {
  return withKeys(mk, initId, state, (keys) => ed25519Sign(ed25519PrivateKey(keys.subarray(0, 32)), tbs));
}

/**
 * The head-log key seed and id (docs/witness.md §The directory), derived from
 * the tree-head signing key exactly as directory/witness.ts `headLogKey` does
 * from a key file, so a migrated deployment keeps its head log.
 */
export function directoryHeadLogSeed(mk: SecretInput, initId: string, state: DirectoryState): { seed: Uint8Array; id: string } {
  return withKeys(mk, initId, state, (keys) => {
    const sk = keys.subarray(0, 32);
    const seed = hkdfSha256(sk, new Uint8Array(0), utf8.encode('keyward directory head log key v1'), 32);
    const id = Buffer.from(hkdfSha256(sk, new Uint8Array(0), utf8.encode('keyward directory head log id v1'), 8)).toString('hex');
    return { seed, id };
  });
}
