/**
 * Rekey (unseal-share rotation) at the keyholder (keyholder/rekey.ts,
 * custody-sync.ts; docs/key-service-crypto.md §Rekey): the real service in
 * process on a real state file. Current shares are checked like unseal shares
 * (wrong purpose, corrupted, other init, duplicate), one attempt at a time,
 * cancel and expiry change nothing, completion commits a new share set
 * atomically (old shares refused, new ones unseal, same master key), and a
 * second node of the same deployment adopts it: unsealed through an
 * authenticated record, sealed when its custodians offer old shares
 * (KW_SHARES_SUPERSEDED) or new ones. HSM-wrapped custody rekeys its recovery
 * shares into a new recovery key.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { HpkeIdentity } from '@keyward/core';
import { initCustody, type ShareFile } from '../../src/keyholder/custody.js';
import { openCustodianShare } from '../../src/keyholder/custodians.js';
import { supersedes, verifyCustodyRecord, type CustodyRecord } from '../../src/keyholder/custody-sync.js';
import { initHsmCustody } from '../../src/keyholder/hsm-custody.js';
import { isProtocolError, type OpResult, type ProtocolErrorCode } from '../../src/keyholder/protocol.js';
import { RekeyAttempt } from '../../src/keyholder/rekey.js';
import { HttpSigRequestVerifier, KeyholderService } from '../../src/keyholder/service.js';
import { StateFile, buildInitState, type KeyholderState } from '../../src/keyholder/state.js';
import { sealShareForBoot } from '../../src/keyholder/unseal-key.js';
import { SOFTHSM_MODULE, softHsm } from '../hsm/softhsm.js';

const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

async function rejects(fn: () => Promise<unknown>, code: ProtocolErrorCode, what = ''): Promise<void> {
  let caught: unknown;
  try { await fn(); } catch (e) { caught = e; }
  assert.ok(isProtocolError(caught), `${what}: expected ${code}, got ${caught instanceof Error ? caught.message : String(caught)}`);
  assert.equal(caught.code, code, `${what}: ${caught.message}`);
}

interface Custodian { identity: HpkeIdentity; recipient: string }
async function custodians(n: number): Promise<Custodian[]> {
  return Promise.all(Array.from({ length: n }, async () => {
    const identity = await HpkeIdentity.generate('x25519');
    return { identity, recipient: (await identity.recipient()).toString() };
  }));
}

function tempState(): string {
  const d = mkdtempSync(join(tmpdir(), 'kw-rekey-'));
  dirs.push(d);
  return join(d, 'keyholder.json');
}

const open = (path: string, hsm?: { pin: string }) => KeyholderService.open({ stateFile: new StateFile(path), verifier: new HttpSigRequestVerifier(), ...(hsm ? { hsm: { ...hsm, retryMs: 0 } } : {}) });

async function unsealWith(s: KeyholderService, shares: readonly (ShareFile | string)[], custody?: CustodyRecord): Promise<OpResult<'unseal'>> {
  let last: OpResult<'unseal'> | undefined;
  for (const sh of shares) {
    const { recipient, bootId } = await s.call('unseal-key', {});
    const env = await sealShareForBoot(typeof sh === 'string' ? sh : sh.text, recipient, bootId);
    last = await s.call('unseal', { share: b64u(env), ...(custody ? { custody } : {}) });
  }
  if (!last) throw new Error('no shares given');
  return last;
}

/** What `keyward rekey submit` does: seal the current share to the attempt's key. */
async function submit(s: KeyholderService, id: string, recipient: string, share: ShareFile | string, purpose: 'rekey' | 'unseal' = 'rekey') {
  const env = await sealShareForBoot(typeof share === 'string' ? share : share.text, recipient, id, purpose);
  return s.call('rekey-share', { id, share: b64u(env) });
}

const readState = (path: string): KeyholderState => JSON.parse(readFileSync(path, 'utf8')) as KeyholderState;

