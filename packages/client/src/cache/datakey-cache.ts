/**
 * The client-side data-key cache: many envelopes share one `datakey` call,
 * and reopening an envelope recently opened needs no `unwrap` call. It plays
 * the role of the AWS Encryption SDK's caching CMM, with the same limits.
 *
 * ## Two tables
 *
 * - **Sealing**: a data key and its `kms` stanza, handed to every envelope
 *   sealed under the same key reference and encryption context until a limit
 *   is reached. Each envelope still has its own random salt, so its header
 *   MAC and payload keys (derived from data key ‖ salt) are its own; what is
 *   shared is the stanza, i.e. one wrapped key opens all of them.
 * - **Unwrap**: the data key of a `kms` stanza already opened, keyed by the
 *   stanza's bytes and the envelope's encryption context.
 *
 * ## Limits (per entry, checked before every use)
 *
 * - `maxAgeMs`: not used at or after `created + maxAgeMs`, where `created`
 *   is the time the service call *started* (so time spent waiting for the
 *   service counts against the entry). Default 5 minutes, at most
 *   {@link DATA_KEY_CACHE_MAX_AGE_CEILING_MS} (15 minutes). This is the bound
 *   on the revocation delay the threat model promises: after a device key or
 *   token is revoked, the service refuses every new call at once, and the
 *   device can keep sealing or opening with cached keys for at most
 *   `maxAgeMs` more.
 * - `maxMessages`: at most this many envelopes sealed (or stanzas opened) per entry.
 * - `maxBytes`: sealing only — at most this many plaintext bytes over all
 *   the envelopes sealed with one entry. A message larger than `maxBytes` is
 *   sealed with a fresh key that is never cached. The size must be known
 *   before the key is taken, so only callers that pass it are cached
 *   (`KmsKeyService.seal`, or `kmsRecipient(service, ref, { plaintextBytes })`);
 *   a seal of unknown size (streams, a plain `KmsRecipient`) always asks the
 *   service for a fresh key, as the AWS SDK does. Opening does not count bytes.
 * - `capacity`: entries per table; the least recently used is evicted first.
 *
 * An entry that reaches a limit, expires or is evicted is zeroed
 * (`fill(0)`) at once; expired entries are swept on every call (there are no
 * timers). `clear()` zeroes everything (call it on logout).
 *
 * ## Partitioning
 *
 * Sealing entries are keyed by (partition, key reference, encryption
 * context); unwrap entries by (partition, stanza bytes, encryption context).
 * The context is taken as the exact **ordered** list of pairs, as the
 * envelope header binds it: `{a, b}` and `{b, a}` are different partitions
 * (at worst one extra service call), so a cached key is only ever used for a
 * context byte-for-byte equal to the one it was issued for. The partition is
 * chosen by the key service client (one random id per `KmsKeyService`), so a
 * cache shared by clients of different principals never hands one
 * principal's key to another.
 *
 * Calls for the same entry that arrive while its service call is in flight
 * wait for it (one call, not N) and share its failure.
 *
 * JavaScript cannot promise that the garbage collector kept no copy of a
 * key; zeroing bounds what an attacker reading memory later finds in the
 * cache itself.
 */
import type { ContextPairs, Stanza } from '@keyward/core';
import { base64urlnopad } from '@scure/base';

/** Default `maxAgeMs`: 5 minutes. */
export const DATA_KEY_CACHE_DEFAULT_MAX_AGE_MS = 5 * 60_000;
/** Hard ceiling of `maxAgeMs`, and so of the revocation delay cached keys add: 15 minutes. */
export const DATA_KEY_CACHE_MAX_AGE_CEILING_MS = 15 * 60_000;
/** Default `maxMessages` per entry. */
export const DATA_KEY_CACHE_DEFAULT_MAX_MESSAGES = 1000;
/** Default `maxBytes` per sealing entry: 1 GiB. */
export const DATA_KEY_CACHE_DEFAULT_MAX_BYTES = 2 ** 30;
/** Default `capacity` per table. */
export const DATA_KEY_CACHE_DEFAULT_CAPACITY = 100;
/** Largest `maxMessages` accepted (as the AWS SDK: 2^32). */
export const DATA_KEY_CACHE_MAX_MESSAGES_CEILING = 2 ** 32;

export interface DataKeyCacheOptions {
  /** Entry lifetime in ms; default 5 min, 1 ms … 15 min. */
  readonly maxAgeMs?: number;
  /** Envelopes per entry; default 1000, 1 … 2^32. */
  readonly maxMessages?: number;
  /** Plaintext bytes per sealing entry; default 1 GiB, ≥ 1. */
  readonly maxBytes?: number;
  /** Entries per table (sealing, unwrap); default 100, ≥ 1. */
  readonly capacity?: number;
  /** A monotonic clock in ms; default `performance.now()`. A clock that goes back expires every entry. */
  readonly now?: () => number;
}

