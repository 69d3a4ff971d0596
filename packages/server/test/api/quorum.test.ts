/**
 * Quorum approval and signed governance end to end (issue #7; docs/mfa.md
 * §Quorum approval, §Signed policy), through the real server, keyholder
 * process and store: quorum rules checked at write time (KW_QUORUM_INVALID),
 * a destroy that waits for 2 of key-admins (self-approval, a double
 * approval, a non-member, a forged signature, a replayed approval of another
 * request — none counts), execution once, a refusal, an expiry, a policy
 * change under quorum signed by the keyholder, approvals verifiable from the
 * audit log alone, and a policy row edited in the database that the
 * keyholder does not enforce — on SQLite and on PostgreSQL.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign, verify, createPublicKey } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { HpkeIdentity } from '@keyward/core';
import { parseEvent } from '../../src/audit/event.js';
import { approvalMessage } from '../../src/mfa/quorum.js';
import { parseVerifierKey } from '@keyward/tlog';
import { snapshotSignatureMessage } from '../../src/mfa/governance.js';
import { verifyApprovals } from '../../src/audit/verify-approvals.js';
import type { RunningServer } from '../../src/server.js';
import { b64u, call, enrollAdmin, newDeviceKeys, newServer, signedCall, unsealAll, type Device, type Res } from './helpers.js';

const expectError = (r: Res, status: number, code: string, what = ''): void => {
  assert.deepEqual([r.status, r.body?.error?.code], [status, code], `${what}: ${JSON.stringify(r.body)}`);
};

interface Member { name: string; token: string; sign(id: string, decision?: 'approve' | 'deny'): { kind: 'ed25519'; key_id: string; signature: string } }

/** The MFA clock (approval expiry): real time plus `offset` ms. */
let offset = 0;
const clock = (): Date => new Date(Date.now() + offset);

