/**
 * The API's side of the audit log (docs/key-service-design.md §Audit):
 *
 *   build event (index = keyholder's next leaf, prev = hash of the last)
 *   → in ONE store transaction: the state change, the keyholder op carrying
 *     the event (or `append` for non-key ops and refusals), the event row
 *   → commit → `ack` the leaf to the keyholder.
 *
 * Writes are serialised (one lock), so indices never race. After anything
 * uncertain (keyholder lost or restarted, a timeout, an index conflict) the
 * pipe re-synchronises before the next write: it restores the keyholder's
 * frontier from the store when the keyholder restarted, stores the events
 * the keyholder appended but the store does not hold (`pending-events`), and
 * acks them. A timer asks the keyholder for a checkpoint at least every
 * second while there is traffic and stores it.
 *
 * Before an event is built, its sensitive `details` (encryption-context
 * values, client addresses, token ids: audit/redact.ts) are replaced by HMAC
 * markers under the namespace's audit key `<ns>/audit-hmac` (`sys/audit-hmac`
 * for events outside a namespace), MACed by the keyholder (`hmac-audit`); the
 * key's version 1 is created on first use through the ordinary key creation
 * path (a `keys.create` event, `generate-version`). Without a key (sealed, or
 * the namespace does not exist) sensitive values are written as null.
 *
 * Unauthenticated failures are counted in `failures` (a FailureSummarizer)
 * and written as at most one `audit.summary` event per interval; reads of the
 * log are written as `audit.read` events, at most two per reader per interval
 * (`recordRead`). See docs/audit.md.
 *
 * Several nodes on one PostgreSQL database (docs/key-service-design.md
 * §Several nodes): every audited transaction first takes the sequencer
 * (`lockAuditHead`); if other nodes appended since this node's keyholder
 * last saw the log, their events are fed to it (`append`, each checked to
 * chain on the previous one, then `ack`: they are durable already) before
 * this node's event is built at the head. A group commit takes the
 * sequencer once for the whole group, keyholder ops included. A pending
 * leaf whose index another node took is dropped (`discard-pending`) by the
 * re-sync. The signed request's nonce is recorded (`useNonce`) in the same
 * transaction, so a request replayed to another node is refused there.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Frontier } from '@keyward/tlog';
import { GENESIS_PREV } from '../audit/bytes.js';
import type { JsonObject, JsonValue } from '../audit/canonical-json.js';
import { buildEvent, eventHash, eventLeafHash, type AuditEventInput } from '../audit/event.js';
import { DEFAULT_SENSITIVE_PATHS, redact, type HmacKey } from '../audit/redact.js';
import { FailureSummarizer } from '../audit/summary.js';
import type { KeyholderClient } from '../keyholder/client.js';
import { HMAC_AUDIT_LIMITS, KeyholderProtocolError, MAX_RESTORE_EVENTS, isProtocolError } from '../keyholder/protocol.js';
import { AUDIT_HMAC_KEY } from '../keyholder/service.js';
import type { Store, StoreTx } from '../store/index.js';

export const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
export const unb64u = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'base64url'));
const utf8 = new TextEncoder();

/** An event ready to travel with an op. */
export interface PreparedEvent {
  readonly index: number;
  /** base64url of the canonical bytes (what keyholder ops take). */
  readonly b64: string;
}

/** One hold of the audit sequencer (AuditPipeOptions.onSequencer). */
export interface SequencerHold {
  readonly holdMs: number;
  readonly events: number;
  readonly keyholderMs: number;
}

export interface AuditPipeOptions {
  readonly store: Store;
  readonly keyholder: KeyholderClient;
  readonly onError?: (what: string, e: unknown) => void;
  /**
   * Several nodes: called after every transaction that held the audit
   * sequencer (the `audit_head` row lock) and committed — `holdMs` from the
   * lock being granted to the commit, `events` written under it, and
   * `keyholderMs`, the part of the hold spent waiting on this node's
   * keyholder (group commits only; 0 for single-event transactions). The
   * server turns it into the `keyward_audit_sequencer_*` metrics.
   */
  readonly onSequencer?: (s: SequencerHold) => void;
  /** Checkpoint period, ms (default 1000). */
  readonly checkpointMs?: number;
  /**
   * Interval of `audit.summary` events and of coalesced `audit.read` events,
   * ms, at least 1000 (default 60 000; the server's `auditSummaryMs`).
   */
  readonly summaryMs?: number;
  /** Paths of `details` that are redacted (default audit/redact.ts DEFAULT_SENSITIVE_PATHS). */
  readonly sensitivePaths?: readonly string[];
  /**
   * Other nodes write the same log (PostgreSQL store): group commits hold the
   * sequencer through their keyholder ops, and an idle node follows the log
   * on its checkpoint timer. Default: true for a store with `watch` (PostgreSQL).
   */
  readonly shared?: boolean;
}

/** The nonce of a signed request, recorded with its event (store/nonces.ts). */
export interface RequestNonce {
  readonly keyId: string;
  readonly nonce: string;
  readonly expiresAt: Date;
}

/** How often expired nonces are removed, ms. */
const NONCE_PURGE_MS = 60_000;
/** Events read at a time while catching up with other nodes. */
const CATCH_UP_CHUNK = 1000;

const UNCERTAIN = new Set(['KW_KEYHOLDER_UNAVAILABLE', 'KW_KEYHOLDER_TIMEOUT', 'KW_AUDIT_CONFLICT', 'KW_AUDIT_NOT_RESTORED', 'KW_INTERNAL']);
/** Keyholder states in which no audit HMAC is possible: sensitive values are left out, nothing fails. */
const NO_HMAC = new Set(['KW_SEALED', 'KW_NOT_INITIALIZED']);
/** Keyholder states in which a background write simply waits for the next tick. */
const QUIET = new Set(['KW_SEALED', 'KW_NOT_INITIALIZED', 'KW_KEYHOLDER_UNAVAILABLE', 'KW_AUDIT_NOT_RESTORED']);

/** The namespace whose audit key redacts events outside any namespace (`ns` null). */
export const AUDIT_SYS_NS = 'sys';
/** Default interval of audit.summary and coalesced audit.read events. */
export const DEFAULT_SUMMARY_MS = 60_000;
/** Most MAC results kept (by message hash) so a repeated value costs no keyholder call. */
const MAC_CACHE_SIZE = 4096;
/** Most readers whose audit.read events are coalesced at once; beyond, every read is written. */
const MAX_READERS = 1024;
/** Most events one group commit writes (recordOp). */
export const MAX_GROUP_COMMIT = 64;

