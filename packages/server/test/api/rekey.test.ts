/**
 * Rekey over HTTP through the real server (real keyholder process, real
 * SQLite; api/routes/rekey.ts): admins only; once MFA is enforced, starting a
 * rekey without a step-up is KW_MFA_REQUIRED and changes nothing; the full
 * flow (start, custodians submit current shares sealed to the attempt's key,
 * new shares sealed to the new custodians, old shares refused after a seal,
 * new shares unseal), the record published for other nodes, the audit trail
 * without share material, and the routes in OpenAPI.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { HpkeIdentity, armor } from '@keyward/core';
import { base32 } from '@scure/base';
import { parseEvent } from '../../src/audit/event.js';
import { openCustodianShare } from '../../src/keyholder/custodians.js';
import type { ShareFile } from '../../src/keyholder/custody.js';
import { sealShareForBoot } from '../../src/keyholder/unseal-key.js';
import { totpAt } from '../../src/mfa/totp.js';
import type { RunningServer } from '../../src/server.js';
import { call, enrollAdmin, newServer, unsealAll, type Res } from './helpers.js';

let offset = -280_000;
const clock = (): Date => new Date(Date.now() + offset);
const codeAt = (seed: string): Promise<string> => totpAt(base32.decode(seed.padEnd(Math.ceil(seed.length / 8) * 8, '=')), clock());
const expectError = (r: Res, status: number, code: string, what = ''): void => {
  assert.deepEqual([r.status, r.body?.error?.code], [status, code], `${what}: ${JSON.stringify(r.body)}`);
};

async function recipients(n: number): Promise<{ ids: HpkeIdentity[]; list: string[] }> {
  const ids = await Promise.all(Array.from({ length: n }, () => HpkeIdentity.generate('x25519')));
  return { ids, list: await Promise.all(ids.map(async (i) => (await i.recipient()).toString())) };
}

void describe('rekey over HTTP', () => {
  let s: RunningServer;
  let boot: string;
  let alice: string;
  let bob: string;
  let shares: readonly ShareFile[];

  async function submit(share: ShareFile | string): Promise<Res> {
    const k = await call(s, 'GET', '/v1/sys/rekey/key');
    assert.equal(k.status, 200, JSON.stringify(k.body));
    const env = armor(await sealShareForBoot(typeof share === 'string' ? share : share.text, k.body.recipient, k.body.id, 'rekey'));
    return call(s, 'POST', '/v1/sys/rekey/share', { body: { id: k.body.id, share: env } });
  }

  before(async () => {
    s = await newServer({ schedulerMs: 0, mfa: { rpId: 'keyward.test', origins: ['https://keyward.test'], clock, stepUpTtlSeconds: 60 } });
    const init = await s.initialize({ shares: 3, threshold: 2 });
    boot = init.rootToken;
    shares = init.shares;
    await unsealAll(s, shares.slice(0, 2));
    alice = await enrollAdmin(s, boot, 'alice');
    const t = await call(s, 'POST', '/v1/tokens', { token: alice, body: { principal: 'bob', kind: 'person' } });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    bob = t.body.token;
  });
  after(async () => { await s.close(); });

  void test('non-admins cannot start, read or cancel a rekey; nothing to submit to', async () => {
    const r = await recipients(3);
    expectError(await call(s, 'POST', '/v1/sys/rekey', { token: bob, body: { shares: 3, threshold: 2, recipients: r.list } }), 403, 'KW_FORBIDDEN', 'start');
    expectError(await call(s, 'GET', '/v1/sys/rekey', { token: bob }), 403, 'KW_FORBIDDEN', 'status');
    expectError(await call(s, 'DELETE', '/v1/sys/rekey', { token: bob }), 403, 'KW_FORBIDDEN', 'cancel');
    expectError(await call(s, 'POST', '/v1/sys/rekey', { body: { shares: 3, threshold: 2, recipients: r.list } }), 401, 'KW_UNAUTHENTICATED', 'no token');
    expectError(await call(s, 'GET', '/v1/sys/rekey/key'), 404, 'KW_REKEY_NOT_FOUND', 'key');
    expectError(await call(s, 'DELETE', '/v1/sys/rekey', { token: alice }), 404, 'KW_REKEY_NOT_FOUND', 'cancel nothing');
    assert.equal((await call(s, 'GET', '/v1/sys/rekey', { token: alice })).body.rekey, null);
  });

  void test('full flow: 2 of 3 → 3 of 5; old shares refused after a seal; new shares unseal; audited without share material', async () => {
    const from = await s.store.auditSize();
    const r = await recipients(5);
    const st = await call(s, 'POST', '/v1/sys/rekey', { token: alice, body: { shares: 5, threshold: 3, recipients: r.list } });
    assert.equal(st.status, 201, JSON.stringify(st.body));
    assert.deepEqual([st.body.shares, st.body.threshold, st.body.progress, st.body.completed], [5, 3, { received: 0, required: 2 }, null]);
    expectError(await call(s, 'POST', '/v1/sys/rekey', { token: alice, body: { shares: 5, threshold: 3, recipients: r.list } }), 409, 'KW_REKEY_PENDING', 'second start');
    const one = await submit(shares[0]!);
    assert.equal(one.status, 200, JSON.stringify(one.body));
    assert.deepEqual([one.body.index, one.body.progress, one.body.complete], [1, { received: 1, required: 2 }, false]);
    expectError(await submit(shares[0]!), 409, 'KW_SHARE_DUPLICATE', 'duplicate');
    const done = await submit(shares[2]!);
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.equal(done.body.complete, true);
    const c = done.body.completed;
    assert.deepEqual([c.generation, c.shares, c.threshold, c.sealed_shares.length], [1, 5, 3, 5]);
    const fresh = await Promise.all((c.sealed_shares as { armored: string }[]).map((x, i) => openCustodianShare(x.armored, r.ids[i]!)));
    // Status (admin) still holds the sealed shares; the record for other nodes is in the store.
    const status = await call(s, 'GET', '/v1/sys/rekey', { token: alice });
    assert.equal(status.body.generation, 1);
    assert.equal(status.body.rekey.completed.sealed_shares.length, 5);
    const meta = JSON.parse((await s.store.getMeta('custody.sync'))!) as { shares: { generation: number; shareHashes: string[] }; mac: string };
    assert.deepEqual([meta.shares.generation, meta.shares.shareHashes], [1, c.share_hashes]);
    assert.equal((await call(s, 'DELETE', '/v1/sys/rekey', { token: alice })).body.completed, true);
    // Seal; the old shares no longer unseal, the new ones do.
    assert.equal((await call(s, 'POST', '/v1/sys/seal', { token: alice })).status, 200);
    expectError(await unsealAll(s, shares.slice(1, 2)), 400, 'KW_SHARE_CORRUPTED', 'old share');
    assert.equal((await unsealAll(s, fresh.slice(0, 3) as unknown as ShareFile[])).body.sealed, false);
    // Audit: start, each share, completion (with the new hashes), cancel; no share material anywhere.
    const rows = await s.store.readAuditEvents({ start: from, end: await s.store.auditSize() });
    const events = rows.map((x) => parseEvent(x.event));
    const ops = events.map((e) => e.op);
    for (const op of ['sys.rekey_start', 'sys.rekey_share', 'sys.rekey_complete', 'sys.rekey_cancel']) assert.ok(ops.includes(op), `${op} audited`);
    const complete = events.find((e) => e.op === 'sys.rekey_complete')!;
    assert.deepEqual((complete.details as { share_hashes: string[] }).share_hashes, c.share_hashes);
    assert.ok(events.some((e) => e.op === 'sys.rekey_share' && e.code === 'KW_SHARE_DUPLICATE'), 'the refused duplicate is audited');
    const text = rows.map((x) => Buffer.from(x.event).toString('utf8')).join('\n');
    assert.ok(!text.includes('KEYWARD-SHARE-1') && !text.includes('BEGIN KEYWARD'), 'no share material in the audit log');
    for (const f of fresh) assert.ok(!text.includes(f.split('\n')[1]!.slice(16, 40)));
  });

  void test('once MFA is enforced, starting a rekey needs a step-up: without one KW_MFA_REQUIRED and nothing changes; with one it starts; cancel', async () => {
    const e = await call(s, 'POST', '/v1/mfa/totp', { token: boot, body: { principal: 'alice', name: 'phone' } });
    assert.equal(e.status, 201, JSON.stringify(e.body));
    const seed = e.body.secret_base32 as string;
    const a = await call(s, 'POST', `/v1/mfa/totp/${e.body.id}/activate`, { token: boot, body: { code: await codeAt(seed), principal: 'alice' } });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    const r = await recipients(3);
    const body = { shares: 3, threshold: 2, recipients: r.list };
    const before = await call(s, 'GET', '/v1/sys/rekey', { token: alice });
    expectError(await call(s, 'POST', '/v1/sys/rekey', { token: alice, body }), 403, 'KW_MFA_REQUIRED', 'no step-up');
    expectError(await call(s, 'POST', '/v1/sys/rekey', { token: alice, body, headers: { 'keyward-step-up': 'A'.repeat(43) } }), 403, 'KW_MFA_REQUIRED', 'unknown step-up');
    assert.deepEqual((await call(s, 'GET', '/v1/sys/rekey', { token: alice })).body, before.body, 'nothing changed');
    expectError(await call(s, 'GET', '/v1/sys/rekey/key'), 404, 'KW_REKEY_NOT_FOUND', 'no attempt');
    // A step-up bound to this exact request.
    offset += 30_000;
    const su = await call(s, 'POST', '/v1/mfa/step-up', { token: alice, body: { method: 'POST', path: '/v1/sys/rekey', body } });
    assert.equal(su.status, 201, JSON.stringify(su.body));
    assert.equal((await call(s, 'POST', `/v1/mfa/step-up/${su.body.id}/verify`, { token: alice, body: { code: await codeAt(seed) } })).status, 200);
    expectError(await call(s, 'POST', '/v1/sys/rekey', { token: alice, body: { ...body, threshold: 3 }, headers: { 'keyward-step-up': su.body.id } }), 403, 'KW_STEP_UP_MISMATCH', 'another body');
    const ok = await call(s, 'POST', '/v1/sys/rekey', { token: alice, body, headers: { 'keyward-step-up': su.body.id } });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    expectError(await call(s, 'POST', '/v1/sys/rekey', { token: alice, body, headers: { 'keyward-step-up': su.body.id } }), 409, 'KW_MFA_REPLAY', 'reuse');
    const c = await call(s, 'DELETE', '/v1/sys/rekey', { token: alice });
    assert.deepEqual([c.status, c.body.id, c.body.completed], [200, ok.body.id, false]);
  });

  void test('the routes are in the OpenAPI document', async () => {
    const r = await call(s, 'GET', '/v1/openapi.json');
    for (const p of ['/v1/sys/rekey', '/v1/sys/rekey/key', '/v1/sys/rekey/share']) assert.ok(r.body.paths[p], `missing ${p}`);
    assert.ok(r.body.paths['/v1/sys/rekey'].post && r.body.paths['/v1/sys/rekey'].get && r.body.paths['/v1/sys/rekey'].delete);
  });
});
