/** `keyward witness`: run a C2SP tlog-witness for the audit log (and other logs) as its own process (docs/witness.md). */
import { chmodSync, promises as fsp, writeFileSync } from 'node:fs';
import path from 'node:path';
import { EXIT_OK, fail, usageError } from '../../lib/errors.js';
import { writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import * as server from '../../lib/server-modules.js';
import { defineServiceCommand } from '../../lib/service.js';

const ENV = { listen: 'KEYWARD_WITNESS_LISTEN', keyFile: 'KEYWARD_WITNESS_KEY_FILE', state: 'KEYWARD_WITNESS_STATE', cert: 'KEYWARD_WITNESS_TLS_CERT', key: 'KEYWARD_WITNESS_TLS_KEY' } as const;
const DEFAULT_LISTEN = '127.0.0.1:8300';
const VKEY = /^[^\s+]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/;

interface ConfigFile { listen?: unknown; key_file?: unknown; state?: unknown; logs?: unknown; tls_cert?: unknown; tls_key?: unknown; insecure?: unknown; log_file?: unknown }

export const witness = defineServiceCommand({
  name: 'witness',
  summary: 'run a transparency-log witness (C2SP tlog-witness) that cosigns consistent checkpoints',
  usage: [
    '--key-file FILE --state DIR --log VKEY|FILE... [--listen HOST:PORT] [--tls-cert FILE --tls-key FILE] [--insecure] [--config FILE] [--log-file FILE] [--json]',
    '--new-key FILE --name NAME [--json]',
  ],
  flags: {
    'key-file': { type: 'string', value: 'FILE', help: `the witness's private key PRIVATE+KEY+… (or $${ENV.keyFile}, or "key_file" in --config)` },
    state: { type: 'string', value: 'DIR', help: `where the witness keeps the latest checkpoint of each log (or $${ENV.state}, or "state"); back it up, never delete it` },
    log: { type: 'string', value: 'VKEY|FILE', multiple: true, help: 'a log to witness: its note verifier key NAME+ID+BASE64 (the origin is NAME), or a file holding it (init writes audit-verifier-key.txt); or "logs": [{ "origin", "key" }] in --config' },
    listen: { type: 'string', value: 'HOST:PORT', help: `address to listen on (or $${ENV.listen}; default ${DEFAULT_LISTEN}; port 0 = any free port)` },
    'tls-cert': { type: 'string', value: 'FILE', help: `TLS certificate chain, PEM (or $${ENV.cert})` },
    'tls-key': { type: 'string', value: 'FILE', help: `TLS private key, PEM (or $${ENV.key})` },
    insecure: { type: 'boolean', help: 'allow plain HTTP on a non-loopback address' },
    config: { type: 'string', value: 'FILE', help: 'JSON config file { listen, key_file, state, logs: [{ origin, key }], tls_cert, tls_key, insecure, log_file }' },
    'log-file': { type: 'string', value: 'FILE', help: "append the witness's JSON logs to FILE instead of stderr" },
    'new-key': { type: 'string', value: 'FILE', help: 'generate a witness key into FILE (mode 0600), print its verifier key, and exit' },
    name: { type: 'string', value: 'NAME', help: 'with --new-key: the witness name (e.g. witness.example.com/w1)' },
    json: { type: 'boolean', help: 'print { url, name, verifier_key } as JSON once listening (with --new-key: { name, verifier_key, key_file })' },
  },
  details: `
A witness keeps, for every log it is configured with, the latest checkpoint
it cosigned, and cosigns a new checkpoint (POST /add-checkpoint) only when the
log's signature verifies with the configured key and an RFC 6962 consistency
proof shows it extends that checkpoint. It answers as the C2SP tlog-witness
protocol says: 404 unknown log, 403 no trusted signature, 409 with its latest
size when the request's old size is not it (a stale or rolled-back log, or a
second view), 409 for another root at the same size, 422 for a proof that does
not verify (an inconsistent log), 400 for a malformed request. It never rolls
back and never cosigns two inconsistent checkpoints of one log; refused
requests signed by the log are kept in STATE/evidence.jsonl (up to 64 MiB). GET / shows its
name, verifier key and the size it holds per log.

Settings: flags, else environment, else the config file. Without TLS it
listens only on loopback unless --insecure. Give the printed verifier key to
the key service ("witnesses": [{ "name", "url", "key" }] in keyward server
--config) and to every verifier (keyward audit verify --witness). Run each
witness on a machine, and under an operator, other than the key service's.`,
  examples: [
    'keyward witness --new-key /etc/keyward-witness/key --name witness.example.com/w1',
    'keyward witness --key-file /etc/keyward-witness/key --state /var/lib/keyward-witness --log /etc/keyward-witness/audit-verifier-key.txt --listen 0.0.0.0:8300 --tls-cert cert.pem --tls-key key.pem',
  ],
  async run({ flags, positionals }, { io }) {
    if (positionals.length > 0) usageError('witness takes no positional arguments');
    const mod = await server.serverModule();
    if (flags['new-key'] !== undefined) {
      if (flags.name === undefined) usageError('--new-key needs --name NAME (e.g. witness.example.com/w1)');
      if (!/^[^\s+]+$/.test(flags.name)) usageError('--name must be non-empty without spaces or "+"');
      const file = path.resolve(flags['new-key']);
      const k = mod.generateWitnessKey(flags.name);
      try {
        writeFileSync(file, `${k.signerKey}\n`, { mode: 0o600, flag: 'wx' });
        chmodSync(file, 0o600);
      } catch (e) {
        fail('KW_IO', (e as NodeJS.ErrnoException).code === 'EEXIST' ? `${file} exists; refusing to overwrite a witness key` : `cannot write ${file}`, e);
      }
      if (flags.json) await printJson(io.stdout, { name: flags.name, verifier_key: k.verifierKey, key_file: file });
      else await writeAll(io.stdout, `${k.verifierKey}\n`);
      return EXIT_OK;
    }
    if (flags.name !== undefined) usageError('--name goes with --new-key');
    let file: ConfigFile = {};
    if (flags.config !== undefined) {
      try {
        file = JSON.parse(await fsp.readFile(flags.config, 'utf8')) as ConfigFile;
      } catch (e) {
        fail(e instanceof SyntaxError ? 'KW_INVALID_ARGUMENT' : 'KW_IO', `cannot read the config file '${flags.config}'${e instanceof SyntaxError ? ': not JSON' : ''}`, e);
      }
      if (typeof file !== 'object' || file === null || Array.isArray(file)) usageError('the config file must hold a JSON object');
    }
    const pick = (flag: string | undefined, env: string | null, key: keyof ConfigFile): string | undefined => {
      const v = flag ?? (env === null ? undefined : nonEmpty(io.env[env])) ?? file[key];
      if (v !== undefined && typeof v !== 'string') usageError(`"${key}" in the config file must be a string`);
      return v;
    };
    const keyFile = pick(flags['key-file'], ENV.keyFile, 'key_file');
    if (keyFile === undefined) usageError(`witness needs --key-file FILE (or $${ENV.keyFile}, or "key_file"); make one with --new-key FILE --name NAME`);
    const stateDir = pick(flags.state, ENV.state, 'state');
    if (stateDir === undefined) usageError(`witness needs --state DIR (or $${ENV.state}, or "state")`);
    const logs: { origin?: string; key: string }[] = [];
    for (const l of flags.log) logs.push({ key: await vkeyOf(l) });
    if (flags.log.length === 0 && file.logs !== undefined) {
      if (!Array.isArray(file.logs)) usageError('"logs" in the config file must be an array of { origin, key }');
      for (const l of file.logs as unknown[]) {
        const e = l as { origin?: unknown; key?: unknown };
        if (typeof e !== 'object' || e === null || typeof e.key !== 'string' || (e.origin !== undefined && typeof e.origin !== 'string')) usageError('every "logs" entry is { "origin"?: string, "key": string }');
        logs.push({ key: await vkeyOf(e.key), ...(typeof e.origin === 'string' ? { origin: e.origin } : {}) });
      }
    }
    if (logs.length === 0) usageError('witness needs at least one --log VKEY|FILE (or "logs" in --config)');
    const cert = pick(flags['tls-cert'], ENV.cert, 'tls_cert');
    const tlsKey = pick(flags['tls-key'], ENV.key, 'tls_key');
    if ((cert === undefined) !== (tlsKey === undefined)) usageError('give both --tls-cert and --tls-key, or neither');
    const logFile = pick(flags['log-file'], null, 'log_file');
    let signerKey: string;
    try {
      signerKey = (await fsp.readFile(keyFile, 'utf8')).split('\n').map((s) => s.trim()).find((s) => s.startsWith('PRIVATE+KEY+')) ?? '';
    } catch (e) {
      fail('KW_IO', `cannot read the witness key file '${keyFile}'`, e);
    }
    if (signerKey === '') fail('KW_INVALID_ARGUMENT', `the witness key file '${keyFile}' holds no PRIVATE+KEY+… line`);
    const logStream = logFile === undefined ? undefined : (await import('node:fs')).createWriteStream(path.resolve(logFile), { flags: 'a', mode: 0o600 });
    const running = await mod.startWitness({
      listen: pick(flags.listen, ENV.listen, 'listen') ?? DEFAULT_LISTEN,
      signerKey, stateDir: path.resolve(stateDir), logs,
      insecure: flags.insecure || file.insecure === true,
      ...(cert !== undefined && tlsKey !== undefined ? { tlsCert: cert, tlsKey } : {}),
      ...(logStream ? { logStream } : {}),
    });
    await writeAll(io.stderr, `keyward witness ${running.name} listening on ${running.url}\nverifier key: ${running.verifierKey}\n`);
    if (flags.json) await printJson(io.stdout, { url: running.url, name: running.name, verifier_key: running.verifierKey });
    await new Promise<void>((resolve) => {
      const done = () => { process.off('SIGINT', done); process.off('SIGTERM', done); resolve(); };
      process.on('SIGINT', done);
      process.on('SIGTERM', done);
    });
    await running.close();
    if (logStream) await new Promise<void>((r) => logStream.end(r));
    return EXIT_OK;
  },
});

const nonEmpty = (s: string | undefined) => (s === undefined || s === '' ? undefined : s);

/** A verifier key given inline, or the first non-comment line of a file. */
async function vkeyOf(v: string): Promise<string> {
  if (VKEY.test(v.trim())) return v.trim();
  try {
    const line = (await fsp.readFile(v, 'utf8')).split('\n').map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#'));
    if (line === undefined || !VKEY.test(line)) fail('KW_INVALID_ARGUMENT', `'${v}' holds no verifier key (NAME+ID+BASE64)`);
    return line;
  } catch (e) {
    if ((e as { code?: string }).code === 'KW_INVALID_ARGUMENT') throw e;
    return fail('KW_IO', `'${v}' is neither a verifier key (NAME+ID+BASE64) nor a readable file`, e);
  }
}
