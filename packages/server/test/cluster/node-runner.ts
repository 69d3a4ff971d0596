/**
 * One node of a several-node deployment, as a real process, for the cluster
 * tests (cluster.test.ts) and `bench/cluster`:
 *
 *   node --conditions=source --import tsx node-runner.ts <data-dir> <postgres-url> [init]
 *
 * `startServer` on <data-dir> with the PostgreSQL store (loopback, port 0);
 * with `init` and an uninitialised keyholder it `initialize()`s (3 shares,
 * threshold 2). Prints `KW_RUNNER_READY {json}` (URL, pids, and — only when
 * it initialised — shares and the bootstrap token: test data, nothing real).
 */
import { startServer } from '../../src/server.js';

const [data, store, mode] = process.argv.slice(2);
if (!data || !store) {
  process.stderr.write('usage: node-runner.ts <data-dir> <postgres-url> [init]\n');
  process.exit(2);
}

const s = await startServer({
  data,
  store,
  listen: '127.0.0.1:0',
  logLevel: 'silent',
  checkpointMs: 200,
  rateLimit: { perToken: { ratePerSecond: 100_000, burst: 100_000 }, perAddress: { ratePerSecond: 100_000, burst: 100_000 } },
});
const st = await s.keyholder.call('status', {});
let init: { shares: string[]; rootToken: string } | null = null;
if (!st.initialized && mode === 'init') {
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
