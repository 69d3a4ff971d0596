/**
 * Server configuration: flags > environment > file (JSON) > defaults.
 *
 * | key (file / flag)   | environment                | default            |
 * |---------------------|----------------------------|--------------------|
 * | `listen`            | `KEYWARD_LISTEN`           | `127.0.0.1:8200`   |
 * | `data`              | `KEYWARD_DATA`             | (required unless dev) |
 * | `store`             | `KEYWARD_STORE`            | none: SQLite `keyward.db` in the data directory; `postgres://…` for PostgreSQL (several nodes on one database) |
 * | `tlsCert`/`tlsKey`  | `KEYWARD_TLS_CERT`/`_KEY`  | none               |
 * | `insecure`          | `KEYWARD_INSECURE=1`       | false (non-loopback needs TLS or this) |
 * | `dev`               | `KEYWARD_DEV=1`            | false              |
 * | `origin`            | `KEYWARD_AUDIT_ORIGIN`     | `keyward.local/audit/<init id>` (used at init only) |
 * | `logLevel`          | `KEYWARD_LOG_LEVEL`        | `info`             |
 * | `logFile`           | `KEYWARD_LOG_FILE`         | none: logs go to stderr |
 * | `logStream` (programmatic only) | —              | stderr             |
 * | `auditShip`         | `KEYWARD_AUDIT_SHIP`       | none: ship the audit log as verifiable segments to `file:PATH[?max_bytes=N&keep=K]`, `http(s)://URL` or `syslog://HOST:PORT` (audit/ship.ts) |
 * | `auditShipMs`       | `KEYWARD_AUDIT_SHIP_MS`    | `1000`: how often new events are shipped |
 * | `rateLimit.perToken` / `.perAddress` ({ ratePerSecond, burst }) | — | 50/100, 5/20 |
 * | `schedulerMs`       | `KEYWARD_SCHEDULER_MS`     | `60000`: the lifecycle scheduler's tick (automatic rotation, scheduled destruction); 0 = no timer |
 * | `clock` (programmatic only) | —                  | the system clock: what the scheduler takes as now (tests) |
 * | `mfa` ({ rpId, rpName, origins, issuer, stepUpTtlSeconds, approvalTtlSeconds, approvalSweepMs, maxFailures, lockoutSeconds, requireStepUp, clock }) | — | docs/mfa.md |
 * | `attest` ({ nitroRoots, tpmRoots, amdRoots, intelRoots, nonceTtlSeconds, clock }) | — | attested key release (api/attest-settings.ts; docs/tee.md §Release flow) |
 * | `keyholderConnect`  | `KEYWARD_KEYHOLDER`        | none: spawn the keyholder here on a Unix socket; `tcp:HOST:PORT` = connect to a remote (TEE) keyholder over the attested channel (docs/tee.md §Enclave-ready keyholder) |
 * | `keyholderClientKey` | `KEYWARD_KEYHOLDER_CLIENT_KEY` | with keyholderConnect: PEM Ed25519 private key file authenticating this API to the keyholder |
 * | `keyholderPolicy`   | — (CLI: `--keyholder-policy FILE`) | with keyholderConnect: the release-policy document the keyholder's evidence must satisfy (platforms, pinned measurements) |
 * | `hsmPinFile`        | `KEYWARD_HSM_PIN_FILE`     | none: HSM-wrapped mode reads the token PIN from this file (docs/hsm.md) |
 * | `hsmPin` (programmatic only) | `KEYWARD_HSM_PIN` | none: the PIN itself (never a flag) |
 * | `hsmRetryMs`        | `KEYWARD_HSM_RETRY_MS`     | `5000`: auto-unseal retry period while the HSM is unavailable |
 * | `witnesses` ([{ name, url, key }]) / `witnessesK` | — | none: the audit checkpoints' witnesses and how many must cosign (default all; docs/witness.md) |
 * | `witnessMs`         | —                          | `1000`: how often a new checkpoint is sent to the witnesses |
 * | `directory` ({ enabled, requireDevices, keyFile, maxBehindMs, heartbeatMs, witnessRefreshMs }) | `KEYWARD_DIRECTORY=1`, `KEYWARD_DIRECTORY_REQUIRE_DEVICES=1` | off: the public-key directory under /v1/directory (docs/directory.md §Key service) |
 *
 * In dev mode the root token is `KEYWARD_DEV_ROOT_TOKEN` when set.
 *
 * Logs (fastify's JSON request log, the service's own JSON lines, and the
 * dev / insecure warnings) go to `logStream`, else to `logFile` (appended),
 * else to **stderr** — never stdout, which belongs to the caller (the CLI's
 * `--json` output). Request logs never carry the Authorization or signature
 * headers, nor request or response bodies.
 *
 * Startup refusals are {@link ServerStartError}s (a KeywardError with a
 * `reason`).
 */
