/**
 * Conformance cases of the shared replay cache (`useNonce`, `purgeNonces`:
 * store/nonces.ts) and of the audit sequencer lock (`lockAuditHead`), run
 * on every backend by `exerciseStore` (issue #4: several nodes).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isStoreError } from '../../src/store/errors.js';
import type { Store } from '../../src/store/types.js';

const T = new Date('2030-01-01T00:00:00.000Z');
const at = (s: number): Date => new Date(T.getTime() + s * 1000);
const leaf = (i: number): Uint8Array => new Uint8Array(32).fill(i + 1);

export function exerciseNonceStore(name: string, open: () => Promise<Store>): void {
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

  void describe(`store conformance: ${name}: replay cache and audit sequencer`, () => {
    test('a nonce is used once per device key until its window ends; then it may be used again', async (s) => {
      const n = { keyId: 'dev-1', nonce: 'n-abc', expiresAt: at(330) };
      assert.equal(await s.useNonce({ ...n, now: T }), true);
      assert.equal(await s.useNonce({ ...n, now: at(10) }), false, 'a replay within the window');
      assert.equal(await s.useNonce({ ...n, keyId: 'dev-2', now: at(10) }), true, 'the same nonce of another key is another request');
      assert.equal(await s.useNonce({ ...n, expiresAt: at(660), now: at(330) }), true, 'at the end of the window the row no longer counts');
      assert.equal(await s.useNonce({ ...n, expiresAt: at(990), now: at(331) }), false, 'taken over with the new expiry');
    });

    test('a nonce released in its own transaction is unused again; only that key id and nonce', async (s) => {
      const n = { keyId: 'dev-1', nonce: 'released', expiresAt: at(330), now: T };
      assert.equal(await s.useNonce({ ...n, keyId: 'dev-2' }), true);
      assert.equal(await s.transaction(async (tx) => {
        assert.equal(await tx.useNonce(n), true);
        await tx.releaseNonce({ keyId: n.keyId, nonce: n.nonce });
        return tx.useNonce(n);
      }), true, 'released inside the transaction, then usable once more');
      assert.equal(await s.useNonce(n), false, 'the second use was committed');
      assert.equal(await s.useNonce({ ...n, keyId: 'dev-2' }), false, "another key's row was left alone");
    });

    test('a nonce used inside a rolled-back transaction stays unused; a committed one is used', async (s) => {
      const n = { keyId: 'dev-1', nonce: 'rolled', expiresAt: at(330), now: T };
      await assert.rejects(s.transaction(async (tx) => {
        assert.equal(await tx.useNonce(n), true);
        throw new Error('boom');
      }), /boom/);
      assert.equal(await s.transaction((tx) => tx.useNonce(n)), true);
      assert.equal(await s.transaction((tx) => tx.useNonce(n)), false);
    });

    test('concurrent uses of one nonce: exactly one wins', async (s) => {
      const n = { keyId: 'dev-1', nonce: 'race', expiresAt: at(330), now: T };
      const wins = await Promise.all(Array.from({ length: 8 }, () => s.transaction((tx) => tx.useNonce(n))));
      assert.equal(wins.filter(Boolean).length, 1);
    });

    test('purgeNonces removes only expired rows', async (s) => {
      await s.useNonce({ keyId: 'k', nonce: 'old', expiresAt: at(10), now: T });
      await s.useNonce({ keyId: 'k', nonce: 'new', expiresAt: at(400), now: T });
      assert.equal(await s.purgeNonces(at(10)), 1);
      assert.equal(await s.purgeNonces(at(10)), 0);
      assert.equal(await s.useNonce({ keyId: 'k', nonce: 'new', expiresAt: at(400), now: at(20) }), false);
    });

    test('bad nonce arguments are refused', async (s) => {
      for (const bad of [{ keyId: '', nonce: 'x' }, { keyId: 'k', nonce: '' }, { keyId: 'k', nonce: 'x'.repeat(256) }]) {
        await assert.rejects(s.useNonce({ ...bad, expiresAt: at(1), now: T }), (e: unknown) => isStoreError(e, 'KW_STORE_INVALID_ARGUMENT'));
      }
    });

    test('lockAuditHead returns the next index, inside and outside a transaction, and the append after it gets that index', async (s) => {
      assert.equal(await s.lockAuditHead(), 0);
      await s.appendAuditEvent({ time: T, event: '{"i":0}', leafHash: leaf(0) });
      const idx = await s.transaction(async (tx) => {
        const head = await tx.lockAuditHead();
        assert.equal(head, 1);
        return tx.appendAuditEvent({ time: T, event: '{"i":1}', leafHash: leaf(1), expectedIdx: head });
      });
      assert.equal(idx, 1);
      assert.equal(await s.lockAuditHead(), 2);
    });

    test('while a transaction holds the sequencer, another append waits for it and lands after', async (s) => {
      let release!: () => void;
      const held = new Promise<void>((r) => { release = r; });
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => { locked = r; });
      const order: string[] = [];
      const first = s.transaction(async (tx) => {
        const head = await tx.lockAuditHead();
        locked();
        await held;
        order.push('first');
        return tx.appendAuditEvent({ time: T, event: '{"first":true}', leafHash: leaf(0), expectedIdx: head });
      });
      await isLocked;
      const second = s.appendAuditEvent({ time: T, event: '{"second":true}', leafHash: leaf(1) }).then((i) => { order.push('second'); return i; });
      await new Promise((r) => setTimeout(r, 100));
      release();
      assert.deepEqual([await first, await second], [0, 1]);
      assert.deepEqual(order, ['first', 'second']);
    });
  });
}