async function setup(s: RunningServer): Promise<{ members: Record<string, Member>; eve: string }> {
  const init = await s.initialize({ shares: 2, threshold: 2 });
  await unsealAll(s, init.shares);
  const members: Record<string, Member> = {};
  for (const name of ['alice', 'bob', 'carol', 'dave']) {
    const token = await enrollAdmin(s, init.rootToken, name);
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    members[name] = {
      name, token,
      sign: (id, decision = 'approve') => ({ kind: 'ed25519', key_id: `${name}-k1`, signature: sign(null, approvalMessage(Buffer.from(id, 'base64url'), decision), privateKey).toString('base64url') }),
    };
    // Each person enrolls their own approval key (a governance change, signed by the keyholder: no rule covers it yet).
    const k = await call(s, 'PUT', `/v1/approvers/${name}/keys/${name}-k1`, { token, body: { kind: 'ed25519', public_key: publicKey.export({ format: 'jwk' }).x! } });
    assert.equal(k.status, 200, JSON.stringify(k.body));
  }
  const eve = await enrollAdmin(s, init.rootToken, 'eve');
  for (const name of ['alice', 'bob', 'carol', 'dave']) {
    const r = await call(s, 'PUT', `/v1/principals/${name}/roles`, { token: members.alice!.token, body: { roles: ['key-admins'] } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  return { members, eve };
}

void describe('quorum approval through the server (SQLite)', () => {
  let s: RunningServer;
  let m: Record<string, Member>;
  let eve: string;
  let verifierKey: string;

  before(async () => {
    s = await newServer({ schedulerMs: 0, mfa: { clock, approvalTtlSeconds: 600 } });
    ({ members: m, eve } = await setup(s));
    assert.equal((await call(s, 'POST', '/v1/keys/app/k', { token: m.alice!.token, body: { type: 'aes256' } })).status, 201);
    for (let i = 0; i < 3; i++) assert.equal((await call(s, 'POST', '/v1/keys/app/k/rotate', { token: m.alice!.token })).status, 200);
    for (const v of [1, 2, 3]) assert.equal((await call(s, 'POST', `/v1/keys/app/k/versions/${v}/schedule-deletion`, { token: m.alice!.token, body: { days: 7 } })).status, 200);
    verifierKey = (await call(s, 'GET', '/v1/governance', { token: m.alice!.token })).body.verifier_key;
  });
  after(async () => { await s.close(); });

  void test('the approval routes are in the OpenAPI document (the console inbox builds on them)', async () => {
    const doc = (await call(s, 'GET', '/v1/openapi.json')).body as { paths: Record<string, Record<string, { tags: string[] }>> };
    for (const [path, method] of [['/v1/approvals', 'post'], ['/v1/approvals', 'get'], ['/v1/approvals/{id}', 'get'], ['/v1/approvals/{id}/approve', 'post'], ['/v1/approvals/{id}/deny', 'post'],
      ['/v1/governance', 'get'], ['/v1/quorum', 'get'], ['/v1/quorum/{op}', 'put'], ['/v1/quorum/{op}', 'delete'], ['/v1/approvers', 'get'], ['/v1/approvers/{principal}/keys/{keyId}', 'put']] as const) {
      assert.deepEqual(doc.paths[path]?.[method]?.tags, ['approvals'], `${method} ${path}`);
    }
  });

  void test('a quorum of 0, or of more approvers than the role has, is refused when written (KW_QUORUM_INVALID) and changes nothing', async () => {
    const before = await call(s, 'GET', '/v1/governance', { token: m.alice!.token });
    expectError(await call(s, 'PUT', '/v1/quorum/keys.destroy', { token: m.alice!.token, body: { role: 'key-admins', threshold: 0 } }), 400, 'KW_QUORUM_INVALID', 'zero');
    expectError(await call(s, 'PUT', '/v1/quorum/keys.destroy', { token: m.alice!.token, body: { role: 'key-admins', threshold: 5 } }), 400, 'KW_QUORUM_INVALID', 'more than 4 members');
    expectError(await call(s, 'PUT', '/v1/quorum/keys.destroy', { token: m.alice!.token, body: { role: 'nobody', threshold: 1 } }), 400, 'KW_QUORUM_INVALID', 'empty role');
    const after = await call(s, 'GET', '/v1/governance', { token: m.alice!.token });
    assert.equal(after.body.hash, before.body.hash, 'no new snapshot');
    for (const op of ['keys.destroy', 'policies.put', 'principals.update', 'approvers.put', 'quorum.put']) {
      const r = await call(s, 'PUT', `/v1/quorum/${op}`, { token: m.alice!.token, body: { role: 'key-admins', threshold: 2 } });
      assert.equal(r.status, 200, `${op}: ${JSON.stringify(r.body)}`);
    }
    const g = await call(s, 'GET', '/v1/governance', { token: m.alice!.token });
    assert.deepEqual(g.body.snapshot.state.quorum['keys.destroy'], { role: 'key-admins', threshold: 2 });
    // Shrinking the role below a rule is refused too (a role change under quorum needs approvals first).
    expectError(await call(s, 'PUT', '/v1/principals/dave/roles', { token: m.alice!.token, body: { roles: [] } }), 403, 'KW_QUORUM_REQUIRED', 'role change now needs a quorum');
  });

  void test('destroy waits for 2 of key-admins: self, double, non-member, forged and replayed approvals do not count; it executes once', async () => {
    const path = '/v1/keys/app/k/versions/1/destroy';
    expectError(await call(s, 'POST', path, { token: m.alice!.token }), 403, 'KW_QUORUM_REQUIRED', 'no approval');
    assert.equal((await s.store.getKeyVersion('app', 'k', 1))!.state, 'scheduled_for_deletion');
    const req = await call(s, 'POST', '/v1/approvals', { token: m.alice!.token, body: { method: 'POST', path } });
    assert.equal(req.status, 201, JSON.stringify(req.body));
    const id = req.body.id as string;
    assert.equal(req.body.state, 'pending');
    assert.deepEqual(req.body.rules, [{ op: 'keys.destroy', role: 'key-admins', threshold: 2 }]);
    assert.equal(Buffer.from(req.body.sign.approve, 'base64url').toString(), `keyward/v1 approval\napprove\n${id}`);
    const other = await call(s, 'POST', '/v1/approvals', { token: m.alice!.token, body: { method: 'POST', path: '/v1/keys/app/k/versions/2/destroy' } });

    expectError(await call(s, 'POST', `/v1/approvals/${id}/approve`, { token: m.alice!.token, body: m.alice!.sign(id) }), 403, 'KW_APPROVAL_SELF', 'self');
    expectError(await call(s, 'POST', `/v1/approvals/${id}/approve`, { token: eve, body: { kind: 'ed25519', key_id: 'eve-k1', signature: 'A'.repeat(86) } }), 403, 'KW_APPROVAL_NOT_MEMBER', 'eve');
    expectError(await call(s, 'POST', `/v1/approvals/${id}/approve`, { token: m.bob!.token, body: m.bob!.sign(other.body.id) }), 400, 'KW_APPROVAL_INVALID', 'an approval of another request');
    expectError(await call(s, 'POST', `/v1/approvals/${id}/approve`, { token: m.bob!.token, body: m.carol!.sign(id) }), 400, 'KW_APPROVAL_INVALID', "carol's signature sent as bob");
    expectError(await call(s, 'POST', `/v1/approvals/${id}/approve`, { token: m.bob!.token, body: { ...m.bob!.sign(id, 'deny') } }), 400, 'KW_APPROVAL_INVALID', 'a denial signature as an approval');
    assert.equal((await call(s, 'POST', `/v1/approvals/${id}/approve`, { token: m.bob!.token, body: m.bob!.sign(id) })).status, 200);
    expectError(await call(s, 'POST', `/v1/approvals/${id}/approve`, { token: m.bob!.token, body: m.bob!.sign(id) }), 409, 'KW_APPROVAL_DUPLICATE', 'bob twice');
    const withApproval = { 'keyward-approval': id };
    expectError(await call(s, 'POST', path, { token: m.alice!.token, headers: withApproval }), 409, 'KW_QUORUM_PENDING', 'one of two');
    // A row slipped into the approvals table (no valid signature) is not counted: approvals are verified, not flags.
    await s.store.addApproval({ requestId: id, approver: 'dave', decision: 'approve', approval: { approver: 'dave', decision: 'approve', kind: 'ed25519', keyId: 'dave-k1', signature: b64u(randomBytes(64)) }, created: new Date() });
    expectError(await call(s, 'POST', path, { token: m.alice!.token, headers: withApproval }), 409, 'KW_QUORUM_PENDING', 'forged row');
    const view = await call(s, 'GET', `/v1/approvals/${id}`, { token: m.carol!.token });
    assert.deepEqual(view.body.tally, [{ op: 'keys.destroy', approved_by: ['bob'], denied_by: [], satisfied: false }]);
    assert.equal((await call(s, 'POST', `/v1/approvals/${id}/approve`, { token: m.carol!.token, body: m.carol!.sign(id) })).status, 200);
    // Another principal cannot execute alice's approved request; another request cannot use it.
    expectError(await call(s, 'POST', path, { token: m.bob!.token, headers: withApproval }), 403, 'KW_QUORUM_REQUIRED', 'bob executes');
    expectError(await call(s, 'POST', '/v1/keys/app/k/versions/2/destroy', { token: m.alice!.token, headers: withApproval }), 403, 'KW_STEP_UP_MISMATCH', 'other version');
    assert.equal((await s.store.getKeyVersion('app', 'k', 1))!.state, 'scheduled_for_deletion');
    const ok = await call(s, 'POST', path, { token: m.alice!.token, headers: withApproval });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.state, 'destroyed');
    expectError(await call(s, 'POST', path, { token: m.alice!.token, headers: withApproval }), 409, 'KW_MFA_REPLAY', 'executed twice');
    assert.equal((await s.store.getApprovalRequest(id))!.state, 'executed');

    // Offline: the destroy event carries the approvals; each signature verifies over the request hash with keys from the signed snapshot.
    const events = (await s.store.readAuditEvents({ start: 0, end: await s.store.auditSize() })).map((r) => parseEvent(r.event));
    const destroy = events.find((e) => e.op === 'keys.destroy' && e.outcome === 'allowed')!;
    assert.equal(destroy.request, Buffer.from(id, 'base64url').toString('hex'));
    const approvals = (destroy.details.approval as { approvals: { approver: string; keyId: string; signature: string }[] }).approvals;
    assert.deepEqual(approvals.map((a) => a.approver).sort(), ['bob', 'carol']);
    const g = await call(s, 'GET', '/v1/governance', { token: m.alice!.token });
    for (const a of approvals) {
      const pk = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: g.body.snapshot.state.approvers[a.approver].ed25519[a.keyId] }, format: 'jwk' });
      assert.ok(verify(null, approvalMessage(Buffer.from(destroy.request, 'hex'), 'approve'), pk, Buffer.from(a.signature, 'base64url')));
    }
    for (const op of ['approvals.request', 'approvals.approve']) assert.ok(events.some((e) => e.op === op && e.outcome === 'allowed'), op);
    assert.ok(events.some((e) => e.op === 'approvals.approve' && e.code === 'KW_APPROVAL_SELF'), 'refused approvals are audited');
  });

  void test('a refusal is recorded and ends the request; an expired request cannot execute', async () => {
    const path = '/v1/keys/app/k/versions/2/destroy';
    const pending = await call(s, 'GET', '/v1/approvals?state=pending', { token: m.dave!.token });
    const id = (pending.body.approvals as { id: string; request: { path: string } }[]).find((a) => a.request.path === path)!.id;
    assert.equal((await call(s, 'POST', `/v1/approvals/${id}/approve`, { token: m.bob!.token, body: m.bob!.sign(id) })).status, 200);
    const d = await call(s, 'POST', `/v1/approvals/${id}/deny`, { token: m.dave!.token, body: m.dave!.sign(id, 'deny') });
    assert.equal(d.status, 200, JSON.stringify(d.body));
    assert.equal(d.body.state, 'denied');
    expectError(await call(s, 'POST', `/v1/approvals/${id}/approve`, { token: m.carol!.token, body: m.carol!.sign(id) }), 409, 'KW_APPROVAL_CLOSED', 'after the refusal');
    expectError(await call(s, 'POST', path, { token: m.alice!.token, headers: { 'keyward-approval': id } }), 409, 'KW_APPROVAL_DENIED', 'denied');
    assert.equal((await s.store.getKeyVersion('app', 'k', 2))!.state, 'scheduled_for_deletion');
    const denyEvent = (await s.store.readAuditEvents({ start: 0, end: await s.store.auditSize() })).map((r) => parseEvent(r.event)).find((e) => e.op === 'approvals.deny')!;
    assert.deepEqual([denyEvent.details.approval_request, (denyEvent.details.approval as { decision: string }).decision], [id, 'deny']);
    assert.match((denyEvent.details.approval as { signature: string }).signature, /^[A-Za-z0-9_-]{86}$/, 'the refusal is signed and in the log');

    const path3 = '/v1/keys/app/k/versions/3/destroy';
    const r = await call(s, 'POST', '/v1/approvals', { token: m.alice!.token, body: { method: 'POST', path: path3 } });
    const id3 = r.body.id as string;
    for (const who of ['bob', 'carol']) assert.equal((await call(s, 'POST', `/v1/approvals/${id3}/approve`, { token: m[who]!.token, body: m[who]!.sign(id3) })).status, 200);
    offset += 601_000;
    try {
      expectError(await call(s, 'POST', path3, { token: m.alice!.token, headers: { 'keyward-approval': id3 } }), 410, 'KW_STEP_UP_EXPIRED', 'expired');
    } finally {
      offset -= 601_000;
    }
    assert.equal((await s.store.getApprovalRequest(id3))!.state, 'expired');
    expectError(await call(s, 'POST', path3, { token: m.alice!.token, headers: { 'keyward-approval': id3 } }), 410, 'KW_STEP_UP_EXPIRED', 'still expired');
    assert.equal((await s.store.getKeyVersion('app', 'k', 3))!.state, 'scheduled_for_deletion');
    const events = (await s.store.readAuditEvents({ start: 0, end: await s.store.auditSize() })).map((e) => parseEvent(e.event));
    assert.ok(events.some((e) => e.op === 'approvals.expire' && e.details.approval_request === id3));
  });

  void test('a policy change under quorum takes effect only as a snapshot the keyholder signs after checking the approvals', async () => {
    const path = '/v1/policies/app/readers';
    const body = { grants: [{ principals: ['svc'], operations: ['datakey'], keys: ['app/k'] }] };
    expectError(await call(s, 'PUT', path, { token: m.alice!.token, body }), 403, 'KW_QUORUM_REQUIRED', 'no approval');
    const r = await call(s, 'POST', '/v1/approvals', { token: m.alice!.token, body: { method: 'PUT', path, body } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const id = r.body.id as string;
    for (const who of ['bob', 'dave']) assert.equal((await call(s, 'POST', `/v1/approvals/${id}/approve`, { token: m[who]!.token, body: m[who]!.sign(id) })).status, 200);
    const before = (await call(s, 'GET', '/v1/governance', { token: m.alice!.token })).body;
    const ok = await call(s, 'PUT', path, { token: m.alice!.token, body, headers: { 'keyward-approval': id } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const g = (await call(s, 'GET', '/v1/governance', { token: m.alice!.token })).body;
    assert.equal(g.seq, before.seq + 1);
    assert.equal(g.snapshot.prev, before.hash);
    assert.equal(g.authority, 'quorum');
    assert.deepEqual(g.snapshot.state.policies['app/readers'].document, body);
    assert.deepEqual(g.snapshot.change.approvals.map((a: { approver: string }) => a.approver).sort(), ['bob', 'dave']);
    // The keyholder's signature over the snapshot verifies with the audit log's verifier key.
    const vk = parseVerifierKey(verifierKey);
    const pk = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(vk.publicKey) }, format: 'jwk' });
    assert.ok(verify(null, snapshotSignatureMessage(g.hash), pk, Buffer.from(g.signature, 'hex')));
    // The database copy matches.
    assert.equal((await s.store.latestGovernanceSnapshot())!.hash, g.hash);
  });

  void test('offline: every approval, refusal, execution under quorum and governance snapshot in the log verifies; forged ones do not', async () => {
    const all = (await s.store.readAuditEvents({ start: 0, end: await s.store.auditSize() })).map((r) => parseEvent(r.event));
    assert.ok(all.some((e) => e.op === 'governance.genesis') && all.filter((e) => e.op === 'governance.adopt').length >= 8);
    assert.deepEqual(await verifyApprovals(all, { verifierKey }), []);
    const replace = (i: number, details: Record<string, unknown>) => all.map((e, k) => (k === i ? { ...e, details: { ...e.details, ...details } as typeof e.details } : e));
    // An approval whose signature is not the approver's.
    const i = all.findIndex((e) => e.op === 'approvals.approve' && e.outcome === 'allowed');
    const forgedApproval = replace(i, { approval: { ...(all[i]!.details.approval as object), signature: b64u(randomBytes(64)) } });
    assert.deepEqual((await verifyApprovals(forgedApproval, { verifierKey })).map((p) => [p.code, p.index]), [['AUDIT_APPROVAL_INVALID', all[i]!.index]]);
    // A destroy that claims a quorum with one approval only.
    const d = all.findIndex((e) => e.op === 'keys.destroy' && e.outcome === 'allowed' && e.details.approval !== undefined);
    const one = all[d]!.details.approval as { approvals: unknown[] };
    const forgedExec = replace(d, { approval: { ...one, approvals: one.approvals.slice(0, 1) } });
    assert.deepEqual((await verifyApprovals(forgedExec, { verifierKey })).map((p) => [p.code, p.index]), [['AUDIT_APPROVAL_INVALID', all[d]!.index]]);
    // A snapshot whose change was altered (another policy document) no longer hashes to what the keyholder signed.
    const j = all.findIndex((e) => e.op === 'governance.adopt' && e.details.authority === 'quorum');
    const ch = all[j]!.details.change as { request: { body: unknown } };
    const forgedSnap = replace(j, { change: { ...ch, request: { ...ch.request, body: { grants: [] } } } });
    assert.equal((await verifyApprovals(forgedSnap, { verifierKey }))[0]?.code, 'AUDIT_GOVERNANCE_INVALID');
  });
});

