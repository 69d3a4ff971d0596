/**
 * The key service's side of witnessing: every new signed audit checkpoint is
 * sent to the configured witnesses (C2SP tlog-witness `add-checkpoint`, with
 * a consistency proof from the size each witness last cosigned), their
 * cosignatures are checked and kept in the store's meta table:
 *
 * - `audit.witnessed`: `{ size, note, cosigned, time }` — the newest checkpoint
 *   with at least k cosignatures (the note carries them); served by
 *   `GET /v1/audit/checkpoint` and put in exports;
 * - `audit.witness.latest`: the same for the newest attempt, whatever its count;
 * - `audit.witness.status`: per witness, the size it holds, the last success and the last error.
 *
 * Meta rows are shared by every node of a PostgreSQL deployment, so any node
 * serves the witnessed checkpoint; each node publishes (witnesses accept the
 * same checkpoint twice and answer 409 with their size to a node that is
 * behind, which then retries with the right proof).
 */
import { collectCosignatures, parseCheckpoint, parseNote, type CollectedCosignatures, type WitnessFailure, type WitnessPolicy } from '@keyward/tlog';
import { MerkleCache } from '../audit/tree.js';
import type { Store } from '../store/index.js';

export const META_WITNESSED = 'audit.witnessed';
export const META_WITNESS_LATEST = 'audit.witness.latest';
export const META_WITNESS_STATUS = 'audit.witness.status';

/** A checkpoint and the cosignatures collected for it. */
export interface WitnessedCheckpoint {
  readonly size: number;
  /** The log-signed note with the witnesses' cosignature lines. */
  readonly note: string;
  readonly cosigned: readonly string[];
  /** When the cosignatures were collected (RFC 3339). */
  readonly time: string;
}

export interface WitnessStatusEntry {
  readonly name: string;
  readonly url: string;
  /** The tree size this witness holds for the audit log, as last learned. */
  readonly size: number;
  readonly lastOk: string | null;
  readonly lastError: { readonly time: string; readonly code: string; readonly message: string } | null;
}

export interface WitnessStatus {
  readonly k: number;
  readonly n: number;
  readonly witnessed: WitnessedCheckpoint | null;
  readonly latest: WitnessedCheckpoint | null;
  readonly witnesses: readonly WitnessStatusEntry[];
}

type MetaStore = Pick<Store, 'getMeta' | 'setMeta' | 'latestAuditCheckpoint' | 'readAuditEvents'>;

export function parseJson<T>(v: string | null): T | null {
  if (v === null) return null;
  try {
    return JSON.parse(v) as T;
  } catch {
    return null;
  }
}

/** Reads what the publisher stored (any node, or doctor offline). */
export async function readWitnessStatus(store: Pick<Store, 'getMeta'>, policy: WitnessPolicy | null): Promise<WitnessStatus> {
  const witnessed = parseJson<WitnessedCheckpoint>(await store.getMeta(META_WITNESSED));
  const latest = parseJson<WitnessedCheckpoint>(await store.getMeta(META_WITNESS_LATEST));
  const stored = parseJson<WitnessStatusEntry[]>(await store.getMeta(META_WITNESS_STATUS)) ?? [];
  const witnesses = policy === null ? stored : policy.witnesses.map((w) => stored.find((s) => s.name === w.name) ?? { name: w.name, url: w.url, size: 0, lastOk: null, lastError: null });
  return { k: policy?.k ?? 0, n: policy?.witnesses.length ?? 0, witnessed, latest, witnesses };
}

/** Options every cosigning publisher takes. */
export interface CosigningOptions {
  readonly policy: WitnessPolicy;
  /** How often to look for something new to publish, ms (default 1000). */
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
  readonly log?: (msg: string, fields?: object) => void;
  /** Called when fewer than k witnesses cosigned. */
  readonly onShortfall?: (failures: readonly WitnessFailure[]) => void;
  /** Called after every collection round, whatever its outcome (metrics: one outcome per witness). */
  readonly onResult?: (r: CollectedCosignatures) => void;
}

/** Where a publisher keeps its per-witness status, and how its log lines start. */
interface StatusRow {
  readonly store: Pick<Store, 'getMeta' | 'setMeta'>;
  readonly key: string;
  /** Prefix of the log lines, e.g. `witness` or `directory witness`. */
  readonly label: string;
}

/**
 * What the audit and directory publishers share: one run at a time on a
 * timer, the per-witness status kept in one meta row (shared by every node),
 * and one collection round for a signed checkpoint of the tree in `cache`.
 */