void describe('rekey, software custody', () => {
  let path: string;
  let copy: string;
  let s: KeyholderService;
  let init: Awaited<ReturnType<typeof initCustody>>;
  let record: CustodyRecord;
  let newShares: string[];

  void test('setup: a 2-of-3 keyholder, unsealed; a copy of its state for a second node', async () => {
    path = tempState();
    copy = tempState();
    init = await initCustody({ shares: 3, threshold: 2 });
    const state = buildInitState({ masterKey: init.masterKey, custody: init.state, origin: 'kms.test/audit' });
    s = await open(path);
    await s.call('init-state', { state });
    copyFileSync(path, copy);
    assert.equal((await unsealWith(s, init.shares.slice(0, 2))).sealed, false);
  });

  void test('start validates n, k and recipients; a sealed keyholder cannot rekey', async () => {
    const c = await custodians(3);
    await rejects(() => s.call('rekey-start', { shares: 3, threshold: 2, recipients: c.slice(0, 2).map((x) => x.recipient) }), 'KW_INVALID_ARGUMENT', 'too few recipients');
    await rejects(() => s.call('rekey-start', { shares: 3, threshold: 4, recipients: c.map((x) => x.recipient) }), 'KW_INVALID_ARGUMENT', 'k > n');
    await rejects(() => s.call('rekey-start', { shares: 3, threshold: 2, recipients: [c[0]!.recipient, c[1]!.recipient, 'kwx25519-not-a-key'] }), 'KW_INVALID_ARGUMENT', 'bad recipient');
    await rejects(() => s.call('rekey-start', { shares: 3, threshold: 2, recipients: [c[0]!.recipient, c[1]!.recipient, c[0]!.recipient] }), 'KW_INVALID_ARGUMENT', 'same custodian twice');
    assert.equal((await s.call('rekey-status', {})).rekey, null, 'nothing started');
    const sealed = await open(copy);
    await rejects(() => sealed.call('rekey-start', { shares: 3, threshold: 2, recipients: c.map((x) => x.recipient) }), 'KW_SEALED', 'sealed');
    sealed.shutdown();
  });

  void test('one attempt at a time; cancel forgets it and changes nothing; expiry too', async () => {
    const c = await custodians(3);
    const before = readFileSync(path, 'utf8');
    const a = await s.call('rekey-start', { shares: 3, threshold: 2, recipients: c.map((x) => x.recipient) });
    assert.match(a.id, /^[0-9a-f]{32}$/);
    assert.deepEqual([a.received, a.required, a.shares, a.threshold, a.mode, a.completed], [0, 2, 3, 2, 'software', null]);
    assert.ok(a.expiresAt - a.startedAt === 3600_000);
    await rejects(() => s.call('rekey-start', { shares: 3, threshold: 2, recipients: c.map((x) => x.recipient) }), 'KW_REKEY_PENDING', 'second start');
    assert.equal((await submit(s, a.id, a.recipient, init.shares[0]!)).received, 1);
    await rejects(() => s.call('rekey-cancel', { id: 'f'.repeat(32) }), 'KW_REKEY_NOT_FOUND', 'cancel another id');
    assert.deepEqual(await s.call('rekey-cancel', { id: a.id }), { cancelled: true, completed: false });
    assert.equal((await s.call('rekey-status', {})).rekey, null);
    await rejects(() => submit(s, a.id, a.recipient, init.shares[1]!), 'KW_REKEY_NOT_FOUND', 'share to a cancelled attempt');
    // Expiry: an hour later the attempt is gone, its share forgotten.
    const b = await s.call('rekey-start', { shares: 3, threshold: 2, recipients: c.map((x) => x.recipient) });
    await submit(s, b.id, b.recipient, init.shares[0]!);
    const now = Date.now;
    Date.now = () => now() + 3600_001;
    try {
      assert.equal((await s.call('rekey-status', {})).rekey, null, 'expired');
      await rejects(() => submit(s, b.id, b.recipient, init.shares[1]!), 'KW_REKEY_NOT_FOUND', 'share after expiry');
    } finally {
      Date.now = now;
    }
    assert.equal(readFileSync(path, 'utf8'), before, 'the state file is untouched');
    // The attempt object itself: expired() follows its own clock.
    const x = await RekeyAttempt.start({ custody: init.state, shares: 2, threshold: 2, recipients: c.slice(0, 2).map((y) => y.recipient), now: 1000, ttlMs: 10 });
    assert.deepEqual([x.expired(1010), x.expired(1011)], [false, true]);
    x.dispose();
  });

  void test('each current share is checked like an unseal share; refusals are not counted; the threshold completes a new 3-of-5 set', async () => {
    const c = await custodians(5);
    const a = await s.call('rekey-start', { shares: 5, threshold: 3, recipients: c.map((x) => x.recipient) });
    const share = init.shares[0]!;
    await rejects(() => submit(s, a.id, a.recipient, share, 'unseal'), 'KW_SEALED_SHARE_REJECTED', 'sealed for unseal, not rekey');
    await rejects(async () => s.call('rekey-share', { id: a.id, share: b64u(await sealShareForBoot(share.text, a.recipient, 'e'.repeat(32), 'rekey')) }), 'KW_SEALED_SHARE_REJECTED', 'sealed for another attempt');
    const lines = share.text.split('\n');
    const data = lines[1]!;
    const flipped = `${lines[0]}\n${data.slice(0, 30)}${data[30] === 'A' ? 'B' : 'A'}${data.slice(31)}\n`;
    await rejects(() => submit(s, a.id, a.recipient, flipped), 'KW_SHARE_CORRUPTED', 'corrupted');
    const other = await initCustody({ shares: 3, threshold: 2 });
    other.masterKey.fill(0);
    await rejects(() => submit(s, a.id, a.recipient, other.shares[0]!), 'KW_SHARE_WRONG_INIT', 'another init');
    const r1 = await submit(s, a.id, a.recipient, share);
    assert.deepEqual([r1.index, r1.received, r1.required, r1.complete, r1.completed], [1, 1, 2, false, null]);
    await rejects(() => submit(s, a.id, a.recipient, share), 'KW_SHARE_DUPLICATE', 'duplicate');
    assert.equal((await s.call('rekey-status', {})).rekey!.received, 1, 'refusals were not counted');
    const before = readState(path);
    const r2 = await submit(s, a.id, a.recipient, init.shares[2]!);
    assert.equal(r2.complete, true);
    const done = r2.completed!;
    assert.deepEqual([done.generation, done.shares, done.threshold, done.sealedShares.length], [1, 5, 3, 5]);
    // Committed: the state file holds the new set, everything else as it was.
    const after = readState(path);
    assert.deepEqual(after.custody.shareHashes, done.shareHashes);
    assert.deepEqual([after.custody.threshold, after.custody.generation, after.custody.initId, after.custody.mkCheck], [3, 1, before.custody.initId, before.custody.mkCheck]);
    assert.deepEqual({ ...after, custody: null }, { ...before, custody: null });
    for (const h of before.custody.shareHashes) assert.ok(!done.shareHashes.includes(h), 'every share hash is new');
    // Only custodian i opens share i; nothing in the response is a plaintext share.
    assert.ok(!JSON.stringify(r2).includes('KEYWARD-SHARE-1:'));
    newShares = await Promise.all(done.sealedShares.map((x, i) => openCustodianShare(x.armored, c[i]!.identity)));
    await assert.rejects(openCustodianShare(done.sealedShares[0]!.armored, c[1]!.identity));
    // Status keeps the sealed shares until acknowledged; a completed attempt takes no more shares and blocks no new start.
    const st = await s.call('rekey-status', {});
    assert.equal(st.generation, 1);
    assert.equal(st.rekey!.completed!.sealedShares.length, 5);
    await rejects(() => submit(s, a.id, a.recipient, init.shares[1]!), 'KW_REKEY_NOT_FOUND', 'share after completion');
    record = done.record;
    assert.deepEqual(await s.call('rekey-cancel', { id: a.id }), { cancelled: true, completed: true });
  });

  void test('after a restart the old shares are refused and the new ones unseal the same master key', async () => {
    s.shutdown();
    s = await open(path);
    await rejects(() => unsealWith(s, init.shares.slice(0, 1)), 'KW_SHARE_CORRUPTED', 'an old share');
    const r = await unsealWith(s, newShares.slice(2, 5));
    assert.equal(r.sealed, false);
    // The same master key: the checkpoint key (wrapped under it) opened, and the record's MAC verifies under it.
    assert.ok(verifyCustodyRecord(init.masterKey, record));
    assert.ok(!verifyCustodyRecord(new Uint8Array(32), record));
  });

  void test('another node, sealed with the old state: old shares are KW_SHARES_SUPERSEDED (the new set adopted), a forged record is ignored', async () => {
    const forged: CustodyRecord = { shares: record.shares, mac: '0'.repeat(64) };
    const b = await open(copy);
    assert.equal(supersedes(readState(copy).custody, record.shares), true);
    // A record whose MAC does not verify is ignored: old shares still unseal this node.
    assert.equal((await unsealWith(b, init.shares.slice(0, 2), forged)).sealed, false);
    b.shutdown();
    const stale = tempState();
    copyFileSync(copy, stale);
    const c = await open(stale);
    await unsealWith(c, init.shares.slice(0, 1), record);
    await rejects(() => unsealWith(c, init.shares.slice(1, 2), record), 'KW_SHARES_SUPERSEDED', 'old shares');
    assert.equal((await c.call('status', {})).sealed, true);
    assert.equal(readState(stale).custody.generation, 1, 'the new set was adopted');
    assert.deepEqual(readState(stale).custody.shareHashes, record.shares.shareHashes);
    await rejects(() => unsealWith(c, init.shares.slice(0, 1)), 'KW_SHARE_CORRUPTED', 'old shares, after adoption, without the record');
    assert.equal((await unsealWith(c, newShares.slice(0, 3))).sealed, false);
    c.shutdown();
  });

  void test('another node, sealed with the old state: the new shares unseal it (with the record) and it adopts the set; unsealed nodes adopt through custody-sync', async () => {
    const stale = tempState();
    copyFileSync(copy, stale);
    const c = await open(stale);
    assert.equal((await unsealWith(c, newShares.slice(0, 3), record)).sealed, false);
    assert.equal(readState(stale).custody.generation, 1);
    c.shutdown();
    // Unsealed with the old shares, the node takes the record through custody-sync; a forged one is refused, an old one ignored.
    const d = tempState();
    copyFileSync(copy, d);
    const n = await open(d);
    await unsealWith(n, init.shares.slice(0, 2));
    await rejects(() => n.call('custody-sync', { record: { shares: record.shares, mac: 'a'.repeat(64) } }), 'KW_INVALID_ARGUMENT', 'forged record');
    assert.equal(readState(d).custody.generation, undefined);
    assert.deepEqual(await n.call('custody-sync', { record }), { generation: 1, taken: true });
    assert.deepEqual(await n.call('custody-sync', { record }), { generation: 1, taken: false }, 'same generation: ignored');
    assert.deepEqual(readState(d).custody.shareHashes, record.shares.shareHashes);
    n.shutdown();
    s.shutdown();
  });
});

