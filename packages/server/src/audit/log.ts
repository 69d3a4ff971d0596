/**
 * The audit log: an append-only, hash-chained sequence of events that are the
 * leaves of an RFC 9162 Merkle tree, with C2SP signed checkpoints.
 *
 * The log writes only through {@link AuditStorage.append}; there is no
 * operation that changes or removes an event or a checkpoint. The real store
 * (server/store) implements the storage interface over its `audit_events` and
 * `checkpoints` tables; tests use small doubles.
 *
 * In the running service the keyholder keeps its own Merkle frontier and is
 * the one that signs checkpoints (it refuses to sign one that does not extend
 * its previous one). This class computes the same tree from the store, serves
 * proofs, and refuses to sign over a store that contradicts its own latest
 * checkpoint.
 */
import { isValidKeyName, parseCheckpoint, parseNote, signCheckpoint, type NoteSigner } from '@keyward/tlog';
import { equalBytes, GENESIS_PREV } from './bytes.js';
import { AuditError, check, isAuditError } from './errors.js';
import { buildEvent, eventHash, eventLeafHash, parseEvent, type AuditEvent, type AuditEventInput } from './event.js';
import { MerkleCache } from './tree.js';

/** One stored event: the index it was appended at and its exact canonical bytes. */
export interface StoredEvent {
  readonly index: number;
  readonly event: Uint8Array;
}

/** What `AuditStorage.append` is given. */
export interface AuditAppend {
  /** The index to append at: must be the next one (= size()), else the storage throws and stores nothing. */
  readonly index: number;
  /** The event's canonical bytes, stored and returned byte for byte. */
  readonly event: Uint8Array;
  /** `leafHash(event)`, for storages that keep it beside the event (never trusted on read). */
  readonly leafHash: Uint8Array;
  /** The event's time, ms since the epoch. */
  readonly time: number;
}

/** A signed checkpoint to keep. */
export interface AuditCheckpointRecord {
  readonly size: number;
  readonly root: Uint8Array;
  /** The signed note text (C2SP tlog-checkpoint). */
  readonly note: string;
}

/**
 * The storage the audit log needs: append at the end, read, count, keep
 * checkpoints. Nothing else — in particular no update and no delete.
 * Implementations must store events and notes byte-exact.
 */
export interface AuditStorage {
  /** Appends at `record.index` (must equal `size()`, else throw and store nothing); returns that index. */
  append(record: AuditAppend): Promise<number>;
  /** The stored events with from ≤ index < to, in index order (fewer if the log is shorter). */
  read(from: number, to: number): Promise<StoredEvent[]>;
  /** Number of stored events (the next index). */
  size(): Promise<number>;
  /** The note of the checkpoint with the largest size, or null. */
  latestCheckpoint(): Promise<string | null>;
  saveCheckpoint(checkpoint: AuditCheckpointRecord): Promise<void>;
}

/** Options of {@link AuditLog}. */
export interface AuditLogOptions {
  /** The checkpoint origin, e.g. `keyward.example/audit/<log-id>`; also the log key's name. */
  readonly origin: string;
  /** Clock for event times (default `() => new Date()`). */
  readonly now?: () => Date;
}

/** Events read from the storage per call. */
export const READ_PAGE = 1000;

/** The result of {@link AuditLog.appendEvent}. */
export interface AppendedEvent {
  readonly index: number;
  readonly leafHash: Uint8Array;
  readonly event: AuditEvent;
  /** The canonical bytes that were stored. */
  readonly bytes: Uint8Array;
}

/** The result of {@link AuditLog.checkpoint}. */
export interface SignedCheckpoint {
  readonly note: string;
  readonly size: number;
  readonly root: Uint8Array;
}

const corrupt = (index: number, message: string, cause?: unknown): AuditError =>
  new AuditError('KW_AUDIT_CORRUPT', message, { details: { index }, cause });

/**
 * The audit log over an {@link AuditStorage}.
 *
 * @example
 * const log = new AuditLog(storage, { origin: 'keyward.example/audit/prod-1' });
 * const { index } = await log.appendEvent({ ns: 'billing', principal: 'svc-orders', auth: 'signature', op: 'data.datakey', outcome: 'allowed' });
 * const { note } = await log.checkpoint(newSigner(skey));
 * const proof = await log.inclusionProof(index, 1);
 */
