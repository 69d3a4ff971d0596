/**
 * `keyward mfa …` and `--step-up` through the real built binary and a real
 * `keyward server` process (issue #7): TOTP enrollment (the seed printed
 * once) and activation, sensitive commands refused with KW_MFA_REQUIRED
 * without a step-up and changing nothing, then done with `--step-up`
 * reading the TOTP code from a file (never argv), recovery codes. TOTP codes
 * are computed here with an independent RFC 6238 implementation (node:crypto).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { BIN, fails, kw, ok, tempDir } from './helpers.js';

const t = tempDir();
let server: ChildProcess | null = null;
let addr = '';
const srvDir = t.path('srv');
const bootFile = t.path('init.token');
const aliceFile = t.path('alice.token');
const codeFile = t.path('code.txt');
const env = () => ({ KEYWARD_ADDR: addr });

/** RFC 4648 base32 → bytes. */
function unbase32(s: string): Buffer {
  const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0, value = 0;
  const out: number[] = [];
  for (const c of s.replace(/=+$/, '')) {
    value = (value << 5) | A.indexOf(c);
    bits += 5;
    if (bits >= 8) { out.push((value >>> (bits - 8)) & 0xff); bits -= 8; }
  }
  return Buffer.from(out);
}

/** RFC 6238 (SHA-1, 6 digits, 30 s) at time step `step`. */
function totp(seed: string, step: number): string {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const h = createHmac('sha1', unbase32(seed)).update(msg).digest();
  const o = h[h.length - 1]! & 0x0f;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}
const stepNow = (): number => Math.floor(Date.now() / 30_000);
/**
 * The current time step, once at least `marginMs` of it remain (waits at most that long), so that a code of this
 * step and one of the step before are both still accepted (one step of drift back) for the next half minute.
 */
async function freshStep(marginMs = 10_000): Promise<number> {
  while (30_000 - (Date.now() % 30_000) < marginMs) await new Promise((r) => setTimeout(r, 250));
  return stepNow();
}

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
  ok(await kw(['token', 'create', '--principal', 'alice', '--kind', 'person', '--admin', '-o', aliceFile, '--token-file', bootFile], { env: env() }), true);
  ok(await kw(['keys', 'create', 'app/k', '--token-file', aliceFile], { env: env() }));
  ok(await kw(['keys', 'rotate', 'app/k', '--token-file', aliceFile], { env: env() }));
  ok(await kw(['keys', 'schedule-deletion', 'app/k', '1', '--days', '7', '--token-file', aliceFile], { env: env() }));
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
  const show = JSON.parse(ok(await kw(['keys', 'show', 'app/k', '--token-file', aliceFile], { env: env() })).out) as { versions: { version: number; state: string }[] };
  return show.versions.find((x) => x.version === v)!.state;
};

