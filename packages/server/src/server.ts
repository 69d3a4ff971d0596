/**
 * `startServer(config)`: the key service process.
 *
 * Opens the store (SQLite in the data directory, or the PostgreSQL database
 * of `store`: store/open.ts), spawns and supervises the
 * keyholder process (restarted when it dies — it comes back sealed), connects
 * the keyholder client, re-synchronises the audit frontier with the store,
 * and serves the HTTP API v1 (default 127.0.0.1:8200).
 *
 * TLS: with `tlsCert` and `tlsKey` (PEM files: certificate chain, private
 * key) the API serves HTTPS. Both files are read and checked before anything
 * starts: unreadable → ServerStartError KW_IO `TLS_UNREADABLE`; not PEM →
 * `TLS_INVALID`; a key that is not the certificate's → `TLS_KEY_MISMATCH`.
 * A non-loopback address needs TLS (`TLS_REQUIRED`) unless `insecure: true`,
 * which is allowed with a loud warning in the log.
 *
 * `dev: true` uses a temporary data directory, initialises it (initDataDir,
 * shares kept in memory), unseals automatically, listens on loopback only and
 * prints a loud warning. The root token is `RunningServer.rootToken` (the
 * server never writes it to its log).
 *
 * Logs go to `logStream`, else `logFile`, else stderr — never stdout.
 *
 * @example
 * const s = await startServer({ data: '/var/lib/keyward' });
 * console.log(s.url); await s.close();
 */
import { witnessPolicy, type WitnessPolicy } from '@keyward/tlog';
import { AuditWitnessPublisher } from './witness/publisher.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createApp, type ApiContext } from './api/app.js';
import { AuditPipe } from './api/audit-pipe.js';
import { RateLimiter } from './api/limits.js';
import { ApiMetrics } from './api/metrics.js';
import { buildOpenApi } from './api/openapi.js';
import { auditRoutes } from './api/routes/audit.js';
import { consoleRoutes } from './api/console.js';
import { inventoryRoutes } from './api/routes/inventory.js';
import { authRoutes } from './api/routes/auth.js';
import { dataRoutes } from './api/routes/data.js';
import { LifecycleScheduler } from './api/lifecycle/scheduler.js';
import { AuditShipper, metaPosition, sinkFromUrl } from './audit/ship.js';
import { auditStorageOf } from './audit/store-adapter.js';
import { keyRoutes } from './api/routes/keys.js';
import { principalRoutes } from './api/routes/principals.js';
import { policyRoutes } from './api/routes/policies.js';
import { mfaRoutes } from './api/routes/mfa.js';
import { approvalRoutes } from './api/routes/approvals.js';
import { governanceHead } from './api/governance.js';
import { custodySyncer } from './api/custody-sync.js';
import { expireDueApprovals } from './api/quorum-gate.js';
import { mfaSettings } from './api/mfa-settings.js';
import { attestRoutes } from './api/routes/attest.js';
import { sysRoutes } from './api/routes/sys.js';
import { tokenRoutes } from './api/routes/tokens.js';
import { directoryRoutes } from './api/routes/directory.js';
import { KeyholderDirectorySource } from './directory/keyholder-keys.js';
import { DirectoryService } from './directory/service.js';
import { DirectoryWitnessPublisher, readDirectoryWitnessState } from './directory/witness.js';
import { directoryWitnessRoutes } from './api/routes/directory-witness.js';
import { ServerConfigSchema, ServerStartError, type ServerConfig, type ServerConfigInput } from './config.js';
import { initDataDir, type InitOutcome } from './init.js';
import type { ShareFile } from './keyholder/custody.js';
import { KeyholderClient } from './keyholder/client.js';
import { defaultKeyholderMode, keyholderEntry } from './keyholder/entry.js';
import { AttestedTransport, parseClientKey } from './keyholder/attested-channel.js';
import { TcpTransport } from './keyholder/tcp-transport.js';
import { tpmChannelVerifier } from './keyholder/tpm-evidence.js';
import { commandEvidenceVerifier, platformChannelVerifier } from './keyholder/command-evidence.js';
import { attestSettings } from './api/attest-settings.js';
import { parseReleasePolicy } from '@keyward/attest';
import { sealShareForBoot } from './keyholder/unseal-key.js';
import { openConfiguredStore, withReadCache, type PostgresStore, type Store } from './store/index.js';
import { AUDIT_HMAC_KEY } from './keyholder/service.js';
import { NodeHeartbeat } from './api/nodes.js';

