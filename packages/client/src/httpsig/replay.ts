/**
 * Replay protection: a verified request's nonce is remembered until its
 * signature can no longer pass the time window, so within the window a
 * nonce is accepted once. The store sits behind {@link ReplayCache} so the
 * server can back it with its database; {@link MemoryReplayCache} serves a
 * single node.
 */

/** What the verifier tells the cache about a nonce. */
export interface NonceContext {
  /** The keyid that signed: nonces are scoped per key. */
  readonly keyId: string;
  /** Unix seconds after which the signature fails the window anyway; the nonce may be forgotten then. */
  readonly expiresAt: number;
  /** The verifier's current time, Unix seconds. */
  readonly now: number;
}

/**
 * A replay cache. `seen` must check and record in one atomic step: it
 * returns `true` when `(keyId, nonce)` was already recorded and not yet
 * expired (a replay), otherwise records it until `expiresAt` and returns
 * `false`. It should return `true` (refuse) when it cannot record, so a full
 * or failing cache never lets a replay through; an exception propagates out
 * of `verifyRequest` unchanged.
 */
export interface ReplayCache {
  seen(nonce: string, ctx: NonceContext): boolean | Promise<boolean>;
}

interface Entry { readonly expiresAt: number; readonly key: string }

/**
 * A bounded in-memory replay cache for one process. Expired nonces are
 * dropped as time passes (a min-heap on expiry, O(log n) per request). When
 * `maxEntries` unexpired nonces are held it refuses new ones (`seen` returns
 * `true`) rather than forget one early: size it above the peak request rate
 * × `maxAgeSeconds`.
 *
 * @example
 * const replay = new MemoryReplayCache({ maxEntries: 100_000 });
 * await verifyRequest(req, { keyLookup, seenNonce: replay.seen });
 */
export class MemoryReplayCache implements ReplayCache {
  readonly maxEntries: number;
  private readonly live = new Map<string, number>();
  private readonly heap: Entry[] = [];

  constructor(options: { maxEntries?: number } = {}) {
    const max = options.maxEntries ?? 100_000;
    if (!Number.isSafeInteger(max) || max < 1) throw new TypeError('maxEntries must be a positive integer');
    this.maxEntries = max;
  }

  /** Number of nonces currently remembered (expired ones may linger until the next call). */
  get size(): number { return this.live.size; }

  /** See {@link ReplayCache.seen}. Bound to the instance, so `seenNonce: cache.seen` works. */
  readonly seen = (nonce: string, ctx: NonceContext): boolean => {
    this.expire(ctx.now);
    const key = JSON.stringify([ctx.keyId, nonce]);
    if (this.live.has(key)) return true;
    if (this.live.size >= this.maxEntries) return true; // fail closed
    this.live.set(key, ctx.expiresAt);
    this.push({ expiresAt: ctx.expiresAt, key });
    return false;
  };

  /** Drops every nonce whose `expiresAt` is before `now`. */
  private expire(now: number): void {
    while (this.heap.length > 0 && this.heap[0]!.expiresAt < now) {
      const e = this.pop();
      if (this.live.get(e.key) === e.expiresAt) this.live.delete(e.key);
    }
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.expiresAt <= h[i]!.expiresAt) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }

  private pop(): Entry {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l]!.expiresAt < h[m]!.expiresAt) m = l;
        if (r < h.length && h[r]!.expiresAt < h[m]!.expiresAt) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
}
