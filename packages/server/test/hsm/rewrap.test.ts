/**
 * `keyward hsm rewrap` (HSM migration, docs/hsm.md §HSM migration) against
 * two real SoftHSM2 tokens, with real server processes and the real CLI (the
 * binary for `init` and the token A → B migration, its `main` in this process
 * for the other commands, which saves a child's start-up per command):
 * refusals that change nothing (service running, no quorum, duplicate share,
 * wrong target PIN, unsupported mechanism, label taken, HSM-resident keys);
 * token A → token B with the audit key in the HSM (new checkpoint key in B,
 * rotation checkpoint signed by both keys, old key deleted from A, the
 * service auto-unseals from B and opens what was sealed before); software
 * custody → HSM (new recovery shares; the old unseal shares no longer count).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { newVerifier, openCheckpoint } from '@keyward/tlog';
import { hsmRewrap } from '../../src/hsm-rewrap.js';
import { Pkcs11Token } from '../../src/hsm/token.js';
import { mkCheckOf } from '../../src/keyholder/custody.js';
import { keyholderStateSchema } from '../../src/keyholder/state.js';
import { addToken, SOFTHSM_MODULE, softHsm, type SoftHsm } from './softhsm.js';
import { fails, kw, kwHere, ok, ServerProcess, until } from './cli-run.js';

let hsm: SoftHsm;
let b: ReturnType<typeof addToken>;
let data: string;
const f = { pinA: '', pinB: '', admin: '', profile: '', plain: '', sealed: '', exportBefore: '' };
let server: ServerProcess | null = null;
const sw = { dir: '', recovery: [] as string[] };

const state = () => keyholderStateSchema.parse(JSON.parse(readFileSync(join(data, 'keyholder.json'), 'utf8')));
const labelsIn = (t: { pkcs11Tool(...a: string[]): string }) => [...t.pkcs11Tool('--list-objects').matchAll(/label: +(\S+)/g)].map((m) => m[1]!);
const env = () => ({ KEYWARD_ADDR: server!.addr, KEYWARD_TOKEN_FILE: f.admin });

/** keyholder.json and the data directory's file list are exactly as they were. */
function unchanged(before: { json: string; files: string[] }, bLabels: string[]): void {
  assert.equal(readFileSync(join(data, 'keyholder.json'), 'utf8'), before.json, 'keyholder.json unchanged');
  assert.deepEqual(readdirSync(data).sort(), before.files, 'no file added or removed');
  assert.deepEqual(labelsIn(b).sort(), bLabels, 'nothing left behind in token B');
}

