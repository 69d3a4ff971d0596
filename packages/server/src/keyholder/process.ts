/**
 * The keyholder process:
 *
 *   node dist/keyholder/process.js --socket PATH [--state PATH]
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
import { parseArgs } from 'node:util';
import { HttpSigRequestVerifier, KeyholderService, type KeyholderLog } from './service.js';
import { StateFile } from './state.js';
import { UnixSocketTransport, serveFrames } from './transport.js';

const log: KeyholderLog = (msg, fields = {}) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), component: 'keyholder', msg, ...fields })}\n`);
};

function usage(message: string): never {
  process.stderr.write(`keyholder: ${message}\nusage: keyholder --socket PATH [--state PATH]\n`);
  process.exit(2);
}

async function main(argv: string[]): Promise<void> {
  let values: { socket?: string; state?: string };
  try {
    ({ values } = parseArgs({ args: argv, options: { socket: { type: 'string' }, state: { type: 'string' } }, strict: true, allowPositionals: false }));
  } catch (e) {
    usage(e instanceof Error ? e.message : 'bad arguments');
  }
  if (!values.socket) usage('--socket is required');
  const transport = new UnixSocketTransport(values.socket);
  const stateFile = values.state ? new StateFile(values.state) : StateFile.besideSocket(values.socket);

  const service = await KeyholderService.open({ stateFile, verifier: new HttpSigRequestVerifier(), log });
  const server = await serveFrames(transport, (message) => service.handle(message), { log });
  log('ready', { socket: values.socket, state: stateFile.path, pid: process.pid });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    service.shutdown();
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

main(process.argv.slice(2)).catch((e: unknown) => {
  const code = (e as { code?: unknown }).code;
  log('cannot start', { error: e instanceof Error ? e.message : String(e), ...(typeof code === 'string' ? { code } : {}) });
  process.exit(1);
});