/** A data key and the `kms` stanza that wraps it. */
export interface DataKeyWithStanza {
  readonly dataKey: Uint8Array;
  readonly stanza: Stanza;
}

/** Which sealing entry: the partition, the key reference and the exact ordered context. */
export interface SealingKeyId {
  readonly partition: string;
  readonly keyRef: string;
  readonly context: ContextPairs;
}

/** Which unwrap entry: the partition, the stanza and the exact ordered context. */
export interface UnwrapKeyId {
  readonly partition: string;
  readonly stanza: Stanza;
  readonly context: ContextPairs;
}

export interface DataKeyCacheTableStats {
  readonly size: number;
  /** Uses served from an entry already cached. */
  readonly hits: number;
  /** Uses that needed the service (the entry was absent, expired, exhausted, or the message too large). */
  readonly misses: number;
  /** Entries zeroed: expired, exhausted, evicted for capacity, or cleared. */
  readonly evictions: number;
}

interface Entry<V> {
  /** Owned by the cache; zeroed on eviction. */
  readonly key: Uint8Array;
  readonly value: V;
  readonly createdAt: number;
  messages: number;
  bytes: number;
}

/** What a waiter learns from the call it waited for. */
type Flight = Promise<'null' | 'done'>;

class Table<V> {
  readonly entries = new Map<string, Entry<V>>();
  readonly pending = new Map<string, Flight>();
  hits = 0;
  misses = 0;
  evictions = 0;
}

function positiveInt(name: string, v: unknown, def: number, max: number): number {
  const x = v === undefined ? def : v;
  if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 1 || x > max) throw new RangeError(`${name} must be an integer from 1 to ${max}`);
  return x;
}

const copyStanza = (s: Stanza): Stanza => ({ type: s.type, fields: s.fields.map((f) => f.slice()) });
const pairsOf = (c: ContextPairs): [string, string][] => c.map(([k, v]) => [k, v]);

/**
 * @example
 * const cache = new DataKeyCache({ maxAgeMs: 60_000, maxMessages: 500, maxBytes: 100 * 2 ** 20 });
 * const kms = await KmsKeyService.create({ http, identity, cache });
 * for (const row of rows) await kms.seal(row, { key: 'billing/orders', context: { table: 'orders' } }); // one datakey call
 */
export class DataKeyCache {
  readonly maxAgeMs: number;
  readonly maxMessages: number;
  readonly maxBytes: number;
  readonly capacity: number;
  readonly #now: () => number;
  readonly #sealing = new Table<Stanza>();
  readonly #unwrap = new Table<null>();

  constructor(options: DataKeyCacheOptions = {}) {
    this.maxAgeMs = positiveInt('maxAgeMs', options.maxAgeMs, DATA_KEY_CACHE_DEFAULT_MAX_AGE_MS, DATA_KEY_CACHE_MAX_AGE_CEILING_MS);
    this.maxMessages = positiveInt('maxMessages', options.maxMessages, DATA_KEY_CACHE_DEFAULT_MAX_MESSAGES, DATA_KEY_CACHE_MAX_MESSAGES_CEILING);
    this.maxBytes = positiveInt('maxBytes', options.maxBytes, DATA_KEY_CACHE_DEFAULT_MAX_BYTES, Number.MAX_SAFE_INTEGER);
    this.capacity = positiveInt('capacity', options.capacity, DATA_KEY_CACHE_DEFAULT_CAPACITY, 2 ** 24);
    if (options.now !== undefined && typeof options.now !== 'function') throw new TypeError('now must be a function');
    this.#now = options.now ?? (() => performance.now());
  }