import { readFileSync } from 'node:fs';
import { KeywardError, type KeywardErrorCode } from '@keyward/core';
import { z } from 'zod';
import { MfaSettingsSchema } from './api/mfa-settings.js';
import { AttestSettingsSchema } from './api/attest-settings.js';

/** Why `startServer` or `loadConfig` refused. */
export type ServerStartReason =
  | 'CONFIG_INVALID'
  | 'DATA_REQUIRED'
  | 'DEV_LOOPBACK_ONLY'
  | 'TLS_REQUIRED'
  | 'TLS_INCOMPLETE'
  | 'TLS_UNREADABLE'
  | 'TLS_INVALID'
  | 'TLS_KEY_MISMATCH';

/** A typed startup refusal: `code` is KW_INVALID_ARGUMENT (or KW_IO for unreadable files), `reason` says which rule. */
export class ServerStartError extends KeywardError {
  readonly reason: ServerStartReason;
  constructor(code: KeywardErrorCode, reason: ServerStartReason, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ServerStartError';
    this.reason = reason;
  }
}

const Writable = z.custom<NodeJS.WritableStream>(
  (v) => typeof v === 'object' && v !== null && typeof (v as { write?: unknown }).write === 'function',
  'logStream must be a writable stream',
);

const Bucket = z.strictObject({ ratePerSecond: z.number().positive(), burst: z.int().min(1) });

