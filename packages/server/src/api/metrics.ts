/**
 * Prometheus metrics (prom-client), one registry per server instance:
 * request counts and latency by route and status, keyholder errors by code,
 * sealed gauge, HSM reachability and errors, audit log size; audit pipe failures, the latest signed
 * checkpoint (size, time) and keys past their rotation period, read from the
 * store at scrape time (`observeStore`); the directory's witness publisher
 * (outcomes per witness, shortfalls, the newest cosigned head). The catalog, and the alerts built on
 * it, are in docs/operations/metrics.md and deploy/monitoring/.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What `observeStore` reads: the store's latest checkpoint and keys due for rotation. */
export interface MetricsStoreView {
  latestAuditCheckpoint(): Promise<{ size: number; created: Date } | null>;
  listKeysDueForRotation(now: Date): Promise<readonly unknown[]>;
}

export class ApiMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'keyward_http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'], registers: [this.registry] });
  readonly latency = new Histogram({ name: 'keyward_http_request_duration_seconds', help: 'HTTP request latency by route', labelNames: ['route', 'method', 'status'], buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [this.registry] });
  readonly keyholderErrors = new Counter({ name: 'keyward_keyholder_errors_total', help: 'Keyholder call failures by code', labelNames: ['code'], registers: [this.registry] });
  readonly sealed = new Gauge({ name: 'keyward_sealed', help: '1 when the keyholder is sealed or down', registers: [this.registry] });
  readonly auditSize = new Gauge({ name: 'keyward_audit_events', help: 'Audit events stored and acknowledged', registers: [this.registry] });
  readonly auditErrors = new Counter({ name: 'keyward_audit_errors_total', help: 'Audit pipe failures by stage (checkpoint, sync, summary, …) and code; KW_AUDIT_CORRUPT means the stored log no longer verifies', labelNames: ['what', 'code'], registers: [this.registry] });
  readonly checkpointSize = new Gauge({ name: 'keyward_audit_checkpoint_size', help: 'Tree size of the latest signed audit checkpoint in the store', registers: [this.registry] });
  readonly checkpointTime = new Gauge({ name: 'keyward_audit_checkpoint_timestamp_seconds', help: 'When the latest signed audit checkpoint was stored (Unix seconds; 0 when none)', registers: [this.registry] });
  readonly sequencerHold = new Histogram({ name: 'keyward_audit_sequencer_hold_seconds', help: 'Several nodes: how long this node held the audit sequencer (audit_head row lock) per committed transaction, lock granted to commit', buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5], registers: [this.registry] });
  readonly sequencerEvents = new Counter({ name: 'keyward_audit_sequencer_events_total', help: 'Several nodes: audit events written while holding the sequencer', registers: [this.registry] });
  readonly sequencerKeyholder = new Counter({ name: 'keyward_audit_sequencer_keyholder_seconds_total', help: 'Several nodes: part of the sequencer hold time spent waiting on this node\'s keyholder (group commits)', registers: [this.registry] });
  readonly hsmConfigured = new Gauge({ name: 'keyward_hsm_configured', help: '1 when the keyholder is in HSM-wrapped mode (docs/hsm.md), else 0', registers: [this.registry] });
  readonly hsmUp = new Gauge({ name: 'keyward_hsm_up', help: 'HSM-wrapped mode: 1 while the keyholder reaches its HSM (auto-unseal state available), 0 while connecting, unavailable, failed or sealed, or the keyholder is down', registers: [this.registry] });
  readonly hsmErrors = new Counter({ name: 'keyward_hsm_errors_total', help: 'HSM failures by code (KW_HSM_*): keyholder calls that failed in the HSM, and changes of the auto-unseal state to a failure', labelNames: ['code'], registers: [this.registry] });
  #hsmCode: string | null = null;
  readonly rotationOverdue = new Gauge({ name: 'keyward_keys_rotation_overdue', help: 'Keys whose latest version is older than their rotation period', registers: [this.registry] });
  // The directory's witness publisher (docs/witness.md §The directory): outcomes counted by this node, heads read from the store.
  readonly directoryWitnessCosign = new Counter({ name: 'keyward_directory_witness_cosign_total', help: 'Directory head-log checkpoints sent to a witness, by witness name and outcome (cosigned, failed)', labelNames: ['witness', 'outcome'], registers: [this.registry] });
  readonly directoryWitnessShortfall = new Counter({ name: 'keyward_directory_witness_shortfall_total', help: 'Directory publishing rounds in which fewer than k witnesses cosigned the head', registers: [this.registry] });
  readonly directoryWitnessQuorum = new Gauge({ name: 'keyward_directory_witness_quorum', help: 'k: the cosignatures a directory head needs (0 when the directory or its witnesses are off)', registers: [this.registry] });
  readonly directoryHeadSize = new Gauge({ name: 'keyward_directory_head_size', help: 'Tree size of the directory (KEYTRANS) log in the store', registers: [this.registry] });
  readonly directoryCosignedSize = new Gauge({ name: 'keyward_directory_head_cosigned_size', help: 'Tree size of the newest directory head k witnesses cosigned (0 when none)', registers: [this.registry] });
  readonly directoryCosignedTime = new Gauge({ name: 'keyward_directory_head_cosigned_timestamp_seconds', help: 'When the newest directory head k witnesses cosigned was stored (Unix seconds; 0 when none)', registers: [this.registry] });

  constructor(defaults = false) {
    if (defaults) collectDefaultMetrics({ register: this.registry });
  }

  /**
   * The keyholder's HSM status (`status().hsm`; `null` = not HSM-wrapped;
   * `undefined` = the keyholder did not answer). A new failure code of the
   * auto-unseal state counts once in keyward_hsm_errors_total.
   */
  observeHsm(hsm: { readonly state: string; readonly code: string | null } | null | undefined): void {
    if (hsm === undefined) {
      this.hsmUp.set(0);
      return;
    }
    this.hsmConfigured.set(hsm === null ? 0 : 1);
    this.hsmUp.set(hsm?.state === 'available' ? 1 : 0);
    const code = hsm?.code ?? null;
    if (code !== null && code !== this.#hsmCode) this.hsmErrors.inc({ code });
    this.#hsmCode = code;
  }

  /** A keyholder call failed with `code`: counted in keyward_keyholder_errors_total, and in keyward_hsm_errors_total when it is an HSM code. */
  keyholderError(code: string): void {
    this.keyholderErrors.inc({ code });
    if (code.startsWith('KW_HSM_')) this.hsmErrors.inc({ code });
  }

  /** One directory publishing round: an outcome per witness, and a shortfall when fewer than k cosigned. */
  observeDirectoryRound(r: { readonly ok: boolean; readonly cosigned: readonly string[]; readonly failures: readonly { readonly name: string }[] }): void {
    for (const w of r.cosigned) this.directoryWitnessCosign.inc({ witness: w, outcome: 'cosigned' });
    for (const f of r.failures) this.directoryWitnessCosign.inc({ witness: f.name, outcome: 'failed' });
    if (!r.ok) this.directoryWitnessShortfall.inc();
  }

  /**
   * The directory gauges (scrape time): `null` without a directory. `cosigned` is the stored
   * `directory.witnessed` row (shared by every node), `k` 0 without witnesses.
   */
  observeDirectory(d: { readonly size: number; readonly k: number; readonly cosigned: { readonly size: number; readonly time: string } | null } | null): void {
    this.directoryWitnessQuorum.set(d?.k ?? 0);
    this.directoryHeadSize.set(d?.size ?? 0);
    this.directoryCosignedSize.set(d?.cosigned?.size ?? 0);
    const t = d?.cosigned ? Date.parse(d.cosigned.time) : NaN;
    this.directoryCosignedTime.set(Number.isNaN(t) ? 0 : t / 1000);
  }

  /** Reads the store-derived gauges (called at scrape time). */
  async observeStore(store: MetricsStoreView, now = new Date()): Promise<void> {
    const cp = await store.latestAuditCheckpoint();
    this.checkpointSize.set(cp?.size ?? 0);
    this.checkpointTime.set(cp ? cp.created.getTime() / 1000 : 0);
    this.rotationOverdue.set((await store.listKeysDueForRotation(now)).length);
  }
}