  /**
   * A data key and stanza for sealing `plaintextBytes` bytes under `id`: a
   * copy from the cache when an entry has room, else from `create()` (whose
   * returned `dataKey` buffer the cache then owns and zeroes on eviction).
   * The caller owns the returned copy (core wipes it after sealing).
   */
  async getSealingKey(id: SealingKeyId, plaintextBytes: number, create: () => Promise<DataKeyWithStanza>): Promise<DataKeyWithStanza> {
    if (!Number.isSafeInteger(plaintextBytes) || plaintextBytes < 0) throw new RangeError('plaintextBytes must be a non-negative integer');
    const key = JSON.stringify(['s', id.partition, id.keyRef, pairsOf(id.context)]);
    const r = await this.#get(this.#sealing, key, plaintextBytes, async () => {
      const made = await create();
      return { key: made.dataKey, value: copyStanza(made.stanza) };
    }, (e) => ({ dataKey: e.key.slice(), stanza: copyStanza(e.value) }));
    if (r === null) throw new Error('unreachable: a sealing key is never null');
    return r;
  }

  /**
   * The data key of a `kms` stanza: a copy from the cache, else from
   * `create()` (null — not for this caller — is returned and not cached).
   */
  getUnwrappedKey(id: UnwrapKeyId, create: () => Promise<Uint8Array | null>): Promise<Uint8Array | null> {
    const key = JSON.stringify(['u', id.partition, id.stanza.type, id.stanza.fields.map((f) => base64urlnopad.encode(f)), pairsOf(id.context)]);
    return this.#get(this.#unwrap, key, 0, async () => {
      const k = await create();
      return k === null ? null : { key: k, value: null };
    }, (e) => e.key.slice());
  }

  /** Zeroes and drops every expired entry; returns how many. Runs on every call anyway. */
  sweep(): number {
    const now = this.#now();
    let n = 0;
    for (const t of [this.#sealing, this.#unwrap] as Table<unknown>[]) {
      for (const [k, e] of t.entries) {
        if (!this.#alive(e, now)) {
          this.#evict(t, k, e);
          n++;
        }
      }
    }
    return n;
  }

  /** Zeroes and drops every entry (e.g. on logout, or when the token is revoked). */
  clear(): void {
    for (const t of [this.#sealing, this.#unwrap] as Table<unknown>[]) {
      for (const [k, e] of t.entries) this.#evict(t, k, e);
    }
  }

  stats(): { readonly sealing: DataKeyCacheTableStats; readonly unwrap: DataKeyCacheTableStats } {
    const s = (t: Table<unknown>): DataKeyCacheTableStats => ({ size: t.entries.size, hits: t.hits, misses: t.misses, evictions: t.evictions });
    return { sealing: s(this.#sealing), unwrap: s(this.#unwrap) };
  }

  #alive(e: Entry<unknown>, now: number): boolean {
    return now >= e.createdAt && now - e.createdAt < this.maxAgeMs;
  }

  /** True when `e` may serve one more message of `bytes` bytes now. */
  #fits(e: Entry<unknown>, bytes: number, now: number): boolean {
    return this.#alive(e, now) && e.messages < this.maxMessages && e.bytes + bytes <= this.maxBytes;
  }

  #evict(t: Table<unknown>, k: string, e: Entry<unknown>): void {
    e.key.fill(0);
    if (t.entries.get(k) === e) t.entries.delete(k);
    t.evictions++;
  }

  /** Counts a use; an entry that has reached a limit is zeroed now rather than at its next use. */
  #use<V, R>(t: Table<V>, k: string, e: Entry<V>, bytes: number, serve: (e: Entry<V>) => R): R {
    e.messages++;
    e.bytes += bytes;
    const r = serve(e);
    if (e.messages >= this.maxMessages || e.bytes >= this.maxBytes) this.#evict(t, k, e);
    return r;
  }

  async #get<V, R>(
    t: Table<V>,
    k: string,
    bytes: number,
    create: () => Promise<{ key: Uint8Array; value: V } | null>,
    serve: (e: Entry<V>) => R,
  ): Promise<R | null> {
    // A message larger than an entry may ever hold: a fresh key, never cached.
    if (bytes > this.maxBytes) {
      this.sweep();
      t.misses++;
      const made = await create();
      if (made === null) return null;
      const e: Entry<V> = { key: made.key, value: made.value, createdAt: this.#now(), messages: 0, bytes: 0 };
      try {
        return serve(e);
      } finally {
        e.key.fill(0);
      }
    }
    for (;;) {
      this.sweep();
      const now = this.#now();
      const e = t.entries.get(k);
      if (e) {
        if (this.#fits(e, bytes, now)) {
          t.hits++;
          t.entries.delete(k); // LRU: most recently used last
          t.entries.set(k, e);
          return this.#use(t, k, e, bytes, serve);
        }
        this.#evict(t, k, e);
      }
      const flight = t.pending.get(k);
      if (!flight) break;
      if ((await flight) === 'null') return null; // rejects with the creator's error
    }

    t.misses++;
    const createdAt = this.#now();
    let settle!: (v: 'null' | 'done') => void;
    let fail!: (e: unknown) => void;
    const flight: Flight = new Promise((res, rej) => {
      settle = res;
      fail = rej;
    });
    flight.catch(() => undefined); // waiters observe it; nobody else must
    t.pending.set(k, flight);
    try {
      const made = await create();
      if (made === null) {
        settle('null');
        return null;
      }
      const e: Entry<V> = { key: made.key, value: made.value, createdAt, messages: 0, bytes: 0 };
      if (!this.#fits(e, bytes, this.#now())) {
        // Expired while the service answered: use it once, uncached.
        try {
          return serve(e);
        } finally {
          e.key.fill(0);
          settle('done');
        }
      }
      this.#insert(t, k, e);
      const r = this.#use(t, k, e, bytes, serve);
      settle('done');
      return r;
    } catch (err) {
      fail(err);
      throw err;
    } finally {
      if (t.pending.get(k) === flight) t.pending.delete(k);
    }
  }

  #insert<V>(t: Table<V>, k: string, e: Entry<V>): void {
    const old = t.entries.get(k);
    if (old) this.#evict(t, k, old);
    while (t.entries.size >= this.capacity) {
      const [lk, le] = t.entries.entries().next().value as [string, Entry<V>];
      this.#evict(t, lk, le);
    }
    t.entries.set(k, e);
  }
}
