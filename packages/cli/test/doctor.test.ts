/**
 * `keyward doctor` on a real deployment: a data directory made by the real
 * `keyward init`, a real `keyward server` process, state made through the
 * real CLI. A deliberately weak deployment (dev mode on a non-loopback
 * address in its config, a ten-year token, an overdue key, a tampered audit
 * row in the SQLite store, a vulnerable dependency in its lockfile) reports
 * each problem by id and exits 1; the fixed deployment reports none of them.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { BIN, fails, kw, ok, tempDir } from './helpers.js';

const t = tempDir();
const dir = t.path('kw');
const rootToken = t.path('root.token');
const aliceToken = t.path('alice.token');
let server: ChildProcess | null = null;
let addr = '';
let evalAt = '';
let legacyTokenId = '';

interface Report { ok: boolean; summary: Record<string, number>; findings: { id: string; severity: string; title: string; why: string; fix: string | null; details?: Record<string, unknown> }[] }

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function startServer(data = dir): Promise<void> {
  const port = await freePort();
  addr = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'NODE_OPTIONS') env[k] = v;
  server = spawn(process.execPath, [BIN, 'server', '--data', data, '--listen', `127.0.0.1:${port}`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  server.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  server.stdout!.resume();
  const deadline = Date.now() + 60_000;
  while (!/keyward server listening/.test(err)) {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error(`server did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopServer(): Promise<void> {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  server = null;
}

const env = () => ({ KEYWARD_ADDR: addr });
const ids = (r: Report) => new Set(r.findings.map((f) => f.id));
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

/** A minimal npm lockfile (v3) pinning elliptic at `version`. */
function lockfile(file: string, version: string): string {
  writeFileSync(file, JSON.stringify({
    name: 'deployment', version: '1.0.0', lockfileVersion: 3, requires: true,
    packages: {
      '': { name: 'deployment', version: '1.0.0', dependencies: { elliptic: version, '@noble/curves': '2.4.0' } },
      'node_modules/elliptic': { version, resolved: `https://registry.npmjs.org/elliptic/-/elliptic-${version}.tgz` },
      'node_modules/@noble/curves': { version: '2.4.0' },
    },
  }, null, 2));
  return file;
}

before(async () => {
  ok(await kw(['init', '--data', dir, '--shares', '3', '--threshold', '2', '--token-file']), true);
  cpSync(`${dir}/initial-admin-token`, rootToken);
  await startServer();
  ok(await kw(['unseal', '--share', `${dir}/shares/share-1.txt`], { env: env() }));
  ok(await kw(['unseal', '--share', `${dir}/shares/share-2.txt`], { env: env() }));
  // The initial token enrolls the first administrator, who does the rest.
  ok(await kw(['token', 'create', '--principal', 'alice', '--kind', 'person', '--admin', '--ttl', String(30 * 86400), '--token-file', rootToken, '-o', aliceToken], { env: env() }), true);
  const a = ['--token-file', aliceToken];
  // Weak: a token valid for ten years.
  const legacy = JSON.parse(ok(await kw(['token', 'create', '--principal', 'svc-legacy', '--ttl', String(10 * 365 * 86400), '--json', ...a], { env: env() })).out) as { id: string };
  legacyTokenId = legacy.id;
  // Weak: a key with a one-hour rotation period, evaluated an hour after its creation.
  ok(await kw(['keys', 'create', 'app/orders', '--rotation-period', '3600', ...a], { env: env() }));
  const shown = JSON.parse(ok(await kw(['keys', 'show', 'app/orders', '--json', ...a], { env: env() })).out) as { versions: { created: string }[] };
  evalAt = new Date(Date.parse(shown.versions[0]!.created) + 3600_000 + 500).toISOString();
  // Info: a version scheduled for deletion.
  ok(await kw(['keys', 'create', 'app/old', ...a], { env: env() }));
  ok(await kw(['keys', 'rotate', 'app/old', ...a], { env: env() }));
  ok(await kw(['keys', 'schedule-deletion', 'app/old', '1', '--days', '7', ...a], { env: env() }));
  await new Promise((r) => setTimeout(r, 1500)); // a signed checkpoint covers the events; the key is > 1 s old
});

after(async () => {
  await stopServer();
  t.cleanup();
});