export abstract class CosigningPublisher {
  /** Leaf hashes of the witnessed tree (the subclass appends to it). */
  protected readonly cache = new MerkleCache();
  readonly #c: CosigningOptions;
  readonly #row: StatusRow;
  #sizes = new Map<string, number>();
  readonly #status = new Map<string, WitnessStatusEntry>();
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;

  protected constructor(c: CosigningOptions, row: StatusRow) {
    this.#c = c;
    this.#row = row;
  }

  get policy(): WitnessPolicy {
    return this.#c.policy;
  }

  /** One publishing run; {@link tick} makes sure only one runs at a time. */
  protected abstract run(): Promise<void>;

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.tick().catch((e: unknown) => this.logFailure(e)), this.#c.intervalMs ?? 1000);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running?.catch(() => undefined);
  }

  /** Publishes what is new; one run at a time. */
  tick(): Promise<void> {
    if (this.#running) return this.#running;
    this.#running = this.run().finally(() => { this.#running = null; });
    return this.#running;
  }

  /** Whether a run is under way. */
  protected get running(): boolean {
    return this.#running !== null;
  }

  protected logFailure(e: unknown): void {
    this.#c.log?.(`${this.#row.label}: publishing failed`, { code: (e as { code?: string }).code ?? 'unknown' });
  }

  /**
   * Sends `note` (a checkpoint of the first `size` leaves of `cache`) to every
   * witness with a consistency proof from the size it holds, and records each
   * witness's status. Storing the result is the caller's.
   */
  protected async cosign(note: string, size: number): Promise<CollectedCosignatures> {
    const { policy, log } = this.#c;
    if (this.#status.size === 0) {
      for (const s of parseJson<WitnessStatusEntry[]>(await this.#row.store.getMeta(this.#row.key)) ?? []) {
        this.#status.set(s.name, s);
        if (!this.#sizes.has(s.name) && Number.isSafeInteger(s.size)) this.#sizes.set(s.name, s.size);
      }
    }
    const r = await collectCosignatures(note, policy, {
      sizes: this.#sizes,
      proof: (m) => this.cache.consistencyProof(m, size),
      ...(this.#c.timeoutMs !== undefined ? { timeoutMs: this.#c.timeoutMs } : {}),
      ...(this.#c.fetch ? { fetch: this.#c.fetch } : {}),
    });
    this.#sizes = new Map(r.sizes);
    const now = new Date().toISOString();
    for (const w of policy.witnesses) {
      const prev = this.#status.get(w.name);
      const fail = r.failures.find((f) => f.name === w.name);
      this.#status.set(w.name, {
        name: w.name, url: w.url, size: r.sizes.get(w.name) ?? prev?.size ?? 0,
        lastOk: fail ? prev?.lastOk ?? null : now,
        lastError: fail ? { time: now, code: fail.code, message: fail.message.slice(0, 500) } : prev?.lastError ?? null,
      });
    }
    await this.#row.store.setMeta(this.#row.key, JSON.stringify([...this.#status.values()]));
    if (r.ok) {
      log?.(`${this.#row.label}: cosigned`, { size, cosigned: r.cosigned.length, k: policy.k });
    } else {
      for (const f of r.failures) log?.(`${this.#row.label}: no cosignature`, { witness: f.name, code: f.code, size });
      this.#c.onShortfall?.(r.failures);
    }
    this.#c.onResult?.(r);
    return r;
  }
}

export interface PublisherOptions extends CosigningOptions {
  readonly store: MetaStore;
}

/** Publishes audit checkpoints to the witnesses on a timer (see the module comment). */
export class AuditWitnessPublisher extends CosigningPublisher {
  readonly #store: MetaStore;
  #done = -1;

  constructor(o: PublisherOptions) {
    super(o, { store: o.store, key: META_WITNESS_STATUS, label: 'witness' });
    this.#store = o.store;
  }

  protected async run(): Promise<void> {
    const store = this.#store;
    const cp = await store.latestAuditCheckpoint();
    if (cp === null || cp.size <= this.#done) return;
    const size = parseCheckpoint(parseNote(cp.note).text).size;
    while (this.cache.size < size) {
      const rows = await store.readAuditEvents({ start: this.cache.size, end: Math.min(size, this.cache.size + 10_000) });
      if (rows.length === 0) break;
      for (const r of rows) this.cache.append(r.leafHash);
    }
    const r = await this.cosign(cp.note, size);
    const entry: WitnessedCheckpoint = { size, note: r.note, cosigned: r.cosigned, time: new Date().toISOString() };
    await store.setMeta(META_WITNESS_LATEST, JSON.stringify(entry));
    if (r.ok) {
      await store.setMeta(META_WITNESSED, JSON.stringify(entry));
      this.#done = size;
    }
  }
}
