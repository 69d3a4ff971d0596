/**
 * A key service as a real, separate process, for the crash and cluster tests
 * and bench/cluster (test/built.ts says how to start it):
 *
 *   node [--conditions=source --import tsx] server-runner.mjs <data-dir> [--store URL] [--init] [--checkpoint-ms N]
 *
 * `startServer` on <data-dir> (loopback, port 0), with the PostgreSQL store
 * when --store is given; with --init an uninitialised keyholder is
 * `initialize()`d (3 shares, threshold 2). Prints one line
 * `KW_RUNNER_READY {json}` on stdout: the URL, its own pid, the keyholder's
 * pid and — only when it initialised — the share texts and the bootstrap
 * token (a test directory: nothing here is real). SIGTERM closes the server
 * cleanly; SIGKILL is what the crash tests send.
 */
import { parseArgs } from 'node:util';
import { startServer } from '@keyward/server';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { store: { type: 'string' }, init: { type: 'boolean' }, 'checkpoint-ms': { type: 'string' } },
});
const [data] = positionals;
if (!data || positionals.length !== 1) {
  process.stderr.write('usage: server-runner.mjs <data-dir> [--store URL] [--init] [--checkpoint-ms N]\n');
  process.exit(2);
}

const s = await startServer({
  data,
  ...(values.store ? { store: values.store } : {}),
  listen: '127.0.0.1:0',
  logLevel: 'silent',
  checkpointMs: Number(values['checkpoint-ms'] ?? 200),
  rateLimit: { perToken: { ratePerSecond: 100_000, burst: 100_000 }, perAddress: { ratePerSecond: 100_000, burst: 100_000 } },
});
const st = await s.keyholder.call('status', {});
let init = null;
if (!st.initialized && values.init) {
  const r = await s.initialize({ shares: 3, threshold: 2 });
  init = { shares: r.shares.map((x) => x.text), rootToken: r.rootToken };
}
process.stdout.write(`KW_RUNNER_READY ${JSON.stringify({ url: s.url, pid: process.pid, keyholderPid: s.keyholderPid() ?? null, init })}\n`);

let closing = false;
process.on('SIGTERM', () => {
  if (closing) return;
  closing = true;
  s.close().then(() => process.exit(0), (e) => {
    process.stderr.write(`close failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
});