void test('doctor: the token never on the command line; usage errors', async () => {
  fails(await kw(['doctor', '--addr', addr, '--token', 'kw_x']), 'KW_INVALID_ARGUMENT');
  fails(await kw(['doctor', '--data', dir, '--addr', addr]), 'KW_INVALID_ARGUMENT');
  fails(await kw(['doctor', '--now', 'yesterday']), 'KW_INVALID_ARGUMENT');
});

void test('online: a running, unsealed service; the audit log is exported and verifies; no answer is critical', async () => {
  const r = await kw(['doctor', '--addr', addr, '--token-file', aliceToken, '--namespace', 'app', '--audit-key', `${dir}/audit-verifier-key.txt`, '--now', evalAt, '--lockfile', lockfile(t.path('ok-lock.json'), '6.6.1'), '--json']);
  const rep = JSON.parse(r.out) as Report;
  assert.equal(r.code, 0, r.out + r.stderr);
  const found = ids(rep);
  assert.ok(found.has('key-rotation-overdue'));
  assert.ok(found.has('version-scheduled-for-deletion'));
  for (const id of ['audit-log-not-verifying', 'node-sealed', 'keyholder-down', 'audit-not-checked', 'dependency-vulnerable']) assert.ok(!found.has(id), id);
  assert.ok(found.has('hsm-not-configured') && found.has('witnesses-not-configured') && found.has('admin-without-mfa'));
  assert.ok(found.has('quorum-disabled-for-destroy'), 'no quorum rule covers keys.destroy (GET /v1/quorum)');
  assert.ok(!found.has('governance-not-anchored'), 'init signed the genesis (GET /v1/governance has a snapshot)');
  // Without a token: only the unauthenticated checks, said so.
  const anon = JSON.parse(ok(await kw(['doctor', '--addr', addr, '--json'])).out) as Report;
  assert.ok(ids(anon).has('audit-not-checked'));
  // Nobody listening: critical, exit 1.
  const down = await kw(['doctor', '--addr', 'http://127.0.0.1:1', '--json']);
  assert.equal(down.code, 1);
  assert.ok(ids(JSON.parse(down.out) as Report).has('service-unreachable'));
});

