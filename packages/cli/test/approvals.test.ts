/**
 * `keyward approvals …` and `keyward quorum …` through the real built binary
 * and a real `keyward server` process (issue #7): approval keys enrolled
 * from PEM files (never argv), a quorum rule for destroy, a destroy refused
 * without approval (KW_QUORUM_REQUIRED) and short of it (KW_QUORUM_PENDING),
 * approved by two others with their keys, executed once with --approval; a
 * double approval and a refusal; every command with --help and --json.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { BIN, fails, kw, ok, tempDir } from './helpers.js';

const t = tempDir();
let server: ChildProcess | null = null;
let addr = '';
const srvDir = t.path('srv');
const bootFile = t.path('init.token');
const env = () => ({ KEYWARD_ADDR: addr });
const tok = (name: string) => ['--token-file', t.path(`${name}.token`)];
const keyFile = (name: string) => t.path(`${name}.pem`);

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
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'NODE_OPTIONS') childEnv[k] = v;
  const init = ok(await kw(['init', '--data', srvDir, '--shares', '2', '--threshold', '2']), true);
  writeFileSync(bootFile, init.out, { mode: 0o600 });
  server = spawn(process.execPath, [BIN, 'server', '--data', srvDir, '--listen', `127.0.0.1:${port}`], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  server.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  server.stdout!.resume();
  const deadline = Date.now() + 60_000;
  while (!/keyward server listening/.test(err)) {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error(`server did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const i of [1, 2]) ok(await kw(['unseal', '--share', `${srvDir}/shares/share-${i}.txt`], { env: env() }));
  for (const name of ['alice', 'bob', 'carol']) {
    ok(await kw(['token', 'create', '--principal', name, '--kind', 'person', '--admin', '-o', t.path(`${name}.token`), '--token-file', bootFile], { env: env() }), true);
    writeFileSync(keyFile(name), generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  }
  ok(await kw(['keys', 'create', 'app/k', ...tok('alice')], { env: env() }));
  for (let i = 0; i < 2; i++) ok(await kw(['keys', 'rotate', 'app/k', ...tok('alice')], { env: env() }));
  for (const v of ['1', '2']) ok(await kw(['keys', 'schedule-deletion', 'app/k', v, '--days', '7', ...tok('alice')], { env: env() }));
});

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  t.cleanup();
});

const versionState = async (v: number): Promise<string> => {
  const show = JSON.parse(ok(await kw(['keys', 'show', 'app/k', ...tok('alice')], { env: env() })).out) as { versions: { version: number; state: string }[] };
  return show.versions.find((x) => x.version === v)!.state;
};

void test('a key is never an argument; an id that begins with "-" is still the id', async () => {
  fails(await kw(['approvals', 'approve', 'A'.repeat(43), '--key', 'secret', ...tok('bob')], { env: env() }), 'KW_INVALID_ARGUMENT');
  // A request id is base64url and may begin with "-" (1 in 64): it is still the ID, never an option.
  const dashed = `-2${'A'.repeat(41)}`;
  assert.doesNotMatch(fails(await kw(['approvals', 'show', dashed, ...tok('bob')], { env: env() }), 'KW_NOT_FOUND').stderr, /unknown option/);
  assert.doesNotMatch(fails(await kw(['approvals', 'deny', dashed, '--key-file', keyFile('bob'), ...tok('bob')], { env: env() }), 'KW_NOT_FOUND').stderr, /unknown option/);
  fails(await kw(['quorum', 'set', 'keys.destroy', '--role', 'r', '--threshold', 'two', ...tok('alice')], { env: env() }), 'KW_INVALID_ARGUMENT');
});

void test('quorum of 2 for destroy: request, approve with key files, execute once with --approval; duplicates and refusals', async () => {
  for (const name of ['alice', 'bob', 'carol']) ok(await kw(['principal', 'set-roles', name, '--role', 'key-admins', ...tok('alice')], { env: env() }));
  for (const name of ['bob', 'carol']) ok(await kw(['approvals', 'enroll-key', '--principal', name, '--key-file', keyFile(name), '--key-id', `${name}-k`, ...tok(name)], { env: env() }));
  fails(await kw(['quorum', 'set', 'keys.destroy', '--role', 'key-admins', '--threshold', '4', ...tok('alice')], { env: env() }), 'KW_QUORUM_INVALID');
  ok(await kw(['quorum', 'set', 'keys.destroy', '--role', 'key-admins', '--threshold', '2', ...tok('alice')], { env: env() }));
  const rules = JSON.parse(ok(await kw(['quorum', 'list', '--json', ...tok('bob')], { env: env() })).out) as { rules: { op: string; threshold: number }[] };
  assert.deepEqual(rules.rules, [{ op: 'keys.destroy', role: 'key-admins', threshold: 2 }]);

  fails(await kw(['keys', 'destroy', 'app/k', '1', '--yes', ...tok('alice')], { env: env() }), 'KW_QUORUM_REQUIRED');
  const id = ok(await kw(['approvals', 'request', 'POST', '/v1/keys/app/k/versions/1/destroy', ...tok('alice')], { env: env() })).out.trim();
  assert.match(id, /^[A-Za-z0-9_-]{43}$/);
  assert.match(ok(await kw(['approvals', 'list', '--state', 'pending', ...tok('carol')], { env: env() })).out, new RegExp(`^${id}\\tpending\\tkeys\\.destroy\\tPOST /v1/keys/app/k/versions/1/destroy\\tby alice`, 'm'));
  const b = ok(await kw(['approvals', 'approve', id, '--key-file', keyFile('bob'), '--key-id', 'bob-k', '--json', ...tok('bob')], { env: env() }), true);
  assert.match(b.stderr, /approve keys\.destroy requested by alice/);
  assert.deepEqual((JSON.parse(b.out) as { tally: { approved_by: string[] }[] }).tally[0]!.approved_by, ['bob']);
  fails(await kw(['approvals', 'approve', id, '--key-file', keyFile('bob'), '--key-id', 'bob-k', ...tok('bob')], { env: env() }), 'KW_APPROVAL_DUPLICATE');
  fails(await kw(['keys', 'destroy', 'app/k', '1', '--yes', '--approval', id, ...tok('alice')], { env: env() }), 'KW_QUORUM_PENDING');
  assert.equal(await versionState(1), 'scheduled_for_deletion');
  ok(await kw(['approvals', 'approve', id, '--key-file', keyFile('carol'), '--key-id', 'carol-k', ...tok('carol')], { env: env() }), true);
  ok(await kw(['keys', 'destroy', 'app/k', '1', '--yes', '--approval', id, ...tok('alice')], { env: env() }));
  assert.equal(await versionState(1), 'destroyed');
  fails(await kw(['keys', 'destroy', 'app/k', '1', '--yes', '--approval', id, ...tok('alice')], { env: env() }), 'KW_MFA_REPLAY');
  const shown = JSON.parse(ok(await kw(['approvals', 'show', id, ...tok('alice')], { env: env() })).out) as { state: string; answers: { approver: string }[] };
  assert.equal(shown.state, 'executed');
  assert.deepEqual(shown.answers.map((a) => a.approver).sort(), ['bob', 'carol']);

  // A refusal closes the request.
  const id2 = ok(await kw(['approvals', 'request', 'POST', '/v1/keys/app/k/versions/2/destroy', ...tok('alice')], { env: env() })).out.trim();
  ok(await kw(['approvals', 'deny', id2, '--key-file', keyFile('bob'), '--key-id', 'bob-k', ...tok('bob')], { env: env() }), true);
  fails(await kw(['approvals', 'approve', id2, '--key-file', keyFile('carol'), '--key-id', 'carol-k', ...tok('carol')], { env: env() }), 'KW_APPROVAL_CLOSED');
  fails(await kw(['keys', 'destroy', 'app/k', '2', '--yes', '--approval', id2, ...tok('alice')], { env: env() }), 'KW_APPROVAL_DENIED');
  assert.equal(await versionState(2), 'scheduled_for_deletion');
});
