/**
 * The audit log over two storages — an array double and a real SQLite file
 * (better-sqlite3) — : appends fill index, time and the hash chain; proofs
 * verify against signed checkpoints with tlog's verifiers; checkpoints extend
 * each other; a rolled-back transaction leaves no trace; a tampered store is
 * refused before anything is signed.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { emptyRoot, leafHash, openCheckpoint, newVerifier, verifyConsistency, verifyInclusion } from '@keyward/tlog';
import { GENESIS_PREV, eventHash, parseEvent } from '../../src/audit/event.js';
import { AuditLog, type AuditStorage } from '../../src/audit/log.js';
import { DROP_TRIGGERS, MemoryStorage, ORIGIN, SqliteStorage, cleanTemp, fakeClock, logKey, rejectsAudit, sampleInput, tempDb } from './helpers.js';

after(cleanTemp);

const open = (note: string, vkey: string) => openCheckpoint(note, [newVerifier(vkey)], { origin: ORIGIN }).checkpoint;

const backends: [string, () => AuditStorage & { close?: () => void }][] = [
  ['memory', () => new MemoryStorage()],
  ['sqlite file', () => new SqliteStorage(tempDb())],
];

for (const [name, make] of backends) {
  void describe(`AuditLog over ${name} storage`, () => {
    const key = logKey();

    void test('appends fill v, index, time and prev; the stored bytes are the canonical event', async () => {
      const storage = make();
      const log = new AuditLog(storage, { origin: ORIGIN, now: fakeClock(Date.UTC(2025, 0, 1)) });
      const a = await log.appendEvent(sampleInput(0));
      const b = await log.appendEvent(sampleInput(1));
      assert.equal(a.index, 0);
      assert.equal(b.index, 1);
      assert.equal(a.event.prev, GENESIS_PREV);
      assert.equal(b.event.prev, eventHash(a.bytes));
      assert.equal(a.event.time, '2025-01-01T00:00:00.000Z');
      assert.deepEqual(a.leafHash, leafHash(a.bytes));
      const rows = await storage.read(0, 2);
      assert.deepEqual(rows.map((r) => r.event), [a.bytes, b.bytes]);
      assert.deepEqual(parseEvent(rows[1]!.event), b.event);
    });

    void test('inclusion and consistency proofs verify against signed checkpoints', async () => {
      const storage = make();
      const log = new AuditLog(storage, { origin: ORIGIN, now: fakeClock() });
      const appended = [];
      for (let i = 0; i < 13; i++) appended.push(await log.appendEvent(sampleInput(i)));
      const cp5note = (await log.checkpoint(key.signer)).note;
      for (let i = 13; i < 21; i++) appended.push(await log.appendEvent(sampleInput(i)));
      const cp21note = (await log.checkpoint(key.signer)).note;
      const cp13 = open(cp5note, key.vkey);
      const cp21 = open(cp21note, key.vkey);
      assert.equal(cp13.size, 13);
      assert.equal(cp21.size, 21);
      for (const a of appended) verifyInclusion(a.leafHash, a.index, cp21.size, await log.inclusionProof(a.index, cp21.size), cp21.root);
      for (const a of appended.slice(0, 13)) verifyInclusion(a.leafHash, a.index, cp13.size, await log.inclusionProof(a.index, cp13.size), cp13.root);
      verifyConsistency(13, 21, cp13.root, cp21.root, await log.consistencyProof(13, 21));
      assert.deepEqual(await log.root(13), cp13.root);
      assert.equal(await storage.latestCheckpoint(), cp21note);
    });

    void test('checkpoints: empty log, no re-signing without new events, origin = key name', async () => {
      const storage = make();
      const log = new AuditLog(storage, { origin: ORIGIN, now: fakeClock() });
      const c0 = await log.checkpoint(key.signer);
      assert.equal(c0.size, 0);
      assert.deepEqual(open(c0.note, key.vkey).root, emptyRoot());
      const again = await log.checkpoint(key.signer);
      assert.equal(again.note, c0.note, 'nothing new: the stored checkpoint is returned, not a new one');
      await log.appendEvent(sampleInput(0));
      assert.equal((await log.checkpoint(key.signer)).size, 1);
      await rejectsAudit(() => log.checkpoint(logKey('a', 'keyward.example/audit/other').signer), 'KW_INVALID_ARGUMENT');
    });

    void test('concurrent appends are serialized: gapless and chained', async () => {
      const storage = make();
      const log = new AuditLog(storage, { origin: ORIGIN, now: fakeClock() });
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => log.appendEvent(sampleInput(i))));
      assert.deepEqual(results.map((r) => r.index).sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i));
      assert.equal(await log.size(), 40); // size() re-reads and checks the chain
    });

    void test('a bad event is refused and nothing is written', async () => {
      const storage = make();
      const log = new AuditLog(storage, { origin: ORIGIN, now: fakeClock() });
      await rejectsAudit(() => log.appendEvent({ ...sampleInput(0), op: 'nope' }), 'KW_INVALID_ARGUMENT');
      await rejectsAudit(() => log.appendEvent({ ...sampleInput(0), details: { big: 'x'.repeat(70_000) } }), 'KW_LIMIT_EXCEEDED');
      assert.equal(await storage.size(), 0);
      assert.equal((await log.appendEvent(sampleInput(0))).index, 0);
    });

    void test('proof requests outside the log are refused', async () => {
      const log = new AuditLog(make(), { origin: ORIGIN, now: fakeClock() });
      await log.appendEvent(sampleInput(0));
      await rejectsAudit(() => log.inclusionProof(1, 1), 'KW_INVALID_ARGUMENT');
      await rejectsAudit(() => log.inclusionProof(0, 2), 'KW_INVALID_ARGUMENT');
      await rejectsAudit(() => log.consistencyProof(0, 1), 'KW_INVALID_ARGUMENT');
      await rejectsAudit(() => log.consistencyProof(1, 2), 'KW_INVALID_ARGUMENT');
    });
  });
}

void describe('AuditLog on a real SQLite file: transactions and tampering', () => {
  const key = logKey();

  void test('an event appended in a rolled-back transaction leaves no trace; its index is reused', async () => {
    const storage = new SqliteStorage(tempDb());
    const log = new AuditLog(storage, { origin: ORIGIN, now: fakeClock() });
    await log.appendEvent(sampleInput(0));
    await log.checkpoint(key.signer);
    storage.db.exec('BEGIN IMMEDIATE');
    const ghost = await log.appendEvent(sampleInput(1), { storage });
    assert.equal(ghost.index, 1);
    storage.db.exec('ROLLBACK'); // the change it described failed
    assert.equal(await storage.size(), 1);
    const real = await log.appendEvent(sampleInput(2));
    assert.equal(real.index, 1);
    const cp = open((await log.checkpoint(key.signer)).note, key.vkey);
    verifyInclusion(real.leafHash, 1, cp.size, await log.inclusionProof(1, cp.size), cp.root);
    storage.close();
  });

  void test('the table is append-only: UPDATE and DELETE are refused by the schema', async () => {
    const storage = new SqliteStorage(tempDb());
    const log = new AuditLog(storage, { origin: ORIGIN, now: fakeClock() });
    await log.appendEvent(sampleInput(0));
    assert.throws(() => storage.db.prepare("UPDATE audit_events SET event = x'7b7d' WHERE idx = 0").run(), /append-only/);
    assert.throws(() => storage.db.prepare('DELETE FROM audit_events').run(), /append-only/);
    assert.throws(() => storage.db.prepare("INSERT INTO audit_events VALUES (5, 0, x'00', zeroblob(32))").run(), /next index/);
    storage.close();
  });

  void test('a store edited behind the log: the log refuses to sign (KW_AUDIT_CORRUPT)', async () => {
    const storage = new SqliteStorage(tempDb());
    const writer = new AuditLog(storage, { origin: ORIGIN, now: fakeClock() });
    for (let i = 0; i < 5; i++) await writer.appendEvent(sampleInput(i));
    await writer.checkpoint(key.signer);
    storage.db.exec(DROP_TRIGGERS);
    const row = storage.db.prepare('SELECT event FROM audit_events WHERE idx = 2').get() as { event: Buffer };
    storage.db.prepare('UPDATE audit_events SET event = ? WHERE idx = 2').run(Buffer.from(row.event.toString().replace('"outcome":"allowed"', '"outcome":"error"').replace('"code":null', '"code":"KW_X"')));
    const fresh = new AuditLog(storage, { origin: ORIGIN, now: fakeClock() });
    await rejectsAudit(() => fresh.checkpoint(key.signer), 'KW_AUDIT_CORRUPT');
    await rejectsAudit(() => fresh.inclusionProof(0, 5), 'KW_AUDIT_CORRUPT');
    storage.close();
  });

  void test('events rewritten with a consistent chain: the log refuses to sign a fork of its checkpoint', async () => {
    const storage = new MemoryStorage();
    const log = new AuditLog(storage, { origin: ORIGIN, now: fakeClock() });
    for (let i = 0; i < 4; i++) await log.appendEvent(sampleInput(i));
    await log.checkpoint(key.signer);
    // Rebuild the whole store from other events (a consistent chain), keep the old checkpoint.
    const other = new MemoryStorage();
    const forger = new AuditLog(other, { origin: ORIGIN, now: fakeClock(0) });
    for (let i = 0; i < 6; i++) await forger.appendEvent(sampleInput(100 + i));
    storage.rows = other.rows;
    await rejectsAudit(() => new AuditLog(storage, { origin: ORIGIN }).checkpoint(key.signer), 'KW_AUDIT_CORRUPT');
  });

  void test('a store that lost events since the log read it is refused', async () => {
    const storage = new MemoryStorage();
    const log = new AuditLog(storage, { origin: ORIGIN, now: fakeClock() });
    for (let i = 0; i < 4; i++) await log.appendEvent(sampleInput(i));
    await log.checkpoint(key.signer);
    storage.rows.pop();
    await rejectsAudit(() => log.checkpoint(key.signer), 'KW_AUDIT_CORRUPT');
    await rejectsAudit(() => new AuditLog(storage, { origin: ORIGIN }).checkpoint(key.signer), 'KW_AUDIT_CORRUPT');
  });

  void test('a storage that appends at another index: KW_AUDIT_CONFLICT', async () => {
    const storage = new MemoryStorage();
    const lying: AuditStorage = { ...storage, append: (r) => storage.append(r).then((i) => i + 1), read: (a, b) => storage.read(a, b), size: () => storage.size(), latestCheckpoint: () => storage.latestCheckpoint(), saveCheckpoint: (c) => storage.saveCheckpoint(c) };
    await rejectsAudit(() => new AuditLog(lying, { origin: ORIGIN }).appendEvent(sampleInput(0)), 'KW_AUDIT_CONFLICT');
  });

  void test('the log has no way to change or remove anything', () => {
    const methods = Object.getOwnPropertyNames(AuditLog.prototype).filter((m) => m !== 'constructor').sort();
    assert.deepEqual(methods, ['appendEvent', 'checkpoint', 'consistencyProof', 'inclusionProof', 'latestCheckpoint', 'root', 'size']);
  });

  void test('an invalid origin is refused', async () => {
    await rejectsAudit(() => new AuditLog(new MemoryStorage(), { origin: 'has space' }), 'KW_INVALID_ARGUMENT');
    await rejectsAudit(() => new AuditLog(new MemoryStorage(), { origin: 'a+b' }), 'KW_INVALID_ARGUMENT');
  });
});
