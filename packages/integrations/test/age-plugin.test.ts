/**
 * age-plugin-keyward with the real `age` binary (Debian age 1.1.1) and a real
 * key service process: age finds the plugin on PATH, encrypts through it
 * (recipient-v1: the key service's `datakey`), decrypts through it
 * (identity-v1: `unwrap`), next to an ordinary X25519 recipient. A principal
 * without a grant, a disabled key version and a revoked token make age fail
 * with the plugin's explanation; the file key and the plaintext never appear
 * in the key service's logs. Plus the protocol edge cases (grease, strict
 * base64, unknown state machine) driven directly.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { HpkeIdentity } from '@keyward/core';
import { isIntegrationError } from '../src/index.js';
import { loadCredentials } from '../src/age-plugin/credentials.js';
import { formatStanza, StanzaReader } from '../src/age-plugin/ipc.js';
import { runIdentityV1, runRecipientV1 } from '../src/age-plugin/plugin.js';
import { encodeIdentity, encodeRecipient, parseIdentity, parseRecipient } from '../src/age-plugin/strings.js';
import { unwrapFileKey } from '../src/age-plugin/wrap.js';
import { canary, findCanaries, HERE, must, REPO, runId, startKeyService, type KeyService } from './helpers.js';

let ks: KeyService;
const dir = mkdtempSync(join(tmpdir(), 'kw-age-plugin-'));
const bin = join(dir, 'bin');
const ns = `age${runId().slice(0, 8)}`;
const keyRef = `${ns}/files`;

interface Device { profile: string; tokenFile: string; tokenId: string; identityFile: string }
const devices: Record<string, Device> = {};

/** A principal with a token, a registered device key and a login profile on disk (as `keyward login` writes it). */
async function device(principal: string, operations: readonly string[]): Promise<Device> {
  const role = `role-${principal}`;
  const t = await must(ks.admin('POST', '/v1/tokens', { principal, ns, roles: [role] }));
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const reg = await fetch(`${ks.url}/v1/auth/signing-keys`, { method: 'POST', headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ alg: 'ed25519', public_key: publicKey.export({ format: 'jwk' }).x }) });
  const sk = await reg.json() as { key_id: string };
  assert.ok(reg.ok);
  if (operations.length > 0) await must(ks.admin('PUT', `/v1/policies/${ns}/${role}`, { grants: [{ roles: [role], operations, keys: [keyRef] }] }));
  const profile = join(dir, `${principal}-profile`);
  mkdirSync(profile, { mode: 0o700 });
  const identity = await HpkeIdentity.generate('x25519');
  writeFileSync(join(profile, 'device-keys.json'), JSON.stringify({ format: 1, signing_seed: privateKey.export({ format: 'jwk' }).d, identity: identity.toString() }), { mode: 0o600 });
  writeFileSync(join(profile, 'profile.json'), JSON.stringify({ format: 1, addresses: [ks.url], key_id: sk.key_id, alg: 'ed25519' }));
  const tokenFile = join(dir, `${principal}.token`);
  writeFileSync(tokenFile, `${t.token as string}\n`, { mode: 0o600 });
  const identityFile = join(dir, `${principal}.age-identity`);
  writeFileSync(identityFile, `# keyward\n${encodeIdentity({ profile, tokenFile })}\n`, { mode: 0o600 });
  return { profile, tokenFile, tokenId: t.id as string, identityFile };
}

