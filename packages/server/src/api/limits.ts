/**
 * Rate limits: token buckets in memory, bounded (least recently used buckets
 * are dropped beyond `maxBuckets`, which only ever forgets debt — a dropped
 * bucket comes back full, so memory stays bounded under an address flood).
 *
 * Used per bearer token (authenticated requests) and per client address
 * (unauthenticated and failed-authentication requests, unseal submissions).
 */
export interface BucketOptions {
  /** Tokens added per second. */
  readonly ratePerSecond: number;
  /** Bucket size (largest burst). */
  readonly burst: number;
  /** Most buckets kept (default 10 000). */
  readonly maxBuckets?: number;
  readonly now?: () => number;
}

export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #max: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(o: BucketOptions) {
    this.#rate = o.ratePerSecond;
    this.#burst = o.burst;
    this.#max = o.maxBuckets ?? 10_000;
    this.#now = o.now ?? (() => Date.now());
  }

  /** Takes one token for `key`; false when the bucket is empty. */
  take(key: string): boolean {
    const now = this.#now();
    let b = this.#buckets.get(key);
    if (b) {
      this.#buckets.delete(key);
      b.tokens = Math.min(this.#burst, b.tokens + ((now - b.at) / 1000) * this.#rate);
      b.at = now;
    } else {
      b = { tokens: this.#burst, at: now };
      if (this.#buckets.size >= this.#max) {
        const oldest = this.#buckets.keys().next().value;
        if (oldest !== undefined) this.#buckets.delete(oldest);
      }
    }
    this.#buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  get size(): number { return this.#buckets.size; }
}

/** Request body limit (the contract's 64 KiB). */
export const MAX_BODY_BYTES = 64 * 1024;
