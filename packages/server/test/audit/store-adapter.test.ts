/**
 * The audit log over the real SQLite store (server/store) through a thin
 * adapter: the storage interface maps onto `AuditStore` one method each, an
 * event appended inside `store.transaction` commits or rolls back with it, and
 * the export of the stored log verifies (src/audit/store-adapter.ts).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { exportLog } from '../../src/audit/export.js';
import { AuditLog } from '../../src/audit/log.js';
import { auditStorageOf } from '../../src/audit/store-adapter.js';
import { verifyExport } from '../../src/audit/verify.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { ORIGIN, cleanTemp, fakeClock, logKey, sampleInput, tempDb } from './helpers.js';

after(cleanTemp);

void describe('AuditLog over the SQLite store', () => {
  void test('append, checkpoint, export, verify', async () => {
    const store = await openSqliteStore({ path: tempDb() });
    const key = logKey();
    const log = new AuditLog(auditStorageOf(store), { origin: ORIGIN, now: fakeClock() });
    for (let i = 0; i < 25; i++) await log.appendEvent(sampleInput(i));
    await log.checkpoint(key.signer);
    assert.equal((await log.checkpoint(key.signer)).size, 25, 'no second checkpoint of the same size');
    const r = verifyExport(await exportLog(log), { verifierKey: key.vkey });
    assert.deepEqual(r.problems, []);
    assert.equal(r.size, 25);
    await store.close();
  });

  void test('the event is written in the same transaction as the change: a failed change leaves no event', async () => {
    const store = await openSqliteStore({ path: tempDb() });
    const log = new AuditLog(auditStorageOf(store), { origin: ORIGIN, now: fakeClock() });
    await log.appendEvent(sampleInput(0));
    await assert.rejects(
      store.transaction(async (tx) => {
        await log.appendEvent(sampleInput(1), { storage: auditStorageOf(tx) });
        throw new Error('the change it describes failed');
      }),
      /the change it describes failed/,
    );
    assert.equal(await store.auditSize(), 1);
    await store.transaction(async (tx) => {
      await tx.createNamespace({ name: 'billing', created: new Date() });
      await log.appendEvent(sampleInput(2), { storage: auditStorageOf(tx) });
    });
    assert.equal(await store.auditSize(), 2);
    assert.equal(await log.size(), 2);
    await store.close();
  });
});