/** A recordOp waiting for its group commit. */
interface QueuedOp {
  readonly input: AuditEventInput;
  readonly op: ((ev: PreparedEvent) => Promise<{ result: unknown; leaf?: number }>) | undefined;
  readonly resolve: (result: unknown) => void;
  readonly reject: (e: unknown) => void;
  readonly nonce: RequestNonce | undefined;
  /** `op` sends its one keyholder op synchronously and returns its leaf (recordOp `ordered`). */
  readonly ordered: boolean;
}

/** An op of a group commit that the keyholder performed, waiting for its event to be stored. */
interface DoneOp {
  readonly q: QueuedOp;
  readonly index: number;
  readonly time: Date;
  readonly bytes: Uint8Array;
  readonly hash: string;
  readonly result: unknown;
}

/** What an admin read from the log (`recordRead`). */
export interface AuditRead {
  readonly kind: 'events' | 'inclusion' | 'consistency';
  /** The range of event indices (events) or tree sizes (proofs) the read covers: [from, to). */
  readonly from: number;
  readonly to: number;
}

interface ReadWindow {
  readonly start: number;
  count: number;
  readonly kinds: Record<string, number>;
  from: number;
  to: number;
}

/** An audit key version as the keyholder takes it. */
interface AuditKeyVersion {
  readonly ns: string;
  readonly key: string;
  readonly version: number;
  readonly type: 'hmac-sha256';
  readonly wrapped: string;
}

function summaryMsOf(o: AuditPipeOptions): number {
  const ms = o.summaryMs ?? DEFAULT_SUMMARY_MS;
  if (!Number.isSafeInteger(ms) || ms < 1000) throw new RangeError('the audit summary interval must be an integer ≥ 1000 ms');
  return ms;
}

