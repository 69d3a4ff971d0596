/**
 * The key lifecycle scheduler: automatic rotation on a key's period and
 * destruction of versions whose scheduled deletion date has passed.
 *
 * Every `intervalMs` (server config `schedulerMs`, default 60 s; 0 = no
 * timer) a tick, while the keyholder is initialized and unsealed:
 *
 * 1. rotates every key whose latest version is at least its rotation period
 *    old (`listKeysDueForRotation(now)`), through lifecycle/rotate.ts — the
 *    same path as `POST …/rotate`: a `keys.rotate` event generated with the
 *    version in the keyholder, committed with the new version;
 * 2. destroys every version scheduled for deletion whose date has come
 *    (`listVersionsDueForDestruction(now)`), through lifecycle/destroy.ts —
 *    the same path as `POST …/destroy`: a signed receipt in a `keys.destroy`
 *    event, committed with the erasure, then a WAL checkpoint.
 *
 * The actor of these events is the service itself: `principal` null, `auth`
 * `none`, `details.actor` `"system"` and `details.reason`
 * (`rotation_period` / `scheduled_deletion`).
 *
 * Safe to run twice at once (two ticks, or two nodes on one database): each
 * action re-checks, inside its store transaction and before the keyholder is
 * asked, that the key's latest version is still the one that was due (or the
 * version still scheduled, with the same blob and a date that has come);
 * otherwise it is skipped (KW_STORE_CONFLICT, nothing written). The store's
 * compare-and-set on the latest version backs this up across nodes. Within
 * one process a tick that finds another still running returns at once.
 *
 * Sealed, uninitialised or keyholder down: the tick does nothing (no store
 * write, no event). A failure of one action is audited once per key,
 * version and code (outcome `error`), so a persistent failure cannot flood
 * the log, and the tick goes on with the next action.
 *
 * The lifecycle clock (`ApiContext.clock`, server config `clock`: tests
 * inject one) decides what is due and stamps the versions it creates, as it
 * does for the routes; the destroy receipt carries the real time, which the
 * keyholder checks against its own clock.
 */
import type { AuditEventInput } from '../../audit/event.js';
import { isProtocolError } from '../../keyholder/protocol.js';
import type { KeyVersionRow } from '../../store/index.js';
import { lifecycleNow, type ApiContext } from '../app.js';
import { toHttpError } from '../errors.js';
import { keyOrigin } from '../routes/keys.js';
import { destroyVersionWithReceipt } from './destroy.js';
import { rotateKeyVersion } from './rotate.js';

/** Keyholder states in which a tick stops quietly. */
const QUIET = new Set(['KW_SEALED', 'KW_NOT_INITIALIZED', 'KW_KEYHOLDER_UNAVAILABLE', 'KW_AUDIT_NOT_RESTORED']);
/** Most remembered (key, version, code) failures; beyond, the oldest is forgotten and may be audited again. */
const MAX_REMEMBERED_FAILURES = 1024;

export interface SchedulerOptions {
  readonly ctx: ApiContext;
  /** Tick period, ms; 0 starts no timer (ticks only on demand, `tick()`). */
  readonly intervalMs: number;
  /** Log lines (never key material): what was rotated or destroyed, what failed. */
  readonly log?: (msg: string, fields?: Record<string, string | number>) => void;
}

/** One action of a tick. */
export interface ScheduledAction {
  readonly ns: string;
  readonly key: string;
  readonly version: number;
}

/** What one tick did. */
export interface TickReport {
  /** Why the tick did nothing at all, or null when it ran. */
  readonly skipped: 'sealed' | 'not_initialized' | 'keyholder_unavailable' | 'running' | null;
  /** New versions made. */
  readonly rotated: ScheduledAction[];
  /** Versions destroyed. */
  readonly destroyed: ScheduledAction[];
  /** Actions found due that another writer had already done or changed (nothing written). */
  readonly conflicts: number;
  /** Actions that failed, with their code. */
  readonly failed: (ScheduledAction & { readonly code: string })[];
}

export class LifecycleScheduler {
  readonly #ctx: ApiContext;
  readonly #intervalMs: number;
  readonly #clock: () => Date;
  readonly #log: (msg: string, fields?: Record<string, string | number>) => void;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<TickReport> | null = null;
  readonly #reported = new Set<string>();

  constructor(o: SchedulerOptions) {
    if (!Number.isSafeInteger(o.intervalMs) || o.intervalMs < 0) throw new RangeError('the scheduler interval must be an integer ≥ 0 ms');
    this.#ctx = o.ctx;
    this.#intervalMs = o.intervalMs;
    this.#clock = () => lifecycleNow(o.ctx);
    this.#log = o.log ?? (() => undefined);
  }

