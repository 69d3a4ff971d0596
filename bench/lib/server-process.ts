/**
 * The key service as its own process for `npm run bench:server`, started as
 * `keyward server --data DIR` starts it (`startServer` on a data directory,
 * loopback, keyholder as a child process), with two differences the bench
 * needs and says so: the per-token and per-address rate limits are raised
 * (the defaults, 50/s per token, would measure the limiter), and the log
 * level is a flag (default `warn`: fastify's per-request lines off).
 *
 *   node --conditions=source --import tsx bench/lib/server-process.ts <data-dir> [log-level]
 *
 * On the first start of an empty directory it initialises it (3 shares,
 * threshold 2), as `keyward init` does. Prints one line
 * `KW_BENCH_SERVER {json}` on stdout: the URL, the pids, the SQLite settings
 * in force and — when it initialised — the shares and root token (a temp
 * directory: nothing here is real). It starts sealed; the bench unseals it
 * over HTTP as `keyward unseal` does. SIGTERM closes it cleanly (so
 * `--cpu-prof` profiles are written).
 */
import { startServer, type SqliteStore } from '@keyward/server';

const [data, logLevel = 'warn'] = process.argv.slice(2);
if (!data) {
  process.stderr.write('usage: server-process.ts <data-dir> [log-level]\n');
  process.exit(2);
}

const s = await startServer({
  data,
  listen: '127.0.0.1:0',
  logLevel: logLevel as 'warn',
  keyholderMode: 'source',
  rateLimit: { perToken: { ratePerSecond: 1e9, burst: 1e9 }, perAddress: { ratePerSecond: 1e9, burst: 1e9 } },
  // `npm run bench:hsm`: a directory initialised in HSM-wrapped mode; the token PIN comes from the environment.
  ...(process.env.KW_BENCH_HSM_PIN ? { hsmPin: process.env.KW_BENCH_HSM_PIN } : {}),
});
const st = await s.keyholder.call('status', {});
let init: { shares: string[]; rootToken: string } | null = null;
if (!st.initialized) {
  const r = await s.initialize({ shares: 3, threshold: 2 });
  init = { shares: r.shares.map((x) => x.text), rootToken: r.rootToken };
}
const sqlite = await (s.store as SqliteStore).settings();
process.stdout.write(`KW_BENCH_SERVER ${JSON.stringify({ url: s.url, pid: process.pid, keyholderPid: s.keyholderPid() ?? null, sqlite, init })}\n`);

let closing = false;
process.on('SIGTERM', () => {
  if (closing) return;
  closing = true;
  s.close().then(() => process.exit(0), (e: unknown) => {
    process.stderr.write(`close failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
});
