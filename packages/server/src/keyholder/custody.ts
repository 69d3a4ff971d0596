/**
 * Custody of the master key (docs/key-service-crypto.md §Custody): the key is
 * born here, split with Shamir's scheme (shamir-secret-sharing, audited) into
 * n share files of which any k rebuild it, and described to the keyholder by
 * a state fragment that lets it check every share before combining and the
 * combined key after:
 *
 *   share_hash[i] = SHA-256("keyward/v1 share-hash" ‖ 0x00 ‖ body_i)   (body: share-file.ts)
 *   mk_check      = HMAC-SHA256(mk, "keyward/v1 mk-check")
 *
 * Submitting shares is unsealer.ts; the per-boot key shares travel sealed to
 * is unseal-key.ts; sealing shares to custodians is custodians.ts.
 */
import { split } from 'shamir-secret-sharing';
import { z } from 'zod';
import { toHex, utf8 } from './bytes.js';
import { check } from './errors.js';
import { hmacSha256, randomBytes, sha256, wipe, type SecretInput } from './primitives.js';
import { parseArg } from './schemas.js';
import { INIT_ID_LENGTH, encodeShareFile, shareBody, type ShareRecord } from './share-file.js';
import { hsmCustodySchema } from './hsm-state.js';

export const MASTER_KEY_LENGTH = 32;
const SHARE_HASH_LABEL = utf8.encode('keyward/v1 share-hash\0');
const MK_CHECK_LABEL = utf8.encode('keyward/v1 mk-check');

/** What the keyholder's state file holds about custody. Public values only: nothing here unseals anything. */
export const custodyStateSchema = z.strictObject({
  initId: z.string().regex(/^[0-9a-f]{32}$/),
  threshold: z.int().min(2).max(255),
  /** Hex SHA-256 per share, index i at position i − 1. */
  shareHashes: z.array(z.string().regex(/^[0-9a-f]{64}$/)).min(2).max(255),
  mkCheck: z.string().regex(/^[0-9a-f]{64}$/),
  /**
   * HSM-wrapped mode (hsm-custody.ts, docs/hsm.md): the master key is wrapped
   * by a key in the HSM, and the shares are of a separate recovery key whose
   * check value this is: HMAC-SHA256(recovery key, "keyward/v1 recovery-check").
   */
  recoveryCheck: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  hsm: hsmCustodySchema.optional(),
  /**
   * How many times the shares were replaced by a rekey (rekey.ts); absent = 0
   * (the set made at init). Nodes of a cluster adopt a custody fragment only
   * with a higher generation (custody-sync.ts), so an older never replaces a newer.
   */
  generation: z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
}).refine((s) => s.threshold <= s.shareHashes.length, 'threshold exceeds the number of shares')
  .refine((s) => (s.hsm === undefined) === (s.recoveryCheck === undefined), 'hsm and recoveryCheck go together (HSM-wrapped mode)');
export type CustodyState = z.infer<typeof custodyStateSchema>;

/** A share record with its file text, as `keyward init` writes it out. */
export interface ShareFile extends ShareRecord {
  readonly total: number;
  readonly threshold: number;
  /** The share file (share-file.ts format). */
  readonly text: string;
}

export interface InitResult {
  /** The 32-byte master key. The caller wraps what it needs under it, then wipes it. */
  readonly masterKey: Uint8Array;
  readonly initId: string;
  readonly shares: readonly ShareFile[];
  readonly state: CustodyState;
}

/** SHA-256("keyward/v1 share-hash" ‖ 0x00 ‖ body): the body binds init id and index. */
export function shareHashOfBody(body: Uint8Array): Uint8Array {
  return sha256(SHARE_HASH_LABEL, body);
}

/** The share hash of a record, hex, as the state file holds it. */
export function shareHash(r: ShareRecord): string {
  return toHex(shareHashOfBody(shareBody(r)));
}

/** HMAC-SHA256(mk, "keyward/v1 mk-check"): lets the keyholder recognise its master key without storing it. */
export function mkCheckOf(masterKey: SecretInput): Uint8Array {
  return hmacSha256(masterKey, MK_CHECK_LABEL);
}

/** Checks a state fragment read from disk; KW_INVALID_ARGUMENT when malformed. */
export function parseCustodyState(value: unknown): CustodyState {
  return parseArg(custodyStateSchema, value, 'custody state');
}

/**
 * Makes a new master key and splits it (default 3 of 5).
 *
 * @example
 * const { masterKey, shares, state } = await initCustody({ shares: 5, threshold: 3 });
 * for (const s of shares) writeFileSync(`share-${s.index}.txt`, s.text, { mode: 0o600 });
 */
export async function initCustody(opts: { shares?: number; threshold?: number; initId?: string } = {}): Promise<InitResult> {
  const n = opts.shares ?? 5;
  const k = opts.threshold ?? 3;
  check(Number.isInteger(n) && n >= 2 && n <= 255, 'the number of shares must be an integer from 2 to 255');
  check(Number.isInteger(k) && k >= 2 && k <= n, 'the threshold must be an integer from 2 to the number of shares');
  // `initId` is given only when an existing deployment gets new shares (hsm-rewrap.ts: software → HSM; rekey.ts).
  check(opts.initId === undefined || /^[0-9a-f]{32}$/.test(opts.initId), 'the init id is 32 lower-case hex digits');
  const initId = opts.initId ?? toHex(randomBytes(INIT_ID_LENGTH));
  const masterKey = randomBytes(MASTER_KEY_LENGTH);
  const { shares, state } = await splitMasterKey(masterKey, { shares: n, threshold: k, initId });
  return { masterKey, initId, shares, state };
}

/**
 * Splits an existing 32-byte key into n share files (k rebuild it) with a
 * fresh random polynomial: new shares, new share hashes, same key. `keyward
 * init` uses it for a new key; a rekey (rekey.ts) for the same master key.
 * The caller keeps (and wipes) `key`; the returned share bytes are the
 * caller's to wipe once sealed.
 *
 * @example
 * const { shares, state } = await splitMasterKey(mk, { shares: 5, threshold: 3, initId });
 */
export async function splitMasterKey(key: Uint8Array, opts: { shares: number; threshold: number; initId: string }): Promise<{ shares: ShareFile[]; state: CustodyState }> {
  const { shares: n, threshold: k, initId } = opts;
  check(Number.isInteger(n) && n >= 2 && n <= 255, 'the number of shares must be an integer from 2 to 255');
  check(Number.isInteger(k) && k >= 2 && k <= n, 'the threshold must be an integer from 2 to the number of shares');
  check(/^[0-9a-f]{32}$/.test(initId), 'the init id is 32 lower-case hex digits');
  check(key.length === MASTER_KEY_LENGTH, `the key to split is ${MASTER_KEY_LENGTH} bytes`);
  // shamir-secret-sharing checks `constructor === Uint8Array`: pass exactly that.
  const copy = Uint8Array.from(key);
  let raw: Uint8Array[];
  try {
    raw = await split(copy, n, k);
  } finally {
    wipe(copy);
  }
  const shares = raw.map((share, i): ShareFile => {
    const record = { initId, index: i + 1, share };
    return { ...record, total: n, threshold: k, text: encodeShareFile(record, n, k) };
  });
  const state: CustodyState = { initId, threshold: k, shareHashes: shares.map(shareHash), mkCheck: toHex(mkCheckOf(key)) };
  return { shares, state };
}