void describe('keyward hsm rewrap on two SoftHSM2 tokens', () => {
  before(() => {
    hsm = softHsm('kw-a');
    b = addToken(hsm, 'kw-b');
    data = join(hsm.dir, 'data');
    for (const [k, v] of [['pinA', hsm.pin], ['pinB', b.pin]] as const) {
      f[k] = join(hsm.dir, `${k}.txt`);
      writeFileSync(f[k], `${v}\n`, { mode: 0o600 });
    }
    f.admin = join(hsm.dir, 'admin.token');
    f.profile = join(hsm.dir, 'profile');
    f.plain = join(hsm.dir, 'plain.txt');
    f.sealed = join(hsm.dir, 'plain.kw');
    f.exportBefore = join(hsm.dir, 'before.jsonl');
    writeFileSync(f.plain, 'sealed before the migration\n');
  });
  after(async () => {
    await server?.stop();
    hsm.cleanup();
  });

  void test('setup: HSM-wrapped on token A with the audit key in A; an envelope sealed; a checkpoint; rewrap refused while running', async () => {
    ok(await kw(['init', '--data', data, '--hsm-module', SOFTHSM_MODULE, '--hsm-token', 'kw-a', '--hsm-pin-file', f.pinA, '--hsm-audit-key', '--shares', '3', '--threshold', '2', '--token-file']));
    server = await ServerProcess.start(['--data', data, '--hsm-pin-file', f.pinA]);
    const e = env();
    ok(await kwHere(['token', 'create', '--principal', 'admin', '--kind', 'person', '--admin', '-o', f.admin, '--token-file', join(data, 'initial-admin-token')], e));
    ok(await kwHere(['keys', 'create', 'app/kms'], e));
    ok(await kwHere(['login', '--profile', f.profile], e));
    writeFileSync(join(hsm.dir, 'policy.json'), JSON.stringify({ grants: [{ principals: ['admin'], operations: ['datakey', 'unwrap'], keys: ['app/*'] }] }));
    ok(await kwHere(['policy', 'put', 'app/p', '--file', join(hsm.dir, 'policy.json')], e));
    ok(await kwHere(['seal', '--kms', 'app/kms', '--profile', f.profile, '-o', f.sealed, f.plain], e));
    await new Promise((r) => setTimeout(r, 1500)); // the next checkpoint (at most one a second), signed by the HSM key
    await until('a checkpoint', async () => {
      ok(await kwHere(['audit', 'export', '-o', f.exportBefore], e));
      return (await kwHere(['audit', 'verify', '--export', f.exportBefore, '--key', join(data, 'audit-verifier-key.txt')])).code === 0;
    }, 90_000);
    // Still running: refused, typed, nothing changed.
    const snap = { json: readFileSync(join(data, 'keyholder.json'), 'utf8'), files: readdirSync(data).sort() };
    const r = fails(await kwHere(['hsm', 'rewrap', '--data', data, '--share', join(data, 'shares', 'share-1.txt'), '--share', join(data, 'shares', 'share-2.txt'), '--hsm-pin-file', f.pinA, '--to-token', 'kw-b', '--to-pin-file', f.pinB]), 'KW_HSM_SERVICE_RUNNING');
    assert.match(r.err, /stop it/);
    unchanged(snap, []);
    await server.stop();
    server = null;
    assert.ok(state().lastCheckpoint !== null, 'the keyholder signed a checkpoint');
  });

  void test('refusals change nothing: no quorum, duplicate share, wrong target PIN, unsupported mechanism, label taken, PIN on argv', async () => {
    const s1 = readFileSync(join(data, 'shares', 'share-1.txt'), 'utf8');
    const s3 = readFileSync(join(data, 'shares', 'share-3.txt'), 'utf8');
    const target = { module: SOFTHSM_MODULE, tokenLabel: 'kw-b', pin: b.pin };
    const run = (o: Partial<Parameters<typeof hsmRewrap>[0]>) => hsmRewrap({ dataDir: data, shares: [s1, s3], sourcePin: hsm.pin, target, ...o });
    const code = (c: string) => (e: unknown) => (e as { code?: string }).code === c;
    b.pkcs11Tool('--keygen', '--key-type', 'AES:32', '--label', 'taken');
    const snap = { json: readFileSync(join(data, 'keyholder.json'), 'utf8'), files: readdirSync(data).sort() };
    const bLabels = labelsIn(b).sort();
    assert.deepEqual(bLabels, ['taken']);
    await assert.rejects(run({ shares: [s1] }), code('KW_INVALID_ARGUMENT'));
    await assert.rejects(run({ shares: [s1, s1] }), code('KW_SHARE_DUPLICATE'));
    await assert.rejects(run({ target: { ...target, pin: hsm.pin } }), code('KW_HSM_PIN_INCORRECT'));
    // The key is generated in B, then the wrap mechanism is refused: the key is destroyed again.
    await assert.rejects(run({ target: { ...target, wrapMechanism: 'kwp' } }), code('KW_HSM_MECHANISM_UNSUPPORTED'));
    await assert.rejects(run({ target: { ...target, keyLabel: 'taken' } }), code('KW_HSM_KEY_EXISTS'));
    // The audit key's label taken: the new wrapping key made before it is destroyed again.
    await assert.rejects(run({ target: { ...target, auditKeyLabel: 'taken-too' }, openToken: async (cfg) => {
      const t = await Pkcs11Token.open(cfg);
      if (cfg.tokenLabel === 'kw-b' && !(await t.has('ed25519', 'taken-too'))) await t.generate('ed25519', 'taken-too');
      return t;
    } }), code('KW_HSM_KEY_EXISTS'));
    b.pkcs11Tool('--delete-object', '--type', 'privkey', '--label', 'taken-too');
    b.pkcs11Tool('--delete-object', '--type', 'pubkey', '--label', 'taken-too');
    unchanged(snap, bLabels);
    // The CLI: PINs never on the command line; another token needs its own PIN.
    fails(await kwHere(['hsm', 'rewrap', '--data', data, '--hsm-pin-file', f.pinA, '--to-token', 'kw-b', '--to-pin', b.pin, '--share', join(data, 'shares', 'share-1.txt')]), 'KW_INVALID_ARGUMENT');
    fails(await kwHere(['hsm', 'rewrap', '--data', data, '--hsm-pin-file', f.pinA, '--to-token', 'kw-b', '--share', join(data, 'shares', 'share-1.txt')]), 'KW_INVALID_ARGUMENT');
    unchanged(snap, bLabels);
    b.pkcs11Tool('--delete-object', '--type', 'secrkey', '--label', 'taken');
  });

  void test('token A → token B: new wrapping and checkpoint keys in B, rotation checkpoint signed by both, A no longer needed', async () => {
    const old = state();
    const oldVerifier = readFileSync(join(data, 'audit-verifier-key.txt'), 'utf8').trim();
    // The real binary (a child process) for the migration itself; the other CLI runs are in process (kwHere).
    const r = JSON.parse(ok(await kw(['hsm', 'rewrap', '--data', data, '--share', join(data, 'shares', 'share-2.txt'), '--share', join(data, 'shares', 'share-3.txt'),
      '--hsm-pin-file', f.pinA, '--to-token', 'kw-b', '--to-pin-file', f.pinB, '--json'])).out) as {
      initId: string; from: { custody: string; tokenLabel: string }; to: { tokenLabel: string; keyLabel: string; auditKeyLabel: string };
      backupFile: string; auditKey: { oldVerifierKey: string; newVerifierKey: string; oldVerifierKeyFile: string; rotationCheckpointFile: string }; warnings: string[];
    };
    assert.equal(r.from.custody, 'hsm-wrapped');
    assert.equal(r.to.tokenLabel, 'kw-b');
    assert.match(r.to.keyLabel, new RegExp(`^keyward-mk-${r.initId}-[0-9a-f]{8}$`));
    assert.deepEqual(r.warnings, []);
    const now = state();
    assert.equal(now.custody.hsm?.tokenLabel, 'kw-b');
    assert.equal(now.custody.hsm?.keyLabel, r.to.keyLabel);
    assert.notEqual(now.custody.hsm?.wrappedMasterKey, old.custody.hsm?.wrappedMasterKey);
    assert.deepEqual([now.custody.mkCheck, now.custody.recoveryCheck, now.custody.shareHashes], [old.custody.mkCheck, old.custody.recoveryCheck, old.custody.shareHashes], 'same master key, same recovery shares');
    assert.deepEqual(now.lastCheckpoint, old.lastCheckpoint);
    assert.ok(old.governance, 'the policy put made a signed governance snapshot');
    assert.deepEqual(now.governance, old.governance, 'the governance snapshot is kept');
    assert.equal(now.audit.hsmKeyLabel, r.to.auditKeyLabel);
    assert.equal(readFileSync(r.backupFile, 'utf8').trim(), JSON.stringify(old, null, 2).trim(), 'the previous keyholder.json is kept');
    // Keys in B: sensitive, never extractable.
    const listing = b.pkcs11Tool('--list-objects');
    for (const label of [r.to.keyLabel, r.to.auditKeyLabel]) {
      const block = listing.split(/\n(?=\S)/).find((x) => x.includes(`label:      ${label}`) && !/Public Key Object/.test(x));
      assert.ok(block, `${label} in token B`);
      assert.match(block, /never extractable/);
      assert.match(block, /\bsensitive\b/);
    }
    // Verifier keys: the new one in audit-verifier-key.txt, the old one kept; the rotation checkpoint verifies with both.
    assert.equal(r.auditKey.oldVerifierKey, oldVerifier);
    assert.equal(readFileSync(r.auditKey.oldVerifierKeyFile, 'utf8').trim(), oldVerifier);
    assert.equal(readFileSync(join(data, 'audit-verifier-key.txt'), 'utf8').trim(), r.auditKey.newVerifierKey);
    const note = readFileSync(r.auditKey.rotationCheckpointFile, 'utf8');
    for (const vk of [oldVerifier, r.auditKey.newVerifierKey]) {
      const { checkpoint } = openCheckpoint(note, [newVerifier(vk)], { origin: now.audit.origin });
      assert.equal(checkpoint.size, now.lastCheckpoint!.size);
      assert.equal(Buffer.from(checkpoint.root).toString('base64url'), now.lastCheckpoint!.root);
    }
    // The old HSM is gone for good: its keys are deleted.
    for (const [type, label] of [['secrkey', old.custody.hsm!.keyLabel], ['privkey', old.audit.hsmKeyLabel!], ['pubkey', old.audit.hsmKeyLabel!]] as const) {
      hsm.pkcs11Tool('--delete-object', '--type', type, '--label', label);
    }
    assert.deepEqual(labelsIn(hsm), []);

    server = await ServerProcess.start(['--data', data, '--hsm-pin-file', f.pinB]);
    const e = env();
    const st = JSON.parse(ok(await kwHere(['status', '--json'], e)).out) as { sealed: boolean; hsm: { state: string } };
    assert.equal(st.sealed, false);
    assert.equal(st.hsm.state, 'available');
    assert.equal(ok(await kwHere(['open', '--kms', '--profile', f.profile, f.sealed], e)).out, 'sealed before the migration\n');
    // New checkpoints are signed in B; the whole log verifies with the new key and extends the rotation checkpoint.
    const after = join(hsm.dir, 'after.jsonl');
    ok(await kwHere(['keys', 'create', 'app/after'], e));
    let last = '';
    await until('a checkpoint signed by the new key', async () => {
      ok(await kwHere(['audit', 'export', '-o', after], e));
      const v = await kwHere(['audit', 'verify', '--export', after, '--key', join(data, 'audit-verifier-key.txt'), '--previous-key', r.auditKey.oldVerifierKeyFile, '--checkpoint', r.auditKey.rotationCheckpointFile]);
      last = v.err;
      return v.code === 0;
    }, 90_000).catch((err: unknown) => { throw new Error(`${String(err)}; last verify: ${last}`); });
    fails(await kwHere(['audit', 'verify', '--export', after, '--key', r.auditKey.oldVerifierKeyFile]), 'AUDIT_BAD_CHECKPOINT');
    ok(await kwHere(['audit', 'verify', '--export', f.exportBefore, '--key', r.auditKey.oldVerifierKeyFile]));
  });

  void test('HSM-resident keys: rewrap refused (KW_HSM_RESIDENT_KEYS), nothing changed', async () => {
    const e = env();
    ok(await kwHere(['keys', 'create', 'app/resident', '--hsm-resident'], e));
    await server!.stop();
    server = null;
    const snap = { json: readFileSync(join(data, 'keyholder.json'), 'utf8'), files: readdirSync(data).sort() };
    const aLabels = labelsIn(hsm).sort();
    const r = fails(await kwHere(['hsm', 'rewrap', '--data', data, '--share', join(data, 'shares', 'share-1.txt'), '--share', join(data, 'shares', 'share-2.txt'),
      '--hsm-pin-file', f.pinB, '--to-token', 'kw-a', '--to-pin-file', f.pinA]), 'KW_HSM_RESIDENT_KEYS');
    assert.match(r.err, /app\/resident/);
    assert.equal(readFileSync(join(data, 'keyholder.json'), 'utf8'), snap.json);
    assert.deepEqual(readdirSync(data).sort(), snap.files);
    assert.deepEqual(labelsIn(hsm).sort(), aLabels);
  });

  void test('software custody → HSM: unseal-share quorum, new recovery shares, the service auto-unseals and opens old envelopes', async () => {
    sw.dir = join(hsm.dir, 'sw');
    const swd = sw.dir;
    ok(await kwHere(['init', '--data', swd, '--shares', '3', '--threshold', '2', '--token-file']));
    server = await ServerProcess.start(['--data', swd]);
    const e = { KEYWARD_ADDR: server.addr, KEYWARD_TOKEN_FILE: join(hsm.dir, 'sw-admin.token') };
    for (const i of [1, 3]) ok(await kwHere(['unseal', '--share', join(swd, 'shares', `share-${i}.txt`)], e));
    ok(await kwHere(['token', 'create', '--principal', 'admin', '--kind', 'person', '--admin', '-o', e.KEYWARD_TOKEN_FILE, '--token-file', join(swd, 'initial-admin-token')], e));
    ok(await kwHere(['keys', 'create', 'app/kms'], e));
    const profile = join(hsm.dir, 'sw-profile');
    ok(await kwHere(['login', '--profile', profile], e));
    ok(await kwHere(['policy', 'put', 'app/p', '--file', join(hsm.dir, 'policy.json')], e));
    const sealed = join(hsm.dir, 'sw.kw');
    ok(await kwHere(['seal', '--kms', 'app/kms', '--profile', profile, '-o', sealed, f.plain], e));
    await server.stop();
    server = null;

    const aBefore = labelsIn(hsm).length;
    const r = JSON.parse(ok(await kwHere(['hsm', 'rewrap', '--data', swd, '--share', join(swd, 'shares', 'share-2.txt'), '--share', join(swd, 'shares', 'share-3.txt'),
      '--to-module', SOFTHSM_MODULE, '--to-token', 'kw-a', '--to-pin-file', f.pinA, '--recovery-shares', '4', '--recovery-threshold', '3', '--json'])).out) as {
      from: { custody: string }; to: { keyLabel: string; auditKeyLabel: string | null }; recoveryShareFiles: { index: number; file: string }[]; threshold: number; auditKey: unknown;
    };
    assert.equal(r.from.custody, 'software');
    assert.equal(r.to.auditKeyLabel, null, 'the checkpoint key stays wrapped under the (unchanged) master key');
    assert.equal(r.auditKey, null);
    assert.equal(r.threshold, 3);
    assert.deepEqual(r.recoveryShareFiles.map((s) => s.index), [1, 2, 3, 4]);
    assert.ok(r.recoveryShareFiles.every((s) => existsSync(s.file)));
    assert.equal(labelsIn(hsm).length, aBefore + 1);
    const swState = keyholderStateSchema.parse(JSON.parse(readFileSync(join(swd, 'keyholder.json'), 'utf8')));
    assert.equal(swState.custody.hsm?.tokenLabel, 'kw-a');
    assert.equal(swState.custody.shareHashes.length, 4);

    server = await ServerProcess.start(['--data', swd, '--hsm-pin-file', f.pinA]);
    const e2 = { ...e, KEYWARD_ADDR: server.addr };
    assert.equal(JSON.parse(ok(await kwHere(['status', '--json'], e2)).out).sealed, false, 'auto-unsealed, no shares');
    assert.equal(ok(await kwHere(['open', '--kms', '--profile', profile, sealed], e2)).out, 'sealed before the migration\n');
    // An old unseal share is not a recovery share; the new ones verify the quorum.
    fails(await kwHere(['hsm', 'verify-recovery', '--share', join(swd, 'shares', 'share-1.txt')], e2), 'KW_SHARE_CORRUPTED');
    for (const s of r.recoveryShareFiles.slice(0, 2)) ok(await kwHere(['hsm', 'verify-recovery', '--share', s.file], e2));
    assert.match(ok(await kwHere(['hsm', 'verify-recovery', '--share', r.recoveryShareFiles[3]!.file], e2)).out, /quorum verified/);
    sw.recovery = r.recoveryShareFiles.map((x) => x.file);
  });

  void test('same token, new label (in process): the new key unwraps to the same master key; the old key is left alone', async () => {
    await server?.stop();
    server = null;
    const before = keyholderStateSchema.parse(JSON.parse(readFileSync(join(sw.dir, 'keyholder.json'), 'utf8')));
    const r = await hsmRewrap({
      dataDir: sw.dir, shares: sw.recovery.slice(0, 3).map((x) => readFileSync(x, 'utf8')), sourcePin: hsm.pin,
      target: { module: SOFTHSM_MODULE, tokenLabel: 'kw-a', pin: hsm.pin, keyLabel: 'keyward-mk-custom' },
    });
    assert.equal(r.to.keyLabel, 'keyward-mk-custom');
    const after = keyholderStateSchema.parse(JSON.parse(readFileSync(join(sw.dir, 'keyholder.json'), 'utf8')));
    assert.equal(after.custody.hsm?.keyLabel, 'keyward-mk-custom');
    assert.equal(after.custody.mkCheck, before.custody.mkCheck);
    const t = await Pkcs11Token.open({ module: SOFTHSM_MODULE, tokenLabel: 'kw-a', pin: hsm.pin });
    try {
      const mk = await t.unwrapPad('keyward-mk-custom', Buffer.from(after.custody.hsm.wrappedMasterKey, 'base64url'));
      assert.equal(Buffer.from(mkCheckOf(mk)).toString('hex'), before.custody.mkCheck);
      mk.fill(0);
      assert.equal(await t.has('aes', before.custody.hsm!.keyLabel), true, 'the old wrapping key is still there');
    } finally {
      t.close();
    }
    // Asking for the label already in use is refused.
    await assert.rejects(hsmRewrap({ dataDir: sw.dir, shares: [], sourcePin: hsm.pin, target: { module: SOFTHSM_MODULE, tokenLabel: 'kw-a', pin: hsm.pin, keyLabel: 'keyward-mk-custom' } }),
      (e) => (e as { code?: string }).code === 'KW_INVALID_ARGUMENT');
  });
});