export const SERVER_VERSION = '0.1.0';

export interface RunningServer {
  /** `http(s)://host:port` once listening. */
  readonly url: string;
  readonly fastify: FastifyInstance;
  readonly store: Store;
  readonly keyholder: KeyholderClient;
  /** The lifecycle scheduler (automatic rotation, scheduled destruction); `tick()` runs one now. */
  readonly scheduler: LifecycleScheduler;
  readonly dataDir: string;
  /** The admin token made at init by this process (dev mode, or `initialize`). */
  rootToken: string | null;
  /** Dev mode: the unseal shares (in memory only). */
  shares: readonly ShareFile[] | null;
  /** The keyholder process id (changes when it is restarted). */
  keyholderPid(): number | undefined;
  /** Waits until a (re)started keyholder answers. */
  keyholderReady(): Promise<void>;
  /**
   * First-time initialisation (what `keyward init` asks for): shares and the
   * initial admin token, a bootstrap token that only enrolls the first
   * administrators (api/bootstrap.ts).
   */
  initialize(opts?: { shares?: number; threshold?: number; rootToken?: string }): Promise<{ shares: ShareFile[]; rootToken: string }>;
  close(): Promise<void>;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127(?:\.\d{1,3}){3}$/.test(host);
}

/** Reads and checks the PEM certificate chain and key (see the module comment for the refusals). */
export function loadTls(certFile: string, keyFile: string): { cert: Buffer; key: Buffer } {
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new ServerStartError('KW_IO', 'TLS_UNREADABLE', `cannot read the TLS ${what} '${file}' (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { cause: e });
    }
  };
  const cert = read(certFile, 'certificate');
  const key = read(keyFile, 'private key');
  let x509: X509Certificate;
  let priv: KeyObject;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    throw new ServerStartError('KW_INVALID_ARGUMENT', 'TLS_INVALID', `the TLS certificate '${certFile}' is not a PEM certificate`, { cause: e });
  }
  try {
    priv = createPrivateKey(key);
  } catch (e) {
    throw new ServerStartError('KW_INVALID_ARGUMENT', 'TLS_INVALID', `the TLS private key '${keyFile}' is not a PEM private key (encrypted keys are not supported)`, { cause: e });
  }
  if (!x509.checkPrivateKey(priv)) {
    throw new ServerStartError('KW_INVALID_ARGUMENT', 'TLS_KEY_MISMATCH', `the TLS private key '${keyFile}' does not belong to the certificate '${certFile}'`);
  }
  return { cert, key };
}

/** The HSM PIN file: its content less one trailing newline. KW_IO when unreadable, KW_INVALID_ARGUMENT when empty. */
function readPinFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ServerStartError('KW_IO', 'CONFIG_INVALID', `cannot read the HSM PIN file '${file}' (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { cause: e });
  }
  const pin = text.replace(/\r?\n$/, '');
  if (pin === '') throw new ServerStartError('KW_INVALID_ARGUMENT', 'CONFIG_INVALID', `the HSM PIN file '${file}' is empty`);
  return pin;
}

interface Supervisor {
  child: ChildProcess | null;
  ready: Promise<void>;
  stopping: boolean;
}

/** HSM-wrapped mode: the PIN goes to the keyholder on an inherited pipe (fd 3), never argv or its environment. */
interface KeyholderHsm { readonly pin: string; readonly retryMs?: number }

