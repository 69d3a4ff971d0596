/**
 * Group commit of data-plane audit events (audit-pipe.ts `recordOp`): many
 * concurrent signed datakey/unwrap requests, some of them refused by the
 * keyholder in the middle of a group, all answered correctly; the log stays
 * one contiguous hash chain with exactly one `allowed` event per answered
 * request (and an `error` event per refusal), every event stored, and the
 * keyholder's checkpoint covers the store. Real keyholder, real SQLite.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { HpkeIdentity, open } from '@keyward/core';
import { eventHash } from '../../src/audit/event.js';
import { releaseContext } from '../../src/keyholder/ops/caller.js';
import { requestHashOf } from '../../src/keyholder/service.js';
import type { RunningServer } from '../../src/server.js';
import { b64u, call, enrollAdmin, newDeviceKeys, newServer, signedCall, unb64u, unsealAll, type Device } from './helpers.js';

interface Ev { index: number; prev: string; op: string; outcome: string; code?: string; request: string | null }

void describe('group commit of data-plane audit events', () => {
  let s: RunningServer;
  let token: string;
  let device: Device;
  let alice: HpkeIdentity;
  let recipient: string;

  before(async () => {
    s = await newServer({ rateLimit: { perToken: { ratePerSecond: 10_000, burst: 10_000 } } });
    const init = await s.initialize({ shares: 3, threshold: 2 });
    assert.equal((await unsealAll(s, init.shares.slice(0, 2))).body.sealed, false);
    const root = await enrollAdmin(s, init.rootToken);
    assert.equal((await call(s, 'POST', '/v1/keys/gc/files', { token: root, body: { type: 'aes256' } })).status, 201);
    const t = await call(s, 'POST', '/v1/tokens', { token: root, body: { principal: 'svc-gc', ns: 'gc', roles: ['worker'] } });
    token = t.body.token;
    const keys = newDeviceKeys();
    const sk = await call(s, 'POST', '/v1/auth/signing-keys', { token, body: { alg: 'ed25519', public_key: b64u(keys.publicKey) } });
    device = { keyId: sk.body.key_id, ...keys };
    const p = await call(s, 'PUT', '/v1/policies/gc/worker', { token: root, body: { grants: [{ roles: ['worker'], operations: ['datakey', 'unwrap'], keys: ['gc/*'] }] } });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    alice = await HpkeIdentity.generate('x25519');
    recipient = (await alice.recipient()).toString();
  });
  after(async () => { await s.close(); });

  void test('48 concurrent requests, every fourth refused by the keyholder: correct answers, one contiguous chain, one event each', async () => {
    const ctx = { table: 'orders' };
    const dk = await signedCall(s, token, device, '/v1/data/gc/files/datakey', { recipient, context: ctx });
    assert.equal(dk.status, 200, JSON.stringify(dk.body));
    const dataKey = (await open(unb64u(dk.body.sealed), { identities: [alice], context: releaseContext(requestHashOf(dk.sig), { ns: 'gc', key: 'files', version: 1 }, ctx) })).plaintext;
    const before = await s.store.auditSize();

    const results = await Promise.all(Array.from({ length: 48 }, async (_, i) => {
      if (i % 4 === 3) {
        // Another context: the blob's AAD does not match, the keyholder refuses (KW_WRAPPED_KEY_MISMATCH).
        const r = await signedCall(s, token, device, '/v1/data/gc/files/unwrap', { version: 1, wrapped: dk.body.wrapped, context: { table: 'other' }, recipient });
        return { kind: 'refused' as const, r };
      }
      if (i % 2 === 0) {
        const r = await signedCall(s, token, device, '/v1/data/gc/files/unwrap', { version: 1, wrapped: dk.body.wrapped, context: ctx, recipient });
        return { kind: 'unwrap' as const, r };
      }
      const r = await signedCall(s, token, device, '/v1/data/gc/files/datakey', { recipient, context: { n: String(i) } });
      return { kind: 'datakey' as const, r };
    }));

    for (const { kind, r } of results) {
      if (kind === 'refused') {
        assert.equal(r.body?.error?.code, 'KW_WRAPPED_KEY_MISMATCH', JSON.stringify(r.body));
        continue;
      }
      assert.equal(r.status, 200, JSON.stringify(r.body));
      if (kind === 'unwrap') {
        const got = (await open(unb64u(r.body.sealed), { identities: [alice], context: releaseContext(requestHashOf(r.sig), { ns: 'gc', key: 'files', version: 1 }, ctx) })).plaintext;
        assert.deepEqual(got, dataKey);
      }
    }

    // Every event stored, contiguous, chained; one allowed event per answered request, one error event per refusal.
    await s.fastify.inject({ method: 'GET', url: '/v1/sys/health' });
    const size = await s.store.auditSize();
    const rows = await s.store.readAuditEvents({ start: 0, end: size });
    assert.equal(rows.length, size);
    rows.forEach((row, i) => {
      const ev = JSON.parse(row.event) as Ev;
      assert.equal(ev.index, i);
      if (i > 0) assert.equal(ev.prev, eventHash(new TextEncoder().encode(rows[i - 1]!.event)));
    });
    const events = rows.slice(before).map((r) => JSON.parse(r.event) as Ev);
    const hex = (sig: Record<string, string>) => Buffer.from(requestHashOf(sig)).toString('hex');
    for (const { kind, r } of results) {
      const mine = events.filter((e) => e.request === hex(r.sig));
      if (kind === 'refused') {
        assert.deepEqual(mine.map((e) => [e.op, e.outcome, e.code]), [['data.unwrap', 'error', 'KW_WRAPPED_KEY_MISMATCH']]);
      } else {
        assert.deepEqual(mine.map((e) => [e.op, e.outcome]), [[`data.${kind}`, 'allowed']]);
      }
    }

    // The keyholder holds every event as durable (acked) and its checkpoint covers exactly the store.
    let st = await s.keyholder.call('status', {});
    for (let i = 0; i < 50 && st.audit.size < size; i++) {
      await new Promise((r) => setTimeout(r, 20));
      st = await s.keyholder.call('status', {});
    }
    assert.equal(st.audit.appended, size);
    assert.equal(st.audit.size, size);
    const cp = await s.keyholder.call('checkpoint', {});
    assert.equal(cp.size, size);
  });
});