void describe('rekey, HSM-wrapped custody (SoftHSM2): recovery shares, a new recovery key', () => {
  void test('recovery shares authorise the rekey; the new recovery set verifies, the old one is refused; the master key (in the HSM) is untouched', async () => {
    const h = softHsm('kw-rekey');
    try {
      const init = await initHsmCustody({ module: SOFTHSM_MODULE, tokenLabel: h.label, pin: h.pin, shares: 3, threshold: 2 });
      const state = buildInitState({ masterKey: init.masterKey, custody: init.state, origin: 'kms.test/audit' });
      init.masterKey.fill(0);
      const path = tempState();
      const s = await open(path, { pin: h.pin });
      await s.call('init-state', { state });
      assert.equal((await s.call('status', {})).sealed, false, 'auto-unsealed from the HSM');
      const c = await custodians(3);
      const a = await s.call('rekey-start', { shares: 3, threshold: 2, recipients: c.map((x) => x.recipient) });
      assert.equal(a.mode, 'hsm-wrapped');
      await submit(s, a.id, a.recipient, init.shares[0]!);
      const r = await submit(s, a.id, a.recipient, init.shares[1]!);
      const done = r.completed!;
      const after = readState(path);
      assert.equal(after.custody.generation, 1);
      assert.notEqual(after.custody.recoveryCheck, state.custody.recoveryCheck, 'a new recovery key');
      assert.equal(after.custody.mkCheck, state.custody.mkCheck);
      assert.deepEqual(after.custody.hsm, state.custody.hsm);
      const fresh = await Promise.all(done.sealedShares.map((x, i) => openCustodianShare(x.armored, c[i]!.identity)));
      const recover = async (shares: readonly (ShareFile | string)[]): Promise<OpResult<'recovery-share'>> => {
        let last: OpResult<'recovery-share'> | undefined;
        for (const sh of shares) {
          const k = await s.call('unseal-key', {});
          last = await s.call('recovery-share', { share: b64u(await sealShareForBoot(typeof sh === 'string' ? sh : sh.text, k.recipient, k.bootId)) });
        }
        if (!last) throw new Error('no shares given');
        return last;
      };
      await rejects(() => recover(init.shares.slice(0, 1)), 'KW_SHARE_CORRUPTED', 'an old recovery share');
      assert.equal((await recover(fresh.slice(1, 3))).verified, true);
      s.shutdown();
    } finally {
      h.cleanup();
    }
  });
});
