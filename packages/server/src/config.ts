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
 * | `origin`            | `KEYWARD_AUDIT_ORIGIN`     | `keyward.local/audit` |
 * | `logLevel`          | `KEYWARD_LOG_LEVEL`        | `info`             |
 * | `rateLimit.perToken` / `.perAddress` ({ ratePerSecond, burst }) | — | 50/100, 5/20 |
 *
 * In dev mode the root token is `KEYWARD_DEV_ROOT_TOKEN` when set.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

const Bucket = z.strictObject({ ratePerSecond: z.number().positive(), burst: z.int().min(1) });

export const ServerConfigSchema = z.strictObject({
  listen: z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/, 'listen is host:port').default('127.0.0.1:8200'),
  data: z.string().min(1).optional(),
  tlsCert: z.string().optional(),
  tlsKey: z.string().optional(),
  insecure: z.boolean().default(false),
  dev: z.boolean().default(false),
  devRootToken: z.string().regex(/^kw_[A-Za-z0-9_-]{43}$/).optional(),
  origin: z.string().min(1).max(256).default('keyward.local/audit'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  rateLimit: z.strictObject({ perToken: Bucket.optional(), perAddress: Bucket.optional() }).default({}),
  /** How the keyholder is spawned: `source` runs the TypeScript entry under tsx (tests, development). */
  keyholderMode: z.enum(['dist', 'source']).optional(),
  /** Checkpoint period in ms (default 1000). */
  checkpointMs: z.int().min(0).default(1000),
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
  return out;
}

/** Merges file < env < flags and validates (KW_INVALID_ARGUMENT-style message on failure). */
export function loadConfig(opts: { flags?: ServerConfigInput; env?: NodeJS.ProcessEnv; file?: string } = {}): ServerConfig {
  let fromFile: ServerConfigInput = {};
  if (opts.file) fromFile = JSON.parse(readFileSync(opts.file, 'utf8')) as ServerConfigInput;
  const merged = { ...fromFile, ...configFromEnv(opts.env), ...(opts.flags ?? {}) };
  const r = ServerConfigSchema.safeParse(merged);
  if (!r.success) throw new Error(`invalid configuration: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}
