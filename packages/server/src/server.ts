/**
 * `startServer(config)`: the key service process.
 *
 * Opens the SQLite store in the data directory, spawns and supervises the
 * keyholder process (restarted when it dies — it comes back sealed), connects
 * the keyholder client, re-synchronises the audit frontier with the store,
 * and serves the HTTP API v1 (default 127.0.0.1:8200; a non-loopback address
 * needs TLS or `insecure: true`). `dev: true` uses a temporary data
 * directory, initialises and unseals automatically (shares kept in memory),
 * listens on loopback only and prints a loud warning.
 *
 * @example
 * const s = await startServer({ data: '/var/lib/keyward' });
 * console.log(s.url); await s.close();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { createApp, type ApiContext } from './api/app.js';
import { AuditPipe } from './api/audit-pipe.js';
import { newId, newToken, tokenHash } from './api/auth.js';
import { RateLimiter } from './api/limits.js';
import { ApiMetrics } from './api/metrics.js';
import { buildOpenApi } from './api/openapi.js';
import { auditRoutes } from './api/routes/audit.js';
import { authRoutes } from './api/routes/auth.js';
import { dataRoutes } from './api/routes/data.js';
import { keyRoutes } from './api/routes/keys.js';
import { policyRoutes } from './api/routes/policies.js';
import { sysRoutes } from './api/routes/sys.js';
import { tokenRoutes } from './api/routes/tokens.js';
import { ServerConfigSchema, type ServerConfigInput } from './config.js';
import { initCustody, type ShareFile } from './keyholder/custody.js';
import { KeyholderClient } from './keyholder/client.js';
import { buildInitState } from './keyholder/state.js';
import { sealShareForBoot } from './keyholder/unseal-key.js';
import { openSqliteStore, type Store } from './store/index.js';

export const SERVER_VERSION = '0.1.0';
const HERE = dirname(fileURLToPath(import.meta.url));
const FROM_SOURCE = import.meta.url.endsWith('.ts');

export interface RunningServer {
  /** `http(s)://host:port` once listening. */
  readonly url: string;
  readonly fastify: FastifyInstance;
  readonly store: Store;
  readonly keyholder: KeyholderClient;
  readonly dataDir: string;
  /** The admin token made at init by this process (dev mode, or `initialize`). */
  rootToken: string | null;
  /** Dev mode: the unseal shares (in memory only). */
  shares: readonly ShareFile[] | null;
  /** The keyholder process id (changes when it is restarted). */
  keyholderPid(): number | undefined;
  /** Waits until a (re)started keyholder answers. */
  keyholderReady(): Promise<void>;
  /** First-time initialisation (what `keyward init` asks for): shares and the root admin token. */
  initialize(opts?: { shares?: number; threshold?: number; rootToken?: string }): Promise<{ shares: ShareFile[]; rootToken: string }>;
  close(): Promise<void>;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\./.test(host);
}

interface Supervisor {
  child: ChildProcess | null;
  ready: Promise<void>;
  stopping: boolean;
}

function spawnKeyholder(sup: Supervisor, socket: string, mode: 'dist' | 'source', log: (msg: string, f?: object) => void, onRestart: () => void): void {
  const args = mode === 'source'
    ? ['--conditions=source', '--import', 'tsx', join(HERE, 'keyholder', 'process.ts'), '--socket', socket]
    : [join(HERE, 'keyholder', 'process.js'), '--socket', socket];
  const child = spawn(process.execPath, args, { cwd: join(HERE, '..'), stdio: ['ignore', 'ignore', 'pipe'] });
  sup.child = child;
  sup.ready = new Promise<void>((resolve, reject) => {
    let buf = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.includes('"msg":"ready"')) resolve();
      }
    });
    child.once('exit', (code, signal) => {
      reject(new Error(`keyholder exited (${code ?? signal})`));
      if (sup.stopping) return;
      log('keyholder exited; restarting (it will be sealed)', { code, signal });
      onRestart();
      setTimeout(() => { if (!sup.stopping) spawnKeyholder(sup, socket, mode, log, onRestart); }, 200).unref();
    });
  });
  sup.ready.catch(() => undefined);
}

