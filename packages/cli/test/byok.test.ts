/**
 * `keyward keys import-params | import` and `keyward open --kms-key` against a
 * real key service (in-process server, real keyholder process, SQLite), the
 * CLI run from source in child processes: material wrapped by the CLI, by
 * openssl (the commands docs/cli.md gives), signer pinning, token reuse, and
 * an envelope sealed with `keyward seal -r <service recipient>` opened through
 * the service.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { HpkeIdentity } from '@keyward/core';
import { formatVerifierKey } from '@keyward/tlog';
import { startServer, type RunningServer } from '@keyward/server';
import { enrollAdmin, unsealAll } from '../../server/test/api/helpers.js';
import { CLI_ARGS } from '../../server/test/built.js';
import { tempDir } from './helpers.js';

const t = tempDir();
let s: RunningServer;
const tokenFile = t.path('admin.token');
let verifierKey = '';

interface Run { code: number | null; out: string; err: string }

/** The CLI from source: `node --conditions=source --import tsx -e main(argv)`. */
function kw(args: readonly string[], opts: { stdin?: Uint8Array | string; env?: Record<string, string> } = {}): Promise<Run> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'NODE_OPTIONS' && !k.startsWith('KEYWARD_')) env[k] = v;
  Object.assign(env, { KEYWARD_ADDR: s.url, KEYWARD_TOKEN_FILE: tokenFile }, opts.env ?? {});
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI_ARGS, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.once('error', reject);
    child.once('exit', (c) => resolve({ code: c, out, err }));
    child.stdin.end(opts.stdin ?? '');
  });
}

const ok = (r: Run): Run => { assert.equal(r.code, 0, `exit ${r.code}: ${r.err}`); return r; };
const fails = (r: Run, code: string): Run => { assert.notEqual(r.code, 0, r.out); assert.match(r.err, new RegExp(code), r.err); return r; };

before(async () => {
  mkdirSync(t.path('srv'), { mode: 0o700 });
  s = await startServer({ data: t.path('srv'), listen: '127.0.0.1:0', logLevel: 'silent', checkpointMs: 200 });
  const init = await s.initialize({ shares: 2, threshold: 2 });
  await unsealAll(s, init.shares);
  writeFileSync(tokenFile, `${await enrollAdmin(s, init.rootToken)}\n`, { mode: 0o600 });
  verifierKey = (await s.keyholder.call('status', {})).audit.verifierKey!;
  writeFileSync(t.path('verifier.txt'), `# audit log key\n${verifierKey}\n`);
});
after(async () => { await s?.close(); t.cleanup(); });

void test('keys import --material-file: wrapped by the CLI, signer pinned; origin external; a wrong pin is refused', async () => {
  writeFileSync(t.path('aes.bin'), randomBytes(32));
  const r = ok(await kw(['keys', 'import', 'app/byok', '--type', 'aes256', '--material-file', t.path('aes.bin'), '--verifier-key', t.path('verifier.txt')]));
  assert.match(r.out, /imported app\/byok version 1 \(aes256, origin external\)/);
  const shown = JSON.parse(ok(await kw(['keys', 'show', 'app/byok'])).out) as { origin: string; latest_version: number };
  assert.deepEqual([shown.origin, shown.latest_version], ['external', 1]);
  // Another log key pinned: the parameters are refused before anything is wrapped or sent.
  const other = formatVerifierKey('another-log', 0x01, Uint8Array.from(randomBytes(32)));
  fails(await kw(['keys', 'import', 'app/byok', '--material-file', t.path('aes.bin'), '--verifier-key', other]), 'KW_SIGNER_UNKNOWN');
  assert.equal((JSON.parse(ok(await kw(['keys', 'show', 'app/byok'])).out) as { latest_version: number }).latest_version, 1);
  // Material never on argv: a missing source is a usage error.
  fails(await kw(['keys', 'import', 'app/byok']), 'KW_INVALID_ARGUMENT');
});

void test('openssl does the wrapping (docs/cli.md); the token is single use', async () => {
  const params = JSON.parse(ok(await kw(['keys', 'import-params', 'app/ossl', '--type', 'hmac-sha256', '--pem-out', t.path('wrap.pem')])).out) as { token: string };
  const d = t.dir;
  writeFileSync(t.path('hmac.bin'), randomBytes(48));
  const sh = (cmd: string) => execFileSync('sh', ['-c', cmd], { cwd: d, stdio: ['ignore', 'pipe', 'pipe'] });
  sh('openssl rand -hex 32 > eph.hex');
  sh('openssl enc -id-aes256-wrap-pad -K "$(cat eph.hex)" -iv A65959A6 -in hmac.bin -out material.kwp');
  sh('xxd -r -p eph.hex > eph.bin');
  sh('openssl pkeyutl -encrypt -pubin -inkey wrap.pem -in eph.bin -out eph.rsa -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256');
  sh('cat eph.rsa material.kwp > wrapped.bin');
  assert.equal(readFileSync(t.path('wrapped.bin')).length, 384 + 56);
  ok(await kw(['keys', 'import', 'app/ossl', '--type', 'hmac-sha256', '--wrapped-file', t.path('wrapped.bin'), '--import-token', params.token]));
  fails(await kw(['keys', 'import', 'app/ossl', '--wrapped-file', t.path('wrapped.bin'), '--import-token', params.token]), 'KW_IMPORT_TOKEN_USED');
});

void test('an x25519 secret imported from stdin; keyward seal -r <its recipient>; keyward open --kms-key opens it through the service', async () => {
  const secret = randomBytes(32);
  const r = JSON.parse(ok(await kw(['keys', 'import', 'app/inbox', '--type', 'x25519', '--material-file', '-', '--json'], { stdin: secret })).out) as { versions: { public_key: string }[] };
  const local = await HpkeIdentity.fromSecretKey('x25519', secret);
  assert.equal(r.versions[0]!.public_key, Buffer.from(local.publicKey).toString('base64url'));
  const recipient = (await local.recipient()).toString();

  const profile = t.path('profile');
  ok(await kw(['login', '--profile', profile]));
  writeFileSync(t.path('policy.json'), JSON.stringify({ grants: [{ principals: ['admin'], operations: ['open'], keys: ['app/inbox'] }] }));
  ok(await kw(['policy', 'put', 'app/p', '--file', t.path('policy.json')]));
  writeFileSync(t.path('plain.txt'), 'sealed to the service key\n');
  ok(await kw(['seal', '-r', recipient, '--context', 'doc=9', '-o', t.path('doc.kw'), t.path('plain.txt')]));
  assert.equal(ok(await kw(['open', '--kms-key', 'app/inbox', '--profile', profile, '--context', 'doc=9', t.path('doc.kw')])).out, 'sealed to the service key\n');
  fails(await kw(['open', '--kms-key', 'app/inbox', '--profile', profile, '--context', 'doc=8', t.path('doc.kw')]), 'KW_CONTEXT_MISMATCH');
  // Without the service the envelope does not open.
  fails(await kw(['open', '-i', t.path('nobody.key'), t.path('doc.kw')]), 'KW_');
});
