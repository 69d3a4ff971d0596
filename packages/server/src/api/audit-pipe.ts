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
 */
import { Frontier } from '@keyward/tlog';
import { GENESIS_PREV } from '../audit/bytes.js';
import { buildEvent, eventHash, eventLeafHash, type AuditEventInput } from '../audit/event.js';
import type { KeyholderClient } from '../keyholder/client.js';
import { KeyholderProtocolError, MAX_RESTORE_EVENTS, isProtocolError } from '../keyholder/protocol.js';
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

export interface AuditPipeOptions {
  readonly store: Store;
  readonly keyholder: KeyholderClient;
  readonly onError?: (what: string, e: unknown) => void;
  /** Checkpoint period, ms (default 1000). */
  readonly checkpointMs?: number;
}

const UNCERTAIN = new Set(['KW_KEYHOLDER_UNAVAILABLE', 'KW_KEYHOLDER_TIMEOUT', 'KW_AUDIT_CONFLICT', 'KW_AUDIT_NOT_RESTORED', 'KW_INTERNAL']);

export class AuditPipe {
  readonly #store: Store;
  readonly #kh: KeyholderClient;
  readonly #onError: (what: string, e: unknown) => void;
  #tail: Promise<unknown> = Promise.resolve();
  #synced = false;
  #next = 0;
  #prev = GENESIS_PREV;
  #acked = 0;
  #checkpointed = -1;
  #timer: NodeJS.Timeout | null = null;
  #checkpointing = false;
  readonly #ms: number;

  constructor(o: AuditPipeOptions) {
    this.#store = o.store;
    this.#kh = o.keyholder;
    this.#onError = o.onError ?? (() => undefined);
    this.#ms = o.checkpointMs ?? 1000;
  }

  /** Starts the checkpoint timer (after the keyholder is connected). */
  start(): void {
    if (this.#ms > 0 && !this.#timer) {
      this.#timer = setInterval(() => void this.checkpointIfDue(), this.#ms);
      this.#timer.unref();
    }
  }

  /** Events durably stored and acknowledged. */
  get size(): number { return this.#acked; }

  /** Marks the pipe as needing a re-sync (the keyholder restarted, say). */
  invalidate(): void { this.#synced = false; }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
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
    let storeSize = await this.#store.auditSize();
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
    // Events the keyholder appended that the store does not hold yet.
    let status = await this.#kh.call('status', {});
    while (status.audit.appended > storeSize) {
      const pending = await this.#kh.call('pending-events', { from: storeSize });
      if (pending.events.length === 0) break;
      for (const [i, text] of pending.events.entries()) {
        const idx = pending.from + i;
        const bytes = unb64u(text);
        await this.#store.appendAuditEvent({ time: new Date(), event: new TextDecoder().decode(bytes), leafHash: eventLeafHash(bytes), expectedIdx: idx });
      }
      storeSize = await this.#store.auditSize();
      status = await this.#kh.call('status', {});
    }
    if (status.audit.size < storeSize) await this.#kh.call('ack', { size: storeSize });
    this.#next = storeSize;
    this.#acked = storeSize;
    if (storeSize > 0) {
      const last = await this.#store.getAuditEvent(storeSize - 1);
      this.#prev = eventHash(utf8.encode(last!.event));
    } else {
      this.#prev = GENESIS_PREV;
    }
    this.#synced = true;
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
      const time = new Date();
      const { bytes } = buildEvent(input, { index: this.#next, time, prev: this.#prev });
      const ev: PreparedEvent = { index: this.#next, b64: b64u(bytes) };
      let appended = false;
      try {
        const result = await this.#store.transaction(async (tx) => {
          const r = body ? await body(tx, ev) : { result: undefined as T };
          const leaf = r.leaf ?? (await this.#kh.call('append', { event: ev.b64 })).leaf;
          appended = true;
          if (leaf !== ev.index) throw new KeyholderProtocolError('KW_AUDIT_CONFLICT', `the keyholder appended leaf ${leaf}, expected ${ev.index}`);
          await tx.appendAuditEvent({ time, event: new TextDecoder().decode(bytes), leafHash: eventLeafHash(bytes), expectedIdx: leaf });
          return r.result;
        });
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
    });
  }

  /** Records a refusal or failure (outcome denied/error); never throws (a failure to audit is reported to onError). */
  async recordFailure(input: AuditEventInput): Promise<void> {
    try {
      await this.record(input);
    } catch (e) {
      this.#onError('audit of a refusal', e);
    }
  }

  /** Asks the keyholder for a checkpoint when events were acknowledged since the last one, and stores it. */
  async checkpointIfDue(force = false): Promise<void> {
    if (this.#checkpointing) return;
    if (!force && this.#acked <= this.#checkpointed) return;
    this.#checkpointing = true;
    try {
      const cp = await this.#kh.call('checkpoint', {});
      const latest = await this.#store.latestAuditCheckpoint();
      if (!latest || cp.size > latest.size) {
        await this.#store.addAuditCheckpoint({ size: cp.size, root: unb64u(cp.root), note: cp.note, created: new Date() });
      }
      this.#checkpointed = cp.size;
    } catch (e) {
      if (!(isProtocolError(e) && (e.code === 'KW_SEALED' || e.code === 'KW_KEYHOLDER_UNAVAILABLE' || e.code === 'KW_AUDIT_NOT_RESTORED'))) this.#onError('checkpoint', e);
    } finally {
      this.#checkpointing = false;
    }
  }
}
