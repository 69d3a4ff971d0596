/**
 * `discard-pending` (several nodes): pending leaves whose index another node
 * took are dropped; durable leaves never are (KW_AUDIT_FORK); a checkpoint
 * after a discard covers only what was acknowledged.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuditFrontier } from '../../src/keyholder/frontier.js';
import { isProtocolError } from '../../src/keyholder/protocol.js';

const ev = (i: number, tag = 'mine'): Uint8Array => new TextEncoder().encode(JSON.stringify({ index: i, tag }));

void test('discardPending drops pending leaves from an index on, never durable ones', () => {
  const f = AuditFrontier.fresh();
  for (let i = 0; i < 3; i++) f.appendPending(ev(i));
  f.ack(2);
  f.appendPending(ev(3));
  assert.equal(f.appended, 4);
  assert.throws(() => f.discardPending(1), (e: unknown) => isProtocolError(e, 'KW_AUDIT_FORK'));
  assert.throws(() => f.discardPending(5), (e: unknown) => isProtocolError(e, 'KW_INVALID_ARGUMENT'));
  assert.equal(f.discardPending(2), 2);
  assert.equal(f.appended, 2);
  assert.equal(f.size, 2);
  assert.equal(f.discardPending(2), 0);
  // The other node's events take indices 2 and 3; acknowledged, they become durable.
  assert.equal(f.appendPending(ev(2, 'other')), 2);
  assert.equal(f.appendPending(ev(3, 'other')), 3);
  assert.equal(f.ack(4), 4);
  assert.deepEqual(f.pendingEvents(), { from: 4, events: [] });
});
