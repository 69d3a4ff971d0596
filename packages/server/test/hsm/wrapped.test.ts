/**
 * HSM-wrapped mode end to end, on a private SoftHSM2 token, with the real
 * `keyward` CLI (the binary for `init` and the server, built or from source as
 * test/built.ts says; its `main` in this process for the client commands) and real server and keyholder processes:
 * init with the HSM → the server starts unsealed without shares →
 * create/rotate/datakey/unwrap/rewrap/sign → HSM-resident keys (create/rotate/
 * datakey/unwrap/rewrap/encrypt/decrypt/sign/mac in the HSM, marker-only store
 * rows, destroy removes the HSM object) → restart → auto-unseals again →
 * data keys still unwrap; keys visible to OpenSC's pkcs11-tool as sensitive
 * and never extractable; the master key's bytes appear nowhere on disk and the
 * recovery shares cannot rebuild it; the HSM gone at restart → sealed with a
 * typed status, back → unsealed by the retry timer; wrong PIN → typed status,
 * not retried; `keyward unseal` → KW_HSM_AUTO_UNSEAL; checkpoints signed by
 * the HSM key verify with `keyward audit verify`; the PIN is in no argv,
 * environment, log or file Keyward wrote.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { combine } from 'shamir-secret-sharing';
import { KeywardHttpClient } from '@keyward/client';
import { parseVerifierKey } from '@keyward/tlog';
import { Pkcs11Token } from '../../src/hsm/token.js';
import { mkCheckOf } from '../../src/keyholder/custody.js';
import { recoveryCheckOf } from '../../src/keyholder/hsm-custody.js';
import { keyholderStateSchema } from '../../src/keyholder/state.js';
import { decodeShareFile } from '../../src/keyholder/share-file.js';
import { unwrap } from '../../src/keyholder/wrap.js';
import { openSqliteStoreReadOnly } from '../../src/store/sqlite-readonly.js';
import { SOFTHSM_MODULE, softHsm, type SoftHsm } from './softhsm.js';
import { CLI_ARGS } from '../built.js';
import { childEnv, fails, freePort, kw, kwHere, ok, REPO } from './cli-run.js';

let hsm: SoftHsm;
let data: string;
let pinFile: string;
let addr = '';
let server: { child: ChildProcess; log: () => string } | null = null;

async function startServer(pin = pinFile): Promise<void> {
  const port = await freePort();
  addr = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [...CLI_ARGS, 'server', '--data', data, '--listen', `127.0.0.1:${port}`, '--hsm-pin-file', pin, '--hsm-retry-ms', '300'], {
    cwd: REPO, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  child.stdout.resume();
  const deadline = Date.now() + 60_000;
  while (!/keyward server listening/.test(err)) {
    if (Date.now() > deadline || child.exitCode !== null) {
      // A server left running would keep the test process (and CI) from ever ending.
      child.kill('SIGKILL');
      throw new Error(`server did not start: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  server = { child, log: () => err };
}

async function stopServer(): Promise<string> {
  const s = server;
  server = null;
  if (!s) return '';
  if (s.child.exitCode === null) {
    const exited = new Promise((r) => s.child.once('exit', r));
    s.child.kill('SIGTERM');
    await exited;
  }
  return s.log();
}

const env = () => ({ KEYWARD_ADDR: addr });
interface Health { sealed: boolean; hsm?: { state: string; code: string | null } }
const status = async (): Promise<Health> => JSON.parse(ok(await kwHere(['status', '--json'], env())).out) as Health;

async function until(what: string, fn: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The keyholder process of the running server (its /proc entries), found by its socket path. */
function keyholderPids(): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (cmd.includes('keyholder') && cmd.includes(join(data, 'keyholder.sock'))) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

const t = { admin: '', profile: '', bootstrap: '' };

