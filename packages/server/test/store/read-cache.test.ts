/**
 * The data plane's read cache (store/read-cache.ts): the whole store
 * conformance suite passes through it (so no read ever misses this node's
 * own write), and its own rules — entries expire after the TTL, every write
 * (outside or inside a transaction, committed or rolled back) empties it,
 * audit appends and nonces do not, a read in flight across a write is not
 * kept, a change notification empties it, rows are frozen.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { MAX_CACHE_TTL_MS, type ChangeListener } from '../../src/store/postgres-notify.js';
import { withReadCache } from '../../src/store/read-cache.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';
import { T0, exerciseStore } from './conformance.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'keyward-read-cache-'));
  dirs.push(dir);
  return join(dir, 'keyward.db');
}

exerciseStore('sqlite behind the read cache', async () => withReadCache(await openSqliteStore({ path: tempPath() })));

async function seeded(now: () => number) {
  const s = withReadCache(await openSqliteStore({ path: tempPath() }), { now });
  await s.createNamespace({ name: 'acme', created: T0 });
  await s.createKey({ ns: 'acme', name: 'k1', type: 'aes256', created: T0, rotationPeriodSeconds: null, firstVersion: { wrapped: new Uint8Array(48).fill(1), publicKey: null } });
  return s;
}

void describe('read cache', () => {
  void it('serves a repeated read from memory until the TTL, then reads again', async () => {
    let t = 0;
    const s = await seeded(() => t);
    try {
      const a = await s.getKeyVersion('acme', 'k1', 1);
      const b = await s.getKeyVersion('acme', 'k1', 1);
      assert.equal(a, b, 'the second read is the cached row');
      assert.equal(s.readCacheStats.hits, 1);
      assert.ok(Object.isFrozen(a), 'cached rows are frozen');
      t = MAX_CACHE_TTL_MS;
      const c = await s.getKeyVersion('acme', 'k1', 1);
      assert.notEqual(c, a, 'after the TTL the row is read again');
      assert.deepEqual(c, a);
    } finally {
      await s.close();
    }
  });

  void it('a write empties it at once: outside a transaction, inside one, and when the transaction rolls back', async () => {
    const s = await seeded(() => 0);
    try {
      assert.equal((await s.getKeyVersion('acme', 'k1', 1))!.state, 'enabled');
      await s.setKeyVersionState({ ns: 'acme', key: 'k1', version: 1 }, { state: 'disabled' });
      assert.equal((await s.getKeyVersion('acme', 'k1', 1))!.state, 'disabled', 'a direct write is seen by the next read');
      await s.transaction(async (tx) => { await tx.setKeyVersionState({ ns: 'acme', key: 'k1', version: 1 }, { state: 'enabled' }); });
      assert.equal((await s.getKeyVersion('acme', 'k1', 1))!.state, 'enabled', 'a committed transaction is seen by the next read');
      await assert.rejects(s.transaction(async (tx) => {
        await tx.setKeyVersionState({ ns: 'acme', key: 'k1', version: 1 }, { state: 'disabled' });
        throw new Error('roll back');
      }));
      assert.equal((await s.getKeyVersion('acme', 'k1', 1))!.state, 'enabled', 'a rolled-back write changes nothing');
      assert.equal((await s.getKey('acme', 'k1'))!.latestVersion, 1);
      await s.rotateKey({ ns: 'acme', key: 'k1', version: 2, wrapped: new Uint8Array(48).fill(2), publicKey: null, created: T0 });
      assert.equal((await s.getKey('acme', 'k1'))!.latestVersion, 2, 'a rotation is seen by the next read');
    } finally {
      await s.close();
    }
  });

  void it('reads are known by the kinds the store declares (OP_KINDS), not by their names: a directory read keeps it', async () => {
    const s = await seeded(() => 0);
    try {
      await s.getKey('acme', 'k1');
      const clears = s.readCacheStats.clears;
      await s.ktTreeSize();
      await s.transaction(async (tx) => { await tx.ktTreeSize(); });
      assert.equal(s.readCacheStats.clears, clears, 'ktTreeSize is declared a read');
      await s.getKey('acme', 'k1');
      assert.equal(s.readCacheStats.hits, 1, 'the key row is still cached');
    } finally {
      await s.close();
    }
  });

  void it('audit appends and nonces leave it alone; a read in flight across a write is not kept', async () => {
    const s = await seeded(() => 0);
    try {
      await s.getKey('acme', 'k1');
      const clears = s.readCacheStats.clears;
      await s.transaction(async (tx) => {
        await tx.lockAuditHead();
        await tx.appendAuditEvent({ time: T0, event: '{"index":0}', leafHash: new Uint8Array(32), expectedIdx: 0 });
        await tx.useNonce({ keyId: 'k', nonce: 'n1', expiresAt: new Date(T0.getTime() + 60_000), now: T0 });
      });
      assert.equal(s.readCacheStats.clears, clears);
      const hits = s.readCacheStats.hits;
      await s.getKey('acme', 'k1');
      assert.equal(s.readCacheStats.hits, hits + 1);

      // A read that starts before a write and ends after it is not cached (it may hold the old row).
      const t = await s.transaction(async (tx) => tx.setKeyVersionState({ ns: 'acme', key: 'k1', version: 1 }, { state: 'disabled' }).then(() => 'written'));
      assert.equal(t, 'written');
      const inFlight = s.getKeyVersion('acme', 'k1', 1);
      const write = s.setKeyVersionState({ ns: 'acme', key: 'k1', version: 1 }, { state: 'enabled' });
      await Promise.all([inFlight, write]);
      assert.equal((await s.getKeyVersion('acme', 'k1', 1))!.state, 'enabled');
    } finally {
      await s.close();
    }
  });

  void it('a change notification (several nodes) empties it before the listener hears it', async () => {
    let feed: ChangeListener | null = null;
    const inner = await openSqliteStore({ path: tempPath() });
    const fake = Object.assign(inner, { watch: (l: ChangeListener) => { feed = l; return Promise.resolve(() => undefined); } }) as Store & { watch: (l: ChangeListener) => Promise<() => void> };
    const s = withReadCache(fake, { now: () => 0 });
    try {
      await s.createNamespace({ name: 'acme', created: T0 });
      await s.getNamespace('acme');
      await s.getKey('acme', 'nope');
      let clearsSeen = -1;
      await s.watch(() => { clearsSeen = s.readCacheStats.clears; });
      const before = s.readCacheStats.clears;
      feed!({ kind: 'change', change: { table: 'keys', ns: 'acme', key: 'nope' } } as never);
      assert.equal(clearsSeen, before + 1);
      const misses = s.readCacheStats.misses;
      await s.getKey('acme', 'nope');
      assert.equal(s.readCacheStats.misses, misses + 1, 'read again after the notification');
    } finally {
      await s.close();
    }
  });

  void it('refuses a TTL above the promised revocation delay', async () => {
    const inner = await openSqliteStore({ path: tempPath() });
    try {
      assert.throws(() => withReadCache(inner, { ttlMs: MAX_CACHE_TTL_MS + 1 }), RangeError);
      assert.throws(() => withReadCache(inner, { ttlMs: 0 }), RangeError);
    } finally {
      await inner.close();
    }
  });
});
