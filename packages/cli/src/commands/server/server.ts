/** `keyward server`: run the key service (HTTP API + keyholder) on a data directory. */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { EXIT_OK, fail, usageError } from '../../lib/errors.js';
import { writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import * as server from '../../lib/server-modules.js';
import { defineServiceCommand } from '../../lib/service.js';
import { TEE_FLAGS, teeSettings } from './server-tee.js';

export const DEV_TOKEN_ENV = 'KEYWARD_DEV_ROOT_TOKEN';
const SCHEDULER_ENV = 'KEYWARD_SCHEDULER_MS';
const ENV = { data: 'KEYWARD_DATA', store: 'KEYWARD_STORE', listen: 'KEYWARD_LISTEN', cert: 'KEYWARD_TLS_CERT', key: 'KEYWARD_TLS_KEY', logFile: 'KEYWARD_LOG_FILE' } as const;
const DEFAULT_LISTEN = '127.0.0.1:8200';

interface ConfigFile { data?: unknown; store?: unknown; listen?: unknown; tls_cert?: unknown; tls_key?: unknown; insecure?: unknown; log_file?: unknown; audit_ship?: unknown; scheduler_ms?: unknown; hsm_pin_file?: unknown; hsm_retry_ms?: unknown; witnesses?: unknown; witnesses_k?: unknown }
const HSM_PIN_ENV = 'KEYWARD_HSM_PIN';
const HSM_PIN_FILE_ENV = 'KEYWARD_HSM_PIN_FILE';
const HSM_RETRY_ENV = 'KEYWARD_HSM_RETRY_MS';

export const serverCommand = defineServiceCommand({
  name: 'server',
  summary: 'run the key service on a data directory (or --dev: throwaway, unsealed, loopback only)',
  usage: ['--data DIR [--store postgres://…] [--listen HOST:PORT] [--tls-cert FILE --tls-key FILE] [--insecure] [--config FILE] [--log-file FILE] [--json]', '--dev [--listen HOST:PORT] [--log-file FILE] [--json]'],
  flags: {
    data: { type: 'string', value: 'DIR', help: `the data directory made by "keyward init" (or $${ENV.data})` },
    store: { type: 'string', value: 'URL', help: `the PostgreSQL store, postgres://… (or $${ENV.store}, or "store" in --config); default: DIR/keyward.db` },
    listen: { type: 'string', value: 'HOST:PORT', help: `address to listen on (or $${ENV.listen}; default ${DEFAULT_LISTEN}; port 0 = any free port)` },
    'tls-cert': { type: 'string', value: 'FILE', help: `TLS certificate chain, PEM (or $${ENV.cert})` },
    'tls-key': { type: 'string', value: 'FILE', help: `TLS private key, PEM (or $${ENV.key})` },
    insecure: { type: 'boolean', help: 'allow plain HTTP on a non-loopback address (tokens would travel in the clear)' },
    dev: { type: 'boolean', help: 'development server: temporary store, auto-unsealed, loopback only, NOT for real keys' },
    config: { type: 'string', value: 'FILE', help: 'JSON config file { data, store, listen, tls_cert, tls_key, insecure, log_file, scheduler_ms, hsm_pin_file, hsm_retry_ms, witnesses: [{ name, url, key }], witnesses_k, attest: { tpm_roots, … }, keyholder, keyholder_client_key, keyholder_policy }' },
    'log-file': { type: 'string', value: 'FILE', help: `append the server's JSON logs to FILE instead of stderr (or $${ENV.logFile})` },
    'audit-ship': { type: 'string', value: 'SINK', help: 'ship the audit log as verifiable segments to file:PATH[?max_bytes=N&keep=K], http(s)://URL or syslog://HOST:PORT (or $KEYWARD_AUDIT_SHIP, or "audit_ship" in --config); check them with keyward audit verify' },
    'scheduler-interval': { type: 'string', value: 'MS', help: `tick of the key lifecycle scheduler (automatic rotation, scheduled destruction), ms (or $${SCHEDULER_ENV}, or "scheduler_ms" in --config; default 60000; 0 = off)` },
    json: { type: 'boolean', help: 'print { url, dataDir, dev, token? } as JSON on stdout once listening' },
    'hsm-pin-file': { type: 'string', value: 'FILE', help: `HSM-wrapped mode: the token PIN file (or $${HSM_PIN_FILE_ENV}, or $${HSM_PIN_ENV} holding the PIN, or "hsm_pin_file" in --config)` },
    'hsm-retry-ms': { type: 'string', value: 'MS', help: `HSM-wrapped mode: auto-unseal retry period while the HSM is unavailable (or $${HSM_RETRY_ENV}, or "hsm_retry_ms"; default 5000)` },
    ...TEE_FLAGS,
  },
  details: `
Settings: flags, else environment, else the config file. Without TLS the
service listens only on loopback unless --insecure (then it warns loudly in
its log). --tls-cert/--tls-key are PEM files, checked at start: an unreadable
file or a key that is not the certificate's stops it with a typed error. It
starts sealed: custodians run "keyward unseal". Stops on SIGINT or SIGTERM.

Output: stdout carries only this command's own output (the --json line);
the server's logs (JSON lines: requests, keyholder events, warnings) go to
stderr, or to --log-file. Logs never hold tokens, signatures or bodies.

--store postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?schema=NAME] keeps the
store in PostgreSQL instead of DIR/keyward.db: several nodes, each with its
own data directory (keyholder socket, keyholder.json, shares) and keyholder,
share one database. Pending schema migrations are applied at start under an
advisory lock. A change on one node (version disabled or destroyed, token
revoked, policy replaced) reaches the others by LISTEN/NOTIFY. Prefer a
password in ~/.pgpass or $PGPASSWORD over one in the URL; logs never show it.

HSM-wrapped mode (a data directory made by "keyward init --hsm-module …",
docs/hsm.md): the keyholder unseals itself from the HSM at start, with the
PIN from --hsm-pin-file, $${HSM_PIN_FILE_ENV}, $${HSM_PIN_ENV} or "hsm_pin_file" (handed to the
keyholder process on a pipe, never in argv). If the HSM is unavailable it
stays sealed, "keyward status" says why, and it retries every --hsm-retry-ms.

Witnesses (docs/witness.md): "witnesses": [{ "name", "url", "key" }] and
"witnesses_k" (default: all) in --config. Every new audit checkpoint is sent
to them (keyward witness); GET /v1/audit/checkpoint then serves the newest
checkpoint k of them cosigned, and keyward audit export carries it.

Trusted execution (docs/tee.md): "attest": { "nitro_roots", "tpm_roots",
"amd_roots", "intel_roots": [PEM files], "nonce_ttl_seconds" } in --config
sets the roots attested key release verifies evidence with (the spawned
keyholder gets the same). --keyholder tcp:HOST:PORT uses a keyholder running
apart (keyward keyholder serve, e.g. in a TEE) over the attested channel: it
is sent nothing until its evidence verifies (attest.tpm_roots) and matches
--keyholder-policy; --keyholder-client-key authenticates this API to it.

--dev makes a temporary data directory (removed at exit), initializes it,
unseals it with its own in-memory shares and prints a root token
($${DEV_TOKEN_ENV} sets its value, kw_ + 43 base64url characters). Everything it holds is lost at exit and is not protected.`,
  examples: ['keyward server --data /var/lib/keyward --listen 0.0.0.0:8200 --tls-cert cert.pem --tls-key key.pem', 'keyward server --dev'],
  async run({ flags, positionals }, { io }) {
    if (positionals.length > 0) usageError('server takes no positional arguments');
    let file: ConfigFile = {};
    if (flags.config !== undefined) {
      try {
        file = JSON.parse(await fsp.readFile(flags.config, 'utf8')) as ConfigFile;
      } catch (e) {
        fail(e instanceof SyntaxError ? 'KW_INVALID_ARGUMENT' : 'KW_IO', `cannot read the config file '${flags.config}'${e instanceof SyntaxError ? ': not JSON' : ''}`, e);
      }
    }
    const pick = (flag: string | undefined, env: string, key: keyof ConfigFile): string | undefined => {
      const v = flag ?? nonEmpty(io.env[env]) ?? file[key];
      if (v !== undefined && typeof v !== 'string') usageError(`"${key}" in the config file must be a string`);
      return v;
    };
    const listen = parseListen(pick(flags.listen, ENV.listen, 'listen') ?? DEFAULT_LISTEN);
    const cert = pick(flags['tls-cert'], ENV.cert, 'tls_cert');
    const key = pick(flags['tls-key'], ENV.key, 'tls_key');
    const insecure = flags.insecure || file.insecure === true;
    if ((cert === undefined) !== (key === undefined)) usageError('give both --tls-cert and --tls-key, or neither');
    const loopback = isLoopback(listen.host);
    if (flags.dev) {
      if (!loopback) usageError('--dev listens on loopback only (127.0.0.1, ::1 or localhost)');
      if (flags.data !== undefined || file.data !== undefined) usageError('--dev makes its own temporary data directory; it takes no --data');
    } else if (cert === undefined && !loopback && !insecure) {
      usageError(`listening on ${listen.host} without TLS needs --insecure (or give --tls-cert and --tls-key)`);
    }
    const logFile = pick(flags['log-file'], ENV.logFile, 'log_file');
    const auditShip = pick(flags['audit-ship'], 'KEYWARD_AUDIT_SHIP', 'audit_ship');
    const schedulerText = flags['scheduler-interval'] ?? nonEmpty(io.env[SCHEDULER_ENV]) ?? (typeof file.scheduler_ms === 'number' ? String(file.scheduler_ms) : file.scheduler_ms);
    if (schedulerText !== undefined && (typeof schedulerText !== 'string' || !/^\d{1,8}$/.test(schedulerText) || Number(schedulerText) > 86_400_000)) {
      usageError('the scheduler interval (--scheduler-interval, $KEYWARD_SCHEDULER_MS, "scheduler_ms") must be a whole number of ms from 0 to 86400000');
    }
    const hsmPinFile = pick(flags['hsm-pin-file'], HSM_PIN_FILE_ENV, 'hsm_pin_file');
    const hsmPin = hsmPinFile === undefined ? nonEmpty(io.env[HSM_PIN_ENV]) : undefined;
    const hsmRetryText = flags['hsm-retry-ms'] ?? nonEmpty(io.env[HSM_RETRY_ENV]) ?? (typeof file.hsm_retry_ms === 'number' ? String(file.hsm_retry_ms) : file.hsm_retry_ms);
    if (hsmRetryText !== undefined && (typeof hsmRetryText !== 'string' || !/^\d{1,7}$/.test(hsmRetryText) || Number(hsmRetryText) > 3_600_000)) {
      usageError('the HSM retry period (--hsm-retry-ms, $KEYWARD_HSM_RETRY_MS, "hsm_retry_ms") must be a whole number of ms from 0 to 3600000');
    }
    // Witnesses of the audit log (docs/witness.md): config file only (a list does not fit a flag).
    if (file.witnesses !== undefined && !Array.isArray(file.witnesses)) usageError('"witnesses" in the config file must be an array of { "name", "url", "key" }');
    if (file.witnesses_k !== undefined && (typeof file.witnesses_k !== 'number' || !Number.isInteger(file.witnesses_k))) usageError('"witnesses_k" in the config file must be an integer');
    const witnesses = file.witnesses as { name: string; url: string; key: string }[] | undefined;
    const tee = teeSettings(flags, io.env, file as Record<string, unknown>, flags.config);
    // The public-key directory (docs/directory.md §Key service): environment over the config file's "directory" object.
    const dirOn = (v: string | undefined) => v === '1' || v === 'true';
    const dirEnv = nonEmpty(io.env.KEYWARD_DIRECTORY) !== undefined || nonEmpty(io.env.KEYWARD_DIRECTORY_REQUIRE_DEVICES) !== undefined
      ? { enabled: dirOn(io.env.KEYWARD_DIRECTORY) || dirOn(io.env.KEYWARD_DIRECTORY_REQUIRE_DEVICES), requireDevices: dirOn(io.env.KEYWARD_DIRECTORY_REQUIRE_DEVICES) }
      : undefined;
    const directory = dirEnv ?? ((file as Record<string, unknown>).directory as { enabled?: boolean; requireDevices?: boolean } | undefined);
    const store = pick(flags.store, ENV.store, 'store');
    if (store !== undefined && !/^postgres(?:ql)?:\/\//.test(store)) usageError('--store must be a postgres:// or postgresql:// URL');
    const entry = await server.serverEntry();

    let dataDir: string | undefined;
    if (!flags.dev) {
      const d = pick(flags.data, ENV.data, 'data');
      if (d === undefined) usageError(`server needs --data DIR (or $${ENV.data}, or "data" in --config), or --dev`);
      dataDir = path.resolve(d);
    }
    const devToken = flags.dev ? nonEmpty(io.env[DEV_TOKEN_ENV]) : undefined;
    const running = await entry.startServer({
      listen: `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`,
      insecure, dev: flags.dev,
      ...(dataDir !== undefined ? { data: dataDir } : {}),
      ...(store !== undefined ? { store } : {}),
      ...(cert !== undefined && key !== undefined ? { tlsCert: cert, tlsKey: key } : {}),
      ...(devToken !== undefined ? { devRootToken: devToken } : {}),
      ...(logFile !== undefined ? { logFile: path.resolve(logFile) } : {}),
      ...(auditShip !== undefined ? { auditShip: absoluteFileSink(auditShip) } : {}),
      ...(schedulerText !== undefined ? { schedulerMs: Number(schedulerText) } : {}),
      ...(hsmPinFile !== undefined ? { hsmPinFile: path.resolve(hsmPinFile) } : {}),
      ...(hsmPin !== undefined ? { hsmPin } : {}),
      ...(hsmRetryText !== undefined ? { hsmRetryMs: Number(hsmRetryText) } : {}),
      ...tee,
      ...(witnesses !== undefined ? { witnesses } : {}),
      ...(directory !== undefined ? { directory } : {}),
      ...(typeof file.witnesses_k === 'number' ? { witnessesK: file.witnesses_k } : {}),
    });
    const url = running.url.replace(/\/+$/, '');
    if (flags.dev) {
      await writeAll(io.stderr, [
        '',
        '==> WARNING: DEVELOPMENT SERVER. Do not use it for real keys.',
        '    Its store is temporary and deleted at exit, it is unsealed without custodians,',
        '    and its root token is printed below.',
        `    Address:    ${url}`,
        `    Root token: ${devToken !== undefined ? `(from $${DEV_TOKEN_ENV})` : running.rootToken ?? '(none)'}`,
        '',
      ].join('\n') + '\n');
    } else {
      await writeAll(io.stderr, `keyward server listening on ${url} (data ${dataDir ?? ''}${store !== undefined ? `, store ${(await server.serverModule()).redactUrl(store)}` : ''})\n`);
    }
    if (flags.json) await printJson(io.stdout, { url, dataDir: dataDir ?? null, dev: flags.dev, ...(flags.dev ? { token: running.rootToken } : {}) });
    await waitForSignal();
    await running.close();
    return EXIT_OK;
  },
});

const nonEmpty = (s: string | undefined) => (s === undefined || s === '' ? undefined : s);

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(?:\.\d{1,3}){3}$/.test(host);
}

function parseListen(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) usageError(`--listen ${JSON.stringify(s)} is not HOST:PORT`);
  return { host: m[1] ?? m[2]!, port };
}

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

/** `file:PATH[?…]` with PATH made absolute (the server may run from another directory); other sinks unchanged. */
function absoluteFileSink(spec: string): string {
  if (!spec.startsWith('file:')) return spec;
  const q = spec.indexOf('?');
  return `file:${path.resolve(spec.slice(5, q < 0 ? undefined : q))}${q < 0 ? '' : spec.slice(q)}`;
}