void describe('HSM-wrapped mode on SoftHSM2 (real CLI, server and keyholder processes)', () => {
  before(() => {
    hsm = softHsm('keyward-wrapped');
    data = join(hsm.dir, 'data');
    pinFile = join(hsm.dir, 'pin');
    writeFileSync(pinFile, `${hsm.pin}\n`, { mode: 0o600 });
    t.admin = join(hsm.dir, 'admin.token');
    t.profile = join(hsm.dir, 'profile');
    t.bootstrap = join(data, 'initial-admin-token');
  });
  after(async () => {
    await stopServer();
    hsm.cleanup();
  });

  void test('init: keys generated in the HSM (sensitive, never extractable), state names them, no PIN anywhere', async () => {
    const r = JSON.parse(ok(await kw(['init', '--data', data, '--hsm-module', SOFTHSM_MODULE, '--hsm-token', hsm.label, '--hsm-pin-file', pinFile, '--hsm-audit-key', '--shares', '3', '--threshold', '2', '--token-file', '--json'])).out) as { initId: string; hsm: { keyLabel: string; auditKeyLabel: string; wrapMechanism: string } };
    assert.equal(r.hsm.keyLabel, `keyward-mk-${r.initId}`);
    assert.equal(r.hsm.auditKeyLabel, `keyward-audit-${r.initId}`);
    assert.equal(r.hsm.wrapMechanism, 'pad');
    const state = keyholderStateSchema.parse(JSON.parse(readFileSync(join(data, 'keyholder.json'), 'utf8')));
    assert.equal(state.custody.hsm?.keyLabel, r.hsm.keyLabel);
    assert.equal(state.audit.hsmKeyLabel, r.hsm.auditKeyLabel);
    assert.equal(state.audit.signingKeyWrapped, undefined, 'the checkpoint key is not wrapped into the state: it is in the HSM');
    assert.equal(Buffer.from(state.custody.hsm.wrappedMasterKey, 'base64url').length, 40, 'RFC 5649 of 32 bytes');

    const listing = hsm.pkcs11Tool('--list-objects');
    for (const label of [r.hsm.keyLabel, r.hsm.auditKeyLabel]) {
      const blocks = listing.split(/\n(?=\S)/).filter((b) => b.includes(`label:      ${label}`) && !/Public Key Object/.test(b));
      assert.equal(blocks.length, 1, `pkcs11-tool lists ${label}`);
      assert.match(blocks[0]!, /Access:.*\bsensitive\b/, `${label} is sensitive`);
      assert.match(blocks[0]!, /never extractable/, `${label} is never extractable`);
    }
    // The PIN is written nowhere by init.
    for (const f of ['keyholder.json', 'keyward.db', 'audit-verifier-key.txt']) assert.ok(!readFileSync(join(data, f)).includes(hsm.pin), `no PIN in ${f}`);
    // PIN on the command line is not even an option.
    fails(await kwHere(['init', '--data', join(hsm.dir, 'x'), '--hsm-module', SOFTHSM_MODULE, '--hsm-token', hsm.label, '--hsm-pin', hsm.pin]), 'KW_INVALID_ARGUMENT');
  });

  void test('the server starts unsealed from the HSM without shares; keyward unseal is a typed refusal', async () => {
    await startServer();
    const s = await status();
    assert.equal(s.sealed, false);
    assert.deepEqual(s.hsm, { state: 'available', code: null });
    assert.match(ok(await kwHere(['status'], env())).out, /^hsm: +available/m);
    const u = fails(await kwHere(['unseal', '--share', join(data, 'shares', 'share-1.txt')], env()), 'KW_HSM_AUTO_UNSEAL');
    assert.match(u.err, /recovery shares/);
    // The PIN is neither in the keyholder's argv nor in its environment.
    const pids = keyholderPids();
    assert.equal(pids.length, 1, 'one keyholder process');
    assert.ok(!readFileSync(`/proc/${pids[0]}/cmdline`).includes(hsm.pin), 'no PIN in the keyholder argv');
    assert.ok(!readFileSync(`/proc/${pids[0]}/environ`).includes(hsm.pin), 'no PIN in the keyholder environment');
  });

  void test('recovery shares: k of them verify the quorum; a share of another init is refused', async () => {
    const one = JSON.parse(ok(await kwHere(['hsm', 'verify-recovery', '--share', join(data, 'shares', 'share-1.txt'), '--json'], env())).out) as { received: number; verified: boolean };
    assert.deepEqual([one.received, one.verified], [1, false]);
    fails(await kwHere(['hsm', 'verify-recovery', '--share', join(data, 'shares', 'share-1.txt')], env()), 'KW_SHARE_DUPLICATE');
    const two = JSON.parse(ok(await kwHere(['hsm', 'verify-recovery', '--share', join(data, 'shares', 'share-3.txt'), '--json'], env())).out) as { received: number; verified: boolean };
    assert.deepEqual([two.received, two.verified], [2, true]);
    assert.equal((await status()).sealed, false);
  });

  void test('create, rotate, datakey, unwrap, rewrap, sign through the HSM-unsealed keyholder', async () => {
    ok(await kwHere(['token', 'create', '--principal', 'admin', '--kind', 'person', '--admin', '-o', t.admin, '--token-file', t.bootstrap], env()));
    ok(await kwHere(['keys', 'create', 'app/kms', '--token-file', t.admin], env()));
    ok(await kwHere(['keys', 'create', 'app/sig', '--type', 'ed25519', '--token-file', t.admin], env()));
    ok(await kwHere(['login', '--profile', t.profile, '--token-file', t.admin], env()));
    writeFileSync(join(hsm.dir, 'policy.json'), JSON.stringify({ grants: [{ principals: ['admin'], operations: ['datakey', 'unwrap', 'rewrap', 'sign', 'verify'], keys: ['app/*'] }] }));
    ok(await kwHere(['policy', 'put', 'app/p1', '--file', join(hsm.dir, 'policy.json'), '--token-file', t.admin], env()));
    writeFileSync(join(hsm.dir, 'plain.txt'), 'sealed under an HSM-wrapped key\n');
    const e = { ...env(), KEYWARD_TOKEN_FILE: t.admin };
    ok(await kwHere(['seal', '--kms', 'app/kms', '--profile', t.profile, '--context', 'table=orders', '-o', join(hsm.dir, 'v1.kw'), join(hsm.dir, 'plain.txt')], e));
    assert.equal(ok(await kwHere(['open', '--kms', '--profile', t.profile, '--context', 'table=orders', join(hsm.dir, 'v1.kw')], e)).out, 'sealed under an HSM-wrapped key\n');

    const client = httpClient();
    const dk = await client.data<{ version: number; wrapped: string }>('app', 'kms', 'datakey', { recipient: profileRecipient(), context: { a: 'b' } });
    assert.equal(dk.body.version, 1);
    ok(await kwHere(['keys', 'rotate', 'app/kms', '--token-file', t.admin], env()));
    const rw = await client.data<{ items: { version: number; wrapped: string }[] }>('app', 'kms', 'rewrap', { items: [{ version: 1, wrapped: dk.body.wrapped, context: { a: 'b' } }] });
    assert.equal(rw.body.items[0]!.version, 2);
    for (const it of [{ version: 1, wrapped: dk.body.wrapped }, rw.body.items[0]!]) {
      const u = await client.data<{ sealed: string }>('app', 'kms', 'unwrap', { ...it, context: { a: 'b' }, recipient: profileRecipient() });
      assert.ok(u.body.sealed.length > 0, `v${it.version} unwraps`);
    }
    await assert.rejects(client.data('app', 'kms', 'unwrap', { version: 2, wrapped: dk.body.wrapped, context: { a: 'b' }, recipient: profileRecipient() }), (e) => (e as { code?: string }).code === 'KW_WRAPPED_KEY_MISMATCH');
    const msg = Buffer.from('checkpoint me').toString('base64url');
    const sig = await client.data<{ signature: string }>('app', 'sig', 'sign', { message: msg });
    assert.match(sig.body.signature, /^kw:v1:/);
    assert.equal((await client.data<{ valid: boolean }>('app', 'sig', 'verify', { message: msg, signature: sig.body.signature })).body.valid, true);
    assert.equal((await client.data<{ valid: boolean }>('app', 'sig', 'verify', { message: Buffer.from('other').toString('base64url'), signature: sig.body.signature })).body.valid, false);
    writeFileSync(join(hsm.dir, 'datakey.json'), JSON.stringify({ v1: dk.body.wrapped, v2: rw.body.items[0]!.wrapped }));
    client.dispose();
  });

  void test('HSM-resident keys: generated in the HSM (sensitive, never extractable), every op delegated, no material in the store, destroy removes the HSM object', async () => {
    const initId = keyholderStateSchema.parse(JSON.parse(readFileSync(join(data, 'keyholder.json'), 'utf8'))).custody.initId;
    const label = (key: string, v: number) => `keyward-${initId}/app/${key}/v${v}`;
    const created = JSON.parse(ok(await kwHere(['keys', 'create', 'app/rk', '--hsm-resident', '--json', '--token-file', t.admin], env())).out) as { hsm_resident?: boolean };
    assert.equal(created.hsm_resident, true);
    ok(await kwHere(['keys', 'create', 'app/rsig', '--type', 'ed25519', '--hsm-resident', '--token-file', t.admin], env()));
    ok(await kwHere(['keys', 'create', 'app/rmac', '--type', 'hmac-sha256', '--hsm-resident', '--token-file', t.admin], env()));
    fails(await kwHere(['keys', 'create', 'app/rx', '--type', 'x25519', '--hsm-resident', '--token-file', t.admin], env()), 'KW_INVALID_ARGUMENT');
    assert.equal((JSON.parse(ok(await kwHere(['keys', 'show', 'app/rk', '--json', '--token-file', t.admin], env())).out) as { hsm_resident?: boolean }).hsm_resident, true);
    writeFileSync(join(hsm.dir, 'policy2.json'), JSON.stringify({ grants: [{ principals: ['admin'], operations: ['mac', 'encrypt', 'decrypt'], keys: ['app/*'] }] }));
    ok(await kwHere(['policy', 'put', 'app/p2', '--file', join(hsm.dir, 'policy2.json'), '--token-file', t.admin], env()));

    const client = httpClient();
    // aes256: data keys wrapped by the HSM's AES-GCM, bound to (ns, key, version, context).
    const dk = await client.data<{ version: number; wrapped: string }>('app', 'rk', 'datakey', { recipient: profileRecipient(), context: { a: 'b' } });
    assert.equal(dk.body.version, 1);
    assert.equal(Buffer.from(dk.body.wrapped, 'base64url')[0], 0x02, 'an HSM-made blob');
    ok(await kwHere(['keys', 'rotate', 'app/rk', '--token-file', t.admin], env()));
    const rw = await client.data<{ items: { version: number; wrapped: string }[] }>('app', 'rk', 'rewrap', { items: [{ version: 1, wrapped: dk.body.wrapped, context: { a: 'b' } }] });
    assert.equal(rw.body.items[0]!.version, 2);
    for (const it of [{ version: 1, wrapped: dk.body.wrapped }, rw.body.items[0]!]) {
      const u = await client.data<{ sealed: string }>('app', 'rk', 'unwrap', { ...it, context: { a: 'b' }, recipient: profileRecipient() });
      assert.ok(u.body.sealed.length > 0, `v${it.version} unwraps in the HSM`);
    }
    const refused = (code: string) => (e: unknown) => (e as { code?: string }).code === code;
    await assert.rejects(client.data('app', 'rk', 'unwrap', { version: 2, wrapped: dk.body.wrapped, context: { a: 'b' }, recipient: profileRecipient() }), refused('KW_WRAPPED_KEY_MISMATCH'));
    await assert.rejects(client.data('app', 'rk', 'unwrap', { version: 1, wrapped: dk.body.wrapped, context: { a: 'c' }, recipient: profileRecipient() }), refused('KW_WRAPPED_KEY_MISMATCH'));
    const ct = await client.data<{ ciphertext: string }>('app', 'rk', 'encrypt', { plaintext: Buffer.from('hello').toString('base64url'), context: {} });
    assert.match(ct.body.ciphertext, /^kw:v2:/);
    assert.ok((await client.data<{ sealed: string }>('app', 'rk', 'decrypt', { ciphertext: ct.body.ciphertext, context: {}, recipient: profileRecipient() })).body.sealed.length > 0);
    // ed25519: signed in the HSM; the signature verifies with the version's public key outside Keyward too.
    const msg = Buffer.from('signed by the HSM');
    const sig = await client.data<{ signature: string }>('app', 'rsig', 'sign', { message: msg.toString('base64url') });
    assert.match(sig.body.signature, /^kw:v1:/);
    assert.equal((await client.data<{ valid: boolean }>('app', 'rsig', 'verify', { message: msg.toString('base64url'), signature: sig.body.signature })).body.valid, true);
    const pubFile = join(hsm.dir, 'rsig-pub.pem');
    hsm.pkcs11Tool('--read-object', '--type', 'pubkey', '--label', label('rsig', 1), '-o', pubFile);
    assert.ok(cryptoVerify(null, msg, createPublicKey(readFileSync(pubFile)), Buffer.from(sig.body.signature.slice('kw:v1:'.length), 'base64url')), 'the HSM key pair made the signature');
    // hmac-sha256: in the HSM (deterministic, per message).
    const m1 = await client.data<{ mac: string }>('app', 'rmac', 'mac', { message: msg.toString('base64url') });
    const m2 = await client.data<{ mac: string }>('app', 'rmac', 'mac', { message: msg.toString('base64url') });
    const m3 = await client.data<{ mac: string }>('app', 'rmac', 'mac', { message: Buffer.from('other').toString('base64url') });
    assert.match(m1.body.mac, /^kw:v1:[A-Za-z0-9_-]{43}$/);
    assert.equal(m1.body.mac, m2.body.mac);
    assert.notEqual(m1.body.mac, m3.body.mac);

    // pkcs11-tool lists every version key as sensitive and never extractable.
    const listing = hsm.pkcs11Tool('--list-objects');
    for (const l of [label('rk', 1), label('rk', 2), label('rsig', 1), label('rmac', 1)]) {
      const blocks = listing.split(/\n(?=\S)/).filter((b) => b.includes(`label:      ${l}\n`) && !/Public Key Object/.test(b));
      assert.equal(blocks.length, 1, `pkcs11-tool lists ${l}`);
      assert.match(blocks[0]!, /Access:.*\bsensitive\b/, `${l} is sensitive`);
      assert.match(blocks[0]!, /never extractable/, `${l} is never extractable`);
    }
    // The store holds only the marker, no material.
    const store = await openSqliteStoreReadOnly({ path: join(data, 'keyward.db') });
    try {
      for (const [key, n] of [['rk', 2], ['rsig', 1], ['rmac', 1]] as const) {
        const versions = await store.listKeyVersions('app', key);
        assert.equal(versions.length, n);
        for (const v of versions) assert.equal(Buffer.from(v.wrapped!).toString('utf8'), `kwhsm:${label(key, v.version)}`, `${key} v${v.version}: a marker only`);
      }
    } finally {
      store.close();
    }

    // Destroy: the HSM object goes, and the version is refused afterwards.
    ok(await kwHere(['keys', 'schedule-deletion', 'app/rk', '1', '--days', '7', '--token-file', t.admin], env()));
    ok(await kwHere(['keys', 'destroy', 'app/rk', '1', '--yes', '--token-file', t.admin], env()));
    assert.ok(!hsm.pkcs11Tool('--list-objects').includes(`label:      ${label('rk', 1)}\n`), 'v1 is gone from the HSM');
    assert.ok(hsm.pkcs11Tool('--list-objects').includes(`label:      ${label('rk', 2)}\n`), 'v2 is still there');
    await assert.rejects(client.data('app', 'rk', 'unwrap', { version: 1, wrapped: dk.body.wrapped, context: { a: 'b' }, recipient: profileRecipient() }), refused('KW_KEY_VERSION_DESTROYED'));
    assert.ok((await client.data<{ sealed: string }>('app', 'rk', 'unwrap', { ...rw.body.items[0]!, context: { a: 'b' }, recipient: profileRecipient() })).body.sealed.length > 0, 'v2 still unwraps');
    writeFileSync(join(hsm.dir, 'resident.json'), JSON.stringify({ v2: rw.body.items[0]!.wrapped }));
    client.dispose();
  });

  void test('checkpoints are signed by the HSM key and verify with keyward audit verify', async () => {
    await new Promise((r) => setTimeout(r, 1500)); // the next checkpoint covers the events above
    const exp = join(hsm.dir, 'audit.jsonl');
    ok(await kwHere(['audit', 'export', '--token-file', t.admin, '-o', exp], env()));
    const v = JSON.parse(ok(await kwHere(['audit', 'verify', '--export', exp, '--key', join(data, 'audit-verifier-key.txt'), '--json'])).out) as { ok: boolean };
    assert.equal(v.ok, true);
    // The verifier key is the HSM key pair's public key (read independently with pkcs11-tool).
    const state = keyholderStateSchema.parse(JSON.parse(readFileSync(join(data, 'keyholder.json'), 'utf8')));
    const pubFile = join(hsm.dir, 'audit-pub.der');
    hsm.pkcs11Tool('--read-object', '--type', 'pubkey', '--label', state.audit.hsmKeyLabel!, '-o', pubFile);
    const hsmPublic = Buffer.from(createPublicKey(readFileSync(pubFile)).export({ format: 'jwk' }).x!, 'base64url'); // pkcs11-tool writes PEM
    const vk = parseVerifierKey(readFileSync(join(data, 'audit-verifier-key.txt'), 'utf8').trim());
    assert.deepEqual(Buffer.from(vk.publicKey), hsmPublic, 'the note key is the HSM public key');
    assert.ok(state.lastCheckpoint && state.lastCheckpoint.size > 2, 'the keyholder recorded a signed checkpoint');
  });

  void test('restart: auto-unseals again, old and rewrapped data keys still unwrap', async () => {
    const log = await stopServer();
    assert.ok(!log.includes(hsm.pin), 'no PIN in the server log');
    await startServer();
    assert.equal((await status()).sealed, false);
    const e = { ...env(), KEYWARD_TOKEN_FILE: t.admin };
    assert.equal(ok(await kwHere(['open', '--kms', '--profile', t.profile, '--context', 'table=orders', join(hsm.dir, 'v1.kw')], e)).out, 'sealed under an HSM-wrapped key\n');
    const blobs = JSON.parse(readFileSync(join(hsm.dir, 'datakey.json'), 'utf8')) as { v1: string; v2: string };
    const client = httpClient();
    for (const [version, wrapped] of [[1, blobs.v1], [2, blobs.v2]] as const) {
      assert.ok((await client.data<{ sealed: string }>('app', 'kms', 'unwrap', { version, wrapped, context: { a: 'b' }, recipient: profileRecipient() })).body.sealed.length > 0);
    }
    const resident = JSON.parse(readFileSync(join(hsm.dir, 'resident.json'), 'utf8')) as { v2: string };
    assert.ok((await client.data<{ sealed: string }>('app', 'rk', 'unwrap', { version: 2, wrapped: resident.v2, context: { a: 'b' }, recipient: profileRecipient() })).body.sealed.length > 0, 'an HSM-resident data key unwraps after restart');
    client.dispose();
  });

  void test('nothing on disk opens without the HSM: no master key bytes; the recovery shares do not rebuild it', async () => {
    await stopServer();
    const state = keyholderStateSchema.parse(JSON.parse(readFileSync(join(data, 'keyholder.json'), 'utf8')));
    const h = state.custody.hsm!;
    // The test (which knows the PIN) asks the HSM for the master key, to look for it on disk.
    const token = await Pkcs11Token.open({ module: SOFTHSM_MODULE, tokenLabel: hsm.label, pin: hsm.pin, sessions: 1 });
    const mk = Buffer.from(await token.unwrapPad(h.keyLabel, Buffer.from(h.wrappedMasterKey, 'base64url')));
    token.close();
    assert.equal(Buffer.from(mkCheckOf(mk)).toString('hex'), state.custody.mkCheck);
    const files = readdirSync(data, { recursive: true, withFileTypes: true }).filter((f) => f.isFile()).map((f) => join(f.parentPath, f.name));
    assert.ok(files.some((f) => f.endsWith('keyward.db')));
    for (const f of files) {
      const bytes = readFileSync(f);
      for (const form of [mk, Buffer.from(mk.toString('hex')), Buffer.from(mk.toString('base64url')), Buffer.from(mk.toString('base64'))]) {
        assert.ok(!bytes.includes(form), `the master key does not appear in ${f}`);
      }
      assert.ok(!bytes.includes(hsm.pin), `no PIN in ${f}`);
    }
    // The shares rebuild the recovery key, which is not the master key and opens no stored version.
    const shares = [1, 2].map((i) => decodeShareFile(readFileSync(join(data, 'shares', `share-${i}.txt`), 'utf8')).share);
    const rk = Buffer.from(await combine(shares.map((s) => Uint8Array.from(s))));
    assert.equal(Buffer.from(recoveryCheckOf(rk)).toString('hex'), state.custody.recoveryCheck, 'the shares are the recovery key\'s');
    assert.ok(!rk.equals(mk));
    assert.notEqual(Buffer.from(mkCheckOf(rk)).toString('hex'), state.custody.mkCheck);
    const store = await openSqliteStoreReadOnly({ path: join(data, 'keyward.db') });
    try {
      const versions = await store.listKeyVersions('app', 'kms');
      assert.equal(versions.length, 2);
      for (const v of versions) {
        const aad = { ns: 'app', key: 'kms', version: v.version, type: 'aes256' };
        assert.equal(unwrap(mk, 'key-version', aad, v.wrapped!).length, 32, 'the master key opens the stored version');
        assert.throws(() => unwrap(rk, 'key-version', aad, v.wrapped!), /KW_WRAPPED_KEY_MISMATCH|does not open/, 'the recovery key does not');
      }
    } finally {
      store.close();
    }
    mk.fill(0);
    rk.fill(0);
  });

  void test('the HSM gone at restart: sealed with a typed status, nothing changes; back: the retry timer unseals', async () => {
    const away = `${hsm.tokenDir}.away`;
    const dbBefore = readFileSync(join(data, 'keyward.db'));
    renameSync(hsm.tokenDir, away);
    try {
      await startServer();
      const s = await status();
      assert.equal(s.sealed, true);
      assert.equal(s.hsm?.state, 'unavailable');
      assert.match(s.hsm?.code ?? '', /^KW_HSM_(TOKEN_MISSING|UNAVAILABLE|MODULE_MISSING|FAILED)$/);
      assert.match(ok(await kwHere(['status'], env())).out, /^hsm: +unavailable \(KW_HSM_/m);
      fails(await kwHere(['keys', 'rotate', 'app/kms', '--token-file', t.admin], env()), 'KW_SEALED');
      assert.deepEqual(readFileSync(join(data, 'keyward.db')).subarray(0, 100), dbBefore.subarray(0, 100), 'the store header is intact');
    } finally {
      renameSync(away, hsm.tokenDir);
    }
    await until('auto-unseal by the retry timer', async () => (await status()).sealed === false);
    assert.deepEqual((await status()).hsm, { state: 'available', code: null });
    const e = { ...env(), KEYWARD_TOKEN_FILE: t.admin };
    assert.equal(ok(await kwHere(['open', '--kms', '--profile', t.profile, '--context', 'table=orders', join(hsm.dir, 'v1.kw')], e)).out, 'sealed under an HSM-wrapped key\n');
    await new Promise((r) => setTimeout(r, 1500));
    const exp = join(hsm.dir, 'audit2.jsonl');
    ok(await kwHere(['audit', 'export', '--token-file', t.admin, '-o', exp], env()));
    assert.equal((JSON.parse(ok(await kwHere(['audit', 'verify', '--export', exp, '--key', join(data, 'audit-verifier-key.txt'), '--json'])).out) as { ok: boolean }).ok, true);
  });

  void test('a wrong PIN: sealed, typed KW_HSM_PIN_INCORRECT in status, never retried (it would lock the token)', async () => {
    await stopServer();
    const wrong = join(hsm.dir, 'wrong-pin');
    writeFileSync(wrong, 'not-the-pin\n', { mode: 0o600 });
    await startServer(wrong);
    const s = await status();
    assert.equal(s.sealed, true);
    assert.deepEqual(s.hsm, { state: 'failed', code: 'KW_HSM_PIN_INCORRECT' });
    await new Promise((r) => setTimeout(r, 1000)); // > 3 retry periods
    assert.deepEqual((await status()).hsm, { state: 'failed', code: 'KW_HSM_PIN_INCORRECT' });
    await stopServer();
  });
});

function profileRecipient(): string {
  return (JSON.parse(readFileSync(join(t.profile, 'profile.json'), 'utf8')) as { recipient: string }).recipient;
}

function httpClient(): KeywardHttpClient {
  const doc = JSON.parse(readFileSync(join(t.profile, 'profile.json'), 'utf8')) as { key_id: string };
  const keys = JSON.parse(readFileSync(join(t.profile, 'device-keys.json'), 'utf8')) as { signing_seed: string };
  return new KeywardHttpClient({
    addresses: [addr], token: readFileSync(t.admin, 'utf8').trim(), allowInsecureHttp: true,
    device: { keyId: doc.key_id, signingSeed: Uint8Array.from(Buffer.from(keys.signing_seed, 'base64url')) },
  });
}