export class AuditLog {
  readonly storage: AuditStorage;
  readonly origin: string;
  readonly #now: () => Date;
  /** Leaves of the stored events read so far (only committed rows, never a just-appended one). */
  readonly #tree = new MerkleCache();
  #lastHash = GENESIS_PREV;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(storage: AuditStorage, options: AuditLogOptions) {
    check(typeof storage === 'object' && storage !== null, 'storage is required');
    check(typeof options === 'object' && options !== null, 'options.origin is required');
    check(typeof options.origin === 'string' && isValidKeyName(options.origin) && options.origin.length <= 255, 'origin must be a valid note key name (no spaces, no "+"), e.g. keyward.example/audit/prod-1');
    this.storage = storage;
    this.origin = options.origin;
    this.#now = options.now ?? (() => new Date());
  }

  /** Runs `fn` after every earlier call of this log has settled. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Appends one event: fills `v`, `index` (the next one), `time` and `prev`
   * (hash of the stored last event), checks and encodes it, and appends it.
   * Pass `storage` — the store's transaction view — to write the event in the
   * same transaction as the change it describes: it then commits or rolls
   * back with that change. Throws `KW_INVALID_ARGUMENT` / `KW_LIMIT_EXCEEDED`
   * for a bad event (nothing written), `KW_AUDIT_CORRUPT` when the stored last
   * event is not what the log wrote, `KW_AUDIT_CONFLICT` when the storage put
   * it at another index.
   *
   * @example
   * await store.transaction(async (tx) => {
   *   await tx.rotateKey(…);
   *   await log.appendEvent({ ns, principal, auth: 'token', op: 'keys.rotate', target: { key, version }, outcome: 'allowed' }, { storage: auditStorageOf(tx) });
   * });
   */
  appendEvent(input: AuditEventInput, options: { readonly storage?: AuditStorage } = {}): Promise<AppendedEvent> {
    const storage = options.storage ?? this.storage;
    return this.#serial(async () => {
      const n = await storage.size();
      check(Number.isSafeInteger(n) && n >= 0, 'storage.size() must be a non-negative integer', 'KW_AUDIT_CORRUPT');
      let prev = GENESIS_PREV;
      if (n > 0) {
        const [last, ...more] = await storage.read(n - 1, n);
        if (last === undefined || more.length > 0 || last.index !== n - 1) throw corrupt(n - 1, `the stored log has ${n} events but event ${n - 1} cannot be read`);
        try {
          if (parseEvent(last.event).index !== n - 1) throw corrupt(n - 1, `stored event ${n - 1} carries another index`);
        } catch (e) {
          if (isAuditError(e, 'KW_AUDIT_CORRUPT')) throw e;
          throw corrupt(n - 1, `stored event ${n - 1} is not a valid event`, e);
        }
        prev = eventHash(last.event);
      }
      const time = this.#now();
      const { event, bytes } = buildEvent(input, { index: n, time, prev });
      const leaf = eventLeafHash(bytes);
      const at = await storage.append({ index: n, event: bytes, leafHash: leaf, time: time.getTime() });
      if (at !== n) throw new AuditError('KW_AUDIT_CONFLICT', `the event was built for index ${n} but stored at ${String(at)}`, { details: { index: n } });
      return { index: n, leafHash: leaf, event, bytes };
    });
  }

  /**
   * Reads stored events past the cached ones, checking as it goes that they
   * are gapless, valid and hash-chained (else `KW_AUDIT_CORRUPT`).
   */
  async #sync(): Promise<number> {
    const target = await this.storage.size();
    check(Number.isSafeInteger(target) && target >= 0, 'storage.size() must be a non-negative integer', 'KW_AUDIT_CORRUPT');
    if (target < this.#tree.size) throw corrupt(target, `the stored log shrank from ${this.#tree.size} to ${target} events`);
    while (this.#tree.size < target) {
      const from = this.#tree.size;
      const rows = await this.storage.read(from, Math.min(target, from + READ_PAGE));
      if (rows.length === 0) throw corrupt(from, `stored event ${from} is missing`);
      for (const row of rows) {
        const i = this.#tree.size;
        if (row.index !== i) throw corrupt(i, `stored event ${i} is missing (next stored index is ${row.index})`);
        let event: AuditEvent;
        try {
          event = parseEvent(row.event);
        } catch (e) {
          throw corrupt(i, `stored event ${i} is not a valid event`, e);
        }
        if (event.index !== i) throw corrupt(i, `stored event ${i} carries index ${event.index}`);
        if (event.prev !== this.#lastHash) throw corrupt(i, `stored event ${i} does not chain to event ${i - 1} (prev mismatch)`);
        this.#lastHash = eventHash(row.event);
        this.#tree.append(eventLeafHash(row.event));
      }
    }
    return target;
  }

  /** Number of stored events. */
  size(): Promise<number> {
    return this.#serial(() => this.#sync());
  }

  /**
   * The RFC 9162 root of the first `size` events (default: all stored).
   *
   * @example
   * const root = await log.root();
   */
  root(size?: number): Promise<Uint8Array> {
    return this.#serial(async () => {
      const n = await this.#sync();
      const s = size ?? n;
      check(Number.isSafeInteger(s) && s >= 0 && s <= n, `tree size ${String(size)} is not within 0…${n}`);
      return this.#tree.root(s);
    });
  }

  /**
   * The inclusion proof of event `index` in the tree of `size` events (take
   * `size` from a verified checkpoint).
   *
   * @example
   * verifyInclusion(leafHash(bytes), index, cp.size, await log.inclusionProof(index, cp.size), cp.root);
   */
  inclusionProof(index: number, size: number): Promise<Uint8Array[]> {
    return this.#serial(async () => {
      const n = await this.#sync();
      check(Number.isSafeInteger(size) && size >= 1 && size <= n, `tree size ${String(size)} is not within 1…${n}`);
      check(Number.isSafeInteger(index) && index >= 0 && index < size, `index ${String(index)} is not below tree size ${size}`);
      return this.#tree.inclusionProof(index, size);
    });
  }

  /**
   * The consistency proof from the tree of `m` events to the tree of `n`
   * (0 < m ≤ n ≤ size).
   *
   * @example
   * verifyConsistency(old.size, cp.size, old.root, cp.root, await log.consistencyProof(old.size, cp.size));
   */
  consistencyProof(m: number, n: number): Promise<Uint8Array[]> {
    return this.#serial(async () => {
      const size = await this.#sync();
      check(Number.isSafeInteger(n) && n >= 1 && n <= size, `tree size ${String(n)} is not within 1…${size}`);
      check(Number.isSafeInteger(m) && m >= 1 && m <= n, `old size ${String(m)} is not within 1…${n}`);
      return this.#tree.consistencyProof(m, n);
    });
  }

  /**
   * Signs a checkpoint (C2SP tlog-checkpoint) over every stored event and
   * keeps it. When nothing was appended since the latest checkpoint, returns
   * that one instead of signing again. Refuses (`KW_AUDIT_CORRUPT`, nothing
   * signed) when the stored events do not reproduce the latest stored
   * checkpoint's root, or are fewer than it covers. The signer's key name
   * must be the log's origin.
   *
   * @example
   * setInterval(() => void log.checkpoint(signer), 1000); // at least every second while there is traffic
   */
  checkpoint(signer: NoteSigner): Promise<SignedCheckpoint> {
    check(typeof signer === 'object' && signer !== null && typeof signer.sign === 'function', 'signer must be a note signer');
    check(signer.name === this.origin, `the log key's name ${JSON.stringify(signer.name)} must be the origin ${JSON.stringify(this.origin)}`);
    return this.#serial(async () => {
      const n = await this.#sync();
      const latest = await this.storage.latestCheckpoint();
      if (latest !== null) {
        let cp;
        try {
          cp = parseCheckpoint(parseNote(latest).text);
        } catch (e) {
          throw corrupt(n, 'the latest stored checkpoint is not a checkpoint note', e);
        }
        if (cp.origin !== this.origin) throw corrupt(n, `the latest stored checkpoint has origin ${JSON.stringify(cp.origin)}`);
        if (cp.size > n) throw corrupt(n, `the latest checkpoint covers ${cp.size} events but only ${n} are stored`);
        if (!equalBytes(this.#tree.root(cp.size), cp.root)) throw corrupt(cp.size, `the stored events do not reproduce the root of the checkpoint of size ${cp.size}: refusing to sign a fork`);
        if (cp.size === n) return { note: latest, size: n, root: cp.root };
      }
      const root = this.#tree.root(n);
      const note = signCheckpoint(signer, { origin: this.origin, size: n, root });
      await this.storage.saveCheckpoint({ note, size: n, root });
      return { note, size: n, root };
    });
  }

  /**
   * The latest stored checkpoint note, or null (for the "latest checkpoint" API).
   *
   * @example
   * const note = await log.latestCheckpoint();
   */
  latestCheckpoint(): Promise<string | null> {
    return this.storage.latestCheckpoint();
  }
}
