/**
 * Replay protection for sealed frames: a receiver accepts a frame only when
 * its sealed timestamp is inside the window and its sealed id was not
 * accepted before.
 *
 * ## Semantics (`now` is the receiver's clock)
 *
 * - `ts < now − windowMs` → `KW_INT_STALE` (too old: it may have been seen
 *   and forgotten, so it is refused whatever its id).
 * - `ts > now + maxFutureSkewMs` → `KW_INT_FUTURE` (a sender clock too far
 *   ahead would otherwise keep an id alive past the window).
 * - else, an id already accepted or in flight → `KW_INT_REPLAY`.
 * - else accepted.
 *
 * An id is remembered exactly as long as a replay of it could still pass the
 * time check: ids live in buckets keyed by their *sealed* timestamp
 * (`bucketMs = windowMs / buckets`), and a bucket is dropped once every
 * timestamp it can hold is older than `now − windowMs`. Memory is bounded by
 * `maxEntries`; when full, new frames are refused with
 * `KW_INT_REPLAY_GUARD_FULL` (fail closed, never forget early).
 *
 * ## Reservations (at-least-once brokers)
 *
 * `reserve` marks the id in flight; `commit` makes it accepted; `release`
 * forgets it (the handler failed, the broker will redeliver, and the
 * redelivery must not look like a replay). `accept` is reserve + commit.
 *
 * One guard protects one receiver process. Replicas of a consumer that share
 * a queue each see different messages; a replay sent to another replica is
 * not caught by this guard (a shared store would be needed: not provided).
 */
import { IntegrationError, invalid } from './errors.js';

export interface ReplayGuardOptions {
  /** How far back a sealed timestamp may lie, ms; default 300 000 (5 min). */
  readonly windowMs?: number;
  /** How far ahead of the receiver's clock a timestamp may lie, ms; default 30 000. */
  readonly maxFutureSkewMs?: number;
  /** Most ids held at once (accepted or in flight); default 100 000. */
  readonly maxEntries?: number;
  /** Buckets per window; default 16. */
  readonly buckets?: number;
  /** Wall clock in ms since the epoch; default `Date.now`. */
  readonly now?: () => number;
}

export interface Reservation {
  /** The frame was handled: its id is now accepted until it leaves the window. */
  commit(): void;
  /** The frame was not handled: forget the id (a redelivery is then accepted). */
  release(): void;
}

const PENDING = 0;
const DONE = 1;

function positive(name: string, v: number | undefined, def: number): number {
  const x = v ?? def;
  if (!Number.isSafeInteger(x) || x < 1) throw invalid(`${name} must be a positive integer`);
  return x;
}

/**
 * @example
 * const guard = new ReplayGuard({ windowMs: 120_000 });
 * const r = guard.reserve(frame.id, frame.ts); // throws KW_INT_REPLAY / KW_INT_STALE / KW_INT_FUTURE
 * try { await handle(frame); r.commit(); } catch (e) { r.release(); throw e; }
 */
export class ReplayGuard {
  readonly windowMs: number;
  readonly maxFutureSkewMs: number;
  readonly maxEntries: number;
  readonly bucketMs: number;
  readonly #now: () => number;
  /** bucket number → (id → PENDING | DONE) */
  readonly #buckets = new Map<number, Map<string, number>>();
  #size = 0;

  constructor(options: ReplayGuardOptions = {}) {
    this.windowMs = positive('windowMs', options.windowMs, 300_000);
    this.maxFutureSkewMs = options.maxFutureSkewMs ?? 30_000;
    if (!Number.isSafeInteger(this.maxFutureSkewMs) || this.maxFutureSkewMs < 0) throw invalid('maxFutureSkewMs must be a non-negative integer');
    this.maxEntries = positive('maxEntries', options.maxEntries, 100_000);
    const buckets = positive('buckets', options.buckets, 16);
    this.bucketMs = Math.max(1, Math.ceil(this.windowMs / buckets));
    this.#now = options.now ?? Date.now;
  }

  /** Ids held now (accepted or in flight). */
  get size(): number {
    return this.#size;
  }

  /** Checks time and id and marks the id in flight; see the module comment. */
  reserve(id: string, ts: number): Reservation {
    if (typeof id !== 'string' || id.length === 0) throw invalid('id must be a non-empty string');
    if (!Number.isSafeInteger(ts)) throw invalid('ts must be an integer (ms)');
    const now = this.#now();
    this.#sweep(now);
    if (ts < now - this.windowMs) throw new IntegrationError('KW_INT_STALE', `sealed ${now - ts} ms ago, outside the ${this.windowMs} ms replay window`);
    if (ts > now + this.maxFutureSkewMs) throw new IntegrationError('KW_INT_FUTURE', `sealed ${ts - now} ms in the future (allowed skew ${this.maxFutureSkewMs} ms)`);
    const b = Math.floor(ts / this.bucketMs);
    let bucket = this.#buckets.get(b);
    if (bucket?.has(id)) throw new IntegrationError('KW_INT_REPLAY', `id ${id} was already accepted (or is in flight) inside the replay window`);
    if (this.#size >= this.maxEntries) throw new IntegrationError('KW_INT_REPLAY_GUARD_FULL', `the replay guard holds ${this.#size} ids (its maximum); refusing until old ones leave the window`);
    if (!bucket) {
      bucket = new Map();
      this.#buckets.set(b, bucket);
    }
    bucket.set(id, PENDING);
    this.#size++;
    let settled = false;
    const held = bucket;
    return {
      commit: () => {
        if (settled) return;
        settled = true;
        if (held.get(id) === PENDING) held.set(id, DONE);
      },
      release: () => {
        if (settled) return;
        settled = true;
        if (held.delete(id)) this.#size--;
      },
    };
  }

  /** reserve + commit. */
  accept(id: string, ts: number): void {
    this.reserve(id, ts).commit();
  }

  /** Drops every id (e.g. in tests). */
  clear(): void {
    this.#buckets.clear();
    this.#size = 0;
  }

  #sweep(now: number): void {
    const oldest = now - this.windowMs;
    for (const [b, m] of this.#buckets) {
      // Every ts in bucket b is < (b + 1) · bucketMs.
      if ((b + 1) * this.bucketMs <= oldest) {
        this.#size -= m.size;
        m.clear();
        this.#buckets.delete(b);
      }
    }
  }
}
