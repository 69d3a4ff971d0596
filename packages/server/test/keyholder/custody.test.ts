/**
 * Custody: Shamir split/combine through share files and the Unsealer, every
 * refusal typed and side-effect free (corrupted, foreign, duplicate shares;
 * k−1 shares; a state that disagrees with the shares), share files sealed to
 * the per-boot unseal key, and shares sealed to custodians.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HpkeIdentity, armor, parseRecipient, seal } from '@keyward/core';
import { initCustody, parseCustodyState, shareHash, type CustodyState } from '../../src/keyholder/custody.js';
import { openCustodianShare, splitToRecipients } from '../../src/keyholder/custodians.js';
import {
  BODY_LENGTH, CHECKSUM_LENGTH, SHARE_PREFIX, decodeShareFile, encodeShareFile,
} from '../../src/keyholder/share-file.js';
import { UnsealKey, sealShareForBoot, unsealContext } from '../../src/keyholder/unseal-key.js';
import { Unsealer } from '../../src/keyholder/unsealer.js';
import { flipped, pick, rejectsCore, rejectsKh, subsets } from './helpers.js';

/** The binary data line of a share file. */
const dataOf = (text: string) => Uint8Array.from(Buffer.from(text.split('\n')[1]!.slice(SHARE_PREFIX.length), 'base64url'));
const withData = (text: string, data: Uint8Array) => `${text.split('\n')[0]}\n${SHARE_PREFIX}${Buffer.from(data).toString('base64url')}\n`;

async function unsealWith(state: CustodyState, texts: readonly string[]): Promise<Uint8Array> {
  const u = new Unsealer(state);
  let last;
  for (const [i, t] of texts.entries()) {
    last = await u.submit(t);
    assert.equal(last.received, i + 1);
    assert.equal(last.sealed, i + 1 < state.threshold);
  }
  assert.ok(last && !last.sealed);
  return last.masterKey;
}

void describe('initCustody and share files', () => {
  void test('default is 3 of 5; state holds init id, threshold, share hashes and mk check', async () => {
    const init = await initCustody();
    assert.equal(init.masterKey.length, 32);
    assert.match(init.initId, /^[0-9a-f]{32}$/);
    assert.equal(init.shares.length, 5);
    assert.deepEqual(init.shares.map((s) => s.index), [1, 2, 3, 4, 5]);
    assert.equal(init.state.threshold, 3);
    assert.equal(init.state.initId, init.initId);
    assert.deepEqual(init.state.shareHashes, init.shares.map(shareHash));
    assert.match(init.state.mkCheck, /^[0-9a-f]{64}$/);
    assert.deepEqual(parseCustodyState(JSON.parse(JSON.stringify(init.state))), init.state);
  });

  void test('share file text: one comment line, one data line', async () => {
    const init = await initCustody({ shares: 4, threshold: 2 });
    const s = init.shares[2]!;
    const lines = s.text.split('\n');
    assert.equal(lines[0], '# keyward unseal share 3 of 4 (threshold 2)');
    assert.match(lines[1]!, /^KEYWARD-SHARE-1:[A-Za-z0-9_-]+$/);
    assert.equal(lines[2], '');
    assert.equal(dataOf(s.text).length, BODY_LENGTH + CHECKSUM_LENGTH);
    const d = decodeShareFile(s.text);
    assert.equal(d.initId, init.initId);
    assert.equal(d.index, 3);
    assert.deepEqual(d.share, s.share);
    // Bytes, CRLF and extra comments read the same.
    assert.deepEqual(decodeShareFile(new TextEncoder().encode(s.text.replace(/\n/g, '\r\n') + '# kept in the safe\n')).share, s.share);
  });

  for (const [n, k] of [[2, 1], [3, 4], [256, 3], [5, 2.5], [1, 1]] as const) {
    void test(`initCustody refuses ${k} of ${n}`, async () => {
      await rejectsKh(() => initCustody({ shares: n, threshold: k }), 'KW_INVALID_ARGUMENT');
    });
  }

  void test('a malformed custody state is KW_INVALID_ARGUMENT', async () => {
    const { state } = await initCustody();
    await rejectsKh(() => new Unsealer({ ...state, threshold: 6 }), 'KW_INVALID_ARGUMENT');
    await rejectsKh(() => new Unsealer({ ...state, initId: 'xyz' }), 'KW_INVALID_ARGUMENT');
    await rejectsKh(() => new Unsealer({ ...state, extra: 1 }), 'KW_INVALID_ARGUMENT');
  });
});

