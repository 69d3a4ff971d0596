/**
 * Witnessed directory heads (issue #6; docs/witness.md §The directory).
 *
 * KEYTRANS tree heads are not RFC 9162 trees, so the directory goes through
 * the witnesses with a companion RFC 9162 **head log**: leaf i is
 * {@link headLogEntry}(i + 1, root of the KEYTRANS log at size i + 1). The
 * server signs the head log's checkpoints (C2SP tlog-checkpoint) and has them
 * cosigned by its witnesses; a client accepts a KEYTRANS head only as the
 * *latest entry* of a head-log checkpoint cosigned by k of its own configured
 * witnesses (`verifyWitnessedLatestEntry` of `@keyward/tlog`).
 *
 * What that refuses: a second view of the directory (it needs a second head
 * log, which witnesses holding the first refuse to cosign), a head that is not
 * the newest the witnesses saw (an older head is not the latest entry), and a
 * head with fewer than k cosignatures. Pure; runs in Node and browsers.
 */
import { TlogError, newVerifier, verifyWitnessedLatestEntry, witnessPolicy, type NoteVerifier, type WitnessPolicy } from '@keyward/tlog';
import { base64urlnopad } from '@scure/base';

/** A client's witness configuration for the directory (pinned, like the log configuration). */
export interface DirectoryWitnessConfig {
  /** The head log's note verifier key (`name+keyid+key`); its name is the head log's origin. */
  readonly logKey: string;
  /** The witnesses the client trusts: each `{ name, key }` (a cosignature/v1 verifier key named `name`). */
  readonly witnesses: readonly { readonly name: string; readonly key: string }[];
  /** How many distinct witnesses must cosign (default: all). */
  readonly k?: number;
  /**
   * Freshness: the k-th freshest cosignature (the witnesses' C2SP cosignature/v1 timestamps) may be
   * at most this old, in seconds (default {@link DEFAULT_MAX_COSIGNATURE_AGE_S}, one day), else
   * `TLOG_STALE_COSIGNATURES`. This is what refuses an old, legitimately cosigned head shown to a
   * client that has no last-seen head (a rollback the client cannot detect by itself). The server
   * re-witnesses its current head every `directory.witnessRefreshMs` (one hour by default), so an
   * honest idle directory stays fresh.
   */
  readonly maxAgeSeconds?: number;
}

/** Default of {@link DirectoryWitnessConfig.maxAgeSeconds}: one day. */
export const DEFAULT_MAX_COSIGNATURE_AGE_S = 24 * 3600;

/** `GET /v1/directory/witnessed`: the newest witnessed head-log checkpoint and the proof of its latest entry. */
export interface WitnessedHeadAnswer {
  readonly tree_size: number;
  /** The KEYTRANS root at tree_size (informative: the client uses the root it verified). */
  readonly root: string;
  /** The head-log checkpoint note with the witnesses' cosignature lines. */
  readonly checkpoint: string;
  /** RFC 9162 inclusion proof of leaf tree_size − 1 in the checkpoint's tree, base64url. */
  readonly proof: readonly string[];
}

/**
 * The head-log leaf for the KEYTRANS head of `treeSize` entries with `root`:
 * `uint64(treeSize) ‖ root` (big-endian, as TLS presentation encodes sizes).
 *
 * @example
 * const leaf = headLogEntry(3, root);
 */
export function headLogEntry(treeSize: number, root: Uint8Array): Uint8Array {
  if (!Number.isSafeInteger(treeSize) || treeSize < 1) throw new TlogError('TLOG_INVALID_ARGUMENT', 'a head-log entry needs a tree size of at least 1');
  if (!(root instanceof Uint8Array) || root.length !== 32) throw new TlogError('TLOG_INVALID_ARGUMENT', 'a head-log entry needs a 32-byte root');
  const out = new Uint8Array(8 + root.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(treeSize));
  out.set(root, 8);
  return out;
}

/**
 * Checks KEYTRANS heads against witnessed head-log checkpoints.
 *
 * @example
 * const w = new DirectoryWitnessCheck({ logKey, witnesses: [{ name: 'w1.example', key }], k: 1 });
 * w.verify({ treeSize, root }, answer); // throws TLOG_NOT_ENOUGH_COSIGNATURES, TLOG_BAD_PROOF, …
 */
