/**
 * The keyholder enforces the destroy quorum itself (issue #7; docs/mfa.md
 * §Quorum approval): its `destroy-receipt` op takes the approvals and counts
 * them against its own signed governance snapshot, so a compromised API
 * process that calls it directly (as test/api/attest-release.test.ts does for
 * release) cannot destroy a key version without the quorum. Also the
 * scheduler's path: a scheduled deletion falls due and is destroyed only if
 * its schedule-deletion was approved under a `keys.schedule_deletion` rule.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEvent } from '../../src/audit/event.js';
import { verifyApprovals } from '../../src/audit/verify-approvals.js';
import { approvalMessage } from '../../src/mfa/quorum.js';
import type { RunningServer } from '../../src/server.js';
import { b64u, call, enrollAdmin, newServer, unsealAll, type Res } from './helpers.js';

const expectError = (r: Res, status: number, code: string, what = ''): void => {
  assert.deepEqual([r.status, r.body?.error?.code], [status, code], `${what}: ${JSON.stringify(r.body)}`);
};
const DAY = 86_400_000;

interface Member { token: string; approve(id: string): { approver: string; decision: 'approve'; kind: 'ed25519'; keyId: string; signature: string } }

void describe('the keyholder refuses a destroy without the quorum (its own check, not only the API)', () => {
  let s: RunningServer;
  const m: Record<string, Member> = {};
  /** The lifecycle clock (scheduled deletion dates, scheduler ticks): real time plus `offset` ms. */
  let offset = 0;
  /** The MFA clock (approval request expiry): real time plus `mfaOffset` ms. */
  let mfaOffset = 0;

  /** Asks the keyholder directly, as a compromised API would, for the receipt that precedes erasing `app/k` v`v`. */
  async function receipt(v: number, approval?: { request: unknown; requester: string; approvals: unknown[] }): Promise<{ code: string | undefined }> {
    const row = (await s.store.getKeyVersion('app', 'k', v))!;
    try {
      await s.keyholder.call('destroy-receipt', {
        version: { ns: 'app', key: 'k', version: v, type: 'aes256', wrapped: b64u(row.wrapped!) }, time: new Date().toISOString(),
        ...(approval ? { approval: approval as never } : {}),
      });
      return { code: undefined };
    } catch (e) {
      return { code: (e as { code?: string }).code };
    }
  }
  /** An approval request for `method path` by alice, approved by `approvers`: its canonical request and approvals. */
  async function approved(path: string, approvers: string[], body?: unknown): Promise<{ id: string; request: unknown; approvals: ReturnType<Member['approve']>[] }> {
    const r = await call(s, 'POST', '/v1/approvals', { token: m.alice!.token, body: { method: 'POST', path, ...(body !== undefined ? { body } : {}) } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const id = r.body.id as string;
    for (const who of approvers) {
      const a = m[who]!.approve(id);
      assert.equal((await call(s, 'POST', `/v1/approvals/${id}/approve`, { token: m[who]!.token, body: { kind: 'ed25519', key_id: a.keyId, signature: a.signature } })).status, 200);
    }
    return { id, request: r.body.request, approvals: approvers.map((w) => m[w]!.approve(id)) };
  }
  const state = async (v: number): Promise<[string, boolean]> => {
    const row = (await s.store.getKeyVersion('app', 'k', v))!;
    return [row.state, row.wrapped !== null];
  };

  before(async () => {
    s = await newServer({
      schedulerMs: 0, clock: () => new Date(Date.now() + offset),
      mfa: { clock: () => new Date(Date.now() + mfaOffset), approvalTtlSeconds: 60, approvalSweepMs: 100 },
    });
    const init = await s.initialize({ shares: 2, threshold: 2 });
    await unsealAll(s, init.shares);
    for (const name of ['alice', 'bob', 'carol']) {
      const token = await enrollAdmin(s, init.rootToken, name);
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      m[name] = {
        token,
        approve: (id) => ({ approver: name, decision: 'approve', kind: 'ed25519', keyId: `${name}-k1`, signature: sign(null, approvalMessage(Buffer.from(id, 'base64url'), 'approve'), privateKey).toString('base64url') }),
      };
      assert.equal((await call(s, 'PUT', `/v1/approvers/${name}/keys/${name}-k1`, { token, body: { kind: 'ed25519', public_key: publicKey.export({ format: 'jwk' }).x! } })).status, 200);
    }
    for (const name of ['alice', 'bob', 'carol']) {
      assert.equal((await call(s, 'PUT', `/v1/principals/${name}/roles`, { token: m.alice!.token, body: { roles: ['key-admins'] } })).status, 200);
    }
    assert.equal((await call(s, 'PUT', '/v1/quorum/keys.destroy', { token: m.alice!.token, body: { role: 'key-admins', threshold: 2 } })).status, 200);
    assert.equal((await call(s, 'POST', '/v1/keys/app/k', { token: m.alice!.token, body: { type: 'aes256' } })).status, 201);
    for (let i = 0; i < 3; i++) assert.equal((await call(s, 'POST', '/v1/keys/app/k/rotate', { token: m.alice!.token })).status, 200);
    for (const v of [1, 2]) assert.equal((await call(s, 'POST', `/v1/keys/app/k/versions/${v}/schedule-deletion`, { token: m.alice!.token, body: { days: 7 } })).status, 200);
  });
  after(async () => { await s?.close(); });

  void test('destroy-receipt without approvals, with too few, with the requester\'s own, or with another version\'s is refused and changes nothing', async () => {
    const size = await s.store.auditSize();
    assert.equal((await receipt(1)).code, 'KW_QUORUM_REQUIRED', 'no approvals');
    const a1 = await approved('/v1/keys/app/k/versions/1/destroy', ['bob', 'carol']);
    const a2 = await approved('/v1/keys/app/k/versions/2/destroy', ['bob']);
    assert.equal((await receipt(1, { request: a2.request, requester: 'alice', approvals: a2.approvals })).code, 'KW_QUORUM_REQUIRED', "version 2's approvals for version 1");
    assert.equal((await receipt(2, { request: a2.request, requester: 'alice', approvals: a2.approvals })).code, 'KW_QUORUM_PENDING', 'one of two');
    assert.equal((await receipt(2, { request: a2.request, requester: 'alice', approvals: [...a2.approvals, m.alice!.approve(a2.id)] })).code, 'KW_QUORUM_PENDING', "the requester's own approval");
    assert.equal((await receipt(2, { request: a2.request, requester: 'alice', approvals: [...a2.approvals, { ...m.carol!.approve(a2.id), signature: b64u(randomBytes(64)) }] })).code, 'KW_QUORUM_PENDING', 'a forged approval');
    assert.equal((await receipt(1, { request: a1.request, requester: 'bob', approvals: a1.approvals })).code, 'KW_QUORUM_PENDING', 'bob as the requester: his own does not count');
    const body = { ...(a1.request as Record<string, unknown>), expiresAt: (a1.request as { expiresAt: number }).expiresAt + 1 };
    assert.equal((await receipt(1, { request: body, requester: 'alice', approvals: a1.approvals })).code, 'KW_QUORUM_PENDING', 'signatures over another request hash');
    // Nothing changed: no event, both versions still scheduled with their blobs.
    assert.equal(await s.store.auditSize(), size + 5, 'only the 2 approval requests and 3 answers were logged');
    assert.deepEqual([await state(1), await state(2)], [['scheduled_for_deletion', true], ['scheduled_for_deletion', true]]);
    // With the quorum, through the API: the keyholder counts the same approvals and receipts it.
    const ok = await call(s, 'POST', '/v1/keys/app/k/versions/1/destroy', { token: m.alice!.token, headers: { 'keyward-approval': a1.id } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(await state(1), ['destroyed', false]);
  });

  void test('the scheduler: a due deletion is destroyed only if its scheduling was approved under a keys.schedule_deletion rule', async () => {
    offset = 8 * DAY;
    try {
      // Version 2 was scheduled without approvals: the keyholder refuses its destruction (keys.destroy rule, no schedule approvals).
      const t = await s.scheduler.tick();
      assert.deepEqual([t.destroyed, t.failed], [[], [{ ns: 'app', key: 'k', version: 2, code: 'KW_QUORUM_REQUIRED' }]]);
      assert.deepEqual(await state(2), ['scheduled_for_deletion', true]);
    } finally {
      offset = 0;
    }
    // Under a keys.schedule_deletion rule, version 3 is scheduled with the approvals of bob and carol.
    assert.equal((await call(s, 'PUT', '/v1/quorum/keys.schedule_deletion', { token: m.alice!.token, body: { role: 'key-admins', threshold: 2 } })).status, 200);
    const path = '/v1/keys/app/k/versions/3/schedule-deletion';
    expectError(await call(s, 'POST', path, { token: m.alice!.token, body: { days: 7 } }), 403, 'KW_QUORUM_REQUIRED', 'schedule without approvals');
    const a3 = await approved(path, ['bob', 'carol'], { days: 7 });
    const sch = await call(s, 'POST', path, { token: m.alice!.token, body: { days: 7 }, headers: { 'keyward-approval': a3.id } });
    assert.equal(sch.status, 200, JSON.stringify(sch.body));
    // Its schedule approvals do not authorise destroying another version.
    assert.equal((await receipt(2, { request: a3.request, requester: 'alice', approvals: a3.approvals })).code, 'KW_QUORUM_REQUIRED');
    offset = 8 * DAY;
    try {
      const t = await s.scheduler.tick();
      assert.deepEqual(t.destroyed, [{ ns: 'app', key: 'k', version: 3 }]);
      assert.deepEqual(t.failed.map((f) => [f.version, f.code]), [[2, 'KW_QUORUM_REQUIRED']]);
    } finally {
      offset = 0;
    }
    assert.deepEqual([await state(2), await state(3)], [['scheduled_for_deletion', true], ['destroyed', false]]);
    // The scheduler's keys.destroy event carries the approvals that authorised the schedule: verifiable offline.
    const all = (await s.store.readAuditEvents({ start: 0, end: await s.store.auditSize() })).map((r) => parseEvent(r.event));
    const d = all.findIndex((e) => e.op === 'keys.destroy' && e.outcome === 'allowed' && e.principal === null && e.target.version === 3);
    const ap = all[d]!.details.approval as { requester: string; request: { path: string }; approvals: { approver: string }[] };
    assert.equal(ap.requester, 'alice');
    assert.equal(ap.request.path, path);
    assert.deepEqual(ap.approvals.map((x) => x.approver).sort(), ['bob', 'carol']);
    const verifierKey = readFileSync(join(s.dataDir, 'audit-verifier-key.txt'), 'utf8').trim();
    const at = async (events: typeof all) => (await verifyApprovals(events, { verifierKey })).filter((p) => p.index === all[d]!.index).map((p) => p.code);
    assert.deepEqual(await at(all), []);
    const replace = (details: Record<string, unknown>) => all.map((e, k) => (k === d ? { ...e, details: { ...e.details, ...details } as typeof e.details } : e));
    assert.deepEqual(await at(replace({ approval: { ...ap, approvals: ap.approvals.slice(0, 1) } })), ['AUDIT_APPROVAL_INVALID'], 'one approval short');
    assert.deepEqual(await at(replace({ approval: { ...ap, request: { ...ap.request, path: '/v1/keys/app/k/versions/2/schedule-deletion', version: 2 } } })), ['AUDIT_APPROVAL_INVALID'], 'another version\'s schedule');
    assert.deepEqual(await at(replace({ approval: { ...ap, requester: 'bob' } })), ['AUDIT_APPROVAL_INVALID'], 'the requester approving');
  });

  void test('a timer closes expired approval requests nobody touches, audited once (approvals.expire)', async () => {
    const a = await approved('/v1/keys/app/k/versions/4/destroy', ['bob']);
    const expires = (await s.store.getApprovalRequest(a.id))!.expiresAt.getTime();
    assert.ok(expires - Date.now() <= 60_000, 'the 60 s TTL');
    await new Promise((r) => setTimeout(r, 400));
    assert.equal((await s.store.getApprovalRequest(a.id))!.state, 'pending', 'not expired yet: left alone');
    const expireEvents = async (): Promise<number> => (await s.store.readAuditEvents({ start: 0, end: await s.store.auditSize() }))
      .map((r) => parseEvent(r.event))
      .filter((e) => e.op === 'approvals.expire' && e.details.approval_request === a.id).length;
    assert.equal(await expireEvents(), 0);
    mfaOffset = 61_000;
    try {
      const deadline = Date.now() + 5000;
      while ((await s.store.getApprovalRequest(a.id))!.state !== 'expired') {
        assert.ok(Date.now() < deadline, 'closed by the timer within 5 s');
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 400)); // a few more sweeps: nothing more is written
      assert.equal(await expireEvents(), 1);
      expectError(await call(s, 'POST', '/v1/keys/app/k/versions/4/destroy', { token: m.alice!.token, headers: { 'keyward-approval': a.id } }), 410, 'KW_STEP_UP_EXPIRED', 'expired');
    } finally {
      mfaOffset = 0;
    }
    assert.deepEqual(await state(4), ['enabled', true]);
  });
});