/** A service with a device key, a key `app/data`, and a policy (under no quorum) granting it datakey on app/data only. */
async function dataPlane(s: RunningServer): Promise<{ svc: string; device: Device; recipient: string; admin: string; shares: Parameters<typeof unsealAll>[1] }> {
  const init = await s.initialize({ shares: 2, threshold: 2 });
  await unsealAll(s, init.shares);
  const admin = await enrollAdmin(s, init.rootToken, 'admin');
  for (const k of ['data', 'secret']) assert.equal((await call(s, 'POST', `/v1/keys/app/${k}`, { token: admin, body: { type: 'aes256' } })).status, 201);
  const t = await call(s, 'POST', '/v1/tokens', { token: admin, body: { principal: 'svc', ns: 'app', roles: ['worker'] } });
  assert.equal(t.status, 201, JSON.stringify(t.body));
  const keys = newDeviceKeys();
  const sk = await call(s, 'POST', '/v1/auth/signing-keys', { token: t.body.token, body: { alg: 'ed25519', public_key: b64u(keys.publicKey) } });
  const p = await call(s, 'PUT', '/v1/policies/app/worker', { token: admin, body: { grants: [{ roles: ['worker'], operations: ['datakey'], keys: ['app/data'] }] } });
  assert.equal(p.status, 200, JSON.stringify(p.body));
  const id = await HpkeIdentity.generate('x25519');
  return { svc: t.body.token, device: { keyId: sk.body.key_id, ...keys }, recipient: (await id.recipient()).toString(), admin, shares: init.shares };
}

