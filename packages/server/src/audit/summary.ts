/**
 * Summaries of unauthenticated failures. A request that fails before anyone is
 * authenticated (no token, unknown token, bad signature, …) is not written to
 * the log one by one — a flood would turn into unbounded durable writes.
 * Instead the API counts it here, per (reason, client address bucket), in
 * bounded memory, and at most once per interval writes one `audit.summary`
 * event with the counts.
 *
 * Bounds: at most `maxBuckets` distinct (reason, bucket) pairs are kept; a
 * failure that would need a new pair once the table is full is added to the
 * `folded` counter instead. Reasons are short codes; anything else counts as
 * `invalid_reason`. Addresses are reduced to their /24 (IPv4) or /48 (IPv6)
 * network before counting, and written only as HMACs (redact.ts); without an
 * HMAC key the summary groups by reason alone and writes no address at all.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { JsonObject } from './canonical-json.js';
import { check } from './errors.js';
import type { AuditEventInput } from './event.js';
import { redact, type HmacKey } from './redact.js';

/** Options of {@link FailureSummarizer}. */
export interface FailureSummarizerOptions {
  /** Shortest time between two summaries, in ms (default 60 000; at least 1 000). */
  readonly intervalMs?: number;
  /** Most distinct (reason, bucket) pairs kept in memory and written (default 256, at most 256). */
  readonly maxBuckets?: number;
  /** Clock in ms since the epoch (default `Date.now`). */
  readonly now?: () => number;
  /** Namespace of the summary events (default null: outside any namespace). */
  readonly ns?: string | null;
  /**
   * Key that turns address buckets into HMACs; without one, addresses are not
   * recorded. A function is asked at each {@link FailureSummarizer.take} (the
   * key may come and go, e.g. with the keyholder's seal): when it yields null
   * the summary groups by reason alone; when it throws, the counts are kept.
   */
  readonly hmacKey?: HmacKey | null | (() => HmacKey | null | Promise<HmacKey | null>);
  /** The event's `code` (default `KW_UNAUTHENTICATED`). */
  readonly code?: string;
}

/** Upper bound of `maxBuckets`, which keeps a summary event well below MAX_EVENT_BYTES. */
export const MAX_SUMMARY_BUCKETS = 256;