export const ServerConfigSchema = z.strictObject({
  listen: z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/, 'listen is host:port').default('127.0.0.1:8200'),
  data: z.string().min(1).optional(),
  /**
   * The store: absent = SQLite in the data directory; a `postgres://` or
   * `postgresql://` URL = that PostgreSQL database (store/open.ts). The data
   * directory still holds the keyholder socket, its state and the shares.
   */
  store: z.string().regex(/^postgres(?:ql)?:\/\/\S+$/, 'store is a postgres:// or postgresql:// URL').optional(),
  tlsCert: z.string().optional(),
  tlsKey: z.string().optional(),
  insecure: z.boolean().default(false),
  dev: z.boolean().default(false),
  devRootToken: z.string().regex(/^kw_[A-Za-z0-9_-]{43}$/).optional(),
  /** The audit log origin given at init (initialize / dev); default `keyward.local/audit/<init id>`. */
  origin: z.string().min(1).max(256).optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Append logs to this file instead of stderr. */
  logFile: z.string().min(1).optional(),
  /** Ship the audit log to this sink (audit/ship.ts `sinkFromUrl`). */
  auditShip: z.string().min(1).max(2048).optional(),
  /** How often the shipper runs, ms. */
  auditShipMs: z.int().min(100).max(3_600_000).default(1000),
  /** Write logs to this stream (tests, embedding); wins over logFile. */
  logStream: Writable.optional(),
  rateLimit: z.strictObject({ perToken: Bucket.optional(), perAddress: Bucket.optional() }).default({}),
  /** How the keyholder is spawned: `source` runs the TypeScript entry under tsx (tests, development). */
  keyholderMode: z.enum(['dist', 'source']).optional(),
  /** Checkpoint period in ms (default 1000). */
  checkpointMs: z.int().min(0).default(1000),
  /** How often unauthenticated failures are summarised into one audit event, in ms (default 60000, at least 1000). */
  auditSummaryMs: z.int().min(1000).default(60_000),
  /**
   * The lifecycle scheduler's tick, ms (default 60000): rotates keys whose
   * period has passed and destroys versions whose deletion date has come,
   * while unsealed (api/lifecycle/scheduler.ts). 0 = no timer.
   */
  schedulerMs: z.int().min(0).max(24 * 3600 * 1000).default(60_000),
  /** What the scheduler takes as now (tests inject one); default the system clock. */
  clock: z.custom<() => Date>((v) => typeof v === 'function', 'clock must be a function returning a Date').optional(),
  /** Second factors and step-up (api/mfa-settings.ts; docs/mfa.md): WebAuthn relying party, step-up lifetime, lockout, MFA clock. */
  mfa: MfaSettingsSchema.optional(),
  /** Attested key release (api/attest-settings.ts; docs/tee.md §Release flow): trust roots, nonce lifetime, verification clock. */
  attest: AttestSettingsSchema.optional(),
  /** A remote keyholder (tcp:HOST:PORT) behind the attested channel, instead of spawning one (keyholder/attested-channel.ts). */
  keyholderConnect: z.string().regex(/^tcp:(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/, 'keyholderConnect is tcp:HOST:PORT').optional(),
  /** The API's Ed25519 private key file (PEM) for the attested channel. */
  keyholderClientKey: z.string().min(1).optional(),
  /** What the remote keyholder's verified evidence must satisfy (a release policy document: platforms, pinned measurements, …). */
  keyholderPolicy: z.record(z.string(), z.unknown()).optional(),
  /** HSM-wrapped mode (docs/hsm.md): the file holding the token PIN. */
  hsmPinFile: z.string().min(1).optional(),
  /** The token PIN itself (programmatic, or KEYWARD_HSM_PIN); passed to the keyholder on a pipe, never in argv. */
  hsmPin: z.string().min(1).max(1024).optional(),
  /** Auto-unseal retry period while the HSM is unavailable, ms (default 5000; 0 = no retry). */
  hsmRetryMs: z.int().min(0).max(3_600_000).optional(),
  /**
   * Witnesses of the audit log (docs/witness.md): each `{ name, url, key }`
   * (`key` the witness's cosignature/v1 verifier key, named `name`; `url` its
   * tlog-witness submission prefix). Every new checkpoint is sent to them and
   * the cosignatures kept; `GET /v1/audit/checkpoint` serves the newest
   * checkpoint that `witnessesK` of them cosigned.
   */
  witnesses: z.array(z.strictObject({ name: z.string().min(1).max(256), url: z.string().regex(/^https?:\/\/\S+$/, 'url is http(s)://…'), key: z.string().min(1).max(1024) })).max(32).optional(),
  /** How many witnesses must cosign (default: all of them). */
  witnessesK: z.int().min(1).max(32).optional(),
  /** How often the publisher looks for a new checkpoint to witness, ms (default 1000). */
  witnessMs: z.int().min(100).max(3_600_000).default(1000),
  /**
   * The public-key directory (docs/directory.md §Key service): `enabled` serves /v1/directory;
   * `requireDevices` makes the key service accept request-signing keys and unwrap recipients only
   * as directory devices for every principal (bound principals always are); the log's keys
   * are the keyholder's; `keyFile` names a pre-keyholder key file to import into it once, after
   * which the file is zeroed and deleted (default `directory.key` in the data directory; never
   * created: docs/directory.md §Key custody).
   */
  directory: z.strictObject({
    enabled: z.boolean().default(true),
    requireDevices: z.boolean().default(false),
    keyFile: z.string().min(1).optional(),
    /** How old the newest log entry may be when a client accepts it, ms (default one day; part of the pinned Configuration). */
    maxBehindMs: z.int().min(1000).max(30 * 24 * 3600 * 1000).default(24 * 3600 * 1000),
    /** Heartbeat: an entry that changes nothing is appended when the newest is this old, ms (default maxBehindMs / 4; docs/directory.md §Freshness). */
    heartbeatMs: z.int().min(500).max(30 * 24 * 3600 * 1000).optional(),
    /** With witnesses: the current head is re-submitted for fresh cosignatures when they are this old, ms (default one hour). */
    witnessRefreshMs: z.int().min(500).max(24 * 3600 * 1000).optional(),
  }).optional(),
});
export type ServerConfigInput = z.input<typeof ServerConfigSchema>;
export type ServerConfig = z.output<typeof ServerConfigSchema>;