function spawnKeyholder(sup: Supervisor, socket: string, mode: 'dist' | 'source', log: (msg: string, f?: object) => void, onRestart: () => void, hsm: KeyholderHsm | null = null, extraEnv: Readonly<Record<string, string>> = {}): void {
  const hsmArgs = hsm ? ['--hsm-pin-fd', '3', ...(hsm.retryMs !== undefined ? ['--hsm-retry-ms', String(hsm.retryMs)] : [])] : [];
  const entry = keyholderEntry(mode);
  const env = { ...process.env, ...extraEnv };
  delete env.KEYWARD_HSM_PIN;
  const child = spawn(process.execPath, [...entry.args, '--socket', socket, ...hsmArgs], { cwd: entry.cwd, env, stdio: hsm ? ['ignore', 'ignore', 'pipe', 'pipe'] : ['ignore', 'ignore', 'pipe'] });
  if (hsm) {
    const pipe = child.stdio[3] as NodeJS.WritableStream & { on(ev: 'error', f: () => void): void };
    pipe.on('error', () => undefined); // a keyholder that exits early: its own log says why
    pipe.end(hsm.pin);
  }
  sup.child = child;
  sup.ready = new Promise<void>((resolve, reject) => {
    let buf = '';
    const stderr = child.stderr!; // stdio[2] is always a pipe
    stderr.setEncoding('utf8');
    stderr.on('data', (chunk: string) => {
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
      setTimeout(() => { if (!sup.stopping) spawnKeyholder(sup, socket, mode, log, onRestart, hsm, extraEnv); }, 200).unref();
    });
  });
  sup.ready.catch(() => undefined);
}

/** The attested transport to a remote keyholder (config keyholderConnect, keyholderClientKey, keyholderPolicy, attest roots: TPM, or Nitro / AMD / Intel for helper-program evidence). */
function remoteKeyholderTransport(cfg: ServerConfig): AttestedTransport {
  if (cfg.keyholderClientKey === undefined) throw new ServerStartError('KW_INVALID_ARGUMENT', 'CONFIG_INVALID', 'keyholderConnect needs keyholderClientKey (the API\'s Ed25519 private key, PEM)');
  if (cfg.keyholderPolicy === undefined) throw new ServerStartError('KW_INVALID_ARGUMENT', 'CONFIG_INVALID', 'keyholderConnect needs keyholderPolicy: the measurements the keyholder must attest (an unpinned keyholder is not trusted)');
  let key;
  try {
    key = parseClientKey(readFileSync(cfg.keyholderClientKey, 'utf8'));
  } catch (e) {
    throw new ServerStartError('KW_IO', 'CONFIG_INVALID', `cannot read the keyholder client key '${cfg.keyholderClientKey}' (an Ed25519 PEM private key)`, { cause: e });
  }
  let policy;
  try {
    policy = parseReleasePolicy(cfg.keyholderPolicy);
  } catch (e) {
    throw new ServerStartError('KW_INVALID_ARGUMENT', 'CONFIG_INVALID', `keyholderPolicy is not a valid policy: ${e instanceof Error ? e.message : 'invalid'}`, { cause: e });
  }
  if (Object.keys(policy.measurements ?? {}).length === 0) throw new ServerStartError('KW_INVALID_ARGUMENT', 'CONFIG_INVALID', 'keyholderPolicy must pin at least one measurement');
  const settings = attestSettings(cfg.attest ?? {});
  return new AttestedTransport(TcpTransport.parse(cfg.keyholderConnect!), { client: { key, policy, now: settings.now, verifier: platformChannelVerifier(tpmChannelVerifier({ roots: settings.roots.tpm, now: settings.now }), commandEvidenceVerifier({ roots: settings.roots, now: settings.now })) } });
}

