/**
 * Signed policy beyond datakey/unwrap (docs/mfa.md §Signed policy): the
 * keyholder verifies the caller's signed request and decides `encrypt`,
 * `sign`, `mac` and `rewrap` on its own signed governance snapshot, so a
 * policy row edited directly in the database grants none of them; and
 * governance is anchored at init (a signed genesis of the empty state in
 * keyholder.json), so nothing the database holds before the first
 * governance change is ever trusted.
 */
import assert from 'node:assert/strict';
import { createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { parseVerifierKey } from '@keyward/tlog';
import { parseEvent } from '../../src/audit/event.js';
import { verifyApprovals } from '../../src/audit/verify-approvals.js';
import { snapshotSignatureMessage } from '../../src/mfa/governance.js';
import type { RunningServer } from '../../src/server.js';
import { b64u, call, enrollAdmin, newDeviceKeys, newServer, signedCall, unsealAll, type Device, type Res } from './helpers.js';

const expectError = (r: Res, status: number, code: string, what = ''): void => {
  assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
  assert.equal(r.body.error?.code, code, `${what}: ${JSON.stringify(r.body)}`);
};

/** Granted by the signed policy: `ok` keys; the tampered row adds `app/*`. */
const KEYS = [['data', 'aes256'], ['secret', 'aes256'], ['sig', 'ed25519'], ['sig2', 'ed25519'], ['mac', 'hmac-sha256'], ['mac2', 'hmac-sha256']] as const;
const POLICY = { grants: [
  { roles: ['worker'], operations: ['datakey', 'encrypt', 'rewrap'], keys: ['app/data'] },
  { roles: ['worker'], operations: ['sign'], keys: ['app/sig'] },
  { roles: ['worker'], operations: ['mac'], keys: ['app/mac'] },
] };
const TAMPERED = JSON.stringify({ grants: [{ roles: ['worker'], operations: ['datakey', 'encrypt', 'sign', 'mac', 'rewrap'], keys: ['app/*'] }] });

void describe('signed policy: encrypt, sign, mac, rewrap and the anchored genesis', () => {
  let s: RunningServer;
  let svc: string;
  let device: Device;
  let wrapped: string;
  let verifierKey: string;
  let rootToken: string;
  let adminToken: string;

  before(async () => {
    s = await newServer({ schedulerMs: 0 });
    const init = await s.initialize({ shares: 2, threshold: 2 });
    await unsealAll(s, init.shares);
    verifierKey = readFileSync(join(s.dataDir, 'audit-verifier-key.txt'), 'utf8').trim();
    rootToken = init.rootToken;
    const admin = await enrollAdmin(s, init.rootToken, 'admin');
    adminToken = admin;
    for (const [k, type] of KEYS) assert.equal((await call(s, 'POST', `/v1/keys/app/${k}`, { token: admin, body: { type } })).status, 201);
    // A grant slipped into the database before the first governance change: a trust-on-first-use genesis would have signed it.
    const db = new Database(join(s.dataDir, 'keyward.db'));
    try {
      db.prepare('INSERT INTO policies (id, ns, version, document, created) VALUES (?, ?, 1, ?, ?)').run('early', 'app', TAMPERED, Date.now());
    } finally {
      db.close();
    }
    const t = await call(s, 'POST', '/v1/tokens', { token: admin, body: { principal: 'svc', ns: 'app', roles: ['worker'] } });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    svc = t.body.token as string;
    const keys = newDeviceKeys();
    const sk = await call(s, 'POST', '/v1/auth/signing-keys', { token: svc, body: { alg: 'ed25519', public_key: b64u(keys.publicKey) } });
    device = { keyId: sk.body.key_id as string, ...keys };
    const p = await call(s, 'PUT', '/v1/policies/app/worker', { token: admin, body: POLICY });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    const { HpkeIdentity } = await import('@keyward/core');
    const id = await HpkeIdentity.generate('x25519');
    const dk = await signedCall(s, svc, device, '/v1/data/app/data/datakey', { recipient: (await id.recipient()).toString(), context: {} });
    assert.equal(dk.status, 200, JSON.stringify(dk.body));
    wrapped = dk.body.wrapped as string;
  });
  after(async () => { await s.close(); });

  const ops = (key: Record<string, string>) => [
    ['encrypt', `/v1/data/app/${key.aes}/encrypt`, { plaintext: b64u(new TextEncoder().encode('hello')), context: {} }],
    ['sign', `/v1/data/app/${key.sig}/sign`, { message: b64u(new TextEncoder().encode('release 1')) }],
    ['mac', `/v1/data/app/${key.mac}/mac`, { message: b64u(new TextEncoder().encode('token-1')) }],
  ] as const;

  void test('genesis is signed at init over the empty state, and a row written before the first change is not in force', async () => {
    const state = JSON.parse(readFileSync(join(s.dataDir, 'keyholder.json'), 'utf8')) as { governance?: { snapshot: string; signature: string } };
    assert.ok(state.governance, 'keyholder.json holds the genesis');
    const all = (await s.store.readAuditEvents({ start: 0, end: await s.store.auditSize() })).map((r) => parseEvent(r.event));
    const g = all.find((e) => e.op === 'governance.genesis');
    assert.ok(g, 'the genesis is in the audit log');
    const snap = g.details.snapshot as { seq: number; authority: string; state: { policies: object; roles: object; quorum: object } };
    assert.equal(snap.seq, 0);
    assert.equal(snap.authority, 'genesis');
    assert.deepEqual(snap.state.policies, {}, 'the database row written before the first change is not in the genesis');
    assert.deepEqual(snap.state.roles, {});
    const vk = parseVerifierKey(verifierKey);
    const pk = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(vk.publicKey) }, format: 'jwk' });
    assert.ok(verify(null, snapshotSignatureMessage(g.details.hash as string), pk, Buffer.from(g.details.signature as string, 'hex')));
    assert.equal(all.filter((e) => e.op === 'governance.genesis').length, 1);
    assert.deepEqual(await verifyApprovals(all, { verifierKey }), []);
    // The keyholder refuses another genesis (no trust on first use on a new deployment).
    await assert.rejects(s.keyholder.call('governance-genesis', { base: { policies: {}, roles: { svc: ['worker'] }, approvers: {}, quorum: {} }, time: new Date().toISOString() }), { code: 'KW_GOVERNANCE_ANCHORED' });
  });

  void test('signed grants work, the keyholder refuses what only the database grants', async () => {
    const granted = { aes: 'data', sig: 'sig', mac: 'mac' };
    const denied = { aes: 'secret', sig: 'sig2', mac: 'mac2' };
    for (const [op, path, body] of ops(granted)) assert.equal((await signedCall(s, svc, device, path, body)).status, 200, op);
    const rw = await signedCall(s, svc, device, '/v1/data/app/data/rewrap', { items: [{ version: 1, wrapped, context: {} }, { version: 1, wrapped, context: {} }] });
    assert.equal(rw.status, 200, `two items under one signature: ${JSON.stringify(rw.body)}`);
    assert.equal(rw.body.items.length, 2);
    // The API reads the row 'early' (written straight into the database), which grants app/*: the keyholder does not.
    const fake = b64u(new Uint8Array(60).fill(7));
    for (const [op, path, body] of ops(denied)) {
      const r = await signedCall(s, svc, device, path, body);
      expectError(r, 403, 'KW_POLICY_DENIED', op);
    }
    expectError(await signedCall(s, svc, device, '/v1/data/app/secret/rewrap', { items: [{ version: 1, wrapped: fake, context: {} }] }), 403, 'KW_POLICY_DENIED', 'rewrap');
    // The same for the signed row edited in place.
    const db = new Database(join(s.dataDir, 'keyward.db'));
    try {
      db.prepare("DELETE FROM policies WHERE id = 'early'").run();
      assert.equal(db.prepare("UPDATE policies SET document = ? WHERE id = 'worker'").run(TAMPERED).changes, 1);
    } finally {
      db.close();
    }
    await new Promise((r) => setTimeout(r, 1100)); // past the API's 1 s read cache
    for (const [op, path, body] of ops(denied)) expectError(await signedCall(s, svc, device, path, body), 403, 'KW_POLICY_DENIED', `${op} (edited row)`);
    expectError(await signedCall(s, svc, device, '/v1/data/app/secret/rewrap', { items: [{ version: 1, wrapped: fake, context: {} }] }), 403, 'KW_POLICY_DENIED', 'rewrap (edited row)');
    assert.equal((await signedCall(s, svc, device, '/v1/data/app/data/encrypt', { plaintext: b64u(new TextEncoder().encode('x')), context: {} })).status, 200, 'the signed grant still works');
  });

  void test('under a tokens.create_admin / mfa.remove quorum rule, minting an admin or removing a factor without approvals is refused and changes nothing', async () => {
    const bob = await enrollAdmin(s, rootToken, 'bob');
    for (const who of ['admin', 'bob']) assert.equal((await call(s, 'PUT', `/v1/principals/${who}/roles`, { token: adminToken, body: { roles: ['ops'] } })).status, 200);
    for (const op of ['tokens.create_admin', 'mfa.remove']) {
      const r = await call(s, 'PUT', `/v1/quorum/${op}`, { token: adminToken, body: { role: 'ops', threshold: 1 } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    const tokensBefore = (await s.store.listTokens('carol')).length;
    expectError(await call(s, 'POST', '/v1/tokens', { token: bob, body: { principal: 'carol', kind: 'person', admin: true } }), 403, 'KW_QUORUM_REQUIRED', 'admin token');
    assert.equal((await s.store.listTokens('carol')).length, tokensBefore, 'no token was minted');
    assert.equal(await s.store.getPrincipal('carol'), null, 'no principal was created');
    const f = await call(s, 'POST', '/v1/mfa/totp', { token: bob, body: { name: 'phone' } });
    assert.equal(f.status, 201, JSON.stringify(f.body));
    expectError(await call(s, 'DELETE', `/v1/mfa/factors/${f.body.id as string}`, { token: bob }), 403, 'KW_QUORUM_REQUIRED', 'factor removal');
    assert.ok(await s.store.getMfaFactor(f.body.id as string), 'the factor is still there');
    // The rules are in the keyholder's signed snapshot, and changing them needs that snapshot's quorum (governance-adopt).
    const g = await call(s, 'GET', '/v1/governance', { token: adminToken });
    assert.deepEqual(Object.keys(g.body.snapshot.state.quorum).sort(), ['mfa.remove', 'tokens.create_admin']);
  });
});