void describe('Shamir round trip through the Unsealer', () => {
  for (const [k, n] of [[2, 2], [2, 3], [3, 5], [4, 7], [5, 5], [7, 10]] as const) {
    void test(`${k} of ${n}: any ${k} shares, in any order, rebuild the master key`, async () => {
      const init = await initCustody({ shares: n, threshold: k });
      for (let round = 0; round < 3; round++) {
        const chosen = pick(init.shares, k).map((s) => s.text);
        assert.deepEqual(await unsealWith(init.state, chosen), init.masterKey);
      }
    });
  }

  void test('3 of 5: every one of the 10 subsets works', async () => {
    const init = await initCustody({ shares: 5, threshold: 3 });
    for (const subset of subsets(5, 3)) {
      assert.deepEqual(await unsealWith(init.state, subset.map((i) => init.shares[i]!.text)), init.masterKey, `subset ${subset.join(',')}`);
    }
  });

  void test('k−1 shares leave it sealed; more than k is refused as already unsealed', async () => {
    const init = await initCustody({ shares: 5, threshold: 3 });
    const u = new Unsealer(init.state);
    assert.deepEqual(await u.submit(init.shares[0]!.text), { sealed: true, received: 1, threshold: 3 });
    assert.deepEqual(await u.submit(init.shares[4]!.text), { sealed: true, received: 2, threshold: 3 });
    assert.deepEqual(u.progress(), { sealed: true, received: 2, threshold: 3 });
    const r = await u.submit(init.shares[2]!.text);
    assert.equal(r.sealed, false);
    assert.deepEqual(u.progress(), { sealed: false, received: 0, threshold: 3 });
    await rejectsKh(() => u.submit(init.shares[1]!.text), 'KW_ALREADY_UNSEALED');
  });

  void test('a duplicate is refused and not counted twice', async () => {
    const init = await initCustody({ shares: 3, threshold: 2 });
    const u = new Unsealer(init.state);
    await u.submit(init.shares[1]!.text);
    await rejectsKh(() => u.submit(init.shares[1]!.text), 'KW_SHARE_DUPLICATE', 2);
    assert.deepEqual(u.progress(), { sealed: true, received: 1, threshold: 2 });
    const r = await u.submit(init.shares[0]!.text);
    assert.ok(!r.sealed);
    assert.deepEqual(r.masterKey, init.masterKey);
  });

  void test('concurrent submissions: exactly one completes the threshold', async () => {
    const init = await initCustody({ shares: 5, threshold: 3 });
    const u = new Unsealer(init.state);
    const results = await Promise.allSettled(init.shares.map((s) => u.submit(s.text)));
    const opened = results.filter((r) => r.status === 'fulfilled' && !r.value.sealed);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(opened.length, 1);
    assert.equal(refused.length, 2);
    for (const r of refused) assert.equal((r.reason as { code: string }).code, 'KW_ALREADY_UNSEALED');
  });
});

