/**
 * The keyholder's audit frontier: pending leaves become durable only by an
 * in-order ack; checkpoints cover durable leaves and always extend the last
 * one; after a restart the frontier is accepted only if it matches the last
 * signed checkpoint (forged or rolled-back hashes: KW_AUDIT_FORK), and that
 * checkpoint survives the restart.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  Frontier, consistencyProof, generateSignerKey, leafHash, newSigner, newVerifier, openCheckpoint, rootFromLeaves, verifyConsistency,
} from '@keyward/tlog';
import { AuditFrontier, type TreeHead } from '../../src/keyholder/frontier.js';
import { EventLog, b64u, makeInit, newDir, rejectsCode, startKeyholder, unb64u, unsealWith, utf8 } from './helpers.js';

const ORIGIN = 'kms.test/audit';
const keys = generateSignerKey(ORIGIN);
const signer = newSigner(keys.signerKey);
const verifier = newVerifier(keys.verifierKey);
const ev = (i: number) => utf8(`{"index":${i}}`);

function persisted(): { heads: TreeHead[]; persist: (h: TreeHead) => Promise<void> } {
  const heads: TreeHead[] = [];
  return { heads, persist: (h) => { heads.push(h); return Promise.resolve(); } };
}

void describe('AuditFrontier (in process)', () => {
  void test('appends are pending until acked in order; acking beyond what was appended is refused', async () => {
    const f = AuditFrontier.fresh();
    assert.equal(f.appendPending(ev(0)), 0);
    assert.equal(f.appendPending(ev(1)), 1);
    assert.equal(f.appendPending(ev(2)), 2);
    assert.equal(f.size, 0);
    assert.equal(f.appended, 3);
    await rejectsCode(() => Promise.resolve(f.ack(4)), 'KW_INVALID_ARGUMENT');
    assert.equal(f.ack(2), 2);
    assert.equal(f.ack(1), 2, 'an ack already covered is a no-op');
    assert.deepEqual(f.pendingEvents().events, [ev(2)]);
    assert.equal(f.pendingEvents().from, 2);
    await rejectsCode(() => Promise.resolve(f.pendingEvents(1)), 'KW_INVALID_ARGUMENT');
    assert.deepEqual(f.root(), rootFromLeaves([ev(0), ev(1)].map(leafHash)));
  });

  void test('checkpoints cover only durable leaves, extend each other, and are persisted before they are returned', async () => {
    const f = AuditFrontier.fresh();
    const { heads, persist } = persisted();
    const leaves: Uint8Array[] = [];
    for (let i = 0; i < 5; i++) { f.appendPending(ev(i)); leaves.push(leafHash(ev(i))); }
    f.ack(3);
    const c1 = await f.checkpoint(signer, ORIGIN, persist);
    assert.equal(c1.size, 3, 'pending leaves are not covered');
    assert.deepEqual(heads.at(-1), { size: 3, root: c1.root });
    const opened = openCheckpoint(c1.note, [verifier], { origin: ORIGIN }).checkpoint;
    assert.deepEqual(opened.root, rootFromLeaves(leaves.slice(0, 3)));
    f.ack(5);
    const c2 = await f.checkpoint(signer, ORIGIN, persist);
    assert.equal(c2.size, 5);
    verifyConsistency(3, 5, c1.root, c2.root, consistencyProof(3, 5, leaves));
    const again = await f.checkpoint(signer, ORIGIN, persist);
    assert.equal(again.note, c2.note, 'same head, same note');
    assert.equal(heads.length, 2, 'an unchanged head is not persisted again');
  });

  void test('a checkpoint whose head cannot be persisted is not returned, and nothing changes', async () => {
    const f = AuditFrontier.fresh();
    f.appendPending(ev(0));
    f.ack(1);
    await assert.rejects(() => f.checkpoint(signer, ORIGIN, () => Promise.reject(new Error('disk full'))), /disk full/);
    assert.equal(f.lastSigned, null);
    const c = await f.checkpoint(signer, ORIGIN, persisted().persist);
    assert.equal(c.size, 1);
  });

  void test('restore accepts only the frontier of the last signed checkpoint', async () => {
    const leaves = Array.from({ length: 7 }, (_, i) => leafHash(ev(i)));
    const head: TreeHead = { size: 7, root: rootFromLeaves(leaves) };
    const real = Frontier.fromLeaves(leaves).hashes;
    const older = Frontier.fromLeaves(leaves.slice(0, 4));
    const other = Frontier.fromLeaves(Array.from({ length: 7 }, (_, i) => leafHash(utf8(`forged ${i}`)))).hashes;

    const f = AuditFrontier.awaitingRestore(head);
    await rejectsCode(() => Promise.resolve(f.appendPending(ev(7))), 'KW_AUDIT_NOT_RESTORED');
    await rejectsCode(() => Promise.resolve(f.ack(7)), 'KW_AUDIT_NOT_RESTORED');
    await rejectsCode(() => Promise.resolve(f.restore({ size: 7, hashes: other })), 'KW_AUDIT_FORK');
    await rejectsCode(() => Promise.resolve(f.restore({ size: 4, hashes: older.hashes })), 'KW_AUDIT_FORK');
    await rejectsCode(() => Promise.resolve(f.restore({ size: 7, hashes: real.slice(1) })), 'KW_AUDIT_FORK');
    await rejectsCode(() => Promise.resolve(f.restore({ size: 7, hashes: [...real.slice(0, 2), new Uint8Array(32)] })), 'KW_AUDIT_FORK');
    assert.equal(f.restored, false, 'refusals change nothing');
    f.restore({ size: 7, hashes: real, events: [ev(7), ev(8)] });
    assert.equal(f.size, 9);
    await rejectsCode(() => Promise.resolve(f.restore({ size: 7, hashes: real })), 'KW_INVALID_ARGUMENT');
    const { persist } = persisted();
    const c = await f.checkpoint(signer, ORIGIN, persist);
    const all = [...leaves, leafHash(ev(7)), leafHash(ev(8))];
    verifyConsistency(7, 9, head.root, c.root, consistencyProof(7, 9, all));
  });

  void test('a stuck API cannot make the keyholder hoard events: pending leaves are bounded', async () => {
    const f = AuditFrontier.fresh({ maxPendingLeaves: 2, maxPendingBytes: 1 << 20 });
    f.appendPending(ev(0));
    f.appendPending(ev(1));
    await rejectsCode(() => Promise.resolve(f.appendPending(ev(2))), 'KW_LIMIT_EXCEEDED');
    f.ack(2);
    assert.equal(f.appendPending(ev(2)), 2);
  });
});

void describe('audit frontier across keyholder restarts (real process)', () => {
  void test('the last checkpoint survives a restart; rollback and forged frontiers are refused; the log continues', async () => {
    const dir = newDir();
    const init = await makeInit(3, 2);
    const log = new EventLog();
    let kh = await startKeyholder(dir);
    try {
      await kh.client.call('init-state', { state: init.state });
      await unsealWith(kh.client, init.shares.slice(0, 2));
      const append = async () => (await kh.client.call('append', { event: log.add({ op: 'keys.read', target: { key: 'orders' } }) })).leaf;

      for (let i = 0; i < 3; i++) assert.equal(await append(), i);
      // An event whose index is not the next leaf is refused (a concurrent or stale writer).
      await rejectsCode(async () => kh.client.call('append', { event: b64u(log.make({ op: 'keys.read', index: 7 })) }), 'KW_AUDIT_CONFLICT', 'event.index');
      await rejectsCode(() => kh.client.call('ack', { size: 4 }), 'KW_INVALID_ARGUMENT');
      await kh.client.call('ack', { size: 3 });
      const c3 = await kh.client.call('checkpoint', {});
      assert.equal(c3.size, 3);
      for (let i = 3; i < 5; i++) await append();
      await kh.client.call('ack', { size: 5 });
      const c5 = await kh.client.call('checkpoint', {});
      assert.equal(c5.size, 5);
      // One more acked after the checkpoint, and one appended but never acked (the API crashed before storing it).
      await append();
      await kh.client.call('ack', { size: 6 });
      await append();
      const pending = await kh.client.call('pending-events', {});
      assert.equal(pending.from, 6);
      assert.deepEqual(pending.events, [b64u(log.events[6]!)]);

      const stateFile = JSON.parse(readFileSync(join(dir, 'keyholder.json'), 'utf8')) as { lastCheckpoint: { size: number; root: string } };
      assert.deepEqual(stateFile.lastCheckpoint, { size: 5, root: c5.root }, 'persisted before it was returned');
      const exit = await kh.stop('SIGTERM');
      assert.equal(exit.code, 0);

      kh = await startKeyholder(dir);
      const st = await kh.client.call('status', {});
      assert.equal(st.sealed, true, 'a restarted keyholder starts sealed');
      assert.deepEqual(st.audit.checkpoint, { size: 5, root: c5.root });
      assert.equal(st.audit.restored, false);
      await rejectsCode(async () => kh.client.call('append', { event: b64u(log.make({ op: 'keys.read' })) }), 'KW_AUDIT_NOT_RESTORED');

      const leaves = log.events.map((e) => leafHash(e));
      // Rollback: the API offers the frontier of the earlier checkpoint (size 3).
      const f3 = Frontier.fromLeaves(leaves.slice(0, 3)).hashes.map(b64u);
      await rejectsCode(() => kh.client.call('frontier-restore', { size: 3, hashes: f3 }), 'KW_AUDIT_FORK');
      // Forged: a frontier of size 5 over other events.
      const forged = Frontier.fromLeaves(Array.from({ length: 5 }, (_, i) => leafHash(utf8(`forged ${i}`)))).hashes.map(b64u);
      await rejectsCode(() => kh.client.call('frontier-restore', { size: 5, hashes: forged }), 'KW_AUDIT_FORK');
      // Rewritten history: event 4 replaced.
      const rewritten = Frontier.fromLeaves([...leaves.slice(0, 4), leafHash(utf8('rewritten'))]).hashes.map(b64u);
      await rejectsCode(() => kh.client.call('frontier-restore', { size: 5, hashes: rewritten }), 'KW_AUDIT_FORK');
      // Restored events must be numbered after the checkpoint.
      const f5 = Frontier.fromLeaves(leaves.slice(0, 5)).hashes.map(b64u);
      await rejectsCode(() => kh.client.call('frontier-restore', { size: 5, hashes: f5, events: [b64u(log.events[4]!)] }), 'KW_AUDIT_CONFLICT');
      assert.equal((await kh.client.call('status', {})).audit.restored, false, 'every refusal changed nothing');

      // The true frontier, plus the store's events after the checkpoint (index 5; event 6 was never stored).
      const restored = await kh.client.call('frontier-restore', { size: 5, hashes: f5, events: [b64u(log.events[5]!)] });
      assert.deepEqual(restored, { size: 6, appended: 6 });
      log.events.splice(6); // the lost pending event is gone with the old process
      await unsealWith(kh.client, [init.shares[2]!, init.shares[0]!]);
      // The event chain continues from the store's last event.
      const next = log.make({ op: 'keys.read' });
      assert.equal((await kh.client.call('append', { event: b64u(next) })).leaf, 6);
      log.commit(next);
      await kh.client.call('ack', { size: 7 });
      const c7 = await kh.client.call('checkpoint', {});
      assert.equal(c7.size, 7);
      openCheckpoint(c7.note, [newVerifier(st.audit.verifierKey!)], { origin: init.origin });
      const all = log.events.map((e) => leafHash(e));
      verifyConsistency(5, 7, unb64u(c5.root), unb64u(c7.root), consistencyProof(5, 7, all));
      verifyConsistency(3, 7, unb64u(c3.root), unb64u(c7.root), consistencyProof(3, 7, all));
    } finally {
      await kh.stop();
    }
  });
});
