/**
 * Custody sync between the nodes of a cluster (docs/key-service-crypto.md
 * §Rekey): every node has its own keyholder.json, so after a rekey
 * (rekey.ts) on one node the others still hold the old share hashes. The
 * rekeying keyholder publishes the new share set — public values only — as a
 * record authenticated under a key only the master key gives:
 *
 *   k_sync = HKDF-SHA256(ikm = mk, salt = "", info = "keyward/v1 custody-sync", 32)
 *   mac    = HMAC-SHA256(k_sync, RFC 8785 JSON of the share set)
 *   share set = { initId, generation, threshold, shareHashes, mkCheck, recoveryCheck? }
 *
 * The API stores it in the store's meta table (it cannot forge one: it has no
 * master key) and hands it to keyholders: an unsealed one checks the MAC and
 * adopts a newer generation of its own deployment (`custody-sync`); a sealed
 * one, given it with an unseal share, adopts it only after combining the
 * master key and checking the MAC — and then refuses old shares with
 * KW_SHARES_SUPERSEDED (service.ts #unseal). Only the share fields move: a
 * node keeps its own `hsm` section (module paths may differ per node).
 *
 * @example
 * const record = custodyRecord(mk, newCustody);            // rekeying node
 * if (verifyCustodyRecord(mk, record) && supersedes(mine, record.shares)) adopt(applyRecord(mine, record.shares));
 */
import { z } from 'zod';
import { canonicalJsonBytes } from './canonical-json.js';
import { fromHex, toHex, utf8 } from './bytes.js';
import { custodyStateSchema, shareHashOfBody, type CustodyState } from './custody.js';
import { equalCT, hkdfSha256, hmacSha256, wipe, type SecretInput } from './primitives.js';
import { decodeShareFile } from './share-file.js';

const SYNC_INFO = utf8.encode('keyward/v1 custody-sync');
const hex64 = z.string().regex(/^[0-9a-f]{64}$/);

/** The share set of a custody fragment: what a rekey changes, and all a record carries. */
export const shareSetSchema = z.strictObject({
  initId: z.string().regex(/^[0-9a-f]{32}$/),
  generation: z.int().min(1).max(Number.MAX_SAFE_INTEGER),
  threshold: z.int().min(2).max(255),
  shareHashes: z.array(hex64).min(2).max(255),
  mkCheck: hex64,
  recoveryCheck: hex64.optional(),
}).refine((s) => s.threshold <= s.shareHashes.length, 'threshold exceeds the number of shares');
export type ShareSet = z.infer<typeof shareSetSchema>;

/** The record the store's meta row `custody.sync` holds (JSON). */
export const custodyRecordSchema = z.strictObject({ shares: shareSetSchema, mac: hex64 });
export type CustodyRecord = z.infer<typeof custodyRecordSchema>;

/** The generation of a custody fragment (0 for the set made at init). */
export const generationOf = (c: Pick<CustodyState, 'generation'>): number => c.generation ?? 0;

/** The share set of `custody` (which must have a generation ≥ 1: it was made by a rekey). */
export function shareSetOf(custody: CustodyState): ShareSet {
  return shareSetSchema.parse({
    initId: custody.initId, generation: generationOf(custody), threshold: custody.threshold,
    shareHashes: custody.shareHashes, mkCheck: custody.mkCheck,
    ...(custody.recoveryCheck !== undefined ? { recoveryCheck: custody.recoveryCheck } : {}),
  });
}

function macOf(masterKey: SecretInput, set: ShareSet): Uint8Array {
  const key = hkdfSha256(masterKey, new Uint8Array(0), SYNC_INFO, 32);
  try {
    return hmacSha256(key, canonicalJsonBytes(set));
  } finally {
    wipe(key);
  }
}

/** The authenticated record of `custody`'s share set (made by the keyholder that rekeyed). */
export function custodyRecord(masterKey: SecretInput, custody: CustodyState): CustodyRecord {
  const shares = shareSetOf(custody);
  return { shares, mac: toHex(macOf(masterKey, shares)) };
}

/** True when `record`'s MAC verifies under this master key (constant-time comparison). */
export function verifyCustodyRecord(masterKey: SecretInput, record: CustodyRecord): boolean {
  return equalCT(macOf(masterKey, record.shares), fromHex(record.mac, 32)!);
}

/**
 * Whether `set` may replace `mine` (before its MAC is checked): the same
 * deployment (init id and master-key check), the same custody mode (recovery
 * shares exactly when HSM-wrapped) and a higher generation.
 */
export function supersedes(mine: CustodyState, set: ShareSet): boolean {
  return set.initId === mine.initId && set.mkCheck === mine.mkCheck
    && (set.recoveryCheck !== undefined) === (mine.hsm !== undefined)
    && set.generation > generationOf(mine);
}

/** `mine` with `set`'s shares (its own `hsm` section kept), checked by the custody schema. */
export function applyShareSet(mine: CustodyState, set: ShareSet): CustodyState {
  return custodyStateSchema.parse({
    ...mine, threshold: set.threshold, shareHashes: set.shareHashes, generation: set.generation,
    ...(set.recoveryCheck !== undefined ? { recoveryCheck: set.recoveryCheck } : {}),
  });
}

/**
 * True when the share file's recorded hash is in `set` and not in `mine`: a
 * share of the newer set, offered to a node that has not adopted it yet.
 * Anything undecodable is false (the node's own unsealer reports it).
 */
export function isShareOfSet(shareFile: Uint8Array, mine: CustodyState, set: ShareSet): boolean {
  let s;
  try {
    s = decodeShareFile(shareFile);
  } catch {
    return false;
  }
  try {
    if (s.initId !== set.initId) return false;
    const h = toHex(shareHashOfBody(s.body));
    return set.shareHashes[s.index - 1] === h && mine.shareHashes[s.index - 1] !== h;
  } finally {
    wipe(s.share, s.body);
  }
}