void test('mfa enroll totp, activate, list; sensitive commands need --step-up; the code comes from a file, never argv; recovery codes', async () => {
  fails(await kw(['mfa', 'enroll', 'webauthn', '--token-file', aliceFile], { env: env() }), 'KW_UNSUPPORTED');
  const enrolled = JSON.parse(ok(await kw(['mfa', 'enroll', 'totp', '--name', 'phone', '--json', '--token-file', aliceFile], { env: env() }), true).out) as { id: string; secret_base32: string; otpauth_uri: string };
  assert.match(enrolled.secret_base32, /^[A-Z2-7]{32}$/);
  assert.match(enrolled.otpauth_uri, /^otpauth:\/\/totp\//);
  const seed = enrolled.secret_base32;
  // Each code is accepted once per time step, and never a step at or before the last one accepted: activate with
  // the previous step's code (one step of drift back is accepted), step up with this step's — no waiting for a new step.
  const step = await freshStep();
  writeFileSync(codeFile, `${totp(seed, step - 1)}\n`);
  ok(await kw(['mfa', 'activate', enrolled.id, '--code-file', codeFile, '--token-file', aliceFile], { env: env() }));
  assert.match(ok(await kw(['mfa', 'list', '--token-file', aliceFile], { env: env() })).out, new RegExp(`^${enrolled.id}\\ttotp\\tactive\\tphone`, 'm'));
  // MFA is enforced now: the initial admin token has expired.
  fails(await kw(['token', 'create', '--principal', 'bob', '--kind', 'person', '--admin', '--token-file', bootFile], { env: env() }), 'KW_BOOTSTRAP_ONLY');

  // Without a step-up every sensitive command is refused and nothing changes.
  fails(await kw(['keys', 'destroy', 'app/k', '1', '--yes', '--token-file', aliceFile], { env: env() }), 'KW_MFA_REQUIRED');
  fails(await kw(['keys', 'schedule-deletion', 'app/k', '2', '--token-file', aliceFile], { env: env() }), 'KW_MFA_REQUIRED');
  writeFileSync(t.path('policy.json'), JSON.stringify({ grants: [{ principals: ['alice'], operations: ['datakey'], keys: ['app/*'] }] }));
  fails(await kw(['policy', 'put', 'app/p', '--file', t.path('policy.json'), '--token-file', aliceFile], { env: env() }), 'KW_MFA_REQUIRED');
  fails(await kw(['token', 'create', '--principal', 'bob', '--kind', 'person', '--admin', '--token-file', aliceFile], { env: env() }), 'KW_MFA_REQUIRED');
  assert.equal(await versionState(1), 'scheduled_for_deletion');
  assert.equal(await versionState(2), 'enabled');
  // A code on the command line is not a thing.
  fails(await kw(['keys', 'destroy', 'app/k', '1', '--yes', '--step-up', '--totp-code', '123456', '--token-file', aliceFile], { env: env() }), 'KW_INVALID_ARGUMENT');

  // A step-up with the TOTP code read from a file: recovery codes.
  writeFileSync(codeFile, `${totp(seed, step)}\n`);
  const codes = ok(await kw(['mfa', 'recovery-codes', '--step-up', '--totp-code-file', codeFile, '--token-file', aliceFile], { env: env() }), true).out.trim().split('\n');
  assert.equal(codes.length, 10);
  // The same code again (same time step) is a replay, and changes nothing.
  fails(await kw(['keys', 'schedule-deletion', 'app/k', '2', '--step-up', '--totp-code-file', codeFile, '--token-file', aliceFile], { env: env() }), 'KW_MFA_REPLAY');
  assert.equal(await versionState(2), 'enabled');

  // With --step-up: the canonical request is shown, the recovery code read from the file, the request done.
  const recovery = t.path('recovery.txt');
  writeFileSync(recovery, `${codes[0]}\n`);
  const d = ok(await kw(['keys', 'destroy', 'app/k', '1', '--yes', '--step-up', '--recovery-code-file', recovery, '--token-file', aliceFile], { env: env() }), true);
  assert.match(d.stderr, /step-up for keys\.destroy/);
  assert.match(d.stderr, /"path": "\/v1\/keys\/app\/k\/versions\/1\/destroy"/);
  assert.equal(await versionState(1), 'destroyed');
  // A recovery code answers one step-up and is spent.
  writeFileSync(recovery, `${codes[1]}\n`);
  ok(await kw(['policy', 'put', 'app/p', '--file', t.path('policy.json'), '--step-up', '--recovery-code-file', recovery, '--token-file', aliceFile], { env: env() }), true);
  fails(await kw(['token', 'create', '--principal', 'bob', '--kind', 'person', '--admin', '--step-up', '--recovery-code-file', recovery, '--token-file', aliceFile], { env: env() }), 'KW_MFA_INVALID');
  writeFileSync(recovery, `${codes[2]}\n`);
  const bob = ok(await kw(['token', 'create', '--principal', 'bob', '--kind', 'person', '--admin', '--step-up', '--recovery-code-file', recovery, '--token-file', aliceFile], { env: env() }), true);
  assert.match(bob.out, /^kw_[A-Za-z0-9_-]{43}$/m);
});
