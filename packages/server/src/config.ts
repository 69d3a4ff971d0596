/**
 * Server configuration: flags > environment > file (JSON) > defaults.
 *
 * | key (file / flag)   | environment                | default            |
 * |---------------------|----------------------------|--------------------|
 * | `listen`            | `KEYWARD_LISTEN`           | `127.0.0.1:8200`   |
 * | `data`              | `KEYWARD_DATA`             | (required unless dev) |
 * | `tlsCert`/`tlsKey`  | `KEYWARD_TLS_CERT`/`_KEY`  | none               |
 * | `insecure`          | `KEYWARD_INSECURE=1`       | false (non-loopback needs TLS or this) |
 * | `dev`               | `KEYWARD_DEV=1`            | false              |
 * | `origin`            | `KEYWARD_AUDIT_ORIGIN`     | `keyward.local/audit/<init id>` (used at init only) |
 * | `logLevel`          | `KEYWARD_LOG_LEVEL`        | `info`             |
 * | `logFile`           | `KEYWARD_LOG_FILE`         | none: logs go to stderr |
 * | `logStream` (programmatic only) | —              | stderr             |
 * | `rateLimit.perToken` / `.perAddress` ({ ratePerSecond, burst }) | — | 50/100, 5/20 |
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
  /** Write logs to this stream (tests, embedding); wins over logFile. */
  logStream: Writable.optional(),
  rateLimit: z.strictObject({ perToken: Bucket.optional(), perAddress: Bucket.optional() }).default({}),
  /** How the keyholder is spawned: `source` runs the TypeScript entry under tsx (tests, development). */
  keyholderMode: z.enum(['dist', 'source']).optional(),
  /** Checkpoint period in ms (default 1000). */
  checkpointMs: z.int().min(0).default(1000),
  /** How often unauthenticated failures are summarised into one audit event, in ms (default 60000, at least 1000). */
  auditSummaryMs: z.int().min(1000).default(60_000),
});
export type ServerConfigInput = z.input<typeof ServerConfigSchema>;
export type ServerConfig = z.output<typeof ServerConfigSchema>;

/** The environment's part of the config. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): ServerConfigInput {
  const out: Record<string, unknown> = {};
  if (env.KEYWARD_LISTEN) out.listen = env.KEYWARD_LISTEN;
  if (env.KEYWARD_DATA) out.data = env.KEYWARD_DATA;
  if (env.KEYWARD_TLS_CERT) out.tlsCert = env.KEYWARD_TLS_CERT;
  if (env.KEYWARD_TLS_KEY) out.tlsKey = env.KEYWARD_TLS_KEY;
  if (env.KEYWARD_INSECURE) out.insecure = env.KEYWARD_INSECURE === '1' || env.KEYWARD_INSECURE === 'true';
  if (env.KEYWARD_DEV) out.dev = env.KEYWARD_DEV === '1' || env.KEYWARD_DEV === 'true';
  if (env.KEYWARD_DEV_ROOT_TOKEN) out.devRootToken = env.KEYWARD_DEV_ROOT_TOKEN;
  if (env.KEYWARD_AUDIT_ORIGIN) out.origin = env.KEYWARD_AUDIT_ORIGIN;
  if (env.KEYWARD_LOG_LEVEL) out.logLevel = env.KEYWARD_LOG_LEVEL;
  if (env.KEYWARD_AUDIT_SUMMARY_MS && /^[0-9]{1,12}$/.test(env.KEYWARD_AUDIT_SUMMARY_MS)) out.auditSummaryMs = Number(env.KEYWARD_AUDIT_SUMMARY_MS);
  if (env.KEYWARD_LOG_FILE) out.logFile = env.KEYWARD_LOG_FILE;
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
