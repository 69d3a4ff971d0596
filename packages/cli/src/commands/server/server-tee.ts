/**
 * `keyward server` settings for trusted execution (docs/tee.md): the
 * attestation trust roots and the remote (TEE) keyholder. Flags > environment
 * > config file, as every server setting.
 *
 * Config file:
 *
 *   "attest": { "nitro_roots": [PEM files], "tpm_roots": [...], "amd_roots": [...], "intel_roots": [...], "nonce_ttl_seconds": 60 }
 *   "keyholder": "tcp:HOST:PORT", "keyholder_client_key": FILE, "keyholder_policy": FILE | { policy }
 *
 * Root files may hold several PEM certificates; relative paths are relative
 * to the config file. A missing root list keeps the default (docs/tee.md).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fail, usageError } from '../../lib/errors.js';

export const KEYHOLDER_ENV = { connect: 'KEYWARD_KEYHOLDER', clientKey: 'KEYWARD_KEYHOLDER_CLIENT_KEY', policy: 'KEYWARD_KEYHOLDER_POLICY' } as const;

export const TEE_FLAGS = {
  keyholder: { type: 'string', value: 'tcp:HOST:PORT', help: `connect to a keyholder running apart (in a TEE) over the attested channel instead of starting one (or $${KEYHOLDER_ENV.connect}, or "keyholder" in --config); docs/tee.md` },
  'keyholder-client-key': { type: 'string', value: 'FILE', help: `with --keyholder: this API's Ed25519 private key, PEM (or $${KEYHOLDER_ENV.clientKey}, or "keyholder_client_key")` },
  'keyholder-policy': { type: 'string', value: 'FILE', help: `with --keyholder: JSON release policy the keyholder's evidence must satisfy, e.g. pinned PCRs (or $${KEYHOLDER_ENV.policy}, or "keyholder_policy")` },
} as const;

const ROOT_KEYS = { nitro_roots: 'nitroRoots', tpm_roots: 'tpmRoots', amd_roots: 'amdRoots', intel_roots: 'intelRoots' } as const;

/** What `keyward server` passes to startServer for attestation and a remote keyholder. */
export interface TeeSettings {
  attest?: { nitroRoots?: string[]; tpmRoots?: string[]; amdRoots?: string[]; intelRoots?: string[]; nonceTtlSeconds?: number };
  keyholderConnect?: string;
  keyholderClientKey?: string;
  keyholderPolicy?: Record<string, unknown>;
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    return fail('KW_IO', `cannot read ${what} '${file}'`, e);
  }
}

/** Every PEM certificate in `file`. */
function certificates(file: string, what: string): string[] {
  const pems = readText(file, what).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length === 0) usageError(`${what} '${file}' holds no PEM certificate`);
  return pems.map((p) => `${p}\n`);
}

/**
 * Reads the TEE settings from flags, environment and the config file
 * (`configFile` is its path, for relative paths). Bad values are usage
 * errors (KW_INVALID_ARGUMENT); unreadable files KW_IO.
 */
export function teeSettings(
  flags: { keyholder?: string | undefined; 'keyholder-client-key'?: string | undefined; 'keyholder-policy'?: string | undefined },
  env: Readonly<Record<string, string | undefined>>,
  file: Record<string, unknown>,
  configFile: string | undefined,
): TeeSettings {
  const base = configFile === undefined ? process.cwd() : path.dirname(path.resolve(configFile));
  const fromFile = (p: string) => path.resolve(base, p);
  const out: TeeSettings = {};

  const a = file.attest;
  if (a !== undefined) {
    if (typeof a !== 'object' || a === null || Array.isArray(a)) usageError('"attest" in the config file must be an object');
    const attest: NonNullable<TeeSettings['attest']> = {};
    for (const [k, v] of Object.entries(a as Record<string, unknown>)) {
      if (k === 'nonce_ttl_seconds') {
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 600) usageError('"attest.nonce_ttl_seconds" must be a whole number of seconds from 1 to 600');
        attest.nonceTtlSeconds = v;
        continue;
      }
      if (!Object.hasOwn(ROOT_KEYS, k)) usageError(`unknown key "attest.${k}" in the config file (nitro_roots, tpm_roots, amd_roots, intel_roots, nonce_ttl_seconds)`);
      if (!Array.isArray(v) || v.some((f) => typeof f !== 'string' || f === '')) usageError(`"attest.${k}" must be a list of PEM certificate files`);
      attest[ROOT_KEYS[k as keyof typeof ROOT_KEYS]] = (v as string[]).flatMap((f) => certificates(fromFile(f), `the attest.${k} file`));
    }
    out.attest = attest;
  }

  const pick = (flag: string | undefined, envName: string, key: string): { value: string; fromFile: boolean } | undefined => {
    if (flag !== undefined) return { value: flag, fromFile: false };
    const e = env[envName];
    if (e !== undefined && e !== '') return { value: e, fromFile: false };
    const f = file[key];
    if (f === undefined) return undefined;
    if (typeof f !== 'string') usageError(`"${key}" in the config file must be a string`);
    return { value: f, fromFile: true };
  };
  const connect = pick(flags.keyholder, KEYHOLDER_ENV.connect, 'keyholder');
  const clientKey = pick(flags['keyholder-client-key'], KEYHOLDER_ENV.clientKey, 'keyholder_client_key');
  const inlinePolicy = flags['keyholder-policy'] === undefined && !env[KEYHOLDER_ENV.policy] && typeof file.keyholder_policy === 'object' && file.keyholder_policy !== null ? file.keyholder_policy : undefined;
  const policyFile = inlinePolicy === undefined ? pick(flags['keyholder-policy'], KEYHOLDER_ENV.policy, 'keyholder_policy') : undefined;
  if (connect === undefined) {
    if (clientKey !== undefined || policyFile !== undefined || inlinePolicy !== undefined) usageError('--keyholder-client-key and --keyholder-policy apply only with --keyholder tcp:HOST:PORT');
    return out;
  }
  if (!/^tcp:(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/.test(connect.value)) usageError(`--keyholder ${JSON.stringify(connect.value)} is not tcp:HOST:PORT`);
  if (clientKey === undefined) usageError('--keyholder needs --keyholder-client-key FILE (this API\'s Ed25519 private key)');
  let policy: unknown = inlinePolicy;
  if (policy === undefined) {
    if (policyFile === undefined) usageError('--keyholder needs --keyholder-policy FILE: the measurements the keyholder must attest');
    const f = policyFile.fromFile ? fromFile(policyFile.value) : path.resolve(policyFile.value);
    try {
      policy = JSON.parse(readText(f, 'the keyholder policy'));
    } catch (e) {
      if (e instanceof SyntaxError) usageError(`the keyholder policy '${f}' is not JSON`);
      throw e;
    }
  }
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) usageError('the keyholder policy must be a JSON object (a release policy: platforms, measurements, …)');
  out.keyholderConnect = connect.value;
  out.keyholderClientKey = clientKey.fromFile ? fromFile(clientKey.value) : path.resolve(clientKey.value);
  out.keyholderPolicy = policy as Record<string, unknown>;
  return out;
}