/** The environment's part of the config. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): ServerConfigInput {
  const out: Record<string, unknown> = {};
  if (env.KEYWARD_LISTEN) out.listen = env.KEYWARD_LISTEN;
  if (env.KEYWARD_DATA) out.data = env.KEYWARD_DATA;
  if (env.KEYWARD_STORE) out.store = env.KEYWARD_STORE;
  if (env.KEYWARD_TLS_CERT) out.tlsCert = env.KEYWARD_TLS_CERT;
  if (env.KEYWARD_TLS_KEY) out.tlsKey = env.KEYWARD_TLS_KEY;
  if (env.KEYWARD_INSECURE) out.insecure = env.KEYWARD_INSECURE === '1' || env.KEYWARD_INSECURE === 'true';
  if (env.KEYWARD_DEV) out.dev = env.KEYWARD_DEV === '1' || env.KEYWARD_DEV === 'true';
  if (env.KEYWARD_DEV_ROOT_TOKEN) out.devRootToken = env.KEYWARD_DEV_ROOT_TOKEN;
  if (env.KEYWARD_AUDIT_ORIGIN) out.origin = env.KEYWARD_AUDIT_ORIGIN;
  if (env.KEYWARD_LOG_LEVEL) out.logLevel = env.KEYWARD_LOG_LEVEL;
  if (env.KEYWARD_AUDIT_SUMMARY_MS && /^[0-9]{1,12}$/.test(env.KEYWARD_AUDIT_SUMMARY_MS)) out.auditSummaryMs = Number(env.KEYWARD_AUDIT_SUMMARY_MS);
  if (env.KEYWARD_LOG_FILE) out.logFile = env.KEYWARD_LOG_FILE;
  if (env.KEYWARD_AUDIT_SHIP) out.auditShip = env.KEYWARD_AUDIT_SHIP;
  if (env.KEYWARD_AUDIT_SHIP_MS && /^[0-9]{1,9}$/.test(env.KEYWARD_AUDIT_SHIP_MS)) out.auditShipMs = Number(env.KEYWARD_AUDIT_SHIP_MS);
  if (env.KEYWARD_SCHEDULER_MS && /^[0-9]{1,12}$/.test(env.KEYWARD_SCHEDULER_MS)) out.schedulerMs = Number(env.KEYWARD_SCHEDULER_MS);
  if (env.KEYWARD_HSM_PIN_FILE) out.hsmPinFile = env.KEYWARD_HSM_PIN_FILE;
  if (env.KEYWARD_KEYHOLDER) out.keyholderConnect = env.KEYWARD_KEYHOLDER;
  if (env.KEYWARD_KEYHOLDER_CLIENT_KEY) out.keyholderClientKey = env.KEYWARD_KEYHOLDER_CLIENT_KEY;
  if (env.KEYWARD_HSM_PIN) out.hsmPin = env.KEYWARD_HSM_PIN;
  if (env.KEYWARD_HSM_RETRY_MS && /^[0-9]{1,9}$/.test(env.KEYWARD_HSM_RETRY_MS)) out.hsmRetryMs = Number(env.KEYWARD_HSM_RETRY_MS);
  if (env.KEYWARD_DIRECTORY || env.KEYWARD_DIRECTORY_REQUIRE_DEVICES) {
    const on = (v: string | undefined) => v === '1' || v === 'true';
    out.directory = { enabled: on(env.KEYWARD_DIRECTORY) || on(env.KEYWARD_DIRECTORY_REQUIRE_DEVICES), requireDevices: on(env.KEYWARD_DIRECTORY_REQUIRE_DEVICES) };
  }
  return out;
}

/**
 * Merges file < env < flags (a key given at a higher level replaces it
 * whole) and validates. Refusals are ServerStartError: KW_IO (file
 * unreadable), KW_INVALID_ARGUMENT (not JSON, or invalid).
 */
export function loadConfig(opts: { flags?: ServerConfigInput; env?: NodeJS.ProcessEnv; file?: string } = {}): ServerConfig {
  let fromFile: ServerConfigInput = {};
  if (opts.file) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (e) {
      throw new ServerStartError('KW_IO', 'CONFIG_INVALID', `cannot read the config file '${opts.file}'`, { cause: e });
    }
    try {
      fromFile = JSON.parse(text) as ServerConfigInput;
    } catch (e) {
      throw new ServerStartError('KW_INVALID_ARGUMENT', 'CONFIG_INVALID', `the config file '${opts.file}' is not JSON`, { cause: e });
    }
    if (typeof fromFile !== 'object' || fromFile === null || Array.isArray(fromFile)) {
      throw new ServerStartError('KW_INVALID_ARGUMENT', 'CONFIG_INVALID', `the config file '${opts.file}' must hold a JSON object`);
    }
  }
  const defined = (o: object) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  const merged = { ...defined(fromFile), ...defined(configFromEnv(opts.env)), ...defined(opts.flags ?? {}) };
  const r = ServerConfigSchema.safeParse(merged);
  if (!r.success) throw new ServerStartError('KW_INVALID_ARGUMENT', 'CONFIG_INVALID', `invalid configuration: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}