const TAMPERED = JSON.stringify({ grants: [{ roles: ['worker'], operations: ['datakey'], keys: ['app/*'] }] });

void describe('a policy row edited in the database without the quorum is not enforced by the keyholder', () => {
  void test('SQLite', async () => {
    const s = await newServer({ schedulerMs: 0 });
    try {
      const { svc, device, recipient } = await dataPlane(s);
      assert.equal((await signedCall(s, svc, device, '/v1/data/app/data/datakey', { recipient, context: {} })).status, 200);
      expectError(await signedCall(s, svc, device, '/v1/data/app/secret/datakey', { recipient, context: {} }), 403, 'KW_FORBIDDEN', 'before');
      // Edit the row in the database file directly: the API now reads a grant on app/*.
      const db = new Database(join(s.dataDir, 'keyward.db'));
      try {
        assert.equal(db.prepare("UPDATE policies SET document = ? WHERE id = 'worker'").run(TAMPERED).changes, 1);
      } finally {
        db.close();
      }
      await new Promise((r) => setTimeout(r, 1100)); // past the API's 1 s read cache: the API now reads the edited row
      const r = await signedCall(s, svc, device, '/v1/data/app/secret/datakey', { recipient, context: {} });
      expectError(r, 403, 'KW_POLICY_DENIED', 'the keyholder enforces its signed snapshot');
      assert.equal(r.body.sealed, undefined);
      assert.equal((await signedCall(s, svc, device, '/v1/data/app/data/datakey', { recipient, context: {} })).status, 200, 'the signed grant still works');
    } finally {
      await s.close();
    }
  });

  void test('PostgreSQL', async () => {
    const ADMIN_URL = process.env.KEYWARD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
    const DB = `kw_test_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${DB}`);
    const u = new URL(ADMIN_URL);
    u.pathname = `/${DB}`;
    const s = await newServer({ schedulerMs: 0, store: u.toString() });
    let b: RunningServer | null = null;
    try {
      const { svc, device, recipient, shares } = await dataPlane(s);
      // A second node on the same database, provisioned before any governance existed there (keyholder.json without a snapshot):
      // its keyholder takes the snapshot node A's keyholder signed from the database copy, checking the signature itself.
      const bDir = mkdtempSync(join(tmpdir(), 'kw-node-b-'));
      const state = JSON.parse(readFileSync(join(s.dataDir, 'keyholder.json'), 'utf8')) as Record<string, unknown>;
      delete state.governance;
      writeFileSync(join(bDir, 'keyholder.json'), JSON.stringify(state), { mode: 0o600 });
      b = await newServer({ schedulerMs: 0, store: u.toString(), data: bDir });
      await unsealAll(b, shares);
      assert.equal((await signedCall(s, svc, device, '/v1/data/app/data/datakey', { recipient, context: {} })).status, 200);
      const c = new pg.Client({ connectionString: u.toString() });
      await c.connect();
      try {
        const schema = (await c.query("SELECT table_schema FROM information_schema.tables WHERE table_name = 'policies' LIMIT 1")).rows[0].table_schema as string;
        assert.equal((await c.query(`UPDATE "${schema}".policies SET document = $1 WHERE id = 'worker'`, [TAMPERED])).rowCount, 1);
      } finally {
        await c.end();
      }
      await new Promise((r) => setTimeout(r, 1500));
      expectError(await signedCall(s, svc, device, '/v1/data/app/secret/datakey', { recipient, context: {} }), 403, 'KW_POLICY_DENIED', 'the keyholder enforces its signed snapshot');
      expectError(await signedCall(b, svc, device, '/v1/data/app/secret/datakey', { recipient, context: {} }), 403, 'KW_POLICY_DENIED', 'node B too');
      assert.equal((await signedCall(b, svc, device, '/v1/data/app/data/datakey', { recipient, context: {} })).status, 200, 'node B serves the signed grant');
      assert.equal((await b.keyholder.call('governance-head', {})).hash, (await s.keyholder.call('governance-head', {})).hash);
    } finally {
      await b?.close();
      await s.close();
      await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
      await admin.end();
    }
  });
});