/** Runs the real age binary with the plugin on PATH (and nothing of the test's environment that could carry credentials). */
function age(args: string[], input: Uint8Array | string, env: Record<string, string> = {}): { status: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync('age', args, { input, env: { PATH: `${bin}:${process.env.PATH ?? ''}`, HOME: dir, ...env }, maxBuffer: 1 << 24 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

before(async () => {
  ks = await startKeyService();
  await must(ks.admin('POST', `/v1/keys/${keyRef}`, { type: 'aes256' }));
  mkdirSync(bin);
  // What `npm ci` links as node_modules/.bin/age-plugin-keyward (bin/age-plugin-keyward.js over dist),
  // here running the same main() from source. The wrapper sets its own directory: age runs plugins in a temporary one.
  const wrapper = join(bin, 'age-plugin-keyward');
  writeFileSync(wrapper, `#!/bin/sh\ncd '${REPO}' && exec '${process.execPath}' --conditions=source --import tsx '${join(HERE, 'fixtures/age-plugin-keyward.mjs')}' "$@"\n`);
  chmodSync(wrapper, 0o755);
  devices.alice = await device('alice', ['datakey', 'unwrap']);
  devices.mallory = await device('mallory', ['datakey']);
});
after(async () => { await ks?.stop(); });

void test('recipient and identity strings: round trip, strict parsing, no secrets', () => {
  const r = encodeRecipient({ keyRef: 'billing/orders', address: 'https://kms.example.com:8200/' });
  assert.match(r, /^age1keyward1[02-9ac-hj-np-z]+$/);
  assert.deepEqual(parseRecipient(r), { keyRef: 'billing/orders', address: 'https://kms.example.com:8200' });
  assert.deepEqual(parseRecipient(encodeRecipient({ keyRef: 'a/b' })), { keyRef: 'a/b' });
  const i = encodeIdentity({ profile: '/home/u/.config/keyward', tokenFile: '/run/secrets/kw-token' });
  assert.match(i, /^AGE-PLUGIN-KEYWARD-1[02-9AC-HJ-NP-Z]+$/);
  assert.deepEqual(parseIdentity(i), { profile: '/home/u/.config/keyward', tokenFile: '/run/secrets/kw-token' });
  for (const bad of [r.toUpperCase(), r.slice(0, -1) + (r.endsWith('q') ? 'p' : 'q'), i.toLowerCase(), 'age1keyward1qqqqqqqq', r.replace('age1keyward', 'age1other')]) {
    assert.throws(() => (bad.startsWith('AGE') || bad.startsWith('age1keyward1') ? parseRecipient(bad) : parseIdentity(bad)), (e) => isIntegrationError(e, 'KW_INT_INVALID_ARGUMENT'));
  }
  assert.throws(() => parseIdentity(i.slice(0, -1) + (i.endsWith('Q') ? 'P' : 'Q')), (e) => isIntegrationError(e, 'KW_INT_INVALID_ARGUMENT'));
  assert.throws(() => encodeIdentity({ profile: 'relative/dir' }), (e) => isIntegrationError(e, 'KW_INT_INVALID_ARGUMENT'));
  assert.throws(() => encodeRecipient({ keyRef: 'no-slash' }), (e) => isIntegrationError(e, 'KW_INT_INVALID_ARGUMENT'));
});

void test('IPC: grease is ignored, non-canonical base64 is refused, unknown state machines refuse to start', async () => {
  const input = new PassThrough();
  const output = new PassThrough();
  const reader = new StanzaReader(output);
  const run = runIdentityV1({ stdin: input, stdout: output, env: {} });
  input.write(formatStanza('grease-1f2e', ['7', 'x'], new Uint8Array(70).fill(9)));
  input.write(formatStanza('add-identity', [encodeIdentity({ profile: '/nonexistent' })]));
  input.write(formatStanza('recipient-stanza', ['0', 'X25519', 'abc'], new Uint8Array(32)));
  input.write(formatStanza('done'));
  // Nothing of ours in the file: the plugin ends the phase without a key or an error.
  assert.deepEqual(await reader.next(), { type: 'done', args: [], body: new Uint8Array(0) });
  await run;

  const input2 = new PassThrough();
  const run2 = runRecipientV1({ stdin: input2, stdout: new PassThrough(), env: {} });
  input2.write('-> wrap-file-key\nAAAAAAAAAAAAAAAAAAAAAB\n'); // a 16-byte key whose last character is not canonical
  await assert.rejects(run2, (e) => isIntegrationError(e, 'KW_INT_AGE_PROTOCOL'));

  const r = spawnSync(join(bin, 'age-plugin-keyward'), ['--age-plugin=recipient-v9'], { input: '' });
  assert.equal(r.status, 1);
  assert.match(r.stderr.toString(), /unknown state machine "recipient-v9"/);
});

void test('the real age binary encrypts and decrypts through the plugin and the key service', async () => {
  const secret = canary('age-plaintext');
  const recipient = encodeRecipient({ keyRef, address: ks.url });
  const x = execFileSync('age-keygen', { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  const xRecipient = /# public key: (age1\S+)/.exec(x)![1]!;
  const xFile = join(dir, 'x25519.txt');
  writeFileSync(xFile, x, { mode: 0o600 });
  const alice = devices.alice!;

  // Encrypt: credentials from the same identity file (KEYWARD_AGE_IDENTITY), a keyward and an X25519 recipient, armored.
  const enc = age(['-a', '-r', recipient, '-r', xRecipient], secret, { KEYWARD_AGE_IDENTITY: alice.identityFile });
  assert.equal(enc.status, 0, enc.stderr);
  const file = enc.stdout;
  const header = Buffer.from(file.toString().split('\n').slice(1, -2).join(''), 'base64').toString('latin1');
  assert.match(header, new RegExp(`\\n-> keyward ${keyRef}\\n`));
  assert.match(header, /\n-> X25519 /);

  // Decrypt through the plugin, and (independently) with the X25519 identity.
  const dec = age(['-d', '-i', alice.identityFile], file);
  assert.equal(dec.status, 0, dec.stderr);
  assert.equal(dec.stdout.toString(), secret);
  assert.equal(age(['-d', '-i', xFile], file).stdout.toString(), secret);

  // Binary files and several in a row (a fresh plugin process each time).
  for (let n = 0; n < 2; n++) {
    const bin2 = age(['-r', recipient], `${secret}-${n}`, { KEYWARD_AGE_IDENTITY: alice.identityFile });
    assert.equal(bin2.status, 0, bin2.stderr);
    assert.equal(age(['-d', '-i', alice.identityFile], bin2.stdout).stdout.toString(), `${secret}-${n}`);
  }

  // Encrypting with the profile from the environment (KEYWARD_AGE_PROFILE + KEYWARD_TOKEN_FILE) works too.
  const viaEnv = age(['-r', encodeRecipient({ keyRef })], secret, { KEYWARD_AGE_PROFILE: alice.profile, KEYWARD_TOKEN_FILE: alice.tokenFile });
  assert.equal(viaEnv.status, 0, viaEnv.stderr);
  assert.equal(age(['-d', '-i', alice.identityFile], viaEnv.stdout).stdout.toString(), secret);

  // The file key: recover it from the stanza as the plugin does, then look for it (and the plaintext) in the service's logs.
  const stanzaText = /\n-> keyward \S+\n((?:[A-Za-z0-9+/]{64}\n)*[A-Za-z0-9+/]{0,63})\n/.exec(header)![1]!.replace(/\n/g, '');
  const creds = await loadCredentials(parseIdentity(readFileSync(alice.identityFile, 'utf8').split('\n')[1]!));
  const fileKey = await unwrapFileKey(creds.kms, { type: 'keyward', args: [keyRef], body: new Uint8Array(Buffer.from(stanzaText, 'base64')) });
  creds.dispose();
  assert.ok(fileKey && fileKey.length === 16);
  const logs = ks.logs();
  assert.ok(logs.includes(`/v1/data/${keyRef}/datakey`) && logs.includes(`/v1/data/${keyRef}/unwrap`), 'the service logged the plugin\'s calls');
  const fk = Buffer.from(fileKey);
  for (const form of [fk.toString('hex'), fk.toString('base64').replace(/=+$/, ''), fk.toString('base64url')]) assert.ok(!logs.includes(form), 'file key in the logs');
  assert.deepEqual(findCanaries(logs, [secret]), []);
});

void test('age reports why the plugin cannot open: no grant, disabled version, revoked token, foreign address', async () => {
  const secret = canary('age-refusals');
  const recipient = encodeRecipient({ keyRef });
  const alice = devices.alice!;
  const enc = age(['-r', recipient], secret, { KEYWARD_AGE_IDENTITY: alice.identityFile });
  assert.equal(enc.status, 0, enc.stderr);

  // A principal without unwrap on the key: not its file.
  const noGrant = age(['-d', '-i', devices.mallory!.identityFile], enc.stdout);
  assert.notEqual(noGrant.status, 0);
  assert.match(noGrant.stderr, /no identity matched/);
  assert.equal(noGrant.stdout.length, 0);

  // A recipient naming another key service: credentials are never sent there.
  const foreign = age(['-r', encodeRecipient({ keyRef, address: 'https://kms.elsewhere.example' })], secret, { KEYWARD_AGE_IDENTITY: alice.identityFile });
  assert.notEqual(foreign.status, 0);
  assert.match(foreign.stderr, /kms\.elsewhere\.example, which is not an address of this login profile/);

  // The key version disabled: a clear error from age, no plaintext; enabled again: opens.
  await must(ks.admin('POST', `/v1/keys/${keyRef}/versions/1/disable`, {}));
  const disabled = age(['-d', '-i', alice.identityFile], enc.stdout);
  assert.notEqual(disabled.status, 0);
  assert.match(disabled.stderr, /keyward plugin: keyward: the key service refused to unwrap the file key of .*KW_KEY_VERSION_DISABLED/);
  assert.equal(disabled.stdout.length, 0);
  await must(ks.admin('POST', `/v1/keys/${keyRef}/versions/1/enable`, {}));
  assert.equal(age(['-d', '-i', alice.identityFile], enc.stdout).stdout.toString(), secret);

  // The token revoked: the identity (which only names the token file) stops working at once.
  await must(ks.admin('DELETE', `/v1/tokens/${alice.tokenId}`));
  const revoked = age(['-d', '-i', alice.identityFile], enc.stdout);
  assert.notEqual(revoked.status, 0);
  assert.match(revoked.stderr, /KW_UNAUTHENTICATED/);
  assert.equal(revoked.stdout.length, 0);
  assert.ok(!revoked.stderr.includes(readFileSync(alice.tokenFile, 'utf8').trim()), 'the token is never printed');

  // Missing credentials: a credentials error, naming the path only.
  const missing = join(dir, 'missing.age-identity');
  writeFileSync(missing, `${encodeIdentity({ profile: join(dir, 'no-such-profile'), tokenFile: alice.tokenFile })}\n`);
  const none = age(['-d', '-i', missing], enc.stdout);
  assert.notEqual(none.status, 0);
  assert.match(none.stderr, /no-such-profile/);
  assert.deepEqual(findCanaries(ks.logs(), [secret]), []);
});
