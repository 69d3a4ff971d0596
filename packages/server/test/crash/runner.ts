/**
 * The key service as a real, separate process for the crash tests:
 *
 *   node --conditions=source --import tsx runner.ts <data-dir> [port]
 *
 * Calls `startServer` on <data-dir> (loopback, port 0 unless given), and on
 * the first start of an empty data directory `initialize()`s it (3 shares,
 * threshold 2). Prints one line `KW_RUNNER_READY {json}` on stdout, with the
 * URL, its own pid, the keyholder's pid and — only when it initialised — the
 * share texts and the root token (a test directory: nothing here is real).
 * SIGTERM closes the server cleanly; SIGKILL is what the tests send.
 */
import { startServer } from '../../src/server.js';

const [data, portArg] = process.argv.slice(2);
if (!data) {
  process.stderr.write('usage: runner.ts <data-dir> [port]\n');
  process.exit(2);
}

const s = await startServer({
  data,
  listen: `127.0.0.1:${portArg ?? '0'}`,
  logLevel: 'silent',
  checkpointMs: 100,
  rateLimit: { perToken: { ratePerSecond: 100_000, burst: 100_000 }, perAddress: { ratePerSecond: 100_000, burst: 100_000 } },
});
const st = await s.keyholder.call('status', {});
let init: { shares: string[]; rootToken: string } | null = null;
if (!st.initialized) {
  const r = await s.initialize({ shares: 3, threshold: 2 });
  init = { shares: r.shares.map((x) => x.text), rootToken: r.rootToken };
}
process.stdout.write(`KW_RUNNER_READY ${JSON.stringify({ url: s.url, pid: process.pid, keyholderPid: s.keyholderPid() ?? null, init })}\n`);

let closing = false;
process.on('SIGTERM', () => {
  if (closing) return;
  closing = true;
  s.close().then(() => process.exit(0), (e: unknown) => {
    process.stderr.write(`close failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
});
