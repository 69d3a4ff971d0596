/**
 * Key ops sent to the real keyholder without waiting for each answer (the
 * audit pipe's pipelined group commit): the keyholder runs leaf-appending
 * ops one at a time in arrival order, each checking its event's index when
 * its turn comes. So consecutive events all succeed, in order; and when one
 * is refused, the next finds its index taken (KW_AUDIT_CONFLICT) having done
 * nothing — its signed request's nonce is not spent, and sent again at the
 * right index it succeeds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  EventLog, b64u, generate, identity, makeInit, newDevice, openReleased, ref, rejectsCode, signedRequest, startKeyholder, unsealWith,
  type Running, type Stored, type WireSignedRequest,
} from './helpers.js';

void describe('pipelined key ops run in arrival order', () => {
  let kh: Running;
  const log = new EventLog();
  const device = newDevice();
  let alice: Awaited<ReturnType<typeof identity>>;
  let orders1: Stored;
  let wrapped: string;
  let dataKey: Uint8Array;
  const context = { tenant: '42' };

  const unwrapAt = (index: number, request: WireSignedRequest, ctx = context) => {
    const event = log.make({ op: 'data.unwrap', target: { key: 'orders', version: 1 }, index });
    return { event, answer: kh.client.call('unwrap', { event: b64u(event), version: orders1, context: ctx, wrapped, recipient: alice.recipient, request }) };
  };
  const signed = (ctx = context) => signedRequest(device, { key: 'billing/orders', recipient: alice.recipient, context: ctx, wrapped });

  before(async () => {
    const init = await makeInit(3, 2);
    [kh, alice] = await Promise.all([startKeyholder(), identity()]);
    await kh.client.call('init-state', { state: init.state });
    await unsealWith(kh.client, init.shares.slice(0, 2));
    orders1 = await generate(kh.client, log, ref());
    const s = signedRequest(device, { recipient: alice.recipient, context });
    const event = log.make({ op: 'data.datakey', target: { key: 'orders', version: 1 } });
    const dk = await kh.client.call('datakey', { event: b64u(event), version: orders1, context, recipient: alice.recipient, request: s.request });
    log.commit(event);
    wrapped = dk.wrapped;
    dataKey = await openReleased(dk.sealed, alice.id, s.hash, ref(), context);
  });
  after(async () => { await kh.stop(); });

  void test('eight unwraps sent at once, at consecutive indices: all answered, leaves in order', async () => {
    const first = log.next;
    const reqs = Array.from({ length: 8 }, () => signed());
    // Events chain on each other: make and commit each before the next is made.
    const sent = reqs.map((r, i) => {
      const s = unwrapAt(first + i, r.request);
      log.commit(s.event);
      return s;
    });
    const answers = await Promise.all(sent.map((s) => s.answer));
    assert.deepEqual(answers.map((a) => a.leaf), reqs.map((_, i) => first + i));
    for (const [i, a] of answers.entries()) assert.deepEqual(await openReleased(a.sealed, alice.id, reqs[i]!.hash, ref(), context), dataKey);
    assert.equal((await kh.client.call('status', {})).audit.appended, first + 8);
  });

  void test('after a refusal the next op finds its index taken and has done nothing: sent again, it succeeds', async () => {
    const n = log.next;
    const ok = signed();
    const bad = signed({ tenant: '43' }); // the blob's AAD names tenant 42: KW_WRAPPED_KEY_MISMATCH
    const later = signed();
    const a = unwrapAt(n, ok.request);
    log.commit(a.event);
    const b = unwrapAt(n + 1, bad.request, { tenant: '43' });
    const c = unwrapAt(n + 2, later.request); // built as if b succeeded (its prev is wrong too, but the index is checked first)
    const [ra, rb, rc] = await Promise.allSettled([a.answer, b.answer, c.answer]);
    assert.equal(ra.status === 'fulfilled' && ra.value.leaf, n);
    assert.equal(rb.status === 'rejected' && (rb.reason as { code?: string }).code, 'KW_WRAPPED_KEY_MISMATCH');
    assert.equal(rc.status === 'rejected' && (rc.reason as { code?: string }).code, 'KW_AUDIT_CONFLICT');
    assert.equal((await kh.client.call('status', {})).audit.appended, n + 1, 'neither the refused op nor the one after it appended');
    // The same signed request (same nonce) at the index that is free now: its nonce was never spent.
    const again = unwrapAt(n + 1, later.request);
    const r = await again.answer;
    log.commit(again.event);
    assert.equal(r.leaf, n + 1);
    assert.deepEqual(await openReleased(r.sealed, alice.id, later.hash, ref(), context), dataKey);
    // And now it is spent.
    await rejectsCode(() => unwrapAt(n + 2, later.request).answer, 'KW_REQUEST_REPLAYED');
  });
});
