/**
 * The keyholder process:
 *
 *   node dist/keyholder.mjs --socket PATH [--state PATH] [--hsm-pin-fd N] [--hsm-retry-ms MS]
 *   node dist/keyholder.mjs --listen tcp:HOST:PORT --state PATH --authorized-client FILE --evidence tpm2 --tpm-ak-ctx FILE [--tpm-pcrs sha256:16] [--attest-config FILE]
 *
 *   node dist/keyholder.mjs --listen … --evidence command --evidence-command PATH --evidence-platform aws-nitro [--evidence-timeout-ms MS]
 *
 * The --listen forms run the keyholder apart from the API (in a TEE), inside
 * the attested channel (remote.ts, attested-channel.ts; docs/tee.md).
 *
 * HSM-wrapped mode (docs/hsm.md): the token PIN comes from the inherited
 * descriptor N (read to its end, then closed; the server passes a pipe), else
 * from the environment variable KEYWARD_HSM_PIN (removed from this process's
 * environment once read). Never from argv: only the descriptor's number is
 * there. The keyholder then unseals itself from the HSM, retrying every
 * `--hsm-retry-ms` (default 5000, or KEYWARD_HSM_RETRY_MS) while it is unavailable.
 *
 * Starts sealed, serves the keyholder protocol on a Unix socket (mode 0600),
 * and on SIGTERM / SIGINT — or when the process that started it dies — stops
 * listening, drops every key and exits 0.
 * `--state` defaults to `keyholder.json` beside the socket. A state file that
 * exists but does not parse stops it (exit 1): it never starts as "not
 * initialized" over a damaged state. Logs are JSON lines on stderr and never
 * carry key bytes, shares, plaintexts or request bodies; `{"msg":"ready"}`
 * says it listens.
 *
 * Exit codes: 0 after a signal, 1 when it cannot start, 2 on bad arguments.
 */
import { closeSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { HttpSigRequestVerifier, KeyholderService, type KeyholderLog } from './service.js';
import { StateFile } from './state.js';
import { UnixSocketTransport, serveFrames } from './transport.js';
import { REMOTE_OPTIONS, attestRootsOf, remoteTransport, type RemoteValues } from './remote.js';
import { ResponseSigner } from './response-signing.js';

const log: KeyholderLog = (msg, fields = {}) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), component: 'keyholder', msg, ...fields })}\n`);
};

function usage(message: string): never {
  process.stderr.write(`keyholder: ${message}\nusage: keyholder --socket PATH [--state PATH] [--hsm-pin-fd N] [--hsm-retry-ms MS]\n       keyholder --listen tcp:HOST:PORT --state PATH --authorized-client FILE --evidence tpm2 --tpm-ak-ctx FILE [--tpm-pcrs BANK:N,…] [--tpm-ek-chain FILE] [--attest-config FILE]\n       keyholder --listen tcp:HOST:PORT --state PATH --authorized-client FILE --evidence command --evidence-command PATH --evidence-platform aws-nitro|amd-sev-snp|intel-tdx|intel-sgx [--evidence-timeout-ms MS] [--attest-config FILE]\n`);
  process.exit(2);
}

async function main(argv: string[]): Promise<void> {
  let values: { socket?: string; state?: string; 'hsm-pin-fd'?: string; 'hsm-retry-ms'?: string } & RemoteValues;
  try {
    ({ values } = parseArgs({ args: argv, options: { socket: { type: 'string' }, state: { type: 'string' }, 'hsm-pin-fd': { type: 'string' }, 'hsm-retry-ms': { type: 'string' }, ...REMOTE_OPTIONS }, strict: true, allowPositionals: false }));
  } catch (e) {
    usage(e instanceof Error ? e.message : 'bad arguments');
  }
  // --listen tcp:…: apart from the API (a TEE), inside the attested channel (remote.ts); else the Unix socket.
  if (!values.socket && !values.listen) usage('--socket or --listen is required');
  if (values.socket && values.listen) usage('give --socket or --listen, not both');
  if (values.listen && !values.state) usage('--listen needs --state PATH');
  let remote: ReturnType<typeof remoteTransport> | null = null;
  try {
    remote = values.listen ? remoteTransport(values, log) : null;
  } catch (e) {
    usage(e instanceof Error ? e.message : 'bad arguments');
  }
  const transport = remote ? remote.transport : new UnixSocketTransport(values.socket!);
  const stateFile = values.state ? new StateFile(values.state) : StateFile.besideSocket(values.socket!);
  const attestRoots = attestRootsOf(values);

  const pin = readPin(values['hsm-pin-fd']);
  const retryText = values['hsm-retry-ms'] ?? process.env.KEYWARD_HSM_RETRY_MS;
  if (retryText !== undefined && !/^[0-9]{1,9}$/.test(retryText)) usage('--hsm-retry-ms must be a whole number of ms');
  const hsm = pin === undefined ? undefined : { pin, ...(retryText !== undefined ? { retryMs: Number(retryText) } : {}) };
  const service = await KeyholderService.open({ stateFile, verifier: new HttpSigRequestVerifier(), log, attest: { roots: attestRoots }, ...(hsm ? { hsm } : {}) });
  // Run apart: the keyholder-attestation op and keyholder-signed responses (response-signing.ts; docs/tee.md).
  const handle = (message: unknown) => service.handle(message);
  const server = await serveFrames(transport, remote ? new ResponseSigner(remote.provider).wrap(handle) : handle, { log });
  log('ready', { ...(remote ? { listen: remote.tcp.description } : { socket: values.socket! }), state: stateFile.path, pid: process.pid });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    service.shutdown();
    remote?.close();
    log('stopping', { signal });
    const force = setTimeout(() => process.exit(0), 2000);
    force.unref();
    server.close().then(() => process.exit(0), () => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  // Never outlive the process that started it: an orphaned keyholder would
  // stay unsealed with nobody supervising it, and hold the socket so a
  // restarted server could not start its own. When the parent dies the
  // keyholder is re-parented, so a changed ppid means "seal and exit".
  const parent = process.ppid;
  const watch = setInterval(() => { if (process.ppid !== parent) stop('parent exited'); }, 250);
  watch.unref();
}

/** The HSM PIN: from the inherited descriptor, else KEYWARD_HSM_PIN (then dropped from the environment). One trailing newline is removed. */
function readPin(fdText: string | undefined): string | undefined {
  let pin: string | undefined;
  if (fdText !== undefined) {
    if (!/^[0-9]{1,4}$/.test(fdText) || Number(fdText) < 3) usage('--hsm-pin-fd must be a descriptor number of 3 or more');
    const fd = Number(fdText);
    const buf = readFileSync(fd);
    try { closeSync(fd); } catch { /* already closed */ }
    pin = buf.toString('utf8').replace(/\r?\n$/, '');
    buf.fill(0);
  } else if (process.env.KEYWARD_HSM_PIN !== undefined) {
    pin = process.env.KEYWARD_HSM_PIN.replace(/\r?\n$/, '');
  }
  delete process.env.KEYWARD_HSM_PIN;
  return pin === '' ? undefined : pin;
}

main(process.argv.slice(2)).catch((e: unknown) => {
  const code = (e as { code?: unknown }).code;
  log('cannot start', { error: e instanceof Error ? e.message : String(e), ...(typeof code === 'string' ? { code } : {}) });
  process.exit(1);
});
