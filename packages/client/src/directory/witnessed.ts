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
import { KeywardClientError } from '../http/errors.js';

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

/** What {@link DirectoryWitnessCheck.verify} accepted: the head, and which witnesses vouched for it. */
export interface WitnessedHead {
  /** The KEYTRANS head's size (the latest entry of the cosigned head-log checkpoint). */
  readonly treeSize: number;
  /** Each configured witness with a valid cosignature, with its newest one's time (POSIX seconds), newest first. */
  readonly cosignatures: readonly { readonly name: string; readonly timestamp: number }[];
  /** How many had to cosign, of how many configured. */
  readonly k: number;
  readonly n: number;
  /** Seconds since the k-th freshest cosignature (what `maxAgeSeconds` bounds). */
  readonly ageSeconds: number;
  readonly maxAgeSeconds: number;
}

/**
 * A witness configuration from its JSON form, `{ "log_key", "k"?, "witnesses": [{ "name", "key" }],
 * "max_age_seconds"? }` — the CLI's `KEYWARD_DIRECTORY_WITNESSES` file and the `witnesses` member of
 * `GET /v1/directory/config` — checked as {@link DirectoryWitnessCheck} does. Other members of a
 * witness (a `url`) are dropped. Throws `TLOG_INVALID_ARGUMENT` / `TLOG_MALFORMED_KEY`.
 *
 * @example
 * const cfg = parseWitnessConfig(JSON.parse(text));
 */
export function parseWitnessConfig(json: unknown): DirectoryWitnessConfig {
  const j = (typeof json === 'object' && json !== null ? json : {}) as { log_key?: unknown; k?: unknown; witnesses?: unknown; max_age_seconds?: unknown };
  const { log_key: logKey, k, witnesses, max_age_seconds: maxAge } = j;
  if (typeof logKey !== 'string' || !Array.isArray(witnesses) || (k !== undefined && typeof k !== 'number') || (maxAge !== undefined && typeof maxAge !== 'number')) {
    throw new TlogError('TLOG_INVALID_ARGUMENT', 'a witness configuration needs log_key (string), witnesses ([{ name, key }]) and optionally k (number) and max_age_seconds (number)');
  }
  const list = (witnesses as unknown[]).map((w, i) => {
    const { name, key } = (typeof w === 'object' && w !== null ? w : {}) as { name?: unknown; key?: unknown };
    if (typeof name !== 'string' || typeof key !== 'string') throw new TlogError('TLOG_INVALID_ARGUMENT', `witness ${i + 1} needs a name and a key (strings)`);
    return { name, key };
  });
  const cfg: DirectoryWitnessConfig = { logKey, witnesses: list, ...(k !== undefined ? { k } : {}), ...(maxAge !== undefined ? { maxAgeSeconds: maxAge } : {}) };
  new DirectoryWitnessCheck(cfg); // validates the keys, names, k and the age bound
  return cfg;
}

/**
 * What differs between a pinned witness configuration and the one a server presents, in words
 * (empty when they are the same): the head-log key, k (default: all), witnesses added or removed,
 * a witness's key; `presented` null is "no witnesses". `maxAgeSeconds` is the client's own choice
 * and is not compared.
 *
 * @example
 * witnessConfigChanges(pinned, served) // ['k: 2 → 1', 'witness removed: w2.example']
 */
export function witnessConfigChanges(pinned: DirectoryWitnessConfig, presented: DirectoryWitnessConfig | null): string[] {
  if (presented === null) return ['the server presents no witnesses'];
  const out: string[] = [];
  if (pinned.logKey.trim() !== presented.logKey.trim()) out.push(`head-log key: ${pinned.logKey.trim()} → ${presented.logKey.trim()}`);
  const kp = pinned.k ?? pinned.witnesses.length;
  const ks = presented.k ?? presented.witnesses.length;
  if (kp !== ks) out.push(`k: ${kp} → ${ks}`);
  const served = new Map(presented.witnesses.map((w) => [w.name, w.key.trim()]));
  const mine = new Map(pinned.witnesses.map((w) => [w.name, w.key.trim()]));
  for (const [name, key] of mine) {
    const other = served.get(name);
    if (other === undefined) out.push(`witness removed: ${name}`);
    else if (other !== key) out.push(`witness ${name}: key ${key} → ${other}`);
  }
  for (const name of served.keys()) if (!mine.has(name)) out.push(`witness added: ${name}`);
  return out;
}

/**
 * Refuses a witness configuration other than the pinned one: throws `KW_CLIENT_WITNESSES_CHANGED`
 * (a {@link KeywardClientError}) naming what changed. A client pins the configuration once (on
 * first use, or from its operator) and checks every later presentation with this, so that a
 * server cannot swap in witnesses it controls, lower k, or drop the witnesses.
 *
 * @example
 * checkPinnedWitnesses(pinned, (await Directory.published(t)).witnesses);
 */
export function checkPinnedWitnesses(pinned: DirectoryWitnessConfig, presented: DirectoryWitnessConfig | null): void {
  const changes = witnessConfigChanges(pinned, presented);
  if (changes.length > 0) throw new KeywardClientError('KW_CLIENT_WITNESSES_CHANGED', `the directory's witness configuration is not the pinned one: ${changes.join('; ')}`);
}

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
   * checkpoint replayed with its old head), `TLOG_MALFORMED_*`. Returns who cosigned, and when.
   */
  verify(head: { readonly treeSize: number; readonly root: Uint8Array }, answer: WitnessedHeadAnswer | null | undefined): WitnessedHead {
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
    return {
      treeSize: head.treeSize,
      cosignatures: [...newest].map(([name, timestamp]) => ({ name, timestamp })).sort((a, b) => b.timestamp - a.timestamp || a.name.localeCompare(b.name)),
      k: this.policy.k, n: this.policy.witnesses.length, ageSeconds: now - kth, maxAgeSeconds: this.maxAgeSeconds,
    };
  }
}
