/**
 * Principal management and request-signing-key revocation through the API
 * (real server: keyholder process, SQLite): list/show, set roles, disable
 * (revokes tokens and signing keys, terminal), list/revoke signing keys by
 * their owner or an administrator. Every change is audited; bad input is a
 * typed error that changes nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { HpkeIdentity } from '@keyward/core';
import { parseEvent, type AuditEvent } from '../../src/audit/event.js';
import type { RunningServer } from '../../src/server.js';
import { b64u, call, enrollAdmin, newDeviceKeys, newServer, signedCall, unsealAll, type Device } from './helpers.js';

async function eventsSince(s: RunningServer, from: number): Promise<AuditEvent[]> {
  const size = await s.store.auditSize();
  return (await s.store.readAuditEvents({ start: from, end: size })).map((r) => parseEvent(r.event));
}

/** Everything about principals the store holds (tokens and keys included). */
async function principalsSnapshot(s: RunningServer, ids: string[]): Promise<string> {
  const out = [];
  for (const id of ids) out.push({ p: await s.store.getPrincipal(id), t: await s.store.listTokens(id), k: (await s.store.listSigningKeys(id)).map((k) => ({ ...k, publicKey: b64u(k.publicKey) })) });
  return JSON.stringify(out);
}

void describe('principals and signing keys', () => {
  let s: RunningServer;
  let admin: string;
  let svc: { token: string; id: string };
  let other: { token: string; id: string };
  let device: Device;
  let recipient: string;

  before(async () => {
    s = await newServer({ schedulerMs: 0 });
    const init = await s.initialize({ shares: 2, threshold: 2 });
    await unsealAll(s, init.shares);
    admin = await enrollAdmin(s, init.rootToken);
    assert.equal((await call(s, 'POST', '/v1/keys/app/k', { token: admin, body: { type: 'aes256' } })).status, 201);
    const t = await call(s, 'POST', '/v1/tokens', { token: admin, body: { principal: 'svc', ns: 'app', roles: ['w'] } });
    svc = { token: t.body.token, id: t.body.id };
    const o = await call(s, 'POST', '/v1/tokens', { token: admin, body: { principal: 'other', ns: 'app' } });
    other = { token: o.body.token, id: o.body.id };
    const keys = newDeviceKeys();
    const sk = await call(s, 'POST', '/v1/auth/signing-keys', { token: svc.token, body: { alg: 'ed25519', public_key: b64u(keys.publicKey) } });
    device = { keyId: sk.body.key_id, ...keys };
    assert.equal((await call(s, 'PUT', '/v1/policies/app/w', { token: admin, body: { grants: [{ roles: ['w'], operations: ['datakey'], keys: ['app/*'] }] } })).status, 200);
    recipient = (await (await HpkeIdentity.generate('x25519')).recipient()).toString();
  });
  after(async () => { await s.close(); });

  void test('list and show: ids and dates of tokens and signing keys, never hashes; audited', async () => {
    const from = await s.store.auditSize();
    const all = await call(s, 'GET', '/v1/principals', { token: admin });
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.deepEqual(all.body.principals.map((p: { id: string }) => p.id).sort(), ['admin', 'other', 'root', 'svc']);
    const app = await call(s, 'GET', '/v1/principals?ns=app', { token: admin });
    assert.deepEqual(app.body.principals.map((p: { id: string }) => p.id), ['other', 'svc']);
    const shown = await call(s, 'GET', '/v1/principals/svc', { token: admin });
    assert.equal(shown.status, 200);
    assert.deepEqual([shown.body.kind, shown.body.roles, shown.body.disabled_at], ['service', ['w'], null]);
    assert.deepEqual(shown.body.tokens.map((t: { id: string }) => t.id), [svc.id]);
    assert.deepEqual(shown.body.signing_keys.map((k: { key_id: string }) => k.key_id), [device.keyId]);
    assert.ok(!JSON.stringify(shown.body).includes((await s.store.getToken(svc.id))!.tokenHash), 'no token hash in the answer');
    assert.equal((await call(s, 'GET', '/v1/principals/nobody', { token: admin })).body.error.code, 'KW_NOT_FOUND');
    assert.equal((await call(s, 'GET', '/v1/principals?ns=bad/ns', { token: admin })).body.error.code, 'KW_INVALID_ARGUMENT');
    // Not an administrator: refused, and the refusal is audited.
    const denied = await call(s, 'GET', '/v1/principals', { token: svc.token });
    assert.deepEqual([denied.status, denied.body.error.code], [403, 'KW_FORBIDDEN']);
    const evs = await eventsSince(s, from);
    assert.ok(evs.filter((e) => e.op === 'principals.read' && e.outcome === 'allowed').length >= 3);
    assert.ok(evs.some((e) => e.op === 'principals.read' && e.outcome === 'denied' && e.principal === 'svc'));
  });

  void test('set roles: replaces them (the policy follows), audited; bad input changes nothing', async () => {
    const before = await principalsSnapshot(s, ['svc', 'other']);
    for (const [url, body, code] of [
      ['/v1/principals/svc/roles', { roles: ['has space'] }, 'KW_INVALID_ARGUMENT'],
      ['/v1/principals/svc/roles', { roles: 'w' }, 'KW_INVALID_ARGUMENT'],
      ['/v1/principals/svc/roles', { roles: [], extra: 1 }, 'KW_INVALID_ARGUMENT'],
      ['/v1/principals/svc/roles', {}, 'KW_INVALID_ARGUMENT'],
      ['/v1/principals/nobody/roles', { roles: [] }, 'KW_NOT_FOUND'],
    ] as const) {
      const r = await call(s, 'PUT', url, { token: admin, body });
      assert.equal(r.body.error?.code, code, `${url} ${JSON.stringify(body)}`);
    }
    assert.equal((await call(s, 'PUT', '/v1/principals/other/roles', { token: svc.token, body: { roles: ['w'] } })).body.error.code, 'KW_FORBIDDEN');
    assert.equal(await principalsSnapshot(s, ['svc', 'other']), before);

    const from = await s.store.auditSize();
    const r = await call(s, 'PUT', '/v1/principals/other/roles', { token: admin, body: { roles: ['w', 'w', 'r'] } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.roles, ['w', 'r']);
    assert.deepEqual((await s.store.getPrincipal('other'))!.roles, ['w', 'r']);
    const ev = (await eventsSince(s, from)).find((e) => e.op === 'principals.update')!;
    assert.deepEqual([ev.principal, ev.outcome, (ev.details as { principal_id: string }).principal_id], ['admin', 'allowed', 'other']);
  });

  void test('signing keys: the owner lists and revokes its own; another principal cannot see or revoke them; an admin can', async () => {
    const keys2 = newDeviceKeys();
    const sk2 = await call(s, 'POST', '/v1/auth/signing-keys', { token: svc.token, body: { alg: 'ed25519', public_key: b64u(keys2.publicKey) } });
    const d2: Device = { keyId: sk2.body.key_id, ...keys2 };
    const own = await call(s, 'GET', '/v1/auth/signing-keys', { token: svc.token });
    assert.deepEqual(own.body.signing_keys.map((k: { key_id: string }) => k.key_id), [device.keyId, d2.keyId]);
    // Another principal: forbidden to list, "not found" to revoke (no oracle); nothing changes.
    assert.equal((await call(s, 'GET', '/v1/auth/signing-keys?principal=svc', { token: other.token })).body.error.code, 'KW_FORBIDDEN');
    const notYours = await call(s, 'DELETE', `/v1/auth/signing-keys/${d2.keyId}`, { token: other.token });
    assert.deepEqual([notYours.status, notYours.body.error.code], [404, 'KW_NOT_FOUND']);
    assert.equal((await s.store.getSigningKey(d2.keyId))!.revokedAt, null);
    assert.equal((await call(s, 'DELETE', '/v1/auth/signing-keys/dk_nope', { token: svc.token })).body.error.code, 'KW_NOT_FOUND');
    assert.equal((await call(s, 'DELETE', '/v1/auth/signing-keys/has%20space', { token: svc.token })).body.error.code, 'KW_INVALID_ARGUMENT');

    // The key signs until revoked; after, the data plane refuses it.
    assert.equal((await signedCall(s, svc.token, d2, '/v1/data/app/k/datakey', { recipient, context: {} })).status, 200);
    const from = await s.store.auditSize();
    const rev = await call(s, 'DELETE', `/v1/auth/signing-keys/${d2.keyId}`, { token: svc.token });
    assert.equal(rev.status, 200, JSON.stringify(rev.body));
    assert.ok(rev.body.revoked_at);
    const refused = await signedCall(s, svc.token, d2, '/v1/data/app/k/datakey', { recipient, context: {} });
    assert.deepEqual([refused.status, refused.body.error.code], [401, 'KW_UNAUTHENTICATED']);
    assert.equal((await signedCall(s, svc.token, device, '/v1/data/app/k/datakey', { recipient, context: {} })).status, 200, 'the other key still works');
    const ev = (await eventsSince(s, from)).find((e) => e.op === 'signing_keys.revoke')!;
    assert.deepEqual([ev.principal, ev.outcome], ['svc', 'allowed']);

    // An administrator lists and revokes anyone's.
    const byAdmin = await call(s, 'GET', '/v1/auth/signing-keys?principal=svc', { token: admin });
    assert.deepEqual(byAdmin.body.signing_keys.map((k: { revoked_at: string | null }) => k.revoked_at !== null), [false, true]);
    assert.equal((await call(s, 'GET', '/v1/auth/signing-keys?principal=nobody', { token: admin })).body.error.code, 'KW_NOT_FOUND');
  });

  void test('disable: revokes every token and signing key in one step, terminal, audited; typed errors change nothing', async () => {
    const keys3 = newDeviceKeys();
    const t2 = await call(s, 'POST', '/v1/tokens', { token: admin, body: { principal: 'svc' } });
    assert.equal(t2.status, 201);
    await call(s, 'POST', '/v1/auth/signing-keys', { token: svc.token, body: { alg: 'ed25519', public_key: b64u(keys3.publicKey) } });
    assert.equal((await call(s, 'POST', '/v1/principals/svc/disable', { token: other.token })).body.error.code, 'KW_FORBIDDEN');
    assert.equal((await call(s, 'POST', '/v1/principals/nobody/disable', { token: admin })).body.error.code, 'KW_NOT_FOUND');
    assert.equal((await call(s, 'POST', '/v1/principals/svc/disable', { token: admin, body: { now: true } })).body.error.code, 'KW_INVALID_ARGUMENT');
    assert.equal((await s.store.getPrincipal('svc'))!.disabledAt, null);

    const from = await s.store.auditSize();
    const d = await call(s, 'POST', '/v1/principals/svc/disable', { token: admin });
    assert.equal(d.status, 200, JSON.stringify(d.body));
    assert.deepEqual([d.body.tokens_revoked, d.body.signing_keys_revoked], [2, 2]);
    assert.ok((await s.store.getPrincipal('svc'))!.disabledAt);
    assert.ok((await s.store.listTokens('svc')).every((t) => t.revokedAt !== null));
    assert.ok((await s.store.listSigningKeys('svc')).every((k) => k.revokedAt !== null));
    // It can no longer authenticate, sign, get a token, roles or a signing key.
    assert.equal((await call(s, 'GET', '/v1/auth/signing-keys', { token: svc.token })).status, 401);
    assert.equal((await call(s, 'GET', '/v1/auth/signing-keys', { token: t2.body.token })).status, 401);
    assert.equal((await signedCall(s, svc.token, device, '/v1/data/app/k/datakey', { recipient, context: {} })).status, 401);
    const snap = await principalsSnapshot(s, ['svc']);
    assert.equal((await call(s, 'POST', '/v1/tokens', { token: admin, body: { principal: 'svc' } })).body.error.code, 'KW_PRINCIPAL_DISABLED');
    assert.equal((await call(s, 'PUT', '/v1/principals/svc/roles', { token: admin, body: { roles: [] } })).body.error.code, 'KW_PRINCIPAL_DISABLED');
    const again = await call(s, 'POST', '/v1/principals/svc/disable', { token: admin });
    assert.deepEqual([again.status, again.body.error.code], [409, 'KW_PRINCIPAL_DISABLED']);
    assert.equal(await principalsSnapshot(s, ['svc']), snap, 'refusals changed nothing');
    const evs = await eventsSince(s, from);
    const ev = evs.find((e) => e.op === 'principals.disable' && e.outcome === 'allowed')!;
    assert.deepEqual([ev.principal, (ev.details as { principal_id: string }).principal_id], ['admin', 'svc']);
    assert.ok(evs.some((e) => e.op === 'tokens.create' && e.outcome === 'error' && e.code === 'KW_PRINCIPAL_DISABLED'));
  });
});