/** Starts the key service. Refusals before anything starts are {@link ServerStartError}s. */
export async function startServer(input: ServerConfigInput = {}): Promise<RunningServer> {
  const parsed = ServerConfigSchema.safeParse(input);
  if (!parsed.success) throw new ServerStartError('KW_INVALID_ARGUMENT', 'CONFIG_INVALID', `invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const cfg = parsed.data;
  // Witnesses of the audit log (docs/witness.md): a bad entry stops the start, like any config error.
  let witnessPolicyValue: WitnessPolicy | null = null;
  if (cfg.witnesses !== undefined && cfg.witnesses.length > 0) {
    try {
      witnessPolicyValue = witnessPolicy(cfg.witnesses, cfg.witnessesK);
    } catch (e) {
      throw new ServerStartError('KW_INVALID_ARGUMENT', 'CONFIG_INVALID', `invalid configuration: witnesses: ${(e as Error).message}`, { cause: e });
    }
  } else if (cfg.witnessesK !== undefined) {
    throw new ServerStartError('KW_INVALID_ARGUMENT', 'CONFIG_INVALID', 'invalid configuration: witnessesK without witnesses');
  }
  const [host, portText] = (() => { const i = cfg.listen.lastIndexOf(':'); return [cfg.listen.slice(0, i), cfg.listen.slice(i + 1)] as const; })();
  const port = Number(portText);
  const loopback = isLoopback(host);
  if (cfg.dev && !loopback) throw new ServerStartError('KW_INVALID_ARGUMENT', 'DEV_LOOPBACK_ONLY', `dev mode listens on loopback only, not ${host}`);
  if ((cfg.tlsCert === undefined) !== (cfg.tlsKey === undefined)) throw new ServerStartError('KW_INVALID_ARGUMENT', 'TLS_INCOMPLETE', 'give both tlsCert and tlsKey, or neither');
  if (!loopback && cfg.tlsCert === undefined && !cfg.insecure) {
    throw new ServerStartError('KW_INVALID_ARGUMENT', 'TLS_REQUIRED', `refusing to listen on ${host} without TLS: give tlsCert and tlsKey, or insecure: true`);
  }
  const https = cfg.tlsCert !== undefined && cfg.tlsKey !== undefined ? loadTls(cfg.tlsCert, cfg.tlsKey) : null;
  if (!cfg.data && !cfg.dev) throw new ServerStartError('KW_INVALID_ARGUMENT', 'DATA_REQUIRED', 'a data directory is required (data / KEYWARD_DATA)');

  // Logs: never stdout (the caller's --json output lives there).
  const ownLogFile = !cfg.logStream && cfg.logFile ? createWriteStream(cfg.logFile, { flags: 'a', mode: 0o600 }) : null;
  const logOut: NodeJS.WritableStream = cfg.logStream ?? ownLogFile ?? process.stderr;
  const sysLog = (msg: string, f: object = {}) => { if (cfg.logLevel !== 'silent') logOut.write(`${JSON.stringify({ time: new Date().toISOString(), component: 'api', msg, ...f })}\n`); };
  /** Security warnings are written whatever the log level. */
  const warn = (msg: string) => { logOut.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'warn', component: 'api', msg })}\n`); };

  let tempDir: string | null = null;
  const dataDir = cfg.data ?? (tempDir = mkdtempSync(join(tmpdir(), 'keyward-dev-')));
  // Dev mode with its own directory: initialised before the keyholder starts (it reads the state at start).
  let devInit: InitOutcome | null = null;
  if (cfg.dev && tempDir) {
    devInit = await initDataDir(dataDir, { shares: 3, threshold: 2, keepSharesInMemory: true, bootstrapOnly: false, ...(cfg.store ? { store: cfg.store } : {}), ...(cfg.devRootToken ? { token: cfg.devRootToken } : {}), ...(cfg.origin ? { origin: cfg.origin } : {}) });
  }

  // SQLite in the data directory, or the PostgreSQL database of `store` (several nodes share it).
  // Behind a read cache of the data plane's per-request rows (store/read-cache.ts): this node's writes empty it at once, other nodes' within 1 s (change notifications, TTL).
  const store = withReadCache(await openConfiguredStore({ store: cfg.store, dataDir, onError: (what, e) => sysLog(`store: ${what} failed`, { code: (e as { code?: string }).code ?? 'unknown' }) }));
  const metrics = new ApiMetrics();
  const socket = join(dataDir, 'keyholder.sock');
  // A remote (TEE) keyholder: reached only through the attested channel, after its evidence verified and matched the pinned policy.
  const remote = cfg.keyholderConnect !== undefined ? remoteKeyholderTransport(cfg) : null;
  const keyholder = remote
    ? new KeyholderClient({ transport: remote, backoff: { initialMs: 200, maxMs: 5000 }, timeoutMs: 20_000, connectTimeoutMs: 5000 })
    : KeyholderClient.unix(socket, { backoff: { initialMs: 20, maxMs: 500 }, timeoutMs: 20_000 });
  const logger = cfg.logLevel === 'silent' ? false : {
    level: cfg.logLevel,
    stream: logOut,
    redact: { paths: ['req.headers.authorization', 'req.headers.signature', 'req.headers["signature-input"]', 'req.headers.cookie', 'req.body', 'res.body', 'body'], censor: '[redacted]' },
  };

  const audit = new AuditPipe({ store, keyholder, checkpointMs: cfg.checkpointMs, summaryMs: cfg.auditSummaryMs, onSequencer: (h) => { metrics.sequencerHold.observe(h.holdMs / 1000); metrics.sequencerEvents.inc(h.events); metrics.sequencerKeyholder.inc(h.keyholderMs / 1000); }, onError: (what, e) => { metrics.auditErrors.inc({ what, code: (e as { code?: string }).code ?? 'unknown' }); sysLog(`audit: ${what} failed`, { code: (e as { code?: string }).code ?? 'unknown' }); } });
  // Several nodes on PostgreSQL: what other nodes change reaches this one by LISTEN/NOTIFY. Every
  // notification empties the read cache of tokens, policies and key versions (withReadCache);
  // the audit pipe's cached audit-hmac key version is dropped when that key changes anywhere.
  if ('watch' in store) {
    await (store as unknown as PostgresStore).watch((e) => {
      if (e.kind === 'change') {
        if ((e.change.table === 'key_versions' || e.change.table === 'keys') && e.change.key === AUDIT_HMAC_KEY) audit.forgetAuditKey(e.change.ns);
        return;
      }
      sysLog('store: change notifications may have been missed; dropping cached audit keys', { reason: e.reason });
      store.listNamespaces().then((all) => { for (const n of all) audit.forgetAuditKey(n.name); }, () => undefined);
    }).catch((e: unknown) => sysLog('store: cannot listen for changes made on other nodes', { code: (e as { code?: string }).code ?? 'unknown' }));
  }
  const sup: Supervisor = { child: null, ready: Promise.resolve(), stopping: false };
  const hsmPin = cfg.hsmPin ?? (cfg.hsmPinFile !== undefined ? readPinFile(cfg.hsmPinFile) : undefined);
  const hsm: KeyholderHsm | null = hsmPin === undefined ? null : { pin: hsmPin, ...(cfg.hsmRetryMs !== undefined ? { retryMs: cfg.hsmRetryMs } : {}) };
  // The keyholder verifies release evidence itself (keyholder/ops/release-verify.ts) with the same trust roots (public certificates).
  const a = cfg.attest ?? {};
  const keyholderAttest = JSON.stringify({ ...(a.nitroRoots ? { nitroRoots: a.nitroRoots } : {}), ...(a.tpmRoots ? { tpmRoots: a.tpmRoots } : {}), ...(a.amdRoots ? { amdRoots: a.amdRoots } : {}), ...(a.intelRoots ? { intelRoots: a.intelRoots } : {}) });
  if (!remote) spawnKeyholder(sup, socket, cfg.keyholderMode ?? defaultKeyholderMode(), sysLog, () => { audit.invalidate(); metrics.sealed.set(1); }, hsm, { KEYWARD_KEYHOLDER_ATTEST: keyholderAttest });
  await sup.ready;
  try {
    await keyholder.connect();
  } catch (e) {
    await keyholder.close();
    await store.close();
    throw e;
  }
  audit.start();

  // The public-key directory (docs/directory.md §Key service), over the same store.
  // Its keys are the keyholder's (directory/keyholder-keys.ts), opened on first use; a pre-keyholder key file is imported then and deleted.
  const dirCfg = cfg.directory;
  const dirKeys = dirCfg?.enabled
    ? new KeyholderDirectorySource(keyholder, { legacyKeyFile: dirCfg.keyFile ?? join(dataDir, 'directory.key'), headLog: witnessPolicyValue !== null, log: sysLog })
    : null;
  const directory = dirCfg?.enabled && dirKeys
    ? {
        service: await DirectoryService.open({
          store, keys: dirKeys, params: { maxBehind: dirCfg.maxBehindMs, maxAhead: 60_000 },
          headLogVerifierKey: async () => (await (await dirKeys.holder()).headLogKey()).verifierKey,
        }),
        requireDevices: dirCfg.requireDevices,
      }
    : undefined;
  // Its heads go through the audit log's witnesses as a head log (docs/witness.md §The directory).
  const dirPublisher = directory && witnessPolicyValue !== null
    ? new DirectoryWitnessPublisher({ service: directory.service, store, policy: witnessPolicyValue, key: dirKeys!.headLog, intervalMs: cfg.witnessMs, log: sysLog, ...(dirCfg?.witnessRefreshMs !== undefined ? { refreshMs: dirCfg.witnessRefreshMs } : {}), onResult: (r) => metrics.observeDirectoryRound(r) })
    : null;
  const ctx: ApiContext = {
    ...(directory ? { directory } : {}),
    witnesses: witnessPolicyValue,
    store, keyholder, audit, metrics, version: SERVER_VERSION,
    limits: {
      perToken: new RateLimiter(cfg.rateLimit.perToken ?? { ratePerSecond: 50, burst: 100 }),
      perAddress: new RateLimiter(cfg.rateLimit.perAddress ?? { ratePerSecond: 5, burst: 20 }),
    },
    state: { initialized: false },
    ...(cfg.clock ? { clock: cfg.clock } : {}),
  };
  const app = createApp(ctx, { logger, ...(https ? { https } : {}) });
  for (const add of [sysRoutes, keyRoutes, dataRoutes, tokenRoutes, authRoutes, principalRoutes, policyRoutes, auditRoutes, inventoryRoutes, consoleRoutes]) add(app);
  mfaRoutes(app, cfg.mfa ?? {});
  approvalRoutes(app);
  directoryRoutes(app);
  directoryWitnessRoutes(app, dirPublisher);
  attestRoutes(app, cfg.attest ?? {});
  app.route({ method: 'GET', url: '/v1/openapi.json', summary: 'This OpenAPI 3.1 document', tag: 'sys', auth: 'none' }, () => Promise.resolve(buildOpenApi(app.routes, SERVER_VERSION)));
  app.routes.push({ method: 'GET', url: '/metrics', summary: 'Prometheus metrics', tag: 'sys', auth: 'none' });
  app.fastify.get('/metrics', async (_req, reply) => {
    metrics.auditSize.set(audit.size);
    try {
      const kh = await keyholder.call('status', {}, { timeoutMs: 2000 });
      metrics.sealed.set(kh.sealed ? 1 : 0);
      metrics.observeHsm(kh.hsm ?? null);
    } catch {
      metrics.sealed.set(1);
      metrics.observeHsm(undefined);
    }
    await metrics.observeStore(store).catch((e: unknown) => sysLog('metrics: store read failed', { code: (e as { code?: string }).code ?? 'unknown' }));
    await (directory ? readDirectoryWitnessState(store, dirPublisher?.policy ?? null).then((d) => metrics.observeDirectory({ size: d.treeSize, k: d.k, cosigned: d.witnessed })) : Promise.resolve(metrics.observeDirectory(null)))
      .catch((e: unknown) => sysLog('metrics: directory read failed', { code: (e as { code?: string }).code ?? 'unknown' }));
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  const st = await keyholder.call('status', {});
  ctx.state.initialized = st.initialized;
  if (st.initialized) await audit.sync().catch((e: unknown) => sysLog('audit sync failed at start', { code: (e as { code?: string }).code ?? 'unknown' }));
  // Ticks do nothing while sealed; the first one after unseal catches up on what fell due meanwhile.
  const scheduler = new LifecycleScheduler({ ctx, intervalMs: cfg.schedulerMs, log: sysLog });
  scheduler.start();
  // Audit shipping (audit/ship.ts): verifiable segments to an external sink, resumed from the stored position.
  const shipper = cfg.auditShip === undefined ? null : (() => {
    const sink = sinkFromUrl(cfg.auditShip);
    return new AuditShipper({
      storage: auditStorageOf(store), sink, position: metaPosition(store, sink.name),
      onError: (e) => { metrics.auditErrors.inc({ what: 'ship', code: (e as { code?: string }).code ?? 'unknown' }); sysLog('audit: shipping failed; retrying', { code: (e as { code?: string }).code ?? 'unknown' }); },
    });
  })();
  shipper?.start(cfg.auditShipMs);
  const publisher = witnessPolicyValue === null ? null : new AuditWitnessPublisher({
    store, policy: witnessPolicyValue, intervalMs: cfg.witnessMs, log: sysLog,
    onShortfall: () => metrics.auditErrors.inc({ what: 'witness', code: 'TLOG_NOT_ENOUGH_COSIGNATURES' }),
  });
  publisher?.start();
  dirPublisher?.start();
  // The directory's heartbeat (docs/directory.md §Freshness): an idle log still gets an entry every
  // heartbeatMs, so its newest timestamp stays within max_behind (and its head gets re-witnessed).
  const dirHeartbeatMs = dirCfg ? dirCfg.heartbeatMs ?? Math.floor(dirCfg.maxBehindMs / 4) : 0;
  const dirHeartbeat = directory
    ? setInterval(() => {
        void directory.service.heartbeat(dirHeartbeatMs).catch((e: unknown) => {
          const code = (e as { code?: string }).code ?? 'unknown';
          // Sealed or not initialised: the directory waits for the keyholder like every request.
          if (code !== 'KW_SEALED' && code !== 'KW_NOT_INITIALIZED') sysLog('directory: heartbeat failed', { code });
        });
      }, Math.max(250, Math.min(60_000, Math.floor(dirHeartbeatMs / 4))))
    : null;
  dirHeartbeat?.unref();
  // Signed governance (docs/mfa.md §Signed policy): this node's keyholder takes the newest snapshot another node's
  // keyholder signed (database copies, signature checked by the keyholder) within a second; nothing while sealed.
  let governanceSyncing = false;
  const syncCustody = custodySyncer(app);
  const governanceTimer = setInterval(() => {
    if (governanceSyncing || !ctx.state.initialized) return;
    governanceSyncing = true;
    // After a rekey on another node (api/custody-sync.ts): the new share set, MAC checked by the keyholder.
    void Promise.allSettled([governanceHead(app), syncCustody()]).finally(() => { governanceSyncing = false; });
  }, 1000);
  governanceTimer.unref();
  // Expired approval requests are closed (audited `approvals.expire`) by a sweep, not only when touched; idempotent across nodes.
  let approvalSweep: Promise<unknown> | null = null;
  const approvalTimer = setInterval(() => {
    if (approvalSweep || !ctx.state.initialized) return;
    approvalSweep = expireDueApprovals(app).catch(() => undefined).finally(() => { approvalSweep = null; });
  }, mfaSettings(ctx).approvalSweepMs);
  approvalTimer.unref();
  // Cluster node list (api/nodes.ts, GET /v1/sys/nodes): this node's heartbeat in the shared store's meta table.
  const heartbeat = new NodeHeartbeat({
    store, version: ctx.version,
    facts: async () => {
      try {
        const st = await keyholder.call('status', {}, { timeoutMs: 2000 });
        // The directory's public keys once this node has opened them: every node must show the same (doctor: directory-keys-differ).
        return { sealed: st.sealed, keyholder: 'up', hsm: st.hsm ? st.hsm.state : null, directory: dirKeys?.publicKeys ?? null };
      } catch {
        return { sealed: true, keyholder: 'down', hsm: null };
      }
    },
  });
  heartbeat.start();

  async function initializeRunning(opts: { shares?: number; threshold?: number; rootToken?: string }, bootstrapOnly: boolean): Promise<{ shares: ShareFile[]; rootToken: string }> {
    const r = await initDataDir(dataDir, {
      shares: opts.shares ?? 5, threshold: opts.threshold ?? 3, keepSharesInMemory: true, bootstrapOnly,
      ...(opts.rootToken ? { token: opts.rootToken } : {}), ...(cfg.origin ? { origin: cfg.origin } : {}),
      running: {
        store,
        installState: async (state) => {
          await keyholder.call('init-state', { state });
          ctx.state.initialized = true;
          await audit.sync();
        },
        record: (event, body) => audit.record(event, async (tx) => { await body(tx); return { result: undefined }; }),
      },
    });
    server.rootToken = r.token;
    return { shares: [...r.shareRecords], rootToken: r.token };
  }

  const server: RunningServer = {
    url: '',
    fastify: app.fastify,
    store, keyholder, scheduler, dataDir,
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
    initialize: (opts = {}) => initializeRunning(opts, true),
    async close() {
      sup.stopping = true;
      clearInterval(governanceTimer);
      clearInterval(approvalTimer);
      await heartbeat.stop();
      await approvalSweep;
      await scheduler.stop();
      await shipper?.stop();
      await publisher?.stop();
      if (dirHeartbeat) clearInterval(dirHeartbeat);
      await dirPublisher?.stop();
      // Write the pending failure summary and read windows before the keyholder goes.
      await audit.drain().catch((e: unknown) => sysLog('audit: final drain failed', { code: (e as { code?: string }).code ?? 'unknown' }));
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
      if (ownLogFile) await new Promise<void>((r) => ownLogFile.end(r));
    },
  };

  if (cfg.dev) {
    warn('KEYWARD DEV MODE: in-memory shares, temporary data, auto-unsealed. NEVER use it for real keys.');
    let shares: readonly ShareFile[] | null = devInit ? devInit.shareRecords : null;
    if (devInit) server.rootToken = devInit.token;
    if (!st.initialized) {
      const r = await initializeRunning({ shares: 3, threshold: 2, ...(cfg.devRootToken ? { rootToken: cfg.devRootToken } : {}) }, false);
      shares = r.shares;
    }
    if (shares) {
      server.shares = shares;
      for (const s of shares.slice(0, 2)) {
        const k = await keyholder.call('unseal-key', {});
        await keyholder.call('unseal', { share: Buffer.from(await sealShareForBoot(s.text, k.recipient, k.bootId)).toString('base64url') });
      }
    }
  }
  if (!loopback && !https) warn(`INSECURE: listening on ${host} with plain HTTP (insecure: true). Bearer tokens travel in the clear; put TLS in front or give tlsCert/tlsKey.`);

  const address = await app.fastify.listen({ host: host.replace(/^\[|\]$/g, ''), port });
  (server as { url: string }).url = address;
  return server;
}
