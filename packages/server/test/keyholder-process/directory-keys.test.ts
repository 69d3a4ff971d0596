/**
 * The directory's keys in the real keyholder process (keyholder/directory-keys.ts,
 * docs/directory.md §Key custody): created or imported once and sealed in its state,
 * VRF proofs equal to the in-memory implementation's, tree-head signatures that verify
 * under the log's Configuration, and no signature for a head that does not extend the
 * last one it signed — across a restart too — nor for a larger head without a
 * consistency proof from it (a fork that grows).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  DirectoryBuilder, MemoryDirectoryStore, encodeTreeHeadTbs, memoryDirectoryKeys, verifyTreeHead, vrfEvaluate, vrfVerify,
  type SignedHeadRequest,
} from '@keyward/directory';
import { KeyholderDirectoryKeys } from '../../src/directory/keyholder-keys.js';
import { headLogKey } from '../../src/directory/witness.js';
import { b64u, makeInit, newDir, rejectsCode, startKeyholder, unb64u, unsealWith, utf8 } from './helpers.js';

const legacy = new Uint8Array(64).map((_, i) => (i * 37 + 11) & 0xff);
const legacyKeys = () => ({ signingKey: legacy.slice(0, 32), vrfKey: legacy.slice(32, 64) });
const legacyHolder = memoryDirectoryKeys(legacyKeys());
const hasBytes = (hay: Uint8Array, needle: Uint8Array): boolean => Buffer.from(hay).includes(Buffer.from(needle));

void test('directory keys in the keyholder: import, VRF, signing, refusal of non-extending heads, restart', async () => {
  const init = await makeInit(3, 2);
  const dir = newDir();
  let kh = await startKeyholder(dir);
  try {
    await kh.client.call('init-state', { state: init.state });
    // Sealed: nothing is made.
    await rejectsCode(() => kh.client.call('directory-keys', {}), 'KW_SEALED');
    await unsealWith(kh.client, init.shares.slice(0, 2));
    await rejectsCode(() => kh.client.call('directory-vrf', { label: b64u(utf8('alice')), version: 0 }), 'KW_DIRECTORY_NO_KEYS');
    await rejectsCode(() => kh.client.call('directory-sign-head', { tbs: b64u(new Uint8Array(64)) }), 'KW_DIRECTORY_NO_KEYS');

    // Import once (a pre-keyholder key file): its public keys are the in-memory implementation's.
    const mem = memoryDirectoryKeys(legacyKeys());
    const first = await kh.client.call('directory-keys', { import: b64u(legacy) });
    assert.equal(first.created, true);
    assert.equal(first.source, 'imported');
    assert.deepEqual(unb64u(first.signaturePublicKey), mem.signaturePublicKey);
    assert.deepEqual(unb64u(first.vrfPublicKey), mem.vrfPublicKey);
    assert.equal((await kh.client.call('directory-keys', { import: b64u(legacy) })).created, false);
    await rejectsCode(() => kh.client.call('directory-keys', { import: b64u(new Uint8Array(64).fill(7)) }), 'KW_DIRECTORY_KEY_MISMATCH');
    await rejectsCode(() => kh.client.call('directory-keys', { import: b64u(new Uint8Array(63)) }), 'KW_INVALID_ARGUMENT');

    // Sealed at rest: neither key appears in the state file.
    const stateBytes = readFileSync(join(dir, 'keyholder.json'));
    assert.ok(!hasBytes(stateBytes, legacy.subarray(0, 32)) && !hasBytes(stateBytes, legacy.subarray(32)));
    assert.ok(!stateBytes.toString('utf8').includes(Buffer.from(legacy).toString('base64url').slice(0, 40)));

    // VRF: the keyholder's output and proof are the in-memory implementation's, and verify.
    const keys = await KeyholderDirectoryKeys.open(kh.client);
    for (const [label, version] of [['alice', 0], ['alice', 5], ['', 0], ['x'.repeat(255), 4294967295]] as const) {
      const l = utf8(label);
      const got = await kh.client.call('directory-vrf', { label: b64u(l), version });
      const want = vrfEvaluate(legacyKeys().vrfKey, l, version);
      assert.deepEqual(unb64u(got.output), want.output);
      assert.deepEqual(unb64u(got.proof), want.proof);
      assert.deepEqual(vrfVerify(keys.vrfPublicKey, l, version, unb64u(got.proof)), want.output);
    }
    await rejectsCode(() => kh.client.call('directory-vrf', { label: b64u(new Uint8Array(256)), version: 0 }), 'KW_INVALID_ARGUMENT');

    // A log whose keys are the keyholder's: heads verify under its Configuration, and equal the in-memory ones.
    const store = new MemoryDirectoryStore();
    const log = await DirectoryBuilder.create(store, keys);
    const memLog = await DirectoryBuilder.create(store, legacyKeys());
    assert.deepEqual(log.config, memLog.config);
    await log.update([{ label: utf8('alice'), value: utf8('k1') }]);
    await log.update([{ label: utf8('bob'), value: utf8('k2') }, { label: utf8('alice'), value: utf8('k3') }]);
    const { treeHead, root } = await log.treeHead();
    assert.equal(treeHead.treeSize, 2);
    verifyTreeHead(log.config, treeHead, root);
    assert.deepEqual(treeHead.signature, (await memLog.treeHead()).treeHead.signature);
    // Searches prove VRF outputs for versions the store does not hold (asked of the keyholder).
    const res = await log.search({ label: utf8('carol') });
    assert.deepEqual(res, await memLog.search({ label: utf8('carol') }));

    // Refusals: a smaller head (rollback), another root at the same size (fork), another log's keys.
    const tbs = (size: number, r: Uint8Array, config = log.config) => b64u(encodeTreeHeadTbs(config, size, r));
    const root1 = await log.root(1);
    await rejectsCode(() => kh.client.call('directory-sign-head', { tbs: tbs(1, new Uint8Array(32).fill(5)) }), 'KW_DIRECTORY_HEAD_REGRESSION');
    // A head it signed since it started is signed again, identically (a request that read the log before an update).
    const sig1 = (await kh.client.call('directory-sign-head', { tbs: tbs(1, root1) })).signature;
    verifyTreeHead(log.config, { treeSize: 1, signature: unb64u(sig1) }, root1);
    assert.deepEqual((await kh.client.call('directory-keys', {})).lastHead, { size: 2, root: b64u(root) }, 're-signing an older head does not move the last head back');
    await rejectsCode(() => kh.client.call('directory-sign-head', { tbs: tbs(2, new Uint8Array(32).fill(9)) }), 'KW_DIRECTORY_HEAD_REGRESSION');
    const foreign = memoryDirectoryKeys({ signingKey: new Uint8Array(32).fill(1), vrfKey: legacy.slice(32) });
    await rejectsCode(() => kh.client.call('directory-sign-head', { tbs: tbs(3, root, { ...log.config, signaturePublicKey: foreign.signaturePublicKey }) }), 'KW_DIRECTORY_KEY_MISMATCH');
    await rejectsCode(() => kh.client.call('directory-sign-head', { tbs: b64u(new Uint8Array(41)) }), 'KW_INVALID_ARGUMENT');
    // The same head again is signed (the same signature: Ed25519 is deterministic).
    assert.deepEqual(unb64u((await kh.client.call('directory-sign-head', { tbs: tbs(2, root) })).signature), treeHead.signature);

    // The head-log key is the one a key file gave before (witnesses keep their configuration).
    const hk = await keys.headLogKey();
    const old = headLogKey(legacyKeys());
    assert.equal(hk.origin, old.origin);
    assert.equal(hk.verifierKey, old.verifierKey);

    // The last signed head survives a restart: the rollback is still refused.
    await kh.stop();
    kh = await startKeyholder(dir);
    await unsealWith(kh.client, init.shares.slice(1, 3));
    const again = await kh.client.call('directory-keys', {});
    assert.equal(again.created, false);
    assert.deepEqual(again.lastHead, { size: 2, root: b64u(root) });
    // After a restart only the durable last head counts: the older head is a rollback now.
    await rejectsCode(() => kh.client.call('directory-sign-head', { tbs: tbs(1, root1) }), 'KW_DIRECTORY_HEAD_REGRESSION');
    const log2 = await DirectoryBuilder.create(store, await KeyholderDirectoryKeys.open(kh.client));
    const h3 = await log2.update([{ label: utf8('carol'), value: utf8('k4') }]);
    assert.equal(h3.treeHead.treeSize, 3);
    verifyTreeHead(log.config, h3.treeHead, await log2.root());

    // A fork that grows (a compromised API process over another store, with the keyholder's keys):
    // refused with or without a consistency proof, however the proof is put together.
    const captured = async (st: MemoryDirectoryStore): Promise<SignedHeadRequest> => {
      let req: SignedHeadRequest | undefined;
      const capture = { ...legacyHolder, signTreeHead: (_t: Uint8Array, h: SignedHeadRequest) => { req = h; return Promise.resolve(new Uint8Array(64)); } };
      await (await DirectoryBuilder.create(st, capture)).treeHead();
      return req!;
    };
    const forkStore = new MemoryDirectoryStore();
    const forkRaw = await DirectoryBuilder.create(forkStore, legacyKeys());
    for (const v of ['evil1', 'evil2', 'evil3', 'evil4']) await forkRaw.update([{ label: utf8('alice'), value: utf8(v) }]);
    const forkHead = await captured(forkStore);
    const honestAt3 = await captured(store);
    const forkTbs = tbs(4, forkHead.root);
    const fc = await forkHead.consistency!(3);
    const hc = await honestAt3.consistency!(3);
    const wire = (from: number, fromHeads: Uint8Array[], proof: Uint8Array[]) => ({ from, fromHeads: fromHeads.map(b64u), proof: proof.map(b64u) });
    await rejectsCode(() => kh.client.call('directory-sign-head', { tbs: forkTbs }), 'KW_DIRECTORY_HEAD_INCONSISTENT');
    await rejectsCode(() => kh.client.call('directory-sign-head', { tbs: forkTbs, consistency: wire(3, fc.fromHeads, fc.proof) }), 'KW_DIRECTORY_HEAD_INCONSISTENT');
    await rejectsCode(() => kh.client.call('directory-sign-head', { tbs: forkTbs, consistency: wire(3, hc.fromHeads, fc.proof) }), 'KW_DIRECTORY_HEAD_INCONSISTENT');
    const fc2 = await forkHead.consistency!(2);
    await rejectsCode(() => kh.client.call('directory-sign-head', { tbs: forkTbs, consistency: wire(2, fc2.fromHeads, fc2.proof) }), 'KW_DIRECTORY_HEAD_INCONSISTENT');
    // Through the API-side holder too: the fork's builder gets no signature.
    const forkLog = await DirectoryBuilder.create(forkStore, await KeyholderDirectoryKeys.open(kh.client));
    await rejectsCode(() => forkLog.treeHead(), 'KW_DIRECTORY_HEAD_INCONSISTENT');
    assert.deepEqual((await kh.client.call('directory-keys', {})).lastHead, { size: 3, root: b64u(await log2.root()) });
    // The honest log grows with its proof, also through a holder that learned the last size before
    // another one signed a larger head (it reads the size again and proves from there).
    const stale = await KeyholderDirectoryKeys.open(kh.client);
    await log2.update([{ label: utf8('dave'), value: utf8('k5') }]);
    await log2.update([{ label: utf8('erin'), value: utf8('k6') }]);
    const h6 = await (await DirectoryBuilder.create(store, stale)).update([{ label: utf8('frank'), value: utf8('k7') }]);
    assert.equal(h6.treeHead.treeSize, 6);
    verifyTreeHead(log.config, h6.treeHead, await log2.root());
  } finally {
    await kh.stop();
  }
});

void test('keys made by the keyholder are derived from the master key: every node of a deployment has the same', async () => {
  const init = await makeInit(3, 2);
  const [a, b] = await Promise.all([startKeyholder(), startKeyholder()]);
  try {
    for (const kh of [a, b]) {
      await kh.client.call('init-state', { state: init.state });
      await unsealWith(kh.client, init.shares.slice(0, 2));
    }
    const ka = await a.client.call('directory-keys', {});
    const kb = await b.client.call('directory-keys', {});
    assert.equal(ka.source, 'derived');
    assert.equal(ka.created, true);
    assert.equal(ka.signaturePublicKey, kb.signaturePublicKey);
    assert.equal(ka.vrfPublicKey, kb.vrfPublicKey);
    // Another deployment (another master key) has other keys.
    const other = await makeInit(3, 2);
    const c = await startKeyholder();
    try {
      await c.client.call('init-state', { state: other.state });
      await unsealWith(c.client, other.shares.slice(0, 2));
      assert.notEqual((await c.client.call('directory-keys', {})).signaturePublicKey, ka.signaturePublicKey);
    } finally {
      await c.stop();
    }
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});