  /** Starts the timer (no-op when the interval is 0 or it runs already). */
  start(): void {
    if (this.#intervalMs === 0 || this.#timer) return;
    this.#timer = setInterval(() => void this.tick().catch((e: unknown) => this.#log('scheduler: tick failed', { code: toHttpError(e).code })), this.#intervalMs);
    this.#timer.unref();
  }

  /** Stops the timer and waits for a running tick to finish. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running?.catch(() => undefined);
  }

  /** Runs one tick now (or reports `running` if one is under way in this process). */
  tick(): Promise<TickReport> {
    if (this.#running) return Promise.resolve(empty('running'));
    const run = this.#tick().finally(() => { this.#running = null; });
    this.#running = run;
    return run;
  }

  async #tick(): Promise<TickReport> {
    const ctx = this.#ctx;
    try {
      const st = await ctx.keyholder.call('status', {});
      if (!st.initialized) return empty('not_initialized');
      if (st.sealed) return empty('sealed');
    } catch (e) {
      if (isProtocolError(e)) return empty('keyholder_unavailable');
      throw e;
    }
    const now = this.#clock();
    const report: { -readonly [K in keyof TickReport]: TickReport[K] } = { skipped: null, rotated: [], destroyed: [], conflicts: 0, failed: [] };

    for (const key of await ctx.store.listKeysDueForRotation(now)) {
      // Imported material (bring your own key) gets new versions only by import.
      if ((await keyOrigin(ctx.store, key.ns, key.name)) === 'external') continue;
      const action = { ns: key.ns, key: key.name, version: key.latestVersion + 1 };
      const event: AuditEventInput = {
        ns: key.ns, principal: null, auth: 'none', op: 'keys.rotate', target: { key: key.name, version: action.version }, outcome: 'allowed',
        details: { actor: 'system', reason: 'rotation_period', rotation_period_seconds: key.rotationPeriodSeconds },
      };
      const r = await this.#attempt(report, action, event, () => rotateKeyVersion(ctx, { key, event, created: now, ifDueAt: now }));
      if (r === 'stop') return { ...report, skipped: 'sealed' };
      if (r === 'done') {
        report.rotated.push(action);
        this.#log('scheduler: rotated', { ns: action.ns, key: action.key, version: action.version });
      }
    }

    for (const v of await ctx.store.listVersionsDueForDestruction(now)) {
      const action = { ns: v.ns, key: v.key, version: v.version };
      const key = await ctx.store.getKey(v.ns, v.key);
      if (!key || v.wrapped === null) continue;
      const event: AuditEventInput = {
        ns: v.ns, principal: null, auth: 'none', op: 'keys.destroy', target: { key: v.key, version: v.version }, outcome: 'allowed',
        details: { actor: 'system', reason: 'scheduled_deletion' },
      };
      const r = await this.#attempt(report, action, event, () => destroyVersionWithReceipt(ctx, {
        key, version: v as KeyVersionRow & { wrapped: Uint8Array }, time: new Date(), ifDueAt: now,
        actor: { principal: null, auth: 'none', details: { actor: 'system', reason: 'scheduled_deletion', deletion_at: v.deletionAt!.toISOString() } },
      }));
      if (r === 'stop') return { ...report, skipped: 'sealed' };
      if (r === 'done') {
        report.destroyed.push(action);
        this.#log('scheduler: destroyed', { ns: action.ns, key: action.key, version: action.version });
      }
    }
    return report;
  }

  /** Runs one action; classifies its failure (and audits a new one). */
  async #attempt(report: { conflicts: number; failed: TickReport['failed'] }, action: ScheduledAction, event: AuditEventInput, run: () => Promise<unknown>): Promise<'done' | 'skipped' | 'stop'> {
    try {
      await run();
      return 'done';
    } catch (e) {
      const code = toHttpError(e).code;
      if (QUIET.has(code)) return 'stop';
      if (code === 'KW_STORE_CONFLICT' || code === 'KW_STORE_INVALID_TRANSITION' || code === 'KW_NOT_FOUND') {
        report.conflicts += 1;
        return 'skipped';
      }
      report.failed.push({ ...action, code });
      this.#log('scheduler: action failed', { ns: action.ns, key: action.key, version: action.version, op: event.op, code });
      const id = `${action.ns}\n${action.key}\n${action.version}\n${event.op}\n${code}`;
      if (!this.#reported.has(id)) {
        this.#reported.add(id);
        if (this.#reported.size > MAX_REMEMBERED_FAILURES) this.#reported.delete(this.#reported.values().next().value!);
        await this.#ctx.audit.recordFailure({ ...event, outcome: 'error', code });
      }
      return 'skipped';
    }
  }
}

function empty(skipped: TickReport['skipped']): TickReport {
  return { skipped, rotated: [], destroyed: [], conflicts: 0, failed: [] };
}
