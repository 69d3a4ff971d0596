/**
 * Key service commands through the real built binary: init (offline), then a
 * real `keyward server` process (on a directory made by `keyward init`) on an ephemeral loopback port for the
 * online commands, and the offline audit verifier.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { BIN, fails, kw, ok, tempDir } from './helpers.js';

const t = tempDir();
let server: ChildProcess | null = null;
let addr = '';
/** The initial admin token of init: it only enrolls administrators (bootstrap rule). */
const bootstrapFile = t.path('init.token');
/** The first administrator's token, enrolled with it (test "init token: …"). */
const tokenFile = t.path('admin.token');
const srvDir = t.path('srv');

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

before(async () => {
  const port = await freePort();
  addr = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'NODE_OPTIONS') env[k] = v;
  const init = ok(await kw(['init', '--data', srvDir, '--shares', '3', '--threshold', '2']), true);
  writeFileSync(bootstrapFile, init.out, { mode: 0o600 });
  server = spawn(process.execPath, [BIN, 'server', '--data', srvDir, '--listen', `127.0.0.1:${port}`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  server.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  server.stdout!.resume();
  const deadline = Date.now() + 60_000;
  while (!/keyward server listening/.test(err)) {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error(`server did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  t.cleanup();
});

const env = () => ({ KEYWARD_ADDR: addr });
const mode = (p: string) => statSync(p).mode & 0o777;

void test('init: data dir 0700, store, keyholder state, shares 0600, token once on stdout', async () => {
  const dir = t.path('data');
  const r = ok(await kw(['init', '--data', dir, '--shares', '4', '--threshold', '3']), true);
  assert.match(r.out, /^kw_[A-Za-z0-9_-]{43}\n$/);
  assert.match(r.stderr, /any 3 of 4/);
  assert.equal(mode(dir), 0o700);
  for (const f of ['keyward.db', 'keyholder.json', 'audit-verifier-key.txt']) assert.equal(mode(`${dir}/${f}`), 0o600, f);
  assert.deepEqual(readdirSync(`${dir}/shares`).sort(), ['share-1.txt', 'share-2.txt', 'share-3.txt', 'share-4.txt']);
  for (let i = 1; i <= 4; i++) {
    assert.equal(mode(`${dir}/shares/share-${i}.txt`), 0o600);
    assert.match(readFileSync(`${dir}/shares/share-${i}.txt`, 'utf8'), new RegExp(`^# keyward unseal share ${i} of 4 \\(threshold 3\\)\\nKEYWARD-SHARE-1:`));
  }
  const state = JSON.parse(readFileSync(`${dir}/keyholder.json`, 'utf8')) as { custody: { threshold: number; shareHashes: string[] } };
  assert.equal(state.custody.threshold, 3);
  assert.equal(state.custody.shareHashes.length, 4);
  // The token is not in any file; a second init of the same directory is refused.
  fails(await kw(['init', '--data', dir]), 'KW_INVALID_ARGUMENT');
  // --token-file writes it to DIR/initial-admin-token; --json prints no token then.
  const dir2 = t.path('data2');
  const j = JSON.parse(ok(await kw(['init', '--data', dir2, '--token-file', '--json'])).out) as Record<string, unknown>;
  assert.equal(j.token, undefined);
  assert.equal(mode(`${dir2}/initial-admin-token`), 0o600);
  assert.match(readFileSync(`${dir2}/initial-admin-token`, 'utf8'), /^kw_[A-Za-z0-9_-]{43}\n$/);
});

void test('init --share-recipients: each share sealed to its custodian; unseal -i opens it before sending', async () => {
  const ids = [];
  for (let i = 0; i < 2; i++) ids.push(ok(await kw(['keygen', '-o', t.path(`cust${i}.key`)])).out.trim());
  writeFileSync(t.path('custodians.txt'), `# custodians\n${ids.join('\n')}\n`);
  const dir = t.path('data-sealed');
  ok(await kw(['init', '--data', dir, '--shares', '2', '--threshold', '2', '--share-recipients', t.path('custodians.txt'), '--token-file']), true);
  const f = `${dir}/shares/share-1.kw.txt`;
  assert.match(readFileSync(f, 'utf8'), /BEGIN KEYWARD ENVELOPE/);
  // Without -i: refused; with the wrong custodian: no identity matched (no service needed for either).
  fails(await kw(['unseal', '--share', f, '--addr', 'http://127.0.0.1:1']), 'KW_INVALID_ARGUMENT');
  fails(await kw(['unseal', '--share', f, '-i', t.path('cust1.key'), '--addr', 'http://127.0.0.1:1']), 'KW_NO_IDENTITY_MATCHED');
  // The right custodian opens it; then the (absent) service is the failure.
  fails(await kw(['unseal', '--share', f, '-i', t.path('cust0.key'), '--addr', 'http://127.0.0.1:1']), 'KW_CLIENT_UNAVAILABLE');
});

void test('unseal: a corrupted share is refused locally with its code', async () => {
  const dir = t.path('data');
  const text = readFileSync(`${dir}/shares/share-2.txt`, 'utf8');
  const line = text.split('\n')[1]!;
  const bad = text.replace(line, line.slice(0, -3) + (line.endsWith('AAA') ? 'BBB' : 'AAA'));
  writeFileSync(t.path('bad-share.txt'), bad);
  const r = fails(await kw(['unseal', '--share', t.path('bad-share.txt')], { env: env() }), 'KW_SHARE_CORRUPTED');
  assert.match(r.stderr, /share 2/);
});

void test('unseal: k-1 shares leave it sealed, the k-th unseals', async () => {
  const before = JSON.parse(ok(await kw(['status', '--json'], { env: env() })).out) as { sealed: boolean };
  assert.equal(before.sealed, true);
  const one = JSON.parse(ok(await kw(['unseal', '--share', `${srvDir}/shares/share-1.txt`, '--json'], { env: env() })).out) as { sealed: boolean | null; index: number };
  assert.equal(one.index, 1);
  assert.notEqual(one.sealed, false);
  assert.equal((JSON.parse(ok(await kw(['status', '--json'], { env: env() })).out) as { sealed: boolean }).sealed, true);
  assert.match(ok(await kw(['unseal', '--share', `${srvDir}/shares/share-3.txt`], { env: env() })).out, /unsealed/);
  assert.equal((JSON.parse(ok(await kw(['status', '--json'], { env: env() })).out) as { sealed: boolean }).sealed, false);
});

void test('init token: enrolls the first administrator and nothing else', async () => {
  fails(await kw(['keys', 'create', 'app/early', '--token-file', bootstrapFile], { env: env() }), 'KW_BOOTSTRAP_ONLY');
  fails(await kw(['token', 'create', '--principal', 'svc', '--token-file', bootstrapFile], { env: env() }), 'KW_BOOTSTRAP_ONLY');
  ok(await kw(['token', 'create', '--principal', 'admin', '--kind', 'person', '--admin', '-o', tokenFile, '--token-file', bootstrapFile], { env: env() }), true);
  assert.equal(mode(tokenFile), 0o600);
  assert.match(ok(await kw(['principal', 'list', '--token-file', bootstrapFile], { env: env() })).out, /^admin\tdefault\tperson/m);
});

void test('status, keys create/rotate/list/show, token create/revoke against a running server', async () => {
  const s = JSON.parse(ok(await kw(['status', '--json'], { env: env() })).out) as { initialized: boolean; sealed: boolean };
  assert.equal(s.initialized, true);
  assert.equal(s.sealed, false);
  ok(await kw(['keys', 'create', 'app/orders', '--token-file', tokenFile], { env: env() }));
  ok(await kw(['keys', 'rotate', 'app/orders', '--token-file', tokenFile], { env: env() }));
  assert.match(ok(await kw(['keys', 'list', 'app', '--token-file', tokenFile], { env: env() })).out, /^app\/orders$/m);
  const show = JSON.stringify(JSON.parse(ok(await kw(['keys', 'show', 'app/orders', '--token-file', tokenFile], { env: env() })).out));
  assert.match(show, /orders/);
  // Token from stdin and from the environment work too; never from argv.
  const token = readFileSync(tokenFile, 'utf8').trim();
  ok(await kw(['keys', 'list', 'app'], { env: env(), input: `${token}\n` }));
  ok(await kw(['keys', 'list', 'app'], { env: { ...env(), KEYWARD_TOKEN: token } }));
  fails(await kw(['keys', 'list', 'app', '--token', token], { env: env() }), 'KW_INVALID_ARGUMENT');
  fails(await kw(['keys', 'list', 'app'], { env: env() }), 'KW_INVALID_ARGUMENT'); // no token anywhere
  const created = JSON.parse(ok(await kw(['token', 'create', '--principal', 'ops', '--kind', 'person', '--admin', '--token-file', tokenFile, '--json'], { env: env() })).out) as { id: string; token: string };
  assert.match(created.token, /^kw_/);
  writeFileSync(t.path('second.token'), `${created.token}\n`);
  ok(await kw(['keys', 'list', 'app', '--token-file', t.path('second.token')], { env: env() }));
  ok(await kw(['token', 'revoke', created.id, '--token-file', tokenFile], { env: env() }));
  const revoked = await kw(['keys', 'list', 'app', '--token-file', t.path('second.token')], { env: env() });
  assert.equal(revoked.code, 1);
  assert.match(revoked.stderr, /^error\[KW_[A-Z_]+\]/);
  // Failover: a dead address first, then the live one (GET is retried).
  ok(await kw(['keys', 'list', 'app', '--token-file', tokenFile], { env: { KEYWARD_ADDR: `http://127.0.0.1:1,${addr}` } }));
});

void test('login, policy put, seal --kms + open --kms round trip through the server', async () => {
  const profile = t.path('profile');
  ok(await kw(['keys', 'create', 'app/kms', '--token-file', tokenFile], { env: env() }));
  ok(await kw(['login', '--profile', profile, '--token-file', tokenFile], { env: env() }));
  assert.equal(mode(`${profile}/device-keys.json`), 0o600);
  fails(await kw(['login', '--profile', profile, '--token-file', tokenFile], { env: env() }), 'KW_INVALID_ARGUMENT'); // exists
  writeFileSync(t.path('policy.json'), JSON.stringify({ grants: [{ principals: ['admin'], operations: ['datakey', 'unwrap'], keys: ['app/*'] }] }));
  ok(await kw(['policy', 'put', 'app/p1', '--file', t.path('policy.json'), '--token-file', tokenFile], { env: env() }));
  const plain = 'kms round trip\n';
  writeFileSync(t.path('plain.txt'), plain);
  const e = { ...env(), KEYWARD_TOKEN_FILE: tokenFile };
  ok(await kw(['seal', '--kms', 'app/kms', '--profile', profile, '--context', 'table=orders', '-o', t.path('kms.kw'), t.path('plain.txt')], { env: e }));
  const desc = JSON.parse(ok(await kw(['inspect', '--json', t.path('kms.kw')])).out) as { stanzas: { type: string }[] };
  assert.deepEqual(desc.stanzas.map((s) => s.type), ['kms']);
  assert.equal(ok(await kw(['open', '--kms', '--profile', profile, '--context', 'table=orders', t.path('kms.kw')], { env: e })).out, plain);
  fails(await kw(['open', '--kms', '--profile', profile, '--context', 'table=other', t.path('kms.kw')], { env: e }), 'KW_CONTEXT_MISMATCH');
  // Without --kms (no key service client) the envelope does not open.
  const other = t.path('other.key');
  ok(await kw(['keygen', '-o', other]));
  fails(await kw(['open', '-i', other, '--context', 'table=orders', t.path('kms.kw')]), 'KW_KMS_UNAVAILABLE');
});

void test('audit export through the server; offline audit verify; a tampered export fails', async () => {
  await new Promise((r) => setTimeout(r, 1500)); // the next checkpoint covers the events above
  const exp = t.path('audit.jsonl');
  ok(await kw(['audit', 'export', '--token-file', tokenFile, '-o', exp], { env: env() }));
  const lines = readFileSync(exp, 'utf8').split('\n').filter((l) => l !== '');
  assert.ok(lines.length > 2, 'the export holds events');
  const header = JSON.parse(lines[0]!) as { checkpoint: string };
  const keyFile = `${srvDir}/audit-verifier-key.txt`;
  const vkey = readFileSync(keyFile, 'utf8').trim();
  const good = JSON.parse(ok(await kw(['audit', 'verify', '--export', exp, '--key', keyFile, '--json'])).out) as { ok: boolean };
  assert.equal(good.ok, true);
  ok(await kw(['audit', 'verify', '--export', exp, '--key', vkey]));
  // Tamper: change one event's bytes.
  const tampered = [...lines];
  tampered[2] = tampered[2]!.replace(/"outcome":"[a-z]+"/, '"outcome":"denied"') === tampered[2] ? tampered[2].replace('"', '"x') : tampered[2]!.replace(/"outcome":"[a-z]+"/, '"outcome":"denied"');
  writeFileSync(t.path('tampered.jsonl'), tampered.join('\n') + '\n');
  const bad = await kw(['audit', 'verify', '--export', t.path('tampered.jsonl'), '--key', keyFile]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^error\[AUDIT_[A-Z_]+\]/);
  // Truncated export.
  writeFileSync(t.path('cut.jsonl'), lines.slice(0, -1).join('\n') + '\n');
  fails(await kw(['audit', 'verify', '--export', t.path('cut.jsonl'), '--key', keyFile]), 'AUDIT_TRUNCATED');
  assert.ok(header.checkpoint.length > 0);
});

void test('server --dev --json: stdout holds only the JSON document; the server logs go to stderr', async () => {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'NODE_OPTIONS') env[k] = v;
  const p = spawn(process.execPath, [BIN, 'server', '--dev', '--listen', '127.0.0.1:0', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  try {
    const deadline = Date.now() + 60_000;
    while (!out.endsWith('}\n')) {
      if (Date.now() > deadline || p.exitCode !== null) throw new Error(`dev server did not start: ${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const info = JSON.parse(out) as { url: string; dev: boolean; token: string };
    assert.equal(info.dev, true);
    assert.equal((await fetch(`${info.url}/v1/sys/health`)).status, 200);
    assert.equal((await fetch(`${info.url}/v1/keys/dev`, { headers: { authorization: `Bearer ${info.token}` } })).status, 200);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(JSON.parse(out), info, 'nothing but the --json document on stdout');
    assert.match(err, /"msg":"request completed"/, 'request logs are on stderr');
  } finally {
    if (p.exitCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await exited;
    }
  }
});

void test('server commands: usage errors exit 2', async () => {
  fails(await kw(['init']), 'KW_INVALID_ARGUMENT');
  fails(await kw(['init', '--data', t.path('x'), '--threshold', '9']), 'KW_INVALID_ARGUMENT');
  fails(await kw(['keys', 'destroy', 'app/orders', '1', '--token-file', tokenFile]), 'KW_INVALID_ARGUMENT'); // needs --yes
  fails(await kw(['server', '--dev', '--listen', '0.0.0.0:0']), 'KW_INVALID_ARGUMENT');
  fails(await kw(['server', '--dev', '--scheduler-interval', 'soon']), 'KW_INVALID_ARGUMENT');
  fails(await kw(['principal', 'disable', 'svc', '--token-file', tokenFile]), 'KW_INVALID_ARGUMENT'); // needs --yes
  for (const bad of ['90x', '0', '59m', '3651d', '-1d', '1.5d']) fails(await kw(['keys', 'update', 'app/orders', '--rotation-period', bad, '--token-file', tokenFile]), 'KW_INVALID_ARGUMENT');
  fails(await kw(['keys', 'update', 'app/orders', '--token-file', tokenFile]), 'KW_INVALID_ARGUMENT'); // nothing to change
});

void test('keys create/update --rotation-period; principal list/show/set-roles/disable; signing-key list/revoke', async () => {
  const show = async (key: string) => JSON.parse(ok(await kw(['keys', 'show', key, '--token-file', tokenFile], { env: env() })).out) as { rotation_period_seconds: number | null };
  ok(await kw(['keys', 'create', 'app/rotating', '--rotation-period', '90d', '--token-file', tokenFile], { env: env() }));
  assert.equal((await show('app/rotating')).rotation_period_seconds, 90 * 86400);
  assert.match(ok(await kw(['keys', 'update', 'app/rotating', '--rotation-period', '12h', '--token-file', tokenFile], { env: env() })).out, /rotates every 43200 s/);
  assert.equal((await show('app/rotating')).rotation_period_seconds, 43200);
  ok(await kw(['keys', 'update', 'app/rotating', '--rotation-period', 'off', '--token-file', tokenFile], { env: env() }));
  assert.equal((await show('app/rotating')).rotation_period_seconds, null);

  const svcToken = t.path('svc-cli.token');
  ok(await kw(['token', 'create', '--principal', 'svc-cli', '-o', svcToken, '--token-file', tokenFile], { env: env() }), true);
  const profile = t.path('svc-profile');
  const login = JSON.parse(ok(await kw(['login', '--profile', profile, '--token-file', svcToken, '--json'], { env: env() })).out) as { keyId: string };
  // The owner sees and revokes its own key; an admin sees anyone's.
  assert.match(ok(await kw(['signing-key', 'list', '--token-file', svcToken], { env: env() })).out, new RegExp(`^${login.keyId}\tsvc-cli\ted25519\t.*\tactive$`, 'm'));
  fails(await kw(['signing-key', 'list', '--principal', 'admin', '--token-file', svcToken], { env: env() }), 'KW_FORBIDDEN');
  assert.match(ok(await kw(['signing-key', 'revoke', login.keyId, '--token-file', svcToken], { env: env() })).out, /revoked/);
  assert.match(ok(await kw(['signing-key', 'list', '--principal', 'svc-cli', '--token-file', tokenFile], { env: env() })).out, /\trevoked /);

  assert.match(ok(await kw(['principal', 'list', '--ns', 'default', '--token-file', tokenFile], { env: env() })).out, /^svc-cli\tdefault\tservice\t-$/m);
  assert.match(ok(await kw(['principal', 'set-roles', 'svc-cli', '--role', 'orders-app', '--role', 'reader', '--token-file', tokenFile], { env: env() })).out, /roles orders-app, reader/);
  const shown = JSON.parse(ok(await kw(['principal', 'show', 'svc-cli', '--token-file', tokenFile], { env: env() })).out) as { roles: string[]; tokens: unknown[]; signing_keys: unknown[] };
  assert.deepEqual([shown.roles, shown.tokens.length, shown.signing_keys.length], [['orders-app', 'reader'], 1, 1]);
  assert.match(ok(await kw(['principal', 'disable', 'svc-cli', '--yes', '--token-file', tokenFile], { env: env() })).out, /disabled: 1 token\(s\) and 0 signing key\(s\) revoked/);
  fails(await kw(['signing-key', 'list', '--token-file', svcToken], { env: env() }), 'KW_UNAUTHENTICATED');
  fails(await kw(['principal', 'disable', 'svc-cli', '--yes', '--token-file', tokenFile], { env: env() }), 'KW_PRINCIPAL_DISABLED');
  fails(await kw(['principal', 'show', 'nobody', '--token-file', tokenFile], { env: env() }), 'KW_NOT_FOUND');
});
