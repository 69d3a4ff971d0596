/**
 * `DirectoryKeyHolder`: the builder asks an async key holder for every VRF proof and
 * tree-head signature (the key service's keyholder implements it), and answers exactly
 * what the in-memory keys give; the client verifies those answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DirectoryBuilder, DirectoryClient, MemoryDirectoryStore, memoryDirectoryKeys, verifyTreeHead,
  type DirectoryKeyHolder,
} from '../src/index.js';

const keys = { signingKey: new Uint8Array(32).fill(3), vrfKey: new Uint8Array(32).fill(4) };
const utf8 = (s: string) => new TextEncoder().encode(s);

/** A holder that answers later (like another process) and counts what it was asked. */
function remoteHolder(): DirectoryKeyHolder & { vrf: number; sign: number; sizes: number[] } {
  const mem = memoryDirectoryKeys(keys);
  const later = <T>(v: T) => new Promise<T>((r) => setTimeout(() => r(v), 1));
  const h = {
    vrf: 0, sign: 0, sizes: [] as number[],
    signaturePublicKey: mem.signaturePublicKey,
    vrfPublicKey: mem.vrfPublicKey,
    vrfProve: async (label: Uint8Array, version: number) => { h.vrf++; return later(await mem.vrfProve(label, version)); },
    signTreeHead: async (tbs: Uint8Array, head: { treeSize: number; root: Uint8Array }) => { h.sign++; h.sizes.push(head.treeSize); return later(await mem.signTreeHead(tbs, head)); },
  };
  return h;
}

void test('a builder over an async key holder signs and proves exactly as one over the raw keys', async () => {
  const store = new MemoryDirectoryStore();
  const holder = remoteHolder();
  const log = await DirectoryBuilder.create(store, holder);
  const raw = await DirectoryBuilder.create(store, keys);
  assert.deepEqual(log.config, raw.config);
  await log.update([{ label: utf8('alice'), value: utf8('a0') }]);
  await log.update([{ label: utf8('alice'), value: utf8('a1') }, { label: utf8('bob'), value: utf8('b0') }]);
  assert.equal(holder.vrf, 3, 'one VRF proof per new version');
  assert.deepEqual(holder.sizes, [1, 2]);
  const { treeHead, root } = await log.treeHead();
  verifyTreeHead(log.config, treeHead, root);
  assert.deepEqual(treeHead, (await raw.treeHead()).treeHead);
  // Absent versions and labels: the proof needs VRF outputs the store does not hold.
  const before = holder.vrf;
  for (const q of [{ label: utf8('carol') }, { label: utf8('alice'), version: 7 }]) {
    const res = await log.search(q);
    assert.deepEqual(res, await raw.search(q));
    // The proof of absence verifies (a bad VRF proof would be KT_BAD_VRF_PROOF): the client reports the absence.
    assert.throws(() => new DirectoryClient(log.config).verifySearch(q, res), (e: unknown) => (e as { code?: string }).code === 'KT_NOT_FOUND');
  }
  const found = new DirectoryClient(log.config).verifySearch({ label: utf8('alice') }, await log.search({ label: utf8('alice') }));
  assert.deepEqual(found.value, utf8('a1'));
  assert.ok(holder.vrf > before, 'absent versions were proven by the holder');
  for (const label of ['alice', 'bob']) {
    const init = await log.ownerInit({ label: utf8(label), start: 0 });
    assert.deepEqual(init, await raw.ownerInit({ label: utf8(label), start: 0 }));
  }
});

void test('memoryDirectoryKeys refuses keys of the wrong length', () => {
  assert.throws(() => memoryDirectoryKeys({ signingKey: new Uint8Array(31), vrfKey: new Uint8Array(32) }));
  assert.throws(() => memoryDirectoryKeys({ signingKey: new Uint8Array(32), vrfKey: new Uint8Array(33) }));
});