void describe('bad shares change nothing', () => {
  void test('every single-byte flip of a share is KW_SHARE_CORRUPTED naming its index', async () => {
    const init = await initCustody({ shares: 5, threshold: 3 });
    const u = new Unsealer(init.state);
    await u.submit(init.shares[0]!.text);
    const target = init.shares[3]!; // index 4
    const data = dataOf(target.text);
    for (let i = 0; i < data.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        await rejectsKh(() => u.submit(withData(target.text, flipped(data, i, mask))), 'KW_SHARE_CORRUPTED', 4);
      }
    }
    assert.deepEqual(u.progress(), { sealed: true, received: 1, threshold: 3 });
    // The intact shares still unseal.
    await u.submit(target.text);
    const r = await u.submit(init.shares[1]!.text);
    assert.ok(!r.sealed);
    assert.deepEqual(r.masterKey, init.masterKey);
  });

  void test('a damaged data line (any character changed, truncated, extended) is KW_SHARE_CORRUPTED', async () => {
    const init = await initCustody({ shares: 3, threshold: 2 });
    const u = new Unsealer(init.state);
    const [comment, line] = init.shares[1]!.text.split('\n') as [string, string];
    for (let i = SHARE_PREFIX.length; i < line.length; i++) {
      const c = line[i] === 'A' ? 'B' : 'A';
      await rejectsKh(() => u.submit(`${comment}\n${line.slice(0, i)}${c}${line.slice(i + 1)}\n`), 'KW_SHARE_CORRUPTED');
    }
    for (const bad of [line.slice(0, -1), line + 'A', line.replace('KEYWARD-SHARE-1', 'KEYWARD-SHARE-2'), '', 'hello', `${line}\n${line}`]) {
      await rejectsKh(() => u.submit(`${comment}\n${bad}\n`), 'KW_SHARE_CORRUPTED');
    }
    assert.deepEqual(u.progress(), { sealed: true, received: 0, threshold: 2 });
  });

  void test('a forged share with a valid checksum fails the recorded hash, naming its index', async () => {
    const init = await initCustody({ shares: 3, threshold: 2 });
    const s = init.shares[2]!;
    const forged = encodeShareFile({ initId: s.initId, index: 3, share: flipped(s.share, 5) }, 3, 2);
    const u = new Unsealer(init.state);
    await rejectsKh(() => u.submit(forged), 'KW_SHARE_CORRUPTED', 3);
    // Claiming another index with a genuine share's bytes is caught the same way.
    const relabelled = encodeShareFile({ initId: s.initId, index: 1, share: s.share }, 3, 2);
    await rejectsKh(() => u.submit(relabelled), 'KW_SHARE_CORRUPTED', 1);
    assert.deepEqual(u.progress(), { sealed: true, received: 0, threshold: 2 });
  });

  void test('a share from another init is KW_SHARE_WRONG_INIT', async () => {
    const mine = await initCustody({ shares: 3, threshold: 2 });
    const other = await initCustody({ shares: 3, threshold: 2 });
    const u = new Unsealer(mine.state);
    await u.submit(mine.shares[0]!.text);
    for (const s of other.shares) await rejectsKh(() => u.submit(s.text), 'KW_SHARE_WRONG_INIT', s.index);
    assert.deepEqual(u.progress(), { sealed: true, received: 1, threshold: 2 });
    const r = await u.submit(mine.shares[2]!.text);
    assert.ok(!r.sealed);
    assert.deepEqual(r.masterKey, mine.masterKey);
  });

  void test('shares that pass every check but combine to the wrong key: KW_UNSEAL_FAILED, progress discarded', async () => {
    const init = await initCustody({ shares: 3, threshold: 2 });
    const state = { ...init.state, mkCheck: '00'.repeat(32) };
    const u = new Unsealer(state);
    await u.submit(init.shares[0]!.text);
    await rejectsKh(() => u.submit(init.shares[1]!.text), 'KW_UNSEAL_FAILED');
    assert.deepEqual(u.progress(), { sealed: true, received: 0, threshold: 2 });
  });
});

