/**
 * The bootstrap rule (api/bootstrap.ts, docs/key-service-design.md
 * §Bootstrap): the initial admin token of init enrolls the first
 * administrators and does nothing else. Each refusal is KW_BOOTSTRAP_ONLY,
 * audited, and changes nothing. Dev mode's root token is a full admin.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseEvent, type AuditEvent } from '../../src/audit/event.js';
import type { RunningServer } from '../../src/server.js';
import { b64u, call, newDeviceKeys, newServer, snapshot, unsealAll } from './helpers.js';

async function eventsSince(s: RunningServer, from: number): Promise<AuditEvent[]> {
  const size = await s.store.auditSize();
  return (await s.store.readAuditEvents({ start: from, end: size })).map((r) => parseEvent(r.event));
}

void describe('bootstrap token', () => {
  let s: RunningServer;
  let boot: string;
  let admin: string;

  before(async () => {
    s = await newServer({ schedulerMs: 0 });
    const init = await s.initialize({ shares: 2, threshold: 2 });
    boot = init.rootToken;
    await unsealAll(s, init.shares);
  });
  after(async () => { await s.close(); });

  void test('refused everywhere but enrollment: KW_BOOTSTRAP_ONLY (403), audited, nothing changed', async () => {
    const before = await snapshot(s, 'app');
    const principalsBefore = JSON.stringify(await s.store.listPrincipals('default'));
    const from = await s.store.auditSize();
    const keys = newDeviceKeys();
    const attempts: [string, 'GET' | 'POST' | 'PUT' | 'DELETE', string, unknown?][] = [
      ['create a key', 'POST', '/v1/keys/app/k', { type: 'aes256' }],
      ['list keys', 'GET', '/v1/keys/app'],
      ['rotate', 'POST', '/v1/keys/app/k/rotate'],
      ['set a rotation period', 'POST', '/v1/keys/app/k/rotation-period', { rotation_period_seconds: 7200 }],
      ['put a policy', 'PUT', '/v1/policies/app/p', { grants: [{ principals: ['root'], operations: ['datakey'], keys: ['*'] }] }],
      ['read a policy', 'GET', '/v1/policies/app/p'],
      ['register its own signing key', 'POST', '/v1/auth/signing-keys', { alg: 'ed25519', public_key: b64u(keys.publicKey) }],
      ['list signing keys', 'GET', '/v1/auth/signing-keys'],
      ['read the audit log', 'GET', '/v1/audit/events?from=0&to=1'],
      ['read a checkpoint', 'GET', '/v1/audit/checkpoint'],
      ['seal', 'POST', '/v1/sys/seal'],
      ['set roles', 'PUT', '/v1/principals/root/roles', { roles: ['w'] }],
      ['disable a principal', 'POST', '/v1/principals/root/disable'],
      ['data plane', 'POST', '/v1/data/app/k/datakey', { recipient: 'x', context: {} }],
    ];
    for (const [what, method, url, body] of attempts) {
      const r = await call(s, method, url, { token: boot, ...(body !== undefined ? { body } : {}) });
      assert.deepEqual([r.status, r.body.error?.code], [403, 'KW_BOOTSTRAP_ONLY'], what);
    }
    // Enrollment requests outside the rule.
    for (const [what, body] of [
      ['a non-admin token', { principal: 'alice', kind: 'person' }],
      ['admin: false', { principal: 'alice', kind: 'person', admin: false }],
      ['a service', { principal: 'ci', kind: 'service', admin: true }],
      ['kind left out (a service by default)', { principal: 'alice', admin: true }],
      ['with roles', { principal: 'alice', kind: 'person', admin: true, roles: ['w'] }],
      ['a token for root itself', { principal: 'root', kind: 'person', admin: true }],
    ] as const) {
      const r = await call(s, 'POST', '/v1/tokens', { token: boot, body });
      assert.deepEqual([r.status, r.body.error?.code], [403, 'KW_BOOTSTRAP_ONLY'], what);
    }
    assert.equal(await snapshot(s, 'app'), before);
    assert.equal(JSON.stringify(await s.store.listPrincipals('default')), principalsBefore);
    assert.equal(await s.store.getNamespace('app'), null);
    const evs = await eventsSince(s, from);
    assert.equal(evs.filter((e) => e.op === 'auth.bootstrap_only' && e.outcome === 'denied' && e.code === 'KW_BOOTSTRAP_ONLY' && e.principal === 'root').length, attempts.length);
    assert.equal(evs.filter((e) => e.op === 'tokens.create' && e.outcome === 'error' && e.code === 'KW_BOOTSTRAP_ONLY').length, 6);
    // (The service's own events — the sys/audit-hmac key made on first use — have no principal.)
    assert.ok(!evs.some((e) => e.outcome === 'allowed' && e.principal !== null), 'nothing was allowed to root');
  });

  void test('enrolls administrators (people, admin tokens), lists principals, burns its own token; the administrators do the rest', async () => {
    const from = await s.store.auditSize();
    const a = await call(s, 'POST', '/v1/tokens', { token: boot, body: { principal: 'alice', kind: 'person', admin: true, ttl_seconds: 3600 } });
    assert.equal(a.status, 201, JSON.stringify(a.body));
    assert.equal(a.body.admin, true);
    admin = a.body.token;
    const b = await call(s, 'POST', '/v1/tokens', { token: boot, body: { principal: 'bob', kind: 'person', admin: true } });
    assert.equal(b.status, 201);
    assert.deepEqual((await s.store.getPrincipal('alice'))!.kind, 'person');
    const list = await call(s, 'GET', '/v1/principals', { token: boot });
    assert.equal(list.status, 200);
    assert.ok(list.body.principals.some((p: { id: string }) => p.id === 'alice'));
    assert.equal((await call(s, 'GET', '/v1/principals/alice', { token: boot })).status, 200);
    // An administrator registers its own signing key and manages keys.
    const keys = newDeviceKeys();
    assert.equal((await call(s, 'POST', '/v1/auth/signing-keys', { token: admin, body: { alg: 'ed25519', public_key: b64u(keys.publicKey) } })).status, 201);
    assert.equal((await call(s, 'POST', '/v1/keys/app/k', { token: admin, body: { type: 'aes256' } })).status, 201);
    // The bootstrap token revokes only tokens of root: not the administrators'.
    const bobToken = (await s.store.listTokens('bob'))[0]!;
    assert.equal((await call(s, 'DELETE', `/v1/tokens/${bobToken.id}`, { token: boot })).body.error.code, 'KW_BOOTSTRAP_ONLY');
    assert.equal((await s.store.getToken(bobToken.id))!.revokedAt, null);
    const evs = await eventsSince(s, from);
    assert.deepEqual(evs.filter((e) => e.op === 'tokens.create' && e.outcome === 'allowed').map((e) => (e.details as { for: string }).for), ['alice', 'bob']);
    // Burn it when done.
    const own = (await s.store.listTokens('root'))[0]!;
    assert.equal((await call(s, 'DELETE', `/v1/tokens/${own.id}`, { token: boot })).status, 200);
    assert.equal((await call(s, 'GET', '/v1/principals', { token: boot })).status, 401);
  });

  void test('an administrator cannot mint an unrestricted token for root: tokens of root stay bootstrap tokens', async () => {
    const t = await call(s, 'POST', '/v1/tokens', { token: admin, body: { principal: 'root', admin: true } });
    assert.equal(t.status, 201);
    assert.equal((await call(s, 'GET', '/v1/keys/app', { token: t.body.token })).body.error.code, 'KW_BOOTSTRAP_ONLY');
  });
});

void describe('dev mode root token', () => {
  let s: RunningServer;
  before(async () => { s = await newServer({ dev: true, schedulerMs: 0 }); });
  after(async () => { await s.close(); });

  void test('is a full administrator of dev-root (dev mode is insecure by design)', async () => {
    const root = s.rootToken!;
    assert.equal((await call(s, 'POST', '/v1/keys/dev/k', { token: root, body: { type: 'aes256' } })).status, 201);
    assert.equal((await s.store.getPrincipal('dev-root'))!.kind, 'person');
    assert.equal(await s.store.getPrincipal('root'), null);
  });
});