void test('a weak deployment reports each problem by id; the fixed one reports none of them', async () => {
  await stopServer();
  // The weak copy: the same store with one audit row changed behind the service's back.
  const weak = t.path('weak');
  cpSync(dir, weak, { recursive: true });
  const Database = createRequire(fileURLToPath(new URL('../../server/package.json', import.meta.url)))('better-sqlite3') as new (p: string) => { exec(s: string): void; prepare(s: string): { run(...a: unknown[]): { changes: number }; get(...a: unknown[]): unknown }; close(): void };
  const db = new Database(`${weak}/keyward.db`);
  db.exec('DROP TRIGGER audit_events_no_update');
  // Backdate event 2 by a year: still a canonical, schema-valid event, but not the one the log signed.
  const row = db.prepare('SELECT event FROM audit_events WHERE idx = 2').get() as { event: string };
  const forged = row.event.replace(/"time":"(\d{4})-/, (_m, y: string) => `"time":"${Number(y) - 1}-`);
  assert.notEqual(forged, row.event);
  const changed = db.prepare('UPDATE audit_events SET event = ? WHERE idx = 2').run(forged);
  db.close();
  assert.equal(changed.changes, 1);
  // HSM-wrapped custody whose PKCS#11 module is not on this machine (doctor reads only the custody fragment).
  const state = JSON.parse(readFileSync(`${weak}/keyholder.json`, 'utf8')) as { custody: Record<string, unknown> };
  state.custody.hsm = { module: '/nonexistent/libvendor-pkcs11.so', tokenLabel: 'keyward', keyLabel: 'keyward-mk-x', wrapMechanism: 'pad', wrappedMasterKey: 'AA' };
  writeFileSync(`${weak}/keyholder.json`, JSON.stringify(state), { mode: 0o600 });
  writeFileSync(t.path('weak.json'), JSON.stringify({ listen: '0.0.0.0:8200', dev: true, insecure: true }));
  const weakLock = lockfile(t.path('weak-lock.json'), '6.5.4');

  const before = sha(`${weak}/keyward.db`);
  const w = await kw(['doctor', '--data', weak, '--config', t.path('weak.json'), '--lockfile', weakLock, '--now', evalAt, '--json']);
  assert.equal(w.code, 1, 'critical findings exit 1');
  assert.equal(sha(`${weak}/keyward.db`), before, 'doctor changed nothing in the store');
  const rep = JSON.parse(w.out) as Report;
  assert.equal(rep.ok, false);
  const byId = (id: string) => rep.findings.filter((f) => f.id === id);
  const expectOne = (id: string, severity: string, re: RegExp) => {
    const f = byId(id);
    assert.ok(f.length > 0, `expected ${id} in ${[...ids(rep)].join(', ')}`);
    assert.equal(f[0]!.severity, severity, id);
    assert.match(f.map((x) => x.title).join('\n'), re, id);
    assert.ok(f[0]!.why.length > 20 && f[0]!.fix !== null, `${id}: why and fix`);
  };
  expectOne('dev-mode', 'critical', /non-loopback address 0\.0\.0\.0:8200/);
  expectOne('listener-without-tls', 'critical', /0\.0\.0\.0:8200/);
  expectOne('token-without-expiry', 'warning', new RegExp(legacyTokenId));
  expectOne('key-rotation-overdue', 'warning', /app\/orders v1/);
  expectOne('audit-log-not-verifying', 'critical', /AUDIT_MODIFIED at event 2/);
  expectOne('dependency-vulnerable', 'critical', /elliptic@6\.5\.4.*GHSA-vjh7-7g9h-fjfh/);
  expectOne('version-scheduled-for-deletion', 'info', /app\/old v1/);
  expectOne('admin-without-mfa', 'warning', /alice/);
  expectOne('mfa-not-enforced', 'warning', /not enforced/);
  expectOne('hsm-unreachable', 'critical', /libvendor-pkcs11\.so/);
  expectOne('quorum-disabled-for-destroy', 'warning', /quorum disabled for destroy/);
  assert.match(byId('quorum-disabled-for-destroy')[0]!.fix!, /keyward quorum set keys\.destroy --role key-admins --threshold 2/);
  assert.match(byId('key-rotation-overdue')[0]!.fix!, /^keyward keys rotate app\/orders$/);
  assert.match(byId('token-without-expiry')[0]!.fix!, new RegExp(`keyward token revoke ${legacyTokenId}$`));
  // The human report names the same ids, with why and fix.
  const human = await kw(['doctor', '--data', weak, '--config', t.path('weak.json'), '--lockfile', weakLock, '--now', evalAt]);
  assert.equal(human.code, 1);
  for (const id of ['dev-mode', 'listener-without-tls', 'token-without-expiry', 'key-rotation-overdue', 'audit-log-not-verifying', 'dependency-vulnerable']) {
    assert.match(human.out, new RegExp(`^(CRITICAL|WARNING ) {2}${id}: `, 'm'), id);
  }
  assert.match(human.out, /^ {10}why: /m);
  assert.match(human.out, /^ {10}fix: /m);

  // The fixes, with the commands doctor gave: revoke the long token, rotate the key,
  // a TLS-less loopback config without dev mode, a patched lockfile, the untampered store.
  await startServer();
  ok(await kw(['unseal', '--share', `${dir}/shares/share-1.txt`], { env: env() }));
  ok(await kw(['unseal', '--share', `${dir}/shares/share-3.txt`], { env: env() }));
  ok(await kw(['token', 'revoke', legacyTokenId, '--token-file', aliceToken], { env: env() }), true);
  ok(await kw(['keys', 'rotate', 'app/orders', '--token-file', aliceToken], { env: env() }));
  // The quorum fix doctor gave (one approver here: the test has one person besides the requester's own role).
  ok(await kw(['principal', 'set-roles', 'alice', '--role', 'key-admins', '--token-file', aliceToken], { env: env() }));
  ok(await kw(['quorum', 'set', 'keys.destroy', '--role', 'key-admins', '--threshold', '1', '--token-file', aliceToken], { env: env() }));
  assert.ok(!ids(JSON.parse((await kw(['doctor', '--addr', addr, '--token-file', aliceToken, '--json'])).out) as Report).has('quorum-disabled-for-destroy'), 'online: fixed');
  await new Promise((r) => setTimeout(r, 1500));
  await stopServer();
  writeFileSync(t.path('good.json'), JSON.stringify({ listen: '127.0.0.1:8200', data: dir }));
  const g = await kw(['doctor', '--data', dir, '--config', t.path('good.json'), '--lockfile', lockfile(t.path('good-lock.json'), '6.6.1'), '--now', evalAt, '--json']);
  const good = JSON.parse(g.out) as Report;
  assert.equal(g.code, 0, g.out);
  assert.equal(good.ok, true);
  for (const id of ['dev-mode', 'listener-without-tls', 'token-without-expiry', 'key-rotation-overdue', 'audit-log-not-verifying', 'dependency-vulnerable', 'store-unreadable', 'hsm-unreachable', 'quorum-disabled-for-destroy',
    'governance-not-anchored', 'governance-genesis-on-first-use']) {
    assert.ok(!ids(good).has(id), `the fixed deployment still reports ${id}`);
  }
});

void test('advisory list: stale after 90 days (injected clock); npm audit report; SBOM drift', async () => {
  const list = JSON.parse(readFileSync(fileURLToPath(new URL('../data/advisories.json', import.meta.url)), 'utf8')) as { updated: string };
  const updated = Date.parse(`${list.updated}T00:00:00Z`);
  const at = (days: number) => new Date(updated + days * 86_400_000).toISOString();
  const fresh = JSON.parse(ok(await kw(['doctor', '--now', at(90), '--json'])).out) as Report;
  assert.ok(!ids(fresh).has('advisories-stale'));
  const stale = JSON.parse(ok(await kw(['doctor', '--now', at(91), '--json'])).out) as Report;
  assert.match(stale.findings.find((f) => f.id === 'advisories-stale')!.title, /91 days old/);

  writeFileSync(t.path('npm-audit.json'), JSON.stringify({
    auditReportVersion: 2,
    vulnerabilities: { 'node-forge': { name: 'node-forge', severity: 'high', range: '<1.3.0', via: [{ source: 1, title: 'Improper Verification of Cryptographic Signature', url: 'https://github.com/advisories/GHSA-cfm4-qjh2-4765', severity: 'high' }], fixAvailable: true } },
  }));
  const audited = await kw(['doctor', '--npm-audit', t.path('npm-audit.json'), '--json']);
  assert.equal(audited.code, 1);
  const f = (JSON.parse(audited.out) as Report).findings.find((x) => x.id === 'npm-audit-vulnerability')!;
  assert.equal(f.severity, 'critical');
  assert.match(f.title, /node-forge.*GHSA-cfm4-qjh2-4765/);
  fails(await kw(['doctor', '--npm-audit', t.path('weak.json')]), 'KW_INVALID_ARGUMENT');

  // An installation and its SBOM: equal, then one package changed and one added.
  const inst = t.path('inst');
  const pkg = (name: string, version: string) => {
    const d = `${inst}/node_modules/${name}`;
    cpSync(t.path('weak.json'), `${d}/x.json`, { recursive: true });
    writeFileSync(`${d}/package.json`, JSON.stringify({ name, version }));
  };
  pkg('@noble/curves', '2.4.0');
  pkg('elliptic', '6.6.1');
  const sbom = { bomFormat: 'CycloneDX', specVersion: '1.5', components: [
    { type: 'library', name: 'curves', group: '@noble', version: '2.4.0', purl: 'pkg:npm/%40noble/curves@2.4.0' },
    { type: 'library', name: 'elliptic', version: '6.6.1', purl: 'pkg:npm/elliptic@6.6.1' },
  ] };
  writeFileSync(t.path('sbom.json'), JSON.stringify(sbom));
  const same = JSON.parse(ok(await kw(['doctor', '--sbom', t.path('sbom.json'), '--install-dir', inst, '--json'])).out) as Report;
  assert.ok(![...ids(same)].some((id) => id.startsWith('sbom-')), JSON.stringify(same.findings));
  pkg('elliptic', '6.5.4');
  pkg('left-pad', '1.3.0');
  const drift = await kw(['doctor', '--sbom', t.path('sbom.json'), '--install-dir', inst, '--json']);
  assert.equal(drift.code, 1);
  const d = JSON.parse(drift.out) as Report;
  assert.match(d.findings.find((x) => x.id === 'sbom-package-changed')!.title, /elliptic@6\.5\.4.*6\.6\.1/);
  assert.match(d.findings.find((x) => x.id === 'sbom-package-added')!.title, /left-pad@1\.3\.0/);
});

void test('governance: a fresh init is anchored; a legacy keyholder state is governance-not-anchored until its first change, then governance-genesis-on-first-use names what the genesis trusted', async () => {
  const report = async (args: string[]) => JSON.parse((await kw(['doctor', ...args, '--json'], { env: env() })).out) as Report;
  const fresh = t.path('fresh');
  ok(await kw(['init', '--data', fresh, '--shares', '2', '--threshold', '2', '--token-file']), true);
  const f = ids(await report(['--data', fresh]));
  assert.ok(!f.has('governance-not-anchored') && !f.has('governance-genesis-on-first-use'), 'init signed the genesis into keyholder.json');

  // A keyholder state made before init signed a genesis: the same directory without keyholder.json's `governance`.
  const legacy = t.path('legacy');
  cpSync(fresh, legacy, { recursive: true });
  const state = JSON.parse(readFileSync(`${legacy}/keyholder.json`, 'utf8')) as { governance?: unknown };
  assert.ok(state.governance, 'a fresh init holds the genesis');
  delete state.governance;
  writeFileSync(`${legacy}/keyholder.json`, JSON.stringify(state), { mode: 0o600 });
  const l = (await report(['--data', legacy])).findings.find((x) => x.id === 'governance-not-anchored');
  assert.ok(l, 'the legacy state is reported');
  assert.equal(l.severity, 'warning');
  assert.match(l.title, /holds no signed governance snapshot.*trust on first use/);
  assert.match(l.why, /trust on first use/);
  assert.match(l.fix!, /no command re-anchors.*keyward principal set-roles ID --role ROLE/);
  assert.deepEqual(l.details?.policies, []);

  try {
    await startServer(legacy);
    ok(await kw(['unseal', '--share', `${legacy}/shares/share-1.txt`], { env: env() }));
    ok(await kw(['unseal', '--share', `${legacy}/shares/share-2.txt`], { env: env() }));
    const carol = t.path('carol.token');
    ok(await kw(['token', 'create', '--principal', 'carol', '--kind', 'person', '--admin', '--ttl', String(30 * 86400), '--token-file', `${legacy}/initial-admin-token`, '-o', carol], { env: env() }), true);
    ok(await kw(['keys', 'create', 'app/orders', '--token-file', carol], { env: env() }));
    assert.ok(ids(await report(['--addr', addr, '--token-file', carol])).has('governance-not-anchored'), 'online: no snapshot in force');
    // A grant written straight into the database before the first governance change: the genesis will sign it.
    const Database = createRequire(fileURLToPath(new URL('../../server/package.json', import.meta.url)))('better-sqlite3') as new (p: string) => { prepare(s: string): { run(...a: unknown[]): { changes: number } }; close(): void };
    const db = new Database(`${legacy}/keyward.db`);
    try {
      db.prepare('INSERT INTO policies (id, ns, version, document, created) VALUES (?, ?, 1, ?, ?)').run('early', 'app', JSON.stringify({ grants: [{ roles: ['ops'], operations: ['datakey'], keys: ['app/*'] }] }), Date.now());
    } finally {
      db.close();
    }
    const pending = (await report(['--data', legacy])).findings.find((x) => x.id === 'governance-not-anchored');
    assert.match(pending?.title ?? '', /now 1 policy and 0 principals with roles/);
    assert.deepEqual(pending?.details?.policies, ['app/early']);
    await new Promise((r) => setTimeout(r, 1100)); // past the server's 1 s read cache
    // The first governance change: the keyholder signs a genesis over the database as it is (trust on first use).
    ok(await kw(['principal', 'set-roles', 'carol', '--role', 'ops', '--token-file', carol], { env: env() }));
    assert.ok(!ids(await report(['--addr', addr, '--token-file', carol])).has('governance-not-anchored'), 'online: anchored now');
    await new Promise((r) => setTimeout(r, 1500)); // a checkpoint covers the events
  } finally {
    await stopServer();
  }
  const after = await report(['--data', legacy]);
  assert.ok(!ids(after).has('governance-not-anchored'), 'anchored (on first use)');
  const g = after.findings.find((x) => x.id === 'governance-genesis-on-first-use');
  assert.ok(g, `expected governance-genesis-on-first-use in ${[...ids(after)].join(', ')}`);
  assert.equal(g.severity, 'info');
  assert.match(g.title, /trust on first use .*signed the 1 policy .*\(app\/early\)/);
  assert.match(g.fix!, /KW_GOVERNANCE_ANCHORED.*keyward policy put NS\/ID --file FILE/);
});

void test('docs/cli.md lists every finding id of doctor', async () => {
  const { CHECKS } = await import('../src/doctor/findings.js');
  const doc = readFileSync(fileURLToPath(new URL('../../../docs/cli.md', import.meta.url)), 'utf8');
  for (const id of Object.keys(CHECKS)) assert.match(doc, new RegExp(`\`${id}\``), `docs/cli.md does not list ${id}`);
});