void describe('shares sealed to the per-boot unseal key', () => {
  void test('sealed share opens with this boot key and submits', async () => {
    const init = await initCustody({ shares: 3, threshold: 2 });
    const key = await UnsealKey.generate();
    assert.match(key.recipient, /^kwx255191/);
    assert.match(key.bootId, /^[0-9a-f]{32}$/);
    const u = new Unsealer(init.state);
    await u.submit(await key.openSealedShare(await sealShareForBoot(init.shares[0]!.text, key.recipient, key.bootId)));
    const armored = armor(await sealShareForBoot(init.shares[2]!.text, key.recipient, key.bootId));
    const r = await u.submit(await key.openSealedShare(armored));
    assert.ok(!r.sealed);
    assert.deepEqual(r.masterKey, init.masterKey);
  });

  void test('another boot, another purpose, no context, another key, tampering: KW_SEALED_SHARE_REJECTED', async () => {
    const init = await initCustody({ shares: 3, threshold: 2 });
    const text = new TextEncoder().encode(init.shares[0]!.text);
    const key = await UnsealKey.generate();
    const previousBoot = await UnsealKey.generate();
    const recipient = (await (await HpkeIdentity.generate('x25519')).recipient()).toString();
    const kr = await parseRecipient(key.recipient);
    const all: [string, Uint8Array][] = [
      ['wrong boot id', await sealShareForBoot(text, key.recipient, previousBoot.bootId)],
      ['sealed to the previous boot key', await sealShareForBoot(text, previousBoot.recipient, key.bootId)],
      ['sealed to some other key', await sealShareForBoot(text, recipient, key.bootId)],
      ['no context', await seal(text, { recipients: [kr] })],
      ['other purpose', await seal(text, { recipients: [kr], context: { purpose: 'custody', boot: key.bootId } })],
      ['extra context pair', await seal(text, { recipients: [kr], context: { ...unsealContext(key.bootId), note: 'x' } })],
    ];
    const good = await sealShareForBoot(text, key.recipient, key.bootId);
    all.push(['tampered', flipped(good, good.length - 3)], ['truncated', good.subarray(0, good.length - 1)]);
    for (const [name, env] of all) {
      const e = await rejectsKh(() => key.openSealedShare(env), 'KW_SEALED_SHARE_REJECTED');
      assert.ok(e.cause, `${name}: the core error is kept as cause`);
    }
    key.dispose();
    await rejectsKh(() => key.openSealedShare(good), 'KW_SEALED_SHARE_REJECTED');
  });

  void test('sealShareForBoot refuses a non-X25519 recipient or a malformed boot id', async () => {
    const key = await UnsealKey.generate();
    const xwing = (await (await HpkeIdentity.generate('xwing')).recipient()).toString();
    await rejectsKh(() => sealShareForBoot('x', xwing, key.bootId), 'KW_INVALID_ARGUMENT');
    await rejectsKh(() => sealShareForBoot('x', 'kwx25519nope', key.bootId), 'KW_INVALID_ARGUMENT');
    await rejectsKh(() => sealShareForBoot('x', key.recipient, 'boot'), 'KW_INVALID_ARGUMENT');
  });
});

void describe('shares sealed to custodians', () => {
  void test('each share opens only with its custodian identity, and the opened shares unseal', async () => {
    const init = await initCustody({ shares: 3, threshold: 2 });
    const ids = [await HpkeIdentity.generate('x25519'), await HpkeIdentity.generate('xwing'), await HpkeIdentity.generate('x25519')];
    const recipients = await Promise.all(ids.map(async (id) => (await id.recipient()).toString()));
    const sealed = await splitToRecipients(init.shares, recipients);
    assert.equal(sealed.length, 3);
    for (const [i, s] of sealed.entries()) {
      assert.equal(s.index, i + 1);
      assert.equal(s.recipient, recipients[i]);
      assert.match(s.armored, /^-----BEGIN KEYWARD ENVELOPE-----\n/);
      assert.equal(await openCustodianShare(s.armored, ids[i]!), init.shares[i]!.text);
      for (const [j, other] of ids.entries()) {
        if (j !== i) await rejectsCore(() => openCustodianShare(s.armored, other), 'KW_NO_IDENTITY_MATCHED');
      }
    }
    const texts = await Promise.all([openCustodianShare(sealed[2]!.armored, ids[2]!), openCustodianShare(sealed[1]!.armored, ids[1]!)]);
    assert.deepEqual(await unsealWith(init.state, texts), init.masterKey);
  });

  void test('a share sealed under a context naming another index is refused', async () => {
    const init = await initCustody({ shares: 2, threshold: 2 });
    const id = await HpkeIdentity.generate('x25519');
    const env = await seal(new TextEncoder().encode(init.shares[0]!.text), { recipients: [await id.recipient()], context: { purpose: 'custody', init: init.initId, index: '2' } });
    await rejectsKh(() => openCustodianShare(env, id), 'KW_SHARE_CORRUPTED', 1);
  });

  void test('recipient count and format are checked before anything is sealed', async () => {
    const init = await initCustody({ shares: 2, threshold: 2 });
    const r = (await (await HpkeIdentity.generate('x25519')).recipient()).toString();
    await rejectsKh(() => splitToRecipients(init.shares, [r]), 'KW_INVALID_ARGUMENT');
    await rejectsKh(() => splitToRecipients(init.shares, [r, 'age1notakeywardkey']), 'KW_INVALID_ARGUMENT');
  });
});
