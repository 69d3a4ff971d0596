/**
 * A short-lived cache of the rows every data-plane request reads (token by
 * hash, principal, signing key, policies of a namespace, key, key version),
 * in front of any {@link Store}. It changes what a request costs, never what
 * it may do:
 *
 * - **This node's writes are seen at once.** Any call that may write — a
 *   store method that is not a read, or a write inside `transaction(fn)` —
 *   empties the cache when it is made and again when it (or its
 *   transaction) settles; a read that was in flight across a write is not
 *   kept. Audit appends, audit checkpoints and replay nonces are the only
 *   writes that leave it alone (no cached row depends on them).
 * - **Other nodes' writes within {@link MAX_CACHE_TTL_MS}.** An entry lives at
 *   most `ttlMs` (default and maximum MAX_CACHE_TTL_MS, 1 s, the revocation
 *   delay docs/key-service-design.md promises); with a PostgreSQL store,
 *   every change notification (and every `reset`) empties it sooner.
 * - Reads inside a transaction always go to the store (they must see the
 *   transaction's own writes and take its locks).
 * - Rows are shared between callers: they are frozen (objects and arrays;
 *   byte arrays cannot be), and callers must not change them.
 *
 * @example
 * const store = withReadCache(await openConfiguredStore({ dataDir }));
 * await store.getKey('billing', 'orders'); // read once, then served from memory for ≤ 1 s
 */
import { MAX_CACHE_TTL_MS, type ChangeListener } from './postgres-notify.js';
import { OP_KINDS } from './sqlite-ops.js';
import type { Store, StoreTx } from './types.js';

/** The reads that are cached (the data plane's per-request lookups). */
const CACHED = new Set<string>(['getTokenByHash', 'getPrincipal', 'getSigningKey', 'listPolicies', 'getKey', 'getKeyVersion']);
/** Writes that no cached row depends on: they leave the cache alone. */
const NEUTRAL_WRITES = new Set<string>(['appendAuditEvent', 'lockAuditHead', 'addAuditCheckpoint', 'useNonce', 'releaseNonce', 'purgeNonces']);
/** Whether a store method only reads: the kinds every StoreOps method declares (OP_KINDS), plus the store's own. */
const isRead = (name: string): boolean => (OP_KINDS as Readonly<Record<string, 'read' | 'write'>>)[name] === 'read' || name === 'schemaVersion' || name === 'settings';
/** Entries kept at most (a flood of distinct tokens cannot grow it without bound). */
const MAX_ENTRIES = 10_000;

interface Entry { readonly at: number; readonly value: unknown }

/** Statistics, for tests and metrics. */
export interface ReadCacheStats { hits: number; misses: number; clears: number }

export interface ReadCacheOptions {
  /** Lifetime of an entry, ms: 1 .. MAX_CACHE_TTL_MS (default MAX_CACHE_TTL_MS). */
  readonly ttlMs?: number;
  /** Clock (tests). */
  readonly now?: () => number;
}

function freeze<T>(v: T): T {
  if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v) || v instanceof Date || Object.isFrozen(v)) return v;
  for (const x of Object.values(v as object)) freeze(x);
  return Object.freeze(v);
}

/** The store `store` behind a read cache (see the module comment); `stats` counts its hits. */
export function withReadCache<S extends Store>(store: S, options: ReadCacheOptions = {}): S & { readonly readCacheStats: ReadCacheStats } {
  const ttlMs = options.ttlMs ?? MAX_CACHE_TTL_MS;
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1 || ttlMs > MAX_CACHE_TTL_MS) throw new RangeError(`the read cache TTL must be an integer in 1..${MAX_CACHE_TTL_MS} ms`);
  const now = options.now ?? (() => performance.now());
  const entries = new Map<string, Entry>();
  const stats: ReadCacheStats = { hits: 0, misses: 0, clears: 0 };
  /** Bumped by every clear: a read that started before it is not kept. */
  let generation = 0;
  const clear = (): void => {
    generation += 1;
    stats.clears += 1;
    entries.clear();
  };

  const cachedRead = (name: string, fn: (...a: unknown[]) => Promise<unknown>, args: unknown[]): Promise<unknown> => {
    const key = `${name}\u0000${JSON.stringify(args)}`;
    const hit = entries.get(key);
    if (hit !== undefined && now() - hit.at < ttlMs) {
      stats.hits += 1;
      return Promise.resolve(hit.value);
    }
    stats.misses += 1;
    const gen = generation;
    const started = now();
    return fn(...args).then((value) => {
      if (gen === generation) {
        if (entries.size >= MAX_ENTRIES) entries.clear();
        entries.set(key, { at: started, value: freeze(value) });
      }
      return value;
    });
  };

  /** A write: the cache is emptied now and once it settles. */
  const write = (fn: (...a: unknown[]) => unknown, args: unknown[]): unknown => {
    clear();
    let r: unknown;
    try {
      r = fn(...args);
    } catch (e) {
      clear();
      throw e;
    }
    if (r instanceof Promise) return r.finally(clear);
    clear();
    return r;
  };

  /** A transaction handle: reads go to the store; writes empty the cache (and the commit empties it again). */
  const wrapTx = (tx: StoreTx, wrote: { yes: boolean }): StoreTx =>
    new Proxy(tx, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof prop !== 'string' || typeof v !== 'function') return v;
        const f = (v as (...a: unknown[]) => unknown).bind(target);
        if (isRead(prop) || NEUTRAL_WRITES.has(prop)) return f;
        return (...args: unknown[]) => {
          wrote.yes = true;
          return write(f, args);
        };
      },
    });

  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'readCacheStats') return stats;
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof prop !== 'string' || typeof v !== 'function') return v;
      const f = (v as (...a: unknown[]) => unknown).bind(target);
      if (prop === 'transaction') {
        return (fn: (tx: StoreTx) => Promise<unknown>) => {
          const wrote = { yes: false };
          return (f(async (tx: StoreTx) => fn(wrapTx(tx, wrote))) as Promise<unknown>).finally(() => { if (wrote.yes) clear(); });
        };
      }
      if (prop === 'watch') {
        // PostgreSQL: every change made anywhere (and every reset of the feed) empties the cache first.
        return (listener: ChangeListener) => f((e: Parameters<ChangeListener>[0]) => {
          clear();
          listener(e);
        });
      }
      if (CACHED.has(prop)) return (...args: unknown[]) => cachedRead(prop, f as (...a: unknown[]) => Promise<unknown>, args);
      if (isRead(prop) || NEUTRAL_WRITES.has(prop) || prop === 'close' || prop === 'checkpoint') return f;
      return (...args: unknown[]) => write(f, args);
    },
  });
  return proxy as S & { readonly readCacheStats: ReadCacheStats };
}