/** Starts the key service. */
export async function startServer(input: ServerConfigInput = {}): Promise<RunningServer> {
  const cfg = ServerConfigSchema.parse(input);
  const [host, portText] = (() => { const i = cfg.listen.lastIndexOf(':'); return [cfg.listen.slice(0, i), cfg.listen.slice(i + 1)] as const; })();
  const port = Number(portText);
  if (cfg.dev && !isLoopback(host)) throw new Error('dev mode listens on loopback only');
  if (!isLoopback(host) && !(cfg.tlsCert && cfg.tlsKey) && !cfg.insecure) throw new Error(`refusing to listen on ${host} without TLS (give tlsCert/tlsKey, or insecure: true)`);
  let tempDir: string | null = null;
  const dataDir = cfg.data ?? (cfg.dev ? (tempDir = mkdtempSync(join(tmpdir(), 'keyward-dev-'))) : undefined);
  if (!dataDir) throw new Error('a data directory is required (data / KEYWARD_DATA)');

  const store = await openSqliteStore({ path: join(dataDir, 'keyward.db') });
  const metrics = new ApiMetrics();
  const socket = join(dataDir, 'keyholder.sock');
  const keyholder = KeyholderClient.unix(socket, { backoff: { initialMs: 20, maxMs: 500 }, timeoutMs: 20_000 });
  const logger = cfg.logLevel === 'silent' ? false : {
    level: cfg.logLevel,
    redact: { paths: ['req.headers.authorization', 'req.headers.signature', 'req.headers["signature-input"]', 'req.body', 'res.body', 'body'], censor: '[redacted]' },
  };
  const sysLog = (msg: string, f: object = {}) => { if (cfg.logLevel !== 'silent') process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), component: 'api', msg, ...f })}\n`); };

  const audit = new AuditPipe({ store, keyholder, checkpointMs: cfg.checkpointMs, onError: (what, e) => sysLog(`audit: ${what} failed`, { code: (e as { code?: string }).code ?? 'unknown' }) });
  const sup: Supervisor = { child: null, ready: Promise.resolve(), stopping: false };
  spawnKeyholder(sup, socket, cfg.keyholderMode ?? (FROM_SOURCE ? 'source' : 'dist'), sysLog, () => { audit.invalidate(); metrics.sealed.set(1); });
  await sup.ready;
  await keyholder.connect();
  audit.start();

  const ctx: ApiContext = {
    store, keyholder, audit, metrics, version: SERVER_VERSION,
    limits: {
      perToken: new RateLimiter(cfg.rateLimit.perToken ?? { ratePerSecond: 50, burst: 100 }),
      perAddress: new RateLimiter(cfg.rateLimit.perAddress ?? { ratePerSecond: 5, burst: 20 }),
    },
    state: { initialized: false },
  };
  const app = createApp(ctx, { logger });
  for (const add of [sysRoutes, keyRoutes, dataRoutes, tokenRoutes, authRoutes, policyRoutes, auditRoutes]) add(app);
  app.route({ method: 'GET', url: '/v1/openapi.json', summary: 'This OpenAPI 3.1 document', tag: 'sys', auth: 'none' }, () => Promise.resolve(buildOpenApi(app.routes, SERVER_VERSION)));
  app.routes.push({ method: 'GET', url: '/metrics', summary: 'Prometheus metrics', tag: 'sys', auth: 'none' });
  app.fastify.get('/metrics', async (_req, reply) => {
    metrics.auditSize.set(audit.size);
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  const st = await keyholder.call('status', {});
  ctx.state.initialized = st.initialized;
  if (st.initialized) await audit.sync().catch((e: unknown) => sysLog('audit sync failed at start', { code: (e as { code?: string }).code ?? 'unknown' }));

  const server: RunningServer = {
    url: '',
    fastify: app.fastify,
    store, keyholder, dataDir,
    rootToken: null,
    shares: null,
    keyholderPid: () => sup.child?.pid,
    keyholderReady: async () => {
      await sup.ready;
      for (let i = 0; ; i++) {
        try { await keyholder.connect(); return; } catch (e) { if (i >= 100) throw e; }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async initialize(opts = {}) {
      const custody = await initCustody({ shares: opts.shares ?? 5, threshold: opts.threshold ?? 3 });
      const state = buildInitState({ masterKey: custody.masterKey, custody: custody.state, origin: cfg.origin });
      custody.masterKey.fill(0);
      await keyholder.call('init-state', { state });
      ctx.state.initialized = true;
      await audit.sync();
      const token = opts.rootToken ?? newToken().token;
      const id = newId('tok_');
      await audit.record({ ns: null, principal: null, auth: 'none', op: 'sys.init', outcome: 'allowed', details: { token_id: id, threshold: custody.state.threshold, shares: custody.shares.length } }, async (tx) => {
        if (!(await tx.getNamespace('sys'))) await tx.createNamespace({ name: 'sys', created: new Date() });
        if (!(await tx.getPrincipal('root'))) await tx.createPrincipal({ id: 'root', ns: 'sys', kind: 'person', name: 'root', roles: [], created: new Date() });
        await tx.createToken({ id, tokenHash: tokenHash(token), principal: 'root', admin: true, expiresAt: new Date(Date.now() + 365 * 86_400_000), created: new Date() });
        return { result: undefined };
      });
      server.rootToken = token;
      return { shares: [...custody.shares], rootToken: token };
    },
    async close() {
      sup.stopping = true;
      audit.stop();
      await app.fastify.close();
      await keyholder.close();
      const child = sup.child;
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await store.close();
      if (tempDir) rmSync(tempDir, { recursive: true, force: true });
    },
  };

  if (cfg.dev) {
    process.stderr.write('\n*** KEYWARD DEV MODE: in-memory shares, temporary data, auto-unsealed. NEVER use it for real keys. ***\n\n');
    if (!st.initialized) {
      const { shares, rootToken } = await server.initialize({ shares: 3, threshold: 2, ...(cfg.devRootToken ? { rootToken: cfg.devRootToken } : {}) });
      server.shares = shares;
      for (const s of shares.slice(0, 2)) {
        const k = await keyholder.call('unseal-key', {});
        await keyholder.call('unseal', { share: Buffer.from(await sealShareForBoot(s.text, k.recipient, k.bootId)).toString('base64url') });
      }
      if (!cfg.devRootToken) process.stderr.write(`root token: ${rootToken}\n`);
    }
  }

  const https = cfg.tlsCert && cfg.tlsKey ? { cert: readFileSync(cfg.tlsCert), key: readFileSync(cfg.tlsKey) } : null;
  if (https) throw new Error('TLS listening is not wired yet: terminate TLS in front, or use a loopback address');
  const address = await app.fastify.listen({ host: host.replace(/^\[|\]$/g, ''), port });
  (server as { url: string }).url = address;
  return server;
}