const REASON_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Groups of a textual IPv6 address (8 numbers), or null. */
function ipv6Groups(addr: string): number[] | null {
  const a = addr.includes('%') ? addr.slice(0, addr.indexOf('%')) : addr;
  if (!isIPv6(a)) return null;
  let text = a;
  const tail = text.slice(text.lastIndexOf(':') + 1);
  if (tail.includes('.')) {
    const p = tail.split('.').map(Number);
    text = `${text.slice(0, text.lastIndexOf(':') + 1)}${((p[0]! << 8) | p[1]!).toString(16)}:${((p[2]! << 8) | p[3]!).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const h = head === '' ? [] : head.split(':');
  const r = rest === undefined ? null : rest === '' ? [] : rest.split(':');
  const groups = r === null ? h : [...h, ...new Array<string>(8 - h.length - r.length).fill('0'), ...r];
  return groups.length === 8 ? groups.map((g) => parseInt(g, 16)) : null;
}

/**
 * The network a client address is counted under: `a.b.c.0/24` for IPv4
 * (IPv4-mapped IPv6 included), `xxxx:xxxx:xxxx::/48` for IPv6, null when the
 * address is missing or not an IP address.
 *
 * @example
 * addressBucket('203.0.113.77') // '203.0.113.0/24'
 * addressBucket('2001:db8:1:2::5') // '2001:db8:1::/48'
 */
export function addressBucket(addr: string | null | undefined): string | null {
  if (typeof addr !== 'string' || addr.length > 100) return null;
  if (isIPv4(addr)) return `${addr.split('.').slice(0, 3).join('.')}.0/24`;
  const g = ipv6Groups(addr);
  if (g === null) return null;
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return `${g[6]! >> 8}.${g[6]! & 0xff}.${g[7]! >> 8}.0/24`;
  return `${g.slice(0, 3).map((x) => x.toString(16)).join(':')}::/48`;
}

/**
 * Counts unauthenticated failures and turns them into at most one
 * `audit.summary` event per interval.
 *
 * @example
 * const s = new FailureSummarizer({ hmacKey });
 * s.record('token_unknown', req.socket.remoteAddress);   // per failure: O(1), no I/O
 * const input = await s.take();                          // on a timer
 * if (input) await log.appendEvent(input);
 */
export class FailureSummarizer {
  readonly #intervalMs: number;
  readonly #maxBuckets: number;
  readonly #now: () => number;
  readonly #ns: string | null;
  readonly #key: HmacKey | null | (() => HmacKey | null | Promise<HmacKey | null>);
  readonly #code: string;
  #counts = new Map<string, { reason: string; bucket: string | null; count: number }>();
  #total = 0;
  #folded = 0;
  #windowStart: number;

  constructor(options: FailureSummarizerOptions = {}) {
    const intervalMs = options.intervalMs ?? 60_000;
    const maxBuckets = options.maxBuckets ?? MAX_SUMMARY_BUCKETS;
    check(Number.isSafeInteger(intervalMs) && intervalMs >= 1000, 'intervalMs must be an integer ≥ 1000');
    check(Number.isSafeInteger(maxBuckets) && maxBuckets >= 1 && maxBuckets <= MAX_SUMMARY_BUCKETS, `maxBuckets must be 1…${MAX_SUMMARY_BUCKETS}`);
    this.#intervalMs = intervalMs;
    this.#maxBuckets = maxBuckets;
    this.#now = options.now ?? Date.now;
    this.#ns = options.ns ?? null;
    this.#key = options.hmacKey ?? null;
    this.#code = options.code ?? 'KW_UNAUTHENTICATED';
    this.#windowStart = this.#now();
  }

  /** Distinct (reason, bucket) pairs held now (≤ maxBuckets): the memory in use. */
  get bucketCount(): number {
    return this.#counts.size;
  }

  /** Failures counted since the last summary. */
  get pending(): number {
    return this.#total;
  }

  /**
   * Counts one failure. Never throws, never does I/O; memory stays bounded
   * whatever the caller passes.
   *
   * @example
   * summarizer.record('bad_signature', '198.51.100.4');
   */
  record(reason: string, clientAddress?: string | null): void {
    const r = typeof reason === 'string' && REASON_RE.test(reason) ? reason : 'invalid_reason';
    const bucket = this.#key === null ? null : addressBucket(clientAddress);
    const k = `${r}\n${bucket ?? ''}`;
    this.#total += 1;
    const entry = this.#counts.get(k);
    if (entry !== undefined) entry.count += 1;
    else if (this.#counts.size < this.#maxBuckets) this.#counts.set(k, { reason: r, bucket, count: 1 });
    else this.#folded += 1;
  }

  /** Merges counts taken by a failed {@link take} back in (failures recorded meanwhile stay counted). */
  #restore(old: { counts: Map<string, { reason: string; bucket: string | null; count: number }>; total: number; folded: number; windowStart: number }): void {
    for (const [k, e] of old.counts) {
      const cur = this.#counts.get(k);
      if (cur !== undefined) cur.count += e.count;
      else if (this.#counts.size < this.#maxBuckets) this.#counts.set(k, e);
      else this.#folded += e.count;
    }
    this.#total += old.total;
    this.#folded += old.folded;
    this.#windowStart = old.windowStart;
  }

  /** True when a summary is waiting and the interval since the last one has passed. */
  due(): boolean {
    return this.#total > 0 && this.#now() - this.#windowStart >= this.#intervalMs;
  }

  /**
   * The `audit.summary` event input for the failures counted since the last
   * one, and resets the counts; null when nothing is due. `force` ignores the
   * interval (for shutdown), never the "nothing counted" case.
   *
   * Details: `{ window: { start, end }, total, folded, counts: [{ reason, bucket, count }] }`,
   * counts sorted by count (descending), then reason and bucket; `bucket` is an
   * HMAC marker or null.
   *
   * @example
   * setInterval(async () => { const e = await s.take(); if (e) await log.appendEvent(e); }, 1000);
   */
  async take(options: { readonly force?: boolean } = {}): Promise<AuditEventInput | null> {
    if (this.#total === 0 || (!options.force && !this.due())) return null;
    const end = this.#now();
    const entries = [...this.#counts.values()].sort(
      (a, b) => b.count - a.count || (a.reason < b.reason ? -1 : a.reason > b.reason ? 1 : 0) || ((a.bucket ?? '') < (b.bucket ?? '') ? -1 : (a.bucket ?? '') > (b.bucket ?? '') ? 1 : 0),
    );
    const details: JsonObject = {
      window: { start: new Date(this.#windowStart).toISOString(), end: new Date(end).toISOString() },
      total: this.#total,
      folded: this.#folded,
      counts: entries.map((e) => ({ reason: e.reason, bucket: e.bucket, count: e.count })),
    };
    const snapshot = { counts: this.#counts, total: this.#total, folded: this.#folded, windowStart: this.#windowStart };
    this.#counts = new Map();
    this.#total = 0;
    this.#folded = 0;
    this.#windowStart = end;
    let redacted: { details: JsonObject; hmac_key_version: number | null };
    try {
      const key = typeof this.#key === 'function' ? await this.#key() : this.#key;
      if (key === null) {
        // No key now: the networks are dropped and the counts grouped by reason alone.
        const byReason = new Map<string, number>();
        for (const e of entries) byReason.set(e.reason, (byReason.get(e.reason) ?? 0) + e.count);
        const counts = [...byReason].map(([reason, count]) => ({ reason, bucket: null, count }));
        counts.sort((a, b) => b.count - a.count || (a.reason < b.reason ? -1 : a.reason > b.reason ? 1 : 0));
        redacted = { details: { ...details, counts }, hmac_key_version: null };
      } else {
        redacted = await redact(details, ['counts.*.bucket'], key);
      }
    } catch (e) {
      this.#restore(snapshot); // the keyholder may be unavailable: keep the counts for the next try
      throw e;
    }
    return {
      ns: this.#ns,
      principal: null,
      auth: 'none',
      op: 'audit.summary',
      target: {},
      outcome: 'denied',
      code: this.#code,
      request: null,
      details: redacted.details,
      hmac_key_version: redacted.hmac_key_version,
    };
  }
}