/** Freezes a JSON value and everything in it (a cached redaction is shared by the events that use it). */
function deepFreeze<T extends JsonValue>(v: T): T {
  if (v !== null && typeof v === 'object') {
    for (const x of Object.values(v as JsonObject)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** Replaces every string equal to `marker` by null (values that could not be MACed are left out). */
function dropMarkers(v: JsonValue, marker: string): JsonValue {
  if (v === marker) return null;
  if (Array.isArray(v)) return (v as readonly JsonValue[]).map((x) => dropMarkers(x, marker));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v as JsonObject).map(([k, x]) => [k, dropMarkers(x, marker)]));
  return v;
}

export class AuditPipe {
  readonly #store: Store;
  readonly #kh: KeyholderClient;
  readonly #onError: (what: string, e: unknown) => void;
  readonly #onSequencer: ((s: SequencerHold) => void) | null;
  /** performance.now() when the current transaction was granted the sequencer (#follow). */
  #lockedAt = 0;
  #tail: Promise<unknown> = Promise.resolve();
  /** recordOp calls waiting for the next group commit, in order. */
  #queue: QueuedOp[] = [];
  #draining = false;
  #synced = false;
  #next = 0;
  #prev = GENESIS_PREV;
  #acked = 0;
  #checkpointed = -1;
  #timer: NodeJS.Timeout | null = null;
  #summaryTimer: NodeJS.Timeout | null = null;
  #checkpointing = false;
  readonly #ms: number;
  readonly #summaryMs: number;
  readonly #paths: readonly string[];
  /** Latest usable audit key version per namespace (filled on first use). */
  readonly #auditKeys = new Map<string, AuditKeyVersion>();
  /** MACs by `ns \n version \n SHA-256(message)`, least recently used first. */
  readonly #macCache = new Map<string, string>();
  /** Redacted `details` by `ns \n audit key version \n JSON of the details`, least recently used first (frozen; shared by events). */
  readonly #redactCache = new Map<string, JsonObject>();
  #macQueue: { v: AuditKeyVersion; m: Uint8Array; cacheKey: string; resolve: (mac: string) => void; reject: (e: unknown) => void }[] = [];
  #pendingSummary: AuditEventInput | null = null;
  readonly #reads = new Map<string, ReadWindow>();
  #ticking = false;
  readonly #shared: boolean;
  #lastPurge = 0;

  /**
   * Unauthenticated failures (bad or missing token, unknown device key,
   * rate-limited before authentication): `record(reason, address)` per
   * failure, O(1) and no I/O; the pipe writes the `audit.summary` events.
   */
  readonly failures: FailureSummarizer;

  constructor(o: AuditPipeOptions) {
    this.#store = o.store;
    this.#kh = o.keyholder;
    this.#onError = o.onError ?? (() => undefined);
    this.#onSequencer = o.onSequencer ?? null;
    this.#ms = o.checkpointMs ?? 1000;
    this.#summaryMs = summaryMsOf(o);
    this.#paths = o.sensitivePaths ?? DEFAULT_SENSITIVE_PATHS;
    this.#shared = o.shared ?? 'watch' in o.store;
    this.failures = new FailureSummarizer({ intervalMs: this.#summaryMs, hmacKey: () => this.#summaryKey() });
  }

  /** Starts the checkpoint and summary timers (after the keyholder is connected). */
  start(): void {
    if (this.#ms > 0 && !this.#timer) {
      this.#timer = setInterval(() => void this.checkpointIfDue(), this.#ms);
      this.#timer.unref();
    }
    if (!this.#summaryTimer) {
      this.#summaryTimer = setInterval(() => void this.#tick(), Math.min(1000, this.#summaryMs));
      this.#summaryTimer.unref();
    }
  }

  /** The interval of audit.summary and coalesced audit.read events, ms. */
  get summaryMs(): number { return this.#summaryMs; }

  /** Events durably stored and acknowledged. */
  get size(): number { return this.#acked; }

  /** Marks the pipe as needing a re-sync (the keyholder restarted, say). */
  invalidate(): void { this.#synced = false; }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#summaryTimer) clearInterval(this.#summaryTimer);
    this.#timer = null;
    this.#summaryTimer = null;
  }

  /**
   * Writes what is waiting now, whatever the interval: the failure summary
   * and every coalesced read window (before shutdown, and in tests).
   */
  async drain(): Promise<void> {
    await this.#flushSummary(true);
    await this.#flushReads(true);
  }

  #locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn, fn);
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /** Brings the keyholder's frontier and the store into agreement (see the module comment). */
  sync(): Promise<void> {
    return this.#locked(() => this.#sync());
  }

  async #sync(): Promise<void> {
    const st = await this.#kh.call('status', {});
    if (!st.initialized) throw new KeyholderProtocolError('KW_NOT_INITIALIZED');
    const storeSize = await this.#store.auditSize();
    if (!st.audit.restored) {
      const cpSize = st.audit.checkpoint?.size ?? 0;
      if (cpSize > storeSize) throw new KeyholderProtocolError('KW_AUDIT_FORK', `the keyholder signed a checkpoint of ${cpSize} events, the store holds ${storeSize}`);
      const f = Frontier.empty();
      for (let i = 0; i < cpSize; i += 10_000) {
        for (const row of await this.#store.readAuditEvents({ start: i, end: Math.min(cpSize, i + 10_000) })) f.append(row.leafHash);
      }
      const after: Uint8Array[] = [];
      for (let i = cpSize; i < storeSize; i += 10_000) {
        for (const row of await this.#store.readAuditEvents({ start: i, end: Math.min(storeSize, i + 10_000) })) after.push(utf8.encode(row.event));
      }
      const first = after.slice(0, MAX_RESTORE_EVENTS);
      await this.#kh.call('frontier-restore', { size: cpSize, hashes: f.hashes.map(b64u), events: first.map(b64u) });
      for (const ev of after.slice(MAX_RESTORE_EVENTS)) await this.#kh.call('append', { event: b64u(ev) });
      await this.#kh.call('ack', { size: storeSize });
    }
    // Under the sequencer: the keyholder's pending leaves against the stored log, then the events it has not seen.
    await this.#store.transaction((tx) => this.#reconcile(tx));
    this.#synced = true;
  }

  /**
   * Under the sequencer lock (in `tx`): makes the keyholder's leaves agree
   * with the stored log and this pipe's position the stored head.
   * - a pending leaf (appended, not acknowledged) at an index the store
   *   holds: the same event — durable, acknowledged below; another event
   *   (another node took the index) — it and the pending leaves after it are
   *   discarded (`discard-pending`; never signed, so never a fork);
   * - pending leaves beyond the stored head: this node's events whose
   *   transaction did not commit; the index is free and locked, so they are
   *   stored now (their operation may have happened);
   * - stored events the keyholder has not seen (other nodes'): appended.
   * A keyholder that acknowledged more than the store holds is KW_AUDIT_FORK.
   */
  async #reconcile(tx: StoreTx): Promise<void> {
    let head = await tx.lockAuditHead();
    const st = await this.#kh.call('status', {});
    const durable = st.audit.size;
    let appended = st.audit.appended;
    if (durable > head) throw new KeyholderProtocolError('KW_AUDIT_FORK', `the keyholder acknowledged ${durable} events, the store holds ${head}`);
    let idx = durable;
    while (idx < appended) {
      const pending = await this.#kh.call('pending-events', { from: idx });
      if (pending.events.length === 0) break;
      let discarded = false;
      for (const text of pending.events) {
        const bytes = unb64u(text);
        const event = new TextDecoder().decode(bytes);
        if (idx < head) {
          const stored = await tx.getAuditEvent(idx);
          if (stored?.event !== event) {
            await this.#kh.call('discard-pending', { from: idx });
            this.#onError('pending audit event discarded', new KeyholderProtocolError('KW_AUDIT_CONFLICT', `another node's event took index ${idx}`));
            appended = idx;
            discarded = true;
            break;
          }
        } else {
          await tx.appendAuditEvent({ time: new Date(), event, leafHash: eventLeafHash(bytes), expectedIdx: idx });
          head = idx + 1;
        }
        idx += 1;
      }
      if (discarded) break;
    }
    // The keyholder holds [0, appended), all equal to the stored events; the rest is other nodes'.
    this.#next = appended;
    this.#prev = appended > 0 ? eventHash(utf8.encode((await tx.getAuditEvent(appended - 1))!.event)) : GENESIS_PREV;
    await this.#catchUp(tx, head, false);
    if ((await this.#kh.call('status', {})).audit.size < head) await this.#kh.call('ack', { size: head });
    this.#acked = head;
  }

  /**
   * Feeds the keyholder the stored events [#next, head) (other nodes'), each
   * checked to be at its index and to chain on the one before, then acks
   * `head` (they are durable already). Under the sequencer lock, in `tx`.
   * A head behind this pipe's position is KW_AUDIT_FORK: the database went
   * back in time.
   */
  async #catchUp(tx: StoreTx, head: number, ack = true): Promise<void> {
    if (head < this.#next) throw new KeyholderProtocolError('KW_AUDIT_FORK', `the stored audit log has ${head} events; this node's keyholder already holds ${this.#next}`);
    if (head === this.#next) return;
    let prev = this.#prev;
    for (let start = this.#next; start < head; start += CATCH_UP_CHUNK) {
      const rows = await tx.readAuditEvents({ start, end: Math.min(head, start + CATCH_UP_CHUNK) });
      for (const row of rows) {
        const bytes = utf8.encode(row.event);
        const ev = JSON.parse(row.event) as { index?: unknown; prev?: unknown };
        if (ev.index !== row.idx || ev.prev !== prev) {
          throw new KeyholderProtocolError('KW_AUDIT_FORK', `stored audit event ${row.idx} does not chain on event ${row.idx - 1}: refusing to feed it to the keyholder`);
        }
        const { leaf } = await this.#kh.call('append', { event: b64u(bytes) });
        if (leaf !== row.idx) throw new KeyholderProtocolError('KW_AUDIT_CONFLICT', `the keyholder appended leaf ${leaf}, expected ${row.idx}`);
        prev = eventHash(bytes);
        this.#next = row.idx + 1;
        this.#prev = prev;
      }
    }
    if (this.#next !== head) throw new KeyholderProtocolError('KW_INTERNAL', `the stored audit log ends at ${this.#next}, its head says ${head}`);
    if (ack) {
      await this.#kh.call('ack', { size: head });
      this.#acked = head;
    }
  }

  /** Takes the sequencer in `tx` and catches this node up with the events other nodes appended. */
  async #follow(tx: StoreTx): Promise<void> {
    try {
      const head = await tx.lockAuditHead();
      this.#lockedAt = performance.now();
      if (head !== this.#next) await this.#catchUp(tx, head);
    } catch (e) {
      this.#synced = false;
      throw e;
    }
  }

  /**
   * Records one audited action. `body` runs inside the store transaction
   * with the prepared event: it makes the state change and, for key ops,
   * calls the keyholder with `ev.b64` and returns the leaf it got. Without a
   * leaf, the event is sent with `append`. Any throw rolls everything back.
   */
  record<T>(input: AuditEventInput, body?: (tx: StoreTx, ev: PreparedEvent) => Promise<{ result: T; leaf?: number }>): Promise<T> {
    return this.#locked(async () => {
      if (!this.#synced) await this.#sync();
      return this.#write(await this.#redacted(input), body);
    });
  }

  /** One event, under the lock, synced; `input` is already redacted. */
  async #write<T>(input: AuditEventInput, body?: (tx: StoreTx, ev: PreparedEvent) => Promise<{ result: T; leaf?: number }>): Promise<T> {
    let appended = false;
    let bytes: Uint8Array = new Uint8Array(0);
    try {
      const result = await this.#store.transaction(async (tx) => {
        // The sequencer first: the event is built at the head, after what other nodes appended.
        await this.#follow(tx);
        const time = new Date();
        bytes = buildEvent(input, { index: this.#next, time, prev: this.#prev }).bytes;
        const ev: PreparedEvent = { index: this.#next, b64: b64u(bytes) };
        // A body that throws after its keyholder op may leave a pending leaf: the next write re-syncs first.
        if (body) this.#synced = false;
        const r = body ? await body(tx, ev) : { result: undefined as T };
        this.#synced = true;
        const leaf = r.leaf ?? (await this.#kh.call('append', { event: ev.b64 })).leaf;
        appended = true;
        if (leaf !== ev.index) throw new KeyholderProtocolError('KW_AUDIT_CONFLICT', `the keyholder appended leaf ${leaf}, expected ${ev.index}`);
        await tx.appendAuditEvent({ time, event: new TextDecoder().decode(bytes), leafHash: eventLeafHash(bytes), expectedIdx: leaf });
        return r.result;
      });
      if (this.#shared) this.#sequencerHeld(1, 0);
      this.#next += 1;
      this.#prev = eventHash(bytes);
      try {
        await this.#kh.call('ack', { size: this.#next });
        this.#acked = this.#next;
      } catch (e) {
        this.#synced = false;
        this.#onError('ack', e);
      }
      return result;
    } catch (e) {
      if (appended || (isProtocolError(e) && UNCERTAIN.has(e.code))) this.#synced = false;
      throw e;
    }
  }

  /**
   * Records an audited action that changes nothing in the store besides its
   * event — a keyholder op (`op` sends `ev.b64` with it and returns the leaf
   * it got), or, without `op`, an event the keyholder `append`s — with group
   * commit: the actions waiting when the pipe is free are taken together (at
   * most {@link MAX_GROUP_COMMIT}); each goes to the keyholder in turn (its
   * event built on the previous one's, the keyholder appending its leaf
   * before it answers), no store transaction open meanwhile; then every
   * event of the group is written in ONE store transaction (one fsync), the
   * callers are answered, and the keyholder gets one `ack`. A refused op
   * fails alone (its event is not written; the group goes on without it);
   * after anything uncertain the events before it are committed, the pipe
   * re-synchronises, and the actions after it wait for the next group.
   * Actions that change stored state use {@link record} (their event in
   * their own transaction).
   *
   * `ordered`: `op` sends its one keyholder op (carrying `ev.b64`) before
   * its first await and returns the leaf it got. One node: the ops of such
   * actions (and the plain `append`s) are sent without waiting for each
   * answer — the keyholder runs leaf-appending ops in arrival order — and
   * their answers are taken in order (#runGroup).
   */
  recordOp<T>(input: AuditEventInput, op?: (ev: PreparedEvent) => Promise<{ result: T; leaf?: number }>, opts: { nonce?: RequestNonce; ordered?: boolean } = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ input, op, resolve: resolve as (r: unknown) => void, reject, nonce: opts.nonce, ordered: opts.ordered ?? false });
      if (!this.#draining) void this.#drainQueue();
    });
  }

  async #drainQueue(): Promise<void> {
    this.#draining = true;
    try {
      while (this.#queue.length > 0) {
        const group = this.#queue.splice(0, MAX_GROUP_COMMIT);
        await this.#locked(() => this.#writeGroup(group)).catch((e: unknown) => { for (const q of group) q.reject(e); });
      }
    } finally {
      this.#draining = false;
    }
  }

  /**
   * One group commit (see recordOp). Under the lock; settles every item of
   * `group` or puts it back in the queue. One node (SQLite): the keyholder
   * ops run with no store transaction open, then one transaction writes the
   * events. Several nodes: one transaction takes the sequencer, catches up,
   * records each signed request's nonce and runs its op, then writes the
   * events — the sequencer is held once per group, not per event.
   */
  async #writeGroup(group: QueuedOp[]): Promise<void> {
    if (!this.#synced) await this.#sync();
    const items: { q: QueuedOp; input: AuditEventInput }[] = [];
    for (const q of group) {
      try {
        items.push({ q, input: await this.#redacted(q.input) });
      } catch (e) {
        q.reject(e);
      }
    }
    let done: DoneOp[] = [];
    let requeue: QueuedOp[] = [];
    const replayed = new Set<DoneOp>();
    let keyholderMs = 0;
    const append = async (tx: StoreTx, d: DoneOp) => {
      await tx.appendAuditEvent({ time: d.time, event: new TextDecoder().decode(d.bytes), leafHash: eventLeafHash(d.bytes), expectedIdx: d.index });
    };
    try {
      if (this.#shared) {
        await this.#store.transaction(async (tx) => {
          await this.#follow(tx);
          ({ done, requeue, keyholderMs } = await this.#runGroup(items, tx));
          for (const d of done) await append(tx, d);
        });
        this.#sequencerHeld(done.length, keyholderMs);
      } else {
        ({ done, requeue } = await this.#runGroup(items, null));
        this.#queue.unshift(...requeue);
        if (done.length > 0) this.#commitGroup(done, append);
        return;
      }
    } catch (e) {
      this.#synced = false;
      for (const it of items) it.q.reject(e);
      return;
    }
    this.#queue.unshift(...requeue);
    if (done.length === 0) return;
    this.#next += done.length;
    this.#prev = done[done.length - 1]!.hash;
    // Durable now: answer, and let the keyholder count the leaves as durable (acks are ordered on the socket).
    const size = this.#next;
    this.#kh.call('ack', { size }).then(() => { this.#acked = Math.max(this.#acked, size); }, (e: unknown) => {
      this.#synced = false;
      this.#onError('ack', e);
    });
    for (const d of done) {
      if (replayed.has(d)) d.q.reject(new KeyholderProtocolError('KW_REQUEST_REPLAYED', 'the signed request was already used (nonce seen)'));
      else d.q.resolve(d.result);
    }
  }

  /**
   * One node: stores a group's events in one transaction (one fsync), then
   * answers its callers and acks the leaves. Not awaited under the pipe's
   * lock: the next group's keyholder ops run while this one commits (their
   * events built on these, which the keyholder already holds), and the
   * store runs transactions in the order they are asked for, so the log is
   * written in order and every later audited transaction sees these events.
   * A failed commit fails its callers and re-synchronises the pipe (the
   * re-sync stores the keyholder's pending leaves: their ops happened).
   */
  #commitGroup(done: DoneOp[], append: (tx: StoreTx, d: DoneOp) => Promise<void>): void {
    this.#next += done.length;
    this.#prev = done[done.length - 1]!.hash;
    const size = this.#next;
    const replayed = new Set<DoneOp>();
    this.#store.transaction(async (tx) => {
      for (const d of done) {
        await append(tx, d);
        // One node: the keyholder's own cache refused any replay already; the row keeps the table true.
        if (d.q.nonce && !(await tx.useNonce({ ...d.q.nonce, now: d.time }))) replayed.add(d);
      }
    }).then(() => {
      // Durable now: let the keyholder count the leaves as durable (acks are ordered on the socket), and answer.
      this.#kh.call('ack', { size }).then(() => { this.#acked = Math.max(this.#acked, size); }, (e: unknown) => {
        this.#synced = false;
        this.#onError('ack', e);
      });
      for (const d of done) {
        if (replayed.has(d)) d.q.reject(new KeyholderProtocolError('KW_REQUEST_REPLAYED', 'the signed request was already used (nonce seen)'));
        else d.q.resolve(d.result);
      }
    }, (e: unknown) => {
      this.#synced = false;
      for (const d of done) d.q.reject(e);
    });
  }

  /**
   * The keyholder half of a group commit: each item's op (or `append`) in
   * turn, its event chained on the previous one's. With `tx` (several
   * nodes) the request's nonce is recorded first, so a replay is refused
   * before the keyholder acts. A refused op fails alone; after anything
   * uncertain the items after it are handed back for the next group.
   */
  async #runGroup(items: readonly { q: QueuedOp; input: AuditEventInput }[], tx: StoreTx | null): Promise<{ done: DoneOp[]; requeue: QueuedOp[]; keyholderMs: number }> {
    if (tx === null) return this.#runGroupPipelined(items);
    const done: DoneOp[] = [];
    let keyholderMs = 0;
    let prev = this.#prev;
    for (const [i, it] of items.entries()) {
      const index = this.#next + done.length;
      const time = new Date();
      const { bytes } = buildEvent(it.input, { index, time, prev });
      const ev: PreparedEvent = { index, b64: b64u(bytes) };
      let uncertain: unknown = null;
      try {
        if (tx && it.q.nonce && !(await tx.useNonce({ ...it.q.nonce, now: time }))) {
          it.q.reject(new KeyholderProtocolError('KW_REQUEST_REPLAYED', 'the signed request was already used, on this node or another (nonce seen)'));
          continue;
        }
        const t0 = performance.now();
        const r = it.q.op ? await it.q.op(ev) : { result: undefined };
        const leaf = r.leaf ?? (await this.#kh.call('append', { event: ev.b64 })).leaf;
        keyholderMs += performance.now() - t0;
        if (leaf === index) {
          const hash = eventHash(bytes);
          done.push({ q: it.q, index, time, bytes, hash, result: r.result });
          prev = hash;
          continue;
        }
        uncertain = new KeyholderProtocolError('KW_AUDIT_CONFLICT', `the keyholder appended leaf ${leaf}, expected ${index}`);
      } catch (e) {
        if (!(isProtocolError(e) && UNCERTAIN.has(e.code))) {
          // The keyholder refuses on its signed policy before it verifies the signature: the request was not
          // used, so its nonce must not be spent either (withGovernance syncs the policy and runs it again).
          if (it.q.nonce && isProtocolError(e, 'KW_POLICY_DENIED')) await tx.releaseNonce({ keyId: it.q.nonce.keyId, nonce: it.q.nonce.nonce });
          it.q.reject(e); // refused: nothing appended, the next item takes this index
          continue;
        }
        uncertain = e;
      }
      // The keyholder may hold an event the store does not: commit what is certain, re-sync, and retry the rest later.
      this.#synced = false;
      it.q.reject(uncertain);
      return { done, requeue: items.slice(i + 1).map((x) => x.q), keyholderMs };
    }
    return { done, requeue: [], keyholderMs };
  }

  /**
   * One node: the keyholder half of a group commit, pipelined. A run of
   * `ordered` actions (or plain appends) is sent at once, events built at
   * consecutive indices, each chained on the one before; the keyholder runs
   * them in arrival order, each checking its index first. Answers are taken
   * in order: a refusal at item k fails k alone, and the items after it —
   * whose index k took, so they did nothing (KW_AUDIT_CONFLICT) — go back
   * to the queue for the next group; after anything uncertain the pipe
   * re-synchronises, items that did nothing go back to the queue, and any
   * that may have happened fail with the uncertainty (the re-sync stores
   * their events). Other actions run one at a time, as in a shared store.
   */
  async #runGroupPipelined(items: readonly { q: QueuedOp; input: AuditEventInput }[]): Promise<{ done: DoneOp[]; requeue: QueuedOp[]; keyholderMs: number }> {
    const done: DoneOp[] = [];
    const t0 = performance.now();
    const pipelined = (q: QueuedOp) => q.op === undefined || q.ordered;
    for (let i = 0; i < items.length;) {
      let j = i + 1;
      if (pipelined(items[i]!.q)) while (j < items.length && pipelined(items[j]!.q)) j++;
      let prev = done.length > 0 ? done[done.length - 1]!.hash : this.#prev;
      const sent = items.slice(i, j).map((it, k) => {
        const index = this.#next + done.length + k;
        const time = new Date();
        const { bytes } = buildEvent(it.input, { index, time, prev });
        const hash = eventHash(bytes);
        prev = hash;
        return { q: it.q, index, time, bytes, hash, answer: this.#startOp(it.q, { index, b64: b64u(bytes) }) };
      });
      const answers = await Promise.allSettled(sent.map((x) => x.answer));
      let stopped = false;
      const requeue: QueuedOp[] = [];
      for (const [k, x] of sent.entries()) {
        const a = answers[k]!;
        if (!stopped) {
          if (a.status === 'fulfilled' && a.value.leaf === x.index) {
            done.push({ q: x.q, index: x.index, time: x.time, bytes: x.bytes, hash: x.hash, result: a.value.result });
            continue;
          }
          stopped = true;
          const e: unknown = a.status === 'fulfilled' ? new KeyholderProtocolError('KW_AUDIT_CONFLICT', `the keyholder appended leaf ${a.value.leaf}, expected ${x.index}`) : a.reason;
          // Refused: nothing appended, the items after it found their index taken. Uncertain: re-sync first.
          if (isProtocolError(e) && UNCERTAIN.has(e.code)) this.#synced = false;
          x.q.reject(e);
          continue;
        }
        const e: unknown = a.status === 'rejected' ? a.reason : null;
        if (e !== null && (isProtocolError(e, 'KW_AUDIT_CONFLICT') || !(isProtocolError(e) && UNCERTAIN.has(e.code)))) {
          requeue.push(x.q); // its turn came after its index was taken (or it was refused before its index was looked at): it did nothing
          continue;
        }
        this.#synced = false;
        x.q.reject(e ?? new KeyholderProtocolError('KW_AUDIT_CONFLICT', 'an earlier operation of the same group failed; this one may or may not have happened'));
      }
      if (stopped) return { done, requeue: [...requeue, ...items.slice(j).map((it) => it.q)], keyholderMs: performance.now() - t0 };
      i = j;
    }
    return { done, requeue: [], keyholderMs: performance.now() - t0 };
  }

  /** Starts one action's keyholder op (or its `append`); resolves with its result and leaf. */
  #startOp(q: QueuedOp, ev: PreparedEvent): Promise<{ result: unknown; leaf: number }> {
    try {
      if (!q.op) return this.#kh.call('append', { event: ev.b64 }).then((r) => ({ result: undefined, leaf: r.leaf }));
      return q.op(ev).then(async (r) => ({ result: r.result, leaf: r.leaf ?? (await this.#kh.call('append', { event: ev.b64 })).leaf }));
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new KeyholderProtocolError('KW_INTERNAL', 'the operation failed'));
    }
  }

  /** Reports a committed hold of the sequencer that began in #follow. */
  #sequencerHeld(events: number, keyholderMs: number): void {
    if (!this.#onSequencer || this.#lockedAt === 0) return;
    const holdMs = performance.now() - this.#lockedAt;
    this.#lockedAt = 0;
    try { this.#onSequencer({ holdMs, events, keyholderMs }); } catch { /* metrics never break the pipe */ }
  }

  /**
   * Records a refusal or failure (outcome denied/error); never throws (a
   * failure to audit is reported to onError). A KW_UNAUTHENTICATED failure is
   * not written: it is counted in {@link failures} (by the API's error hook)
   * and summarised, so a flood of them cannot become a flood of writes.
   */
  async recordFailure(input: AuditEventInput): Promise<void> {
    if (input.code === 'KW_UNAUTHENTICATED') return;
    try {
      await this.recordOp(input);
    } catch (e) {
      this.#onError('audit of a refusal', e);
    }
  }

  // --- redaction ---------------------------------------------------------------

  /**
   * `input` with every sensitive value of `details` replaced by its marker
   * under the namespace's audit key, and `hmac_key_version` set; without a
   * key (sealed, no such namespace) the values are written as null.
   */
  async #redacted(input: AuditEventInput): Promise<AuditEventInput> {
    const details = input.details;
    if (details === undefined || Object.keys(details).length === 0) return input;
    // The same details under the same audit key version (a service's context and address, request after request): redacted once.
    const known = this.#auditKeys.get(input.ns ?? AUDIT_SYS_NS);
    const memo = known !== undefined && (input.hmac_key_version ?? null) === null ? `${known.ns}\n${known.version}\n${JSON.stringify(details)}` : null;
    const hit = memo === null ? undefined : this.#redactCache.get(memo);
    if (hit !== undefined) {
      this.#redactCache.delete(memo!);
      this.#redactCache.set(memo!, hit);
      return { ...input, details: hit, hmac_key_version: known!.version };
    }
    // A local pass finds whether anything is sensitive (most events: nothing, and no keyholder call).
    const probe = randomBytes(32).toString('hex');
    const probed = await redact(details, this.#paths, { version: 1, hmac: () => probe });
    if (probed.hmac_key_version === null) return input;
    let key: HmacKey | null = null;
    try {
      key = await this.#auditKey(input.ns);
      if (key !== null) {
        const r = await redact(details, this.#paths, key);
        const preset = input.hmac_key_version ?? null;
        if (preset !== null && preset !== r.hmac_key_version) throw new KeyholderProtocolError('KW_INTERNAL', 'an event cannot carry markers of two audit key versions');
        if (memo !== null && r.hmac_key_version === known!.version && key.version === known!.version) {
          this.#redactCache.set(memo, deepFreeze(r.details));
          if (this.#redactCache.size > MAC_CACHE_SIZE) this.#redactCache.delete(this.#redactCache.keys().next().value!);
        }
        return { ...input, details: r.details, hmac_key_version: r.hmac_key_version };
      }
    } catch (e) {
      if (!(isProtocolError(e) && NO_HMAC.has(e.code))) throw e;
    }
    return { ...input, details: dropMarkers(probed.details, `hmac-sha256:v1:${probe}`) as JsonObject };
  }

  /** The audit HMAC key of `ns` (null: `sys`), created on first use; null when the namespace does not exist. Under the lock. */
  async #auditKey(ns: string | null): Promise<HmacKey | null> {
    const name = ns ?? AUDIT_SYS_NS;
    let key = this.#auditKeys.get(name) ?? null;
    if (key === null) {
      const found = await this.#loadAuditKey(name);
      if (found === null) return null;
      key = found === undefined ? await this.#createAuditKey(name) : found;
      if (key === null) return null;
      this.#auditKeys.set(name, key);
    }
    const v = key;
    return { version: v.version, hmac: (m) => this.#mac(v, m) };
  }

  /** The latest usable version of `name/audit-hmac`; undefined when the key does not exist, null when it is unusable. */
  async #loadAuditKey(ns: string): Promise<AuditKeyVersion | null | undefined> {
    const k = await this.#store.getKey(ns, AUDIT_HMAC_KEY);
    if (!k) return undefined;
    if (k.type !== 'hmac-sha256') {
      this.#onError('audit key', new KeyholderProtocolError('KW_KEY_TYPE_MISMATCH', `${ns}/${AUDIT_HMAC_KEY} is not an hmac-sha256 key`));
      return null;
    }
    const versions = await this.#store.listKeyVersions(ns, AUDIT_HMAC_KEY);
    const latest = versions.filter((x) => x.wrapped !== null && x.state === 'enabled').sort((a, b) => b.version - a.version)[0];
    return latest ? { ns, key: AUDIT_HMAC_KEY, version: latest.version, type: 'hmac-sha256', wrapped: b64u(latest.wrapped!) } : null;
  }

  /** Creates version 1 of `ns/audit-hmac` through the ordinary key creation path (its own keys.create event). */
  async #createAuditKey(ns: string): Promise<AuditKeyVersion | null> {
    if (!(await this.#store.getNamespace(ns))) return null;
    const ref = { ns, key: AUDIT_HMAC_KEY, version: 1, type: 'hmac-sha256' as const };
    const race = new KeyholderProtocolError('KW_AUDIT_CONFLICT', `${ns}/${AUDIT_HMAC_KEY} was created concurrently`);
    try {
      return await this.#createAuditKeyVersion(ns, ref, race);
    } catch (e) {
      // Another node created it first (seen under the sequencer): use theirs; nothing was appended or written.
      if (e !== race) throw e;
      return (await this.#loadAuditKey(ns)) ?? null;
    }
  }

  #createAuditKeyVersion(ns: string, ref: { ns: string; key: string; version: number; type: 'hmac-sha256' }, race: Error): Promise<AuditKeyVersion> {
    return this.#write<AuditKeyVersion>(
      { ns, principal: null, auth: 'none', op: 'keys.create', target: { key: AUDIT_HMAC_KEY, version: 1 }, outcome: 'allowed', details: { type: 'hmac-sha256', purpose: 'audit-redaction' } },
      async (tx, ev) => {
        if (await tx.getKey(ns, AUDIT_HMAC_KEY)) throw race;
        const g = await this.#kh.call('generate-version', { event: ev.b64, ref });
        await tx.createKey({ ns, name: AUDIT_HMAC_KEY, type: 'hmac-sha256', created: new Date(), rotationPeriodSeconds: null, firstVersion: { wrapped: unb64u(g.wrapped), publicKey: null } });
        return { result: { ...ref, wrapped: g.wrapped }, leaf: g.leaf };
      },
    );
  }

  /** Forgets the cached audit key of `ns` (after it was rotated): the next event uses its latest version. */
  forgetAuditKey(ns: string): void {
    this.#auditKeys.delete(ns);
  }

  /** HMAC of a redaction message by the keyholder: cached, and batched per tick (≤ 64 messages a call). */
  #mac(v: AuditKeyVersion, m: Uint8Array): Promise<string> {
    const cacheKey = `${v.ns}\n${v.version}\n${createHash('sha256').update(m).digest('hex')}`;
    const hit = this.#macCache.get(cacheKey);
    if (hit !== undefined) {
      this.#macCache.delete(cacheKey);
      this.#macCache.set(cacheKey, hit);
      return Promise.resolve(hit);
    }
    if (m.length > HMAC_AUDIT_LIMITS.maxMessageBytes) {
      return Promise.reject(new KeyholderProtocolError('KW_LIMIT_EXCEEDED', `a redacted value may be at most ${HMAC_AUDIT_LIMITS.maxMessageBytes} bytes of canonical JSON`));
    }
    return new Promise((resolve, reject) => {
      this.#macQueue.push({ v, m, cacheKey, resolve, reject });
      if (this.#macQueue.length === 1) queueMicrotask(() => void this.#flushMacs());
    });
  }

  async #flushMacs(): Promise<void> {
    const queue = this.#macQueue;
    this.#macQueue = [];
    const groups = new Map<string, typeof queue>();
    for (const q of queue) {
      const g = `${q.v.ns}\n${q.v.version}`;
      groups.set(g, [...(groups.get(g) ?? []), q]);
    }
    for (const group of groups.values()) {
      for (let i = 0; i < group.length; i += HMAC_AUDIT_LIMITS.maxMessages) {
        const chunk = group.slice(i, i + HMAC_AUDIT_LIMITS.maxMessages);
        const v = chunk[0]!.v;
        try {
          const r = await this.#kh.call('hmac-audit', { version: { ns: v.ns, key: v.key, version: v.version, type: v.type, wrapped: v.wrapped }, messages: chunk.map((q) => b64u(q.m)) });
          chunk.forEach((q, j) => {
            const mac = r.macs[j]!;
            this.#macCache.set(q.cacheKey, mac);
            if (this.#macCache.size > MAC_CACHE_SIZE) this.#macCache.delete(this.#macCache.keys().next().value!);
            q.resolve(mac);
          });
        } catch (e) {
          for (const q of chunk) q.reject(e);
        }
      }
    }
  }

  // --- summaries and audited reads -------------------------------------------------

  /** The key that redacts the networks of a failure summary: `sys`'s, or null while sealed. Under the lock. */
  async #summaryKey(): Promise<HmacKey | null> {
    const st = await this.#kh.call('status', {});
    if (!st.initialized || st.sealed) return null;
    try {
      return await this.#auditKey(null);
    } catch (e) {
      if (isProtocolError(e) && NO_HMAC.has(e.code)) return null;
      throw e;
    }
  }

  async #tick(): Promise<void> {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      await this.#flushSummary(false);
      await this.#flushReads(false);
      await this.#purgeNonces();
    } finally {
      this.#ticking = false;
    }
  }

  /** Removes expired nonces of signed requests, at most once a minute (any node may; they race harmlessly). */
  async #purgeNonces(): Promise<void> {
    const now = Date.now();
    if (now - this.#lastPurge < NONCE_PURGE_MS) return;
    this.#lastPurge = now;
    try {
      await this.#store.purgeNonces(new Date(now));
    } catch (e) {
      this.#onError('nonce purge', e);
    }
  }

  /** Writes the failure summary when one is due (or waiting from a failed try). */
  async #flushSummary(force: boolean): Promise<void> {
    if (this.#pendingSummary === null && this.failures.pending === 0) return;
    if (this.#pendingSummary === null && !force && !this.failures.due()) return;
    try {
      await this.#locked(async () => {
        if (!this.#synced) await this.#sync();
        // A summary taken but not written is kept and written first, never lost.
        this.#pendingSummary ??= await this.failures.take({ force });
        if (this.#pendingSummary === null) return;
        await this.#write(await this.#redacted(this.#pendingSummary));
        this.#pendingSummary = null;
      });
    } catch (e) {
      if (!(isProtocolError(e) && QUIET.has(e.code))) this.#onError('audit summary', e);
    }
  }

  /**
   * Audits one read of the log by `principal` (an admin). The first read of
   * a window is written before the caller answers (it fails if the event
   * cannot be written: no read without its record); further reads in the
   * same window are counted and written as one coalesced `audit.read` event
   * when the window closes. So a reader polling the log costs at most two
   * events per interval, and its own `audit.read` events cannot make it poll
   * itself into a write loop.
   */
  async recordRead(principal: string, read: AuditRead): Promise<void> {
    const now = Date.now();
    const w = this.#reads.get(principal);
    if (w && now - w.start < this.#summaryMs) {
      w.count += 1;
      w.kinds[read.kind] = (w.kinds[read.kind] ?? 0) + 1;
      w.from = Math.min(w.from, read.from);
      w.to = Math.max(w.to, read.to);
      return;
    }
    if (w) {
      this.#reads.delete(principal); // so the timer cannot write it too
      try {
        await this.#writeReadWindow(principal, w, now);
      } catch (e) {
        if (!this.#reads.has(principal)) this.#reads.set(principal, w); // kept for the timer; this read is refused
        throw e;
      }
    }
    const fresh: ReadWindow = { start: now, count: 0, kinds: {}, from: read.from, to: read.to };
    if (this.#reads.size < MAX_READERS) this.#reads.set(principal, fresh);
    try {
      await this.record({ ns: null, principal, auth: 'token', op: 'audit.read', outcome: 'allowed', details: { kind: read.kind, from: read.from, to: read.to } });
    } catch (e) {
      if (this.#reads.get(principal) === fresh) this.#reads.delete(principal);
      throw e;
    }
  }

  async #writeReadWindow(principal: string, w: ReadWindow, end: number): Promise<void> {
    if (w.count === 0) return;
    const kinds = Object.fromEntries(Object.entries(w.kinds).sort(([a], [b]) => (a < b ? -1 : 1)));
    await this.record({
      ns: null, principal, auth: 'token', op: 'audit.read', outcome: 'allowed',
      details: { coalesced: w.count, kinds, from: w.from, to: w.to, window: { start: new Date(w.start).toISOString(), end: new Date(end).toISOString() } },
    });
  }

  /** Writes the coalesced reads of every window that has closed (or all, with `force`). */
  async #flushReads(force: boolean): Promise<void> {
    const now = Date.now();
    for (const [principal, w] of [...this.#reads]) {
      if (!force && now - w.start < this.#summaryMs) continue;
      this.#reads.delete(principal);
      try {
        await this.#writeReadWindow(principal, w, now);
      } catch (e) {
        // Keep the counts for the next tick (a reader's new window, if any, is merged into).
        const cur = this.#reads.get(principal);
        if (cur) {
          cur.count += w.count;
          for (const [k, n] of Object.entries(w.kinds)) cur.kinds[k] = (cur.kinds[k] ?? 0) + n;
          cur.from = Math.min(cur.from, w.from);
          cur.to = Math.max(cur.to, w.to);
        } else {
          this.#reads.set(principal, w);
        }
        if (!(isProtocolError(e) && QUIET.has(e.code))) this.#onError('audit read summary', e);
        return;
      }
    }
  }

  /**
   * Several nodes: when other nodes appended while this one was idle, feeds
   * their events to this node's keyholder (under the sequencer, briefly), so
   * its checkpoints follow the log. Only once synced (else the next write
   * re-syncs anyway).
   */
  async follow(): Promise<void> {
    if (!this.#shared || !this.#synced) return;
    if ((await this.#store.auditSize()) <= this.#next) return;
    await this.#locked(async () => {
      if (this.#synced) await this.#store.transaction((tx) => this.#follow(tx));
    });
  }

  /**
   * Asks the keyholder for a checkpoint when events were acknowledged since
   * the last one, and stores it. Several nodes sign the same heads with the
   * same key: a checkpoint of a size already stored is not stored again, but
   * its root must be the stored one's (else KW_AUDIT_FORK is reported).
   */
  async checkpointIfDue(force = false): Promise<void> {
    if (this.#checkpointing) return;
    try {
      await this.follow();
    } catch (e) {
      if (!(isProtocolError(e) && QUIET.has(e.code))) this.#onError('audit follow', e);
    }
    if (!force && this.#acked <= this.#checkpointed) return;
    this.#checkpointing = true;
    try {
      const cp = await this.#kh.call('checkpoint', {});
      const root = unb64u(cp.root);
      const same = await this.#store.getAuditCheckpoint(cp.size);
      const latest = same ? null : await this.#store.latestAuditCheckpoint();
      if (!same && (!latest || cp.size > latest.size)) {
        try {
          await this.#store.addAuditCheckpoint({ size: cp.size, root, note: cp.note, created: new Date() });
        } catch (e) {
          // Another node stored this size first: the same root, or a fork to report below.
          if ((e as { code?: unknown }).code !== 'KW_STORE_CONFLICT') throw e;
        }
      }
      const stored = same ?? (await this.#store.getAuditCheckpoint(cp.size));
      if (stored && Buffer.compare(Buffer.from(stored.root), Buffer.from(root)) !== 0) {
        throw new KeyholderProtocolError('KW_AUDIT_FORK', `this node's keyholder signed size ${cp.size} with a root that differs from the stored checkpoint of that size`);
      }
      this.#checkpointed = cp.size;
    } catch (e) {
      if (!(isProtocolError(e) && (e.code === 'KW_SEALED' || e.code === 'KW_KEYHOLDER_UNAVAILABLE' || e.code === 'KW_AUDIT_NOT_RESTORED'))) this.#onError('checkpoint', e);
    } finally {
      this.#checkpointing = false;
    }
  }
}