export class DirectoryWitnessCheck {
  readonly policy: WitnessPolicy;
  readonly logVerifier: NoteVerifier;
  /** The head log's origin (the log key's name). */
  readonly origin: string;
  /** The maximum age of the k-th freshest cosignature, seconds. */
  readonly maxAgeSeconds: number;
  readonly #now: () => number;

  /**
   * Throws `TLOG_INVALID_ARGUMENT` / `TLOG_MALFORMED_KEY` for a bad configuration. `now` is the
   * clock in milliseconds (default `Date.now`).
   */
  constructor(cfg: DirectoryWitnessConfig, now: () => number = Date.now) {
    this.policy = witnessPolicy(cfg.witnesses, cfg.k);
    this.logVerifier = newVerifier(cfg.logKey.trim());
    this.origin = this.logVerifier.name;
    const age = cfg.maxAgeSeconds ?? DEFAULT_MAX_COSIGNATURE_AGE_S;
    if (!Number.isSafeInteger(age) || age < 1) throw new TlogError('TLOG_INVALID_ARGUMENT', 'maxAgeSeconds must be a positive integer');
    this.maxAgeSeconds = age;
    this.#now = now;
  }

  /**
   * Accepts `head` (a KEYTRANS head the client verified) only as the latest entry of the
   * answer's checkpoint, signed by the head log and cosigned by k witnesses. Throws
   * `TLOG_NOT_ENOUGH_COSIGNATURES` (missing answer, other size, too few cosignatures),
   * `TLOG_BAD_PROOF` (not the latest entry: another view or an older head), `TLOG_BAD_SIGNATURE`,
   * `TLOG_STALE_COSIGNATURES` (the k-th freshest cosignature is older than `maxAgeSeconds`: an old
   * checkpoint replayed with its old head), `TLOG_MALFORMED_*`.
   */
  verify(head: { readonly treeSize: number; readonly root: Uint8Array }, answer: WitnessedHeadAnswer | null | undefined): void {
    if (answer === null || answer === undefined || typeof answer.checkpoint !== 'string' || !Array.isArray(answer.proof)) {
      throw new TlogError('TLOG_NOT_ENOUGH_COSIGNATURES', `the directory head of size ${head.treeSize} comes without a witnessed checkpoint`);
    }
    if (typeof answer.tree_size === 'number' && answer.tree_size < head.treeSize) {
      throw new TlogError('TLOG_NOT_ENOUGH_COSIGNATURES', `the newest witnessed directory head has size ${answer.tree_size}; the answer's head (size ${head.treeSize}) is not witnessed`);
    }
    let proof: Uint8Array[];
    try {
      proof = (answer.proof as readonly unknown[]).map((p) => base64urlnopad.decode(String(p)));
    } catch (e) {
      throw new TlogError('TLOG_MALFORMED_WITNESS_MESSAGE', 'the head-log inclusion proof is not base64url', { cause: e });
    }
    const { cosignatures } = verifyWitnessedLatestEntry(answer.checkpoint, headLogEntry(head.treeSize, head.root), proof, [this.logVerifier], this.policy, { origin: this.origin });
    // Freshness: k distinct witnesses must have cosigned within maxAgeSeconds. Per witness its
    // newest line counts; the k-th newest of those is how recently k of them vouched for the head.
    const newest = new Map<string, number>();
    for (const c of cosignatures) newest.set(c.name, Math.max(newest.get(c.name) ?? 0, c.timestamp));
    const stamps = [...newest.values()].sort((a, b) => b - a);
    const kth = stamps[this.policy.k - 1];
    const now = Math.floor(this.#now() / 1000);
    if (kth === undefined || now - kth > this.maxAgeSeconds) {
      throw new TlogError('TLOG_STALE_COSIGNATURES', `the directory head of size ${head.treeSize} was last cosigned by ${this.policy.k} witness(es) ${kth === undefined ? 'never' : `${now - kth} s ago`}; at most ${this.maxAgeSeconds} s is accepted`);
    }
  }
}
