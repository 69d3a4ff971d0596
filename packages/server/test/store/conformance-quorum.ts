/**
 * The quorum part of the store conformance suite (issue #7, migration 6),
 * run by `exerciseStore` for every backend: approval requests (created once,
 * leaving `pending` once — executed, denied or expired — compare-and-set,
 * also inside transactions), one answer per approver, and governance
 * snapshot copies with unique sequence numbers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isStoreError, type StoreErrorCode } from '../../src/store/errors.js';
import type { Store } from '../../src/store/types.js';

const T0 = new Date('2030-01-01T00:00:00.000Z');
const at = (s: number): Date => new Date(T0.getTime() + s * 1000);
const rid = (c: string): string => c.repeat(43);
const request = { v: 'keyward/v1 request', method: 'POST', path: '/v1/keys/app/k/versions/1/destroy', namespace: 'app', key: 'k', version: 1, body: null, expiresAt: 1_893_460_000 };
const rules = [{ op: 'keys.destroy', role: 'key-admins', threshold: 2 }];

async function expectCode(p: Promise<unknown>, code: StoreErrorCode): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isStoreError(e), `expected a StoreError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

export function exerciseQuorumStore(name: string, open: () => Promise<Store>): void {
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

  void describe(`store conformance: ${name}: quorum approval`, () => {
    test('approval requests: create, get, list (newest first, by state), close once', async (s) => {
      const a = await s.createApprovalRequest({ id: rid('a'), op: 'keys.destroy', requester: 'alice', request, rules, created: at(1), expiresAt: at(100) });
      assert.deepEqual(a, { id: rid('a'), op: 'keys.destroy', requester: 'alice', request, rules, state: 'pending', created: at(1), expiresAt: at(100), closedAt: null });
      await s.createApprovalRequest({ id: rid('b'), op: 'policies.put', requester: 'bob', request: { ...request, version: 2 }, rules, created: at(2), expiresAt: at(100) });
      await expectCode(s.createApprovalRequest({ id: rid('a'), op: 'keys.destroy', requester: 'alice', request, rules, created: at(3), expiresAt: at(100) }), 'KW_STORE_CONFLICT');
      assert.deepEqual((await s.listApprovalRequests()).map((r) => r.id), [rid('b'), rid('a')]);
      const done = await s.closeApprovalRequest(rid('a'), 'executed', at(5));
      assert.deepEqual([done.state, done.closedAt], ['executed', at(5)]);
      // It leaves pending once: no second execution, no denial or expiry after it.
      for (const st of ['executed', 'denied', 'expired'] as const) await expectCode(s.closeApprovalRequest(rid('a'), st, at(6)), 'KW_STORE_CONFLICT');
      await expectCode(s.closeApprovalRequest(rid('c'), 'executed', at(6)), 'KW_STORE_NOT_FOUND');
      assert.deepEqual((await s.listApprovalRequests({ state: 'pending' })).map((r) => r.id), [rid('b')]);
      assert.deepEqual((await s.listApprovalRequests({ state: 'executed' })).map((r) => r.id), [rid('a')]);
      assert.equal(await s.getApprovalRequest(rid('z')), null);
    });

    test('bad input is refused and writes nothing', async (s) => {
      await expectCode(s.createApprovalRequest({ id: 'short', op: 'keys.destroy', requester: 'alice', request, rules, created: at(1), expiresAt: at(100) }), 'KW_STORE_INVALID_ARGUMENT');
      await expectCode(s.createApprovalRequest({ id: rid('a'), op: 'keys.destroy', requester: 'alice', request, rules, created: at(100), expiresAt: at(1) }), 'KW_STORE_INVALID_ARGUMENT');
      await expectCode(s.createApprovalRequest({ id: rid('a'), op: 'keys.destroy', requester: 'alice', request, rules: [{ op: 'keys.destroy', role: 'r', threshold: 0 }], created: at(1), expiresAt: at(100) }), 'KW_STORE_INVALID_ARGUMENT');
      await expectCode(s.putGovernanceSnapshot({ seq: 0, hash: 'x', snapshot: '{}', signature: 'a'.repeat(128), created: at(1) }), 'KW_STORE_INVALID_ARGUMENT');
      assert.deepEqual(await s.listApprovalRequests(), []);
      assert.equal(await s.latestGovernanceSnapshot(), null);
    });

    test('one answer per approver per request (a double approval counts once); a closed request keeps its answers', async (s) => {
      await s.createApprovalRequest({ id: rid('a'), op: 'keys.destroy', requester: 'alice', request, rules, created: at(1), expiresAt: at(100) });
      const sig = { approver: 'bob', decision: 'approve', kind: 'ed25519', keyId: 'k1', signature: 'AA' };
      const b = await s.addApproval({ requestId: rid('a'), approver: 'bob', decision: 'approve', approval: sig, created: at(2) });
      assert.deepEqual(b, { requestId: rid('a'), approver: 'bob', decision: 'approve', approval: sig, created: at(2) });
      await expectCode(s.addApproval({ requestId: rid('a'), approver: 'bob', decision: 'approve', approval: sig, created: at(3) }), 'KW_STORE_CONFLICT');
      await expectCode(s.addApproval({ requestId: rid('a'), approver: 'bob', decision: 'deny', approval: { ...sig, decision: 'deny' }, created: at(3) }), 'KW_STORE_CONFLICT');
      await expectCode(s.addApproval({ requestId: rid('q'), approver: 'bob', decision: 'approve', approval: sig, created: at(3) }), 'KW_STORE_NOT_FOUND');
      await s.addApproval({ requestId: rid('a'), approver: 'carol', decision: 'deny', approval: { ...sig, approver: 'carol', decision: 'deny' }, created: at(4) });
      assert.deepEqual((await s.listApprovals(rid('a'))).map((x) => [x.approver, x.decision]), [['bob', 'approve'], ['carol', 'deny']]);
    });

    test('inside a transaction: a rolled-back execution leaves the request pending; two executions, one wins', async (s) => {
      await s.createApprovalRequest({ id: rid('a'), op: 'keys.destroy', requester: 'alice', request, rules, created: at(1), expiresAt: at(100) });
      await assert.rejects(s.transaction(async (tx) => {
        await tx.closeApprovalRequest(rid('a'), 'executed', at(2));
        throw new Error('the operation failed');
      }), /the operation failed/);
      assert.equal((await s.getApprovalRequest(rid('a')))!.state, 'pending');
      const results = await Promise.allSettled([1, 2].map((n) => s.transaction((tx) => tx.closeApprovalRequest(rid('a'), 'executed', at(2 + n)))));
      assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    });

    test('governance snapshots: unique sequence numbers, latest and by number', async (s) => {
      const snap = (seq: number) => ({ seq, hash: String(seq).repeat(64).slice(0, 64), snapshot: JSON.stringify({ seq }), signature: 'ab'.repeat(64), created: at(seq) });
      await s.putGovernanceSnapshot(snap(0));
      await s.putGovernanceSnapshot(snap(1));
      await expectCode(s.putGovernanceSnapshot(snap(1)), 'KW_STORE_CONFLICT');
      assert.deepEqual(await s.latestGovernanceSnapshot(), snap(1));
      assert.deepEqual(await s.getGovernanceSnapshot(0), snap(0));
      assert.equal(await s.getGovernanceSnapshot(7), null);
    });
  });
}
