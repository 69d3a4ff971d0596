/**
 * The shared conformance suite of the directory's persistence: the KEYTRANS
 * `DirectoryStore` over the Keyward store (`directory/store.ts` over
 * `store/directory-rows.ts`), and the entity and enrollment-token rows. Run
 * on SQLite and on PostgreSQL by `store.test.ts`; both must give the same
 * answers and the same typed errors.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { DirectoryBuilder, DirectoryClient, MemoryDirectoryStore, isDirectoryError, type AppendBatch } from '@keyward/directory';
import { KeywardDirectoryStore, decodePrefixNode, encodePrefixNode } from '../../src/directory/store.js';
import { DirectoryService } from '../../src/directory/service.js';
import { isStoreError } from '../../src/store/errors.js';
import type { Store } from '../../src/store/types.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const T = new Date('2030-01-01T00:00:00.000Z');
const keys = { signingKey: new Uint8Array(32).fill(7), vrfKey: new Uint8Array(32).fill(9) };
const hashHex = (s: string): string => createHash('sha256').update(s).digest('hex');

/** A batch for an empty log, written by hand so a bad one can be built from it. */
function batchAt(position: number, label = utf8('user:a'), version = 0): AppendBatch {
  const root = new Uint8Array(32).fill(position + 1);
  return {
    position,
    entry: { timestamp: 1_000 + position, prefixTree: root },
    logNodes: [{ start: position, len: 1, value: new Uint8Array(32).fill(0x40 + position) }],
    prefixNodes: [[root, { type: 'leaf', vrfOutput: new Uint8Array(32).fill(3), commitment: new Uint8Array(32).fill(4) }]],
    versions: [
      {
        label,
        version,
        record: {
          value: utf8(`v${version}`),
          opening: new Uint8Array(16).fill(5),
          vrfOutput: new Uint8Array(32).fill(3),
          vrfProof: new Uint8Array(80).fill(6),
          commitment: new Uint8Array(32).fill(4),
          position,
        },
      },
    ],
  };
}

