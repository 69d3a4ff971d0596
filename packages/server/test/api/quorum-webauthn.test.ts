/**
 * Quorum approval with WebAuthn approval credentials (issue #7; docs/mfa.md
 * §Quorum approval), through the real server and keyholder: approvers sign
 * the request hash with their own credential (the software authenticator of
 * the MFA tests: real assertion objects, P-256). An approval counts; the same
 * assertion replayed for another request, or sent by another person, is
 * refused; the requester's own WebAuthn approval never counts (refused when
 * answered, ignored when slipped into the table); the offline verifier
 * (`verifyApprovals`, what `keyward audit verify` runs) checks each WebAuthn
 * approval signature cryptographically.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseEvent, type AuditEvent } from '../../src/audit/event.js';
import { verifyApprovals } from '../../src/audit/verify-approvals.js';
import type { RunningServer } from '../../src/server.js';
import { SoftAuthenticator } from '../mfa/soft-authenticator.js';
import { b64u, call, enrollAdmin, newServer, unsealAll, type Res } from './helpers.js';

const RP = { rpId: 'keyward.test', origins: ['https://keyward.test'] };
const expectError = (r: Res, status: number, code: string, what = ''): void => {
  assert.deepEqual([r.status, r.body?.error?.code], [status, code], `${what}: ${JSON.stringify(r.body)}`);
};

interface Member { token: string; key: SoftAuthenticator }

void describe('quorum approval with WebAuthn credentials', () => {
  let s: RunningServer;
  const m: Record<string, Member> = {};
  let verifierKey: string;
  const path1 = '/v1/keys/app/k/versions/1/destroy';
  const path2 = '/v1/keys/app/k/versions/2/destroy';
  let id1: string;
  let id2: string;
  /** An assertion of bob over id2's challenge, never sent (for the offline forgery). */
  let bobForId2: unknown;

  const events = async (): Promise<AuditEvent[]> =>
    (await s.store.readAuditEvents({ start: 0, end: await s.store.auditSize() })).map((r) => parseEvent(r.event));
  /** `who`'s WebAuthn assertion approving (or denying) request `id`, over the challenge the server publishes. */
  async function assertion(who: string, id: string, decision: 'approve' | 'deny' = 'approve'): Promise<unknown> {
    const view = await call(s, 'GET', `/v1/approvals/${id}`, { token: m[who]!.token });
    assert.equal(view.status, 200, JSON.stringify(view.body));
    assert.equal(view.body.sign.webauthn.rp_id, RP.rpId);
    return m[who]!.key.assert(view.body.sign.webauthn[decision] as string);
  }

  before(async () => {
    s = await newServer({ schedulerMs: 0, mfa: { ...RP, approvalTtlSeconds: 600 } });
    const init = await s.initialize({ shares: 2, threshold: 2 });
    await unsealAll(s, init.shares);
    for (const name of ['alice', 'bob', 'carol', 'dave']) {
      const token = await enrollAdmin(s, init.rootToken, name);
      const key = new SoftAuthenticator(RP.rpId, RP.origins[0]!);
      m[name] = { token, key };
      // Each person enrolls their own credential (COSE public key) as an approval key; the key id is the credential id.
      const cose = b64u(key['cosePublicKey']);
      const r = await call(s, 'PUT', `/v1/approvers/${name}/keys/${key.id}`, { token, body: { kind: 'webauthn', public_key: cose } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    for (const name of ['alice', 'bob', 'carol', 'dave']) {
      assert.equal((await call(s, 'PUT', `/v1/principals/${name}/roles`, { token: m.alice!.token, body: { roles: ['key-admins'] } })).status, 200);
    }
    const q = await call(s, 'PUT', '/v1/quorum/keys.destroy', { token: m.alice!.token, body: { role: 'key-admins', threshold: 2 } });
    assert.equal(q.status, 200, JSON.stringify(q.body));
    assert.equal((await call(s, 'POST', '/v1/keys/app/k', { token: m.alice!.token, body: { type: 'aes256' } })).status, 201);
    for (let i = 0; i < 2; i++) assert.equal((await call(s, 'POST', '/v1/keys/app/k/rotate', { token: m.alice!.token })).status, 200);
    for (const v of [1, 2]) assert.equal((await call(s, 'POST', `/v1/keys/app/k/versions/${v}/schedule-deletion`, { token: m.alice!.token, body: { days: 7 } })).status, 200);
    verifierKey = (await call(s, 'GET', '/v1/governance', { token: m.alice!.token })).body.verifier_key;
    id1 = (await call(s, 'POST', '/v1/approvals', { token: m.alice!.token, body: { method: 'POST', path: path1 } })).body.id;
    id2 = (await call(s, 'POST', '/v1/approvals', { token: m.alice!.token, body: { method: 'POST', path: path2 } })).body.id;
    assert.match(id1, /^[A-Za-z0-9_-]{43}$/);
    assert.match(id2, /^[A-Za-z0-9_-]{43}$/);
  });
  after(async () => { await s?.close(); });

  void test('an approval signed with a WebAuthn credential counts; replayed for another request or sent by another person it is refused', async () => {
    const bob1 = await assertion('bob', id1);
    const ok = await call(s, 'POST', `/v1/approvals/${id1}/approve`, { token: m.bob!.token, body: { kind: 'webauthn', response: bob1 } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(ok.body.answers.map((a: { approver: string; kind: string; key_id: string }) => [a.approver, a.kind, a.key_id]), [['bob', 'webauthn', m.bob!.key.id]]);
    assert.deepEqual(ok.body.tally, [{ op: 'keys.destroy', approved_by: ['bob'], denied_by: [], satisfied: false }]);

    // The same assertion (challenge = id1's) presented for id2: its challenge is not id2's.
    expectError(await call(s, 'POST', `/v1/approvals/${id2}/approve`, { token: m.bob!.token, body: { kind: 'webauthn', response: bob1 } }), 400, 'KW_APPROVAL_INVALID', 'replayed for another request');
    // Bob's assertion for id2 sent by carol: not one of carol's credentials.
    bobForId2 = await assertion('bob', id2);
    expectError(await call(s, 'POST', `/v1/approvals/${id2}/approve`, { token: m.carol!.token, body: { kind: 'webauthn', response: bobForId2 } }), 400, 'KW_APPROVAL_INVALID', "bob's assertion as carol");
    // An approval assertion presented as a denial (its challenge is the approve challenge).
    expectError(await call(s, 'POST', `/v1/approvals/${id2}/deny`, { token: m.dave!.token, body: { kind: 'webauthn', response: await assertion('dave', id2) } }), 400, 'KW_APPROVAL_INVALID', 'approve challenge as a denial');
    // An assertion from another origin (a phishing page) for the right challenge.
    const view = await call(s, 'GET', `/v1/approvals/${id2}`, { token: m.dave!.token });
    const phished = m.dave!.key.assert(view.body.sign.webauthn.approve as string, { origin: 'https://evil.test' });
    expectError(await call(s, 'POST', `/v1/approvals/${id2}/approve`, { token: m.dave!.token, body: { kind: 'webauthn', response: phished } }), 400, 'KW_APPROVAL_INVALID', 'other origin');
    const v2 = await call(s, 'GET', `/v1/approvals/${id2}`, { token: m.dave!.token });
    assert.deepEqual([v2.body.state, v2.body.answers], ['pending', []], 'nothing was recorded for id2');
  });

  void test("the requester's own WebAuthn approval does not count (refused when answered, ignored when slipped into the table)", async () => {
    const own = await assertion('alice', id1);
    expectError(await call(s, 'POST', `/v1/approvals/${id1}/approve`, { token: m.alice!.token, body: { kind: 'webauthn', response: own } }), 403, 'KW_APPROVAL_SELF', 'self');
    // A valid self-approval written into the mailbox directly (a compromised API or database) is not counted either.
    await s.store.addApproval({ requestId: id1, approver: 'alice', decision: 'approve', approval: { approver: 'alice', decision: 'approve', kind: 'webauthn', response: own } as never, created: new Date() });
    const view = await call(s, 'GET', `/v1/approvals/${id1}`, { token: m.carol!.token });
    assert.deepEqual(view.body.tally, [{ op: 'keys.destroy', approved_by: ['bob'], denied_by: [], satisfied: false }]);
    expectError(await call(s, 'POST', path1, { token: m.alice!.token, headers: { 'keyward-approval': id1 } }), 409, 'KW_QUORUM_PENDING', 'bob + alice herself');
    assert.equal((await s.store.getKeyVersion('app', 'k', 1))!.state, 'scheduled_for_deletion');

    // The keyholder, asked directly (as a compromised API would), counts the WebAuthn approvals itself: bob + alice's own is one.
    const row = (await s.store.getKeyVersion('app', 'k', 1))!;
    const stored = (await s.store.listApprovals(id1)).map((a) => a.approval);
    await assert.rejects(s.keyholder.call('destroy-receipt', {
      version: { ns: 'app', key: 'k', version: 1, type: 'aes256', wrapped: b64u(row.wrapped!) }, time: new Date().toISOString(),
      approval: { request: view.body.request, requester: 'alice', approvals: stored }, rp: { id: RP.rpId, name: 'Keyward', origins: RP.origins },
    }), (e: { code?: string }) => e.code === 'KW_QUORUM_PENDING');
    const ok = await call(s, 'POST', `/v1/approvals/${id1}/approve`, { token: m.carol!.token, body: { kind: 'webauthn', response: await assertion('carol', id1) } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const done = await call(s, 'POST', path1, { token: m.alice!.token, headers: { 'keyward-approval': id1 } });
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.equal(done.body.state, 'destroyed');
    const destroy = (await events()).find((e) => e.op === 'keys.destroy' && e.outcome === 'allowed')!;
    const counted = (destroy.details.approval as { approvals: { approver: string; kind: string }[] }).approvals;
    assert.deepEqual(counted.map((a) => [a.approver, a.kind]).sort(), [['bob', 'webauthn'], ['carol', 'webauthn']]);
  });

  void test('offline: the WebAuthn approval signatures in the log are verified cryptographically', async () => {
    const all = await events();
    assert.deepEqual(await verifyApprovals(all, { verifierKey }), []);
    const replace = (i: number, details: Record<string, unknown>): AuditEvent[] =>
      all.map((e, k) => (k === i ? { ...e, details: { ...e.details, ...details } as typeof e.details } : e));

    // bob's logged approval of id1 swapped for his (genuine) assertion over id2's challenge.
    const i = all.findIndex((e) => e.op === 'approvals.approve' && e.outcome === 'allowed' && e.principal === 'bob');
    const approval = all[i]!.details.approval as { response: { response: { signature: string } } };
    assert.equal((approval as unknown as { kind: string }).kind, 'webauthn');
    const swapped = replace(i, { approval: { ...approval, response: bobForId2 } });
    assert.deepEqual((await verifyApprovals(swapped, { verifierKey })).map((p) => [p.code, p.index]), [['AUDIT_APPROVAL_INVALID', all[i]!.index]]);
    // One bit of the ECDSA signature flipped.
    const sig = Buffer.from(approval.response.response.signature, 'base64url');
    sig[sig.length - 1]! ^= 1;
    const flipped = replace(i, { approval: { ...approval, response: { ...approval.response, response: { ...approval.response.response, signature: b64u(sig) } } } });
    assert.deepEqual((await verifyApprovals(flipped, { verifierKey })).map((p) => [p.code, p.index]), [['AUDIT_APPROVAL_INVALID', all[i]!.index]]);

    // The destroy's own approvals: bob's replaced by his assertion for another request → short of the quorum.
    const d = all.findIndex((e) => e.op === 'keys.destroy' && e.outcome === 'allowed');
    const ap = all[d]!.details.approval as { approvals: { approver: string; response: unknown }[] };
    const forged = replace(d, { approval: { ...ap, approvals: ap.approvals.map((a) => (a.approver === 'bob' ? { ...a, response: bobForId2 } : a)) } });
    assert.deepEqual((await verifyApprovals(forged, { verifierKey })).map((p) => [p.code, p.index]), [['AUDIT_APPROVAL_INVALID', all[d]!.index]]);
  });
});