export function exerciseDirectoryStore(name: string, open: () => Promise<Store>): void {
  const test = (title: string, fn: (s: Store) => Promise<void>): void => {
    void it(title, async () => {
      const s = await open();
      try {
        await fn(s);
      } finally {
        await s.close();
      }
    });
  };

  void describe(`directory store conformance: ${name}`, () => {
    test('an empty log: size 0, nothing stored', async (s) => {
      const d = new KeywardDirectoryStore(s);
      assert.equal(await d.treeSize(), 0);
      assert.equal(await d.logEntry(0), undefined);
      assert.equal(await d.logNode(0, 1), undefined);
      assert.equal(await d.prefixNode(new Uint8Array(32)), undefined);
      assert.equal(await d.versionCount(utf8('user:a')), 0);
      assert.equal(await d.labelVersion(utf8('user:a'), 0), undefined);
    });

    test('append stores the entry, its nodes and versions, byte for byte', async (s) => {
      const d = new KeywardDirectoryStore(s);
      const b = batchAt(0);
      await d.append(b);
      assert.equal(await d.treeSize(), 1);
      assert.deepEqual(await d.logEntry(0), { timestamp: 1000, prefixTree: b.entry.prefixTree });
      assert.deepEqual(await d.logNode(0, 1), b.logNodes[0]!.value);
      assert.deepEqual(await d.prefixNode(b.prefixNodes[0]![0]), b.prefixNodes[0]![1]);
      assert.equal(await d.versionCount(utf8('user:a')), 1);
      assert.deepEqual(await d.labelVersion(utf8('user:a'), 0), b.versions[0]!.record);
      assert.equal(await d.versionCount(utf8('user:b')), 0, 'labels are exact byte strings');
    });

    test('an append at a position other than the size is KT_CONFLICT and writes nothing', async (s) => {
      const d = new KeywardDirectoryStore(s);
      await d.append(batchAt(0));
      for (const pos of [0, 2]) {
        await assert.rejects(d.append(batchAt(pos, utf8('user:b'))), (e) => isDirectoryError(e, 'KT_CONFLICT'));
      }
      assert.equal(await d.treeSize(), 1);
      assert.equal(await d.versionCount(utf8('user:b')), 0);
      assert.equal(await d.logNode(2, 1), undefined);
    });

    test('a label version that is not the next one is KT_CONFLICT and writes nothing', async (s) => {
      const d = new KeywardDirectoryStore(s);
      await d.append(batchAt(0));
      await assert.rejects(d.append(batchAt(1, utf8('user:a'), 0)), (e) => isDirectoryError(e, 'KT_CONFLICT'), 'version 0 again');
      await assert.rejects(d.append(batchAt(1, utf8('user:a'), 2)), (e) => isDirectoryError(e, 'KT_CONFLICT'), 'a gap');
      assert.equal(await d.treeSize(), 1);
      assert.equal(await d.logEntry(1), undefined, 'no entry of a refused batch');
      await d.append(batchAt(1, utf8('user:a'), 1));
      assert.equal(await d.versionCount(utf8('user:a')), 2);
    });

    test('concurrent appenders at one position: exactly one wins', async (s) => {
      const d = new KeywardDirectoryStore(s);
      const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => d.append(batchAt(0, utf8(`user:r${i}`)))));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      for (const r of results) if (r.status === 'rejected') assert.ok(isDirectoryError(r.reason, 'KT_CONFLICT'), String(r.reason));
      assert.equal(await d.treeSize(), 1);
    });

    test('ktLock serialises directory writers: lock, read the size, append — all succeed in turn', async (s) => {
      const results = await Promise.allSettled(Array.from({ length: 4 }, (_, i) => s.transaction(async (tx) => {
        await tx.ktLock();
        const size = await tx.ktTreeSize();
        await new KeywardDirectoryStore(tx).append(batchAt(size, utf8(`user:l${i}`)));
      })));
      for (const r of results) assert.equal(r.status, 'fulfilled', r.status === 'rejected' ? String(r.reason) : '');
      assert.equal(await s.ktTreeSize(), 4);
    });

    test('an append inside a rolled-back transaction leaves the log as it was', async (s) => {
      await assert.rejects(
        s.transaction(async (tx) => {
          await new KeywardDirectoryStore(tx).append(batchAt(0));
          assert.equal(await tx.ktTreeSize(), 1);
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.equal(await s.ktTreeSize(), 0);
      assert.equal(await s.ktVersionCount(utf8('user:a')), 0);
    });

    test('malformed rows are refused with KW_STORE_INVALID_ARGUMENT', async (s) => {
      const b = batchAt(0);
      const bad = { ...b, versions: [{ ...b.versions[0]!, record: { ...b.versions[0]!.record, vrfProof: new Uint8Array(79) } }] };
      await assert.rejects(new KeywardDirectoryStore(s).append(bad), (e) => isStoreError(e, 'KW_STORE_INVALID_ARGUMENT'));
      await assert.rejects(s.ktLogNode(-1, 1), (e) => isStoreError(e, 'KW_STORE_INVALID_ARGUMENT'));
      await assert.rejects(s.ktVersionCount(new Uint8Array(0)), (e) => isStoreError(e, 'KW_STORE_INVALID_ARGUMENT'));
      assert.equal(await s.ktTreeSize(), 0);
    });

    test('a builder over the store gives the same log as over memory, and a client verifies it', async (s) => {
      const now = (): number => 1_900_000_000_000;
      const ours = await DirectoryBuilder.create(new KeywardDirectoryStore(s), keys, { now });
      const mem = await DirectoryBuilder.create(new MemoryDirectoryStore(), keys, { now });
      for (let i = 0; i < 5; i++) {
        const changes = [{ label: utf8(`user:u${i % 3}`), value: utf8(`keys-${i}`) }];
        await ours.update(changes);
        await mem.update(changes);
      }
      // Openings are random: the prefix roots differ, but the shapes and sizes must not.
      assert.equal(await ours.treeSize(), 5);
      assert.equal(await s.ktVersionCount(utf8('user:u0')), 2);
      // A fresh builder over the same rows (another node, a restart) continues the log.
      const again = await DirectoryBuilder.create(new KeywardDirectoryStore(s), keys, { now });
      assert.deepEqual(await again.root(), await ours.root());
      await again.update([{ label: utf8('user:u1'), value: utf8('keys-5') }]);
      const client = new DirectoryClient(ours.config, { now });
      const found = client.verifySearch({ label: utf8('user:u1') }, await ours.search({ label: utf8('user:u1') }));
      assert.equal(found.version, 2);
      assert.deepEqual(found.value, utf8('keys-5'));
    });

    test('heartbeat (DirectoryService.heartbeat): one entry when due, none otherwise, one for concurrent nodes; a new client accepts the idle log again', async (s) => {
      let t = T.getTime();
      const svc = await DirectoryService.open({ store: s, keys, clock: () => new Date(t), params: { maxBehind: 10_000 } });
      assert.equal(await svc.heartbeat(1_000), null, 'an empty log gets no heartbeat');
      await s.transaction(async (tx) => {
        await tx.ktLock();
        await (await svc.builder(tx)).update([{ label: utf8('user:a'), value: utf8('keys-0') }]);
      });
      const b = await svc.builder();
      const stale = await b.search({ label: utf8('user:a') });
      t += 20_000;
      assert.throws(() => new DirectoryClient(b.config, { now: () => t }).verifySearch({ label: utf8('user:a') }, stale), (e) => isDirectoryError(e, 'KT_BAD_RESPONSE'));
      // Two nodes' timers fire at once: the log lock lets one append, the other finds nothing due.
      const other = await DirectoryService.open({ store: s, keys, clock: () => new Date(t), params: { maxBehind: 10_000 } });
      const [x, y] = await Promise.all([svc.heartbeat(5_000), other.heartbeat(5_000)]);
      assert.deepEqual([x, y].filter((p) => p !== null), [1]);
      assert.equal(await s.ktTreeSize(), 2);
      assert.equal(await s.ktVersionCount(utf8('user:a')), 1, 'a heartbeat adds no label version');
      const found = new DirectoryClient(b.config, { now: () => t }).verifySearch({ label: utf8('user:a') }, await b.search({ label: utf8('user:a') }));
      assert.deepEqual(found.value, utf8('keys-0'));
    });

    void it('prefix node encoding round-trips and refuses other bytes', () => {
      const leaf = { type: 'leaf' as const, vrfOutput: randomBytes(32), commitment: randomBytes(32) };
      const parent = { type: 'parent' as const, left: randomBytes(32), right: new Uint8Array(32) };
      assert.deepEqual(decodePrefixNode(encodePrefixNode(leaf)), { ...leaf, vrfOutput: new Uint8Array(leaf.vrfOutput), commitment: new Uint8Array(leaf.commitment) });
      assert.equal(decodePrefixNode(encodePrefixNode(parent)).type, 'parent');
      const bad = encodePrefixNode(parent);
      bad[0] = 2;
      assert.throws(() => decodePrefixNode(bad), (e) => isDirectoryError(e, 'KT_MALFORMED'));
      assert.throws(() => decodePrefixNode(new Uint8Array(64)), (e) => isDirectoryError(e, 'KT_MALFORMED'));
    });

    test('entities: create, compare-and-set, principal binding, lists', async (s) => {
      const alice = await s.putDirEntity({ name: 'user:alice', principal: 'p-alice', state: { devices: [] }, seq: 1, updated: T });
      assert.equal(alice.kind, 'user');
      assert.deepEqual(alice.state, { devices: [] });
      await s.putDirEntity({ name: 'service:billing', state: { devices: [] }, seq: 1, updated: T });
      await s.putDirEntity({ name: 'group:auditors', state: { members: ['user:alice'] }, seq: 1, updated: T });
      await assert.rejects(s.putDirEntity({ name: 'user:alice', state: {}, seq: 1, updated: T }), (e) => isStoreError(e, 'KW_STORE_CONFLICT'), 'create twice');
      await assert.rejects(s.putDirEntity({ name: 'user:alice', principal: 'p-alice', state: {}, seq: 3, updated: T }), (e) => isStoreError(e, 'KW_STORE_CONFLICT'), 'skip a seq');
      await assert.rejects(s.putDirEntity({ name: 'user:bob', state: {}, seq: 2, updated: T }), (e) => isStoreError(e, 'KW_STORE_NOT_FOUND'));
      await assert.rejects(s.putDirEntity({ name: 'user:alice', principal: 'p-other', state: {}, seq: 2, updated: T }), (e) => isStoreError(e, 'KW_STORE_CONFLICT'), 'rebind');
      await assert.rejects(s.putDirEntity({ name: 'user:bob', principal: 'p-alice', state: {}, seq: 1, updated: T }), (e) => isStoreError(e, 'KW_STORE_CONFLICT'), 'one principal, one identity');
      await assert.rejects(s.putDirEntity({ name: 'group:x', principal: 'p-x', state: {}, seq: 1, updated: T }), (e) => isStoreError(e, 'KW_STORE_INVALID_ARGUMENT'));
      await assert.rejects(s.putDirEntity({ name: 'User:Alice', state: {}, seq: 1, updated: T }), (e) => isStoreError(e, 'KW_STORE_INVALID_ARGUMENT'));
      const next = await s.putDirEntity({ name: 'user:alice', principal: 'p-alice', state: { devices: ['d1'] }, seq: 2, updated: new Date(T.getTime() + 5) });
      assert.equal(next.seq, 2);
      assert.equal(next.updated.getTime(), T.getTime() + 5);
      assert.equal((await s.getDirEntityByPrincipal('p-alice'))?.name, 'user:alice');
      assert.equal(await s.getDirEntityByPrincipal('p-none'), null);
      assert.equal(await s.getDirEntity('user:nobody'), null);
      assert.deepEqual((await s.listDirEntities()).map((e) => e.name), ['group:auditors', 'service:billing', 'user:alice']);
      assert.deepEqual((await s.listDirEntities('group')).map((e) => e.name), ['group:auditors']);
    });

    test('concurrent changes to one entity: exactly one wins', async (s) => {
      await s.putDirEntity({ name: 'group:g', state: { members: [] }, seq: 1, updated: T });
      const results = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => s.putDirEntity({ name: 'group:g', state: { members: [`user:m${i}`] }, seq: 2, updated: T })));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      assert.equal((await s.getDirEntity('group:g'))?.seq, 2);
    });

    test('enrollment tokens: stored as hashes, used once', async (s) => {
      await s.putDirEntity({ name: 'user:alice', state: {}, seq: 1, updated: T });
      const h = hashHex('secret-token');
      const t = await s.createDirEnrollToken({ id: 'et-1', entity: 'user:alice', tokenHash: h, createdBy: 'admin', created: T, expiresAt: new Date(T.getTime() + 60_000) });
      assert.equal(t.usedAt, null);
      await assert.rejects(s.createDirEnrollToken({ id: 'et-2', entity: 'user:alice', tokenHash: h, createdBy: 'admin', created: T, expiresAt: T }), (e) => isStoreError(e, 'KW_STORE_CONFLICT'));
      await assert.rejects(s.createDirEnrollToken({ id: 'et-3', entity: 'user:nobody', tokenHash: hashHex('x'), createdBy: 'admin', created: T, expiresAt: T }), (e) => isStoreError(e, 'KW_STORE_NOT_FOUND'));
      assert.equal((await s.getDirEnrollTokenByHash(h))?.id, 'et-1');
      assert.equal(await s.getDirEnrollTokenByHash(hashHex('other')), null);
      const uses = await Promise.allSettled([s.useDirEnrollToken('et-1', T), s.useDirEnrollToken('et-1', T)]);
      assert.equal(uses.filter((r) => r.status === 'fulfilled').length, 1, 'only one use wins');
      assert.equal((await s.getDirEnrollTokenByHash(h))?.usedAt?.getTime(), T.getTime());
      await assert.rejects(s.useDirEnrollToken('et-1', T), (e) => isStoreError(e, 'KW_STORE_CONFLICT'));
      await assert.rejects(s.useDirEnrollToken('et-9', T), (e) => isStoreError(e, 'KW_STORE_NOT_FOUND'));
    });
  });
}
