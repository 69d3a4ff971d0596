/**
 * The HTTP API end to end: real keyholder process, real SQLite, inject()
 * for routes and one real socket with fetch.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { HpkeIdentity, open } from '@keyward/core';
import { leafHash, newVerifier, openCheckpoint, rootFromLeaves, verifyInclusion, verifyConsistency } from '@keyward/tlog';
import type { ShareFile } from '../../src/keyholder/custody.js';
import { releaseContext } from '../../src/keyholder/ops/caller.js';
import { requestHashOf } from '../../src/keyholder/service.js';
import type { RunningServer } from '../../src/server.js';
import { armoredShare, b64u, call, enrollAdmin, newDeviceKeys, newServer, signedCall, snapshot, unb64u, unsealAll, type Device } from './helpers.js';

void describe('HTTP API v1', () => {
  let s: RunningServer;
  let shares: ShareFile[];
  let root: string;
  let svcToken: string;
  let svcTokenId: string;
  let device: Device;
  let alice: HpkeIdentity;
  let recipient: string;

  before(async () => {
    s = await newServer({ rateLimit: { perAddress: { ratePerSecond: 0.01, burst: 15 } } });
    let bootstrap: string;
    ({ shares, rootToken: bootstrap } = await s.initialize({ shares: 5, threshold: 3 }));
    // The init token only enrolls administrators (api/bootstrap.ts); even while sealed.
    root = await enrollAdmin(s, bootstrap);
    alice = await HpkeIdentity.generate('x25519');
    recipient = (await alice.recipient()).toString();
  });
  after(async () => { await s.close(); });

  void test('health: initialized and sealed after init', async () => {
    const r = await call(s, 'GET', '/v1/sys/health');
    assert.equal(r.status, 200);
    assert.deepEqual({ ...r.body, version: undefined }, { initialized: true, sealed: true, keyholder: 'up', version: undefined });
  });

  void test('key ops while sealed: 503 KW_SEALED, nothing stored', async () => {
    const r = await call(s, 'POST', '/v1/keys/billing/early', { token: root, body: { type: 'aes256' } });
    assert.equal(r.status, 503);
    assert.equal(r.body.error.code, 'KW_SEALED');
    assert.equal(await s.store.getKey('billing', 'early'), null);
  });

  void test('unseal: corrupted share named and not counted; k−1 stays sealed; k unseals', async () => {
    const lines = shares[1]!.text.split('\n');
    const i = lines.findIndex((l, n) => n > 0 && l.length > 20);
    const line = lines[i]!;
    const c = line[10] === 'A' ? 'B' : 'A';
    lines[i] = line.slice(0, 10) + c + line.slice(11);
    const bad = await call(s, 'POST', '/v1/sys/unseal', { body: { share: await armoredShare(s, lines.join('\n')) } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'KW_SHARE_CORRUPTED');
    const two = await unsealAll(s, shares.slice(0, 2));
    assert.deepEqual(two.body, { sealed: true, progress: { received: 2, threshold: 3 } });
    assert.equal((await call(s, 'GET', '/v1/sys/health')).body.sealed, true);
    const three = await unsealAll(s, shares.slice(2, 3));
    assert.deepEqual(three.body, { sealed: false, progress: { received: 3, threshold: 3 } });
    assert.equal((await call(s, 'GET', '/v1/sys/health')).body.sealed, false);
  });

  void test('admin: create, list, show, rotate keys; version lifecycle', async () => {
    const c = await call(s, 'POST', '/v1/keys/billing/orders', { token: root, body: { type: 'aes256' } });
    assert.equal(c.status, 201, JSON.stringify(c.body));
    assert.equal(c.body.latest_version, 1);
    assert.equal((await call(s, 'POST', '/v1/keys/billing/orders', { token: root, body: { type: 'aes256' } })).body.error.code, 'KW_KEY_EXISTS');
    assert.equal((await call(s, 'POST', '/v1/keys/billing/signer', { token: root, body: { type: 'ed25519' } })).status, 201);
    const list = await call(s, 'GET', '/v1/keys/billing', { token: root });
    assert.deepEqual(list.body.keys.map((k: { name: string }) => k.name), ['orders', 'signer']);
    const pub = await call(s, 'GET', '/v1/keys/billing/signer/versions/1/public', { token: root });
    assert.equal(pub.status, 200);
    assert.equal(unb64u(pub.body.public_key).length, 32);
    const rot = await call(s, 'POST', '/v1/keys/billing/orders/rotate', { token: root });
    assert.equal(rot.status, 200, JSON.stringify(rot.body));
    assert.equal(rot.body.latest_version, 2);
    assert.deepEqual(rot.body.versions.map((v: { state: string }) => v.state), ['enabled', 'enabled']);
    const v = (a: string, body?: unknown) => call(s, 'POST', `/v1/keys/billing/orders/versions/2/${a}`, { token: root, ...(body ? { body } : {}) });
    assert.equal((await v('disable')).body.state, 'disabled');
    assert.equal((await v('enable')).body.state, 'enabled');
    assert.equal((await v('schedule-deletion', { days: 3 })).body.error.code, 'KW_INVALID_ARGUMENT');
    assert.equal((await v('schedule-deletion', { days: 7 })).body.state, 'scheduled_for_deletion');
    assert.equal((await v('cancel-deletion')).body.state, 'disabled');
    assert.equal((await v('destroy')).body.error.code, 'KW_STORE_INVALID_TRANSITION');
    await v('schedule-deletion', { days: 7 });
    const d = await v('destroy');
    assert.equal(d.body.state, 'destroyed');
    const shown = await call(s, 'GET', '/v1/keys/billing/orders', { token: root });
    assert.equal(shown.body.versions[1].state, 'destroyed');
    assert.equal((await s.store.getKeyVersion('billing', 'orders', 2))!.wrapped, null);
    assert.equal((await call(s, 'POST', '/v1/keys/billing/orders/rotate', { token: root })).body.latest_version, 3);
  });

  void test('--hsm-resident without HSM custody: 409 KW_HSM_NOT_CONFIGURED, nothing stored', async () => {
    const r = await call(s, 'POST', '/v1/keys/billing/resident', { token: root, body: { type: 'aes256', hsm_resident: true } });
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'KW_HSM_NOT_CONFIGURED');
    assert.equal(await s.store.getKey('billing', 'resident'), null);
  });

  void test('tokens: create a service token, register a device key; revoked token → 401', async () => {
    const t = await call(s, 'POST', '/v1/tokens', { token: root, body: { principal: 'svc-orders', ns: 'billing', roles: ['orders-app'] } });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    assert.match(t.body.token, /^kw_[A-Za-z0-9_-]{43}$/);
    svcToken = t.body.token;
    svcTokenId = t.body.id;
    // the token is stored as a hash only
    assert.equal((await s.store.getToken(svcTokenId))!.tokenHash.length, 64);
    const keys = newDeviceKeys();
    const sk = await call(s, 'POST', '/v1/auth/signing-keys', { token: svcToken, body: { alg: 'ed25519', public_key: b64u(keys.publicKey) } });
    assert.equal(sk.status, 201, JSON.stringify(sk.body));
    device = { keyId: sk.body.key_id, ...keys };
    // a non-admin token cannot administer
    const no = await call(s, 'POST', '/v1/keys/billing/x', { token: svcToken, body: { type: 'aes256' } });
    assert.equal(no.status, 403);
    const other = await call(s, 'POST', '/v1/tokens', { token: root, body: { principal: 'temp' } });
    assert.equal((await call(s, 'DELETE', `/v1/tokens/${other.body.id}`, { token: root })).status, 200);
    const revoked = await call(s, 'GET', '/v1/keys/billing', { token: other.body.token });
    assert.equal(revoked.status, 401);
    assert.equal(revoked.body.error.code, 'KW_UNAUTHENTICATED');
  });

  void test('data plane: default deny (403, audited), then datakey → unwrap round trip', async () => {
    const before = await s.store.auditSize();
    const denied = await signedCall(s, svcToken, device, '/v1/data/billing/orders/datakey', { recipient, context: { table: 'orders' } });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error.code, 'KW_FORBIDDEN');
    const ev = (await s.store.readAuditEvents({ start: before, end: before + 10 })).map((r) => JSON.parse(r.event) as Record<string, unknown>);
    assert.ok(ev.some((e) => e.op === 'data.datakey' && e.outcome === 'denied' && e.code === 'KW_FORBIDDEN' && e.principal === 'svc-orders'));
    // admin rights are not data access
    const adminDevice = newDeviceKeys();
    const ak = await call(s, 'POST', '/v1/auth/signing-keys', { token: root, body: { alg: 'ed25519', public_key: b64u(adminDevice.publicKey) } });
    const adminDenied = await signedCall(s, root, { keyId: ak.body.key_id, ...adminDevice }, '/v1/data/billing/orders/datakey', { recipient, context: {} });
    assert.equal(adminDenied.status, 403);

    const p = await call(s, 'PUT', '/v1/policies/billing/orders-app', { token: root, body: { grants: [{ roles: ['orders-app'], operations: ['datakey', 'unwrap'], keys: ['billing/orders'], context: { table: '*' } }] } });
    assert.equal(p.status, 200, JSON.stringify(p.body));

    const ctxNo = await signedCall(s, svcToken, device, '/v1/data/billing/orders/datakey', { recipient, context: {} });
    assert.equal(ctxNo.status, 403, 'the context condition is required');

    const dk = await signedCall(s, svcToken, device, '/v1/data/billing/orders/datakey', { recipient, context: { table: 'orders' } });
    assert.equal(dk.status, 200, JSON.stringify(dk.body));
    assert.equal(dk.body.key, 'billing/orders');
    assert.equal(dk.body.version, 3);
    const ref = { ns: 'billing', key: 'orders', version: 3 };
    const opened = await open(unb64u(dk.body.sealed), { identities: [alice], context: releaseContext(requestHashOf(dk.sig), ref, { table: 'orders' }) });
    assert.equal(opened.plaintext.length, 32);

    const uw = await signedCall(s, svcToken, device, '/v1/data/billing/orders/unwrap', { version: 3, wrapped: dk.body.wrapped, context: { table: 'orders' }, recipient });
    assert.equal(uw.status, 200, JSON.stringify(uw.body));
    const again = await open(unb64u(uw.body.sealed), { identities: [alice], context: releaseContext(requestHashOf(uw.sig), ref, { table: 'orders' }) });
    assert.deepEqual(again.plaintext, opened.plaintext);

    // the destroyed version 2 refuses with a typed error
    const gone = await signedCall(s, svcToken, device, '/v1/data/billing/orders/unwrap', { version: 2, wrapped: dk.body.wrapped, context: { table: 'orders' }, recipient });
    assert.equal(gone.status, 410);
    assert.equal(gone.body.error.code, 'KW_KEY_VERSION_DESTROYED');
    // a tampered signature: refused by the keyholder
    const bad = await signedCall(s, svcToken, { ...device, seed: newDeviceKeys().seed }, '/v1/data/billing/orders/datakey', { recipient, context: { table: 'orders' } });
    assert.equal(bad.status, 401);
    assert.equal(bad.body.error.code, 'KW_REQUEST_UNAUTHENTICATED');
  });

  void test('bad input: typed errors and nothing changed', async () => {
    const snap = await snapshot(s, 'billing');
    const cases: [string, Awaited<ReturnType<typeof call>>, number, string][] = [
      ['malformed JSON', await call(s, 'POST', '/v1/keys/billing/k1', { token: root, raw: '{"type":' }), 400, 'KW_INVALID_ARGUMENT'],
      ['wrong type', await call(s, 'POST', '/v1/keys/billing/k1', { token: root, body: { type: 42 } }), 400, 'KW_INVALID_ARGUMENT'],
      ['unknown field', await call(s, 'POST', '/v1/keys/billing/k1', { token: root, body: { type: 'aes256', exportable: true } }), 400, 'KW_INVALID_ARGUMENT'],
      ['oversize', await call(s, 'POST', '/v1/keys/billing/k1', { token: root, raw: JSON.stringify({ type: 'aes256', pad: 'x'.repeat(70_000) }) }), 413, 'KW_BODY_TOO_LARGE'],
      ['not json', await call(s, 'POST', '/v1/keys/billing/k1', { token: root, raw: 'type=aes256', headers: { 'content-type': 'text/plain' } }), 415, 'KW_UNSUPPORTED_MEDIA_TYPE'],
      ['unknown key', await call(s, 'POST', '/v1/keys/billing/nope/rotate', { token: root }), 404, 'KW_NOT_FOUND'],
      ['unknown version', await call(s, 'POST', '/v1/keys/billing/orders/versions/9/disable', { token: root }), 404, 'KW_NOT_FOUND'],
      ['bad policy', await call(s, 'PUT', '/v1/policies/billing/p', { token: root, body: { grants: [{ operations: ['fly'], keys: ['*'] }] } }), 400, 'KW_INVALID_ARGUMENT'],
      ['no route', await call(s, 'GET', '/v1/nothing'), 404, 'KW_NOT_FOUND'],
      ['no token', await call(s, 'GET', '/v1/keys/billing'), 401, 'KW_UNAUTHENTICATED'],
    ];
    for (const [name, r, status, code] of cases) {
      assert.equal(r.status, status, `${name}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, code, name);
      assert.equal(typeof r.body.error.message, 'string');
    }
    assert.equal(await snapshot(s, 'billing'), snap);
  });

  void test('audit: checkpoint verifies with the keyholder key; inclusion and consistency proofs verify', async () => {
    const st = await s.keyholder.call('status', {});
    await new Promise((r) => setTimeout(r, 400));
    const cp = await call(s, 'GET', '/v1/audit/checkpoint', { token: root });
    assert.equal(cp.status, 200, JSON.stringify(cp.body));
    const opened = openCheckpoint(cp.body.note, [newVerifier(st.audit.verifierKey!)], { origin: st.audit.origin! });
    const size = opened.checkpoint.size;
    assert.ok(size > 10);
    const evs = await call(s, 'GET', `/v1/audit/events?from=0&to=${size}`, { token: root });
    assert.equal(evs.body.events.length, size);
    for (const index of [0, 3, size - 1]) {
      const pr = await call(s, 'GET', `/v1/audit/proof/inclusion?index=${index}&size=${size}`, { token: root });
      assert.equal(pr.status, 200, JSON.stringify(pr.body));
      const leaf = leafHash(new TextEncoder().encode(evs.body.events[index].event));
      verifyInclusion(leaf, index, size, pr.body.hashes.map(unb64u), opened.checkpoint.root);
    }
    const cons = await call(s, 'GET', `/v1/audit/proof/consistency?from=5&to=${size}`, { token: root });
    assert.equal(cons.status, 200);
    const root5 = (await call(s, 'GET', '/v1/audit/events?from=0&to=5', { token: root })).body.events.map((e: { event: string }) => leafHash(new TextEncoder().encode(e.event)));
    verifyConsistency(5, size, rootFromLeaves(root5), opened.checkpoint.root, cons.body.hashes.map(unb64u));
  });

  void test('OpenAPI lists every route; /metrics answers', async () => {
    const r = await call(s, 'GET', '/v1/openapi.json');
    assert.equal(r.status, 200);
    assert.equal(r.body.openapi, '3.1.0');
    for (const p of ['/v1/sys/health', '/v1/sys/unseal', '/v1/keys/{ns}/{name}', '/v1/keys/{ns}/{name}/versions/{v}/{action}', '/v1/data/{ns}/{name}/datakey', '/v1/data/{ns}/{name}/unwrap', '/v1/tokens', '/v1/tokens/{id}', '/v1/auth/signing-keys', '/v1/policies/{ns}/{id}', '/v1/audit/checkpoint', '/v1/audit/proof/inclusion', '/metrics']) {
      assert.ok(r.body.paths[p], `missing ${p}`);
    }
    const registered = s.fastify.printRoutes({ commonPrefix: false });
    assert.ok(registered.includes('datakey'));
    const m = await s.fastify.inject({ method: 'GET', url: '/metrics' });
    assert.equal(m.statusCode, 200);
    assert.match(m.body, /keyward_http_requests_total/);
    assert.match(m.body, /keyward_audit_events/);
  });

  void test('through a real socket with fetch', async () => {
    const h = await fetch(`${s.url}/v1/sys/health`);
    assert.equal(h.status, 200);
    assert.equal(((await h.json()) as { sealed: boolean }).sealed, false);
    const k = await fetch(`${s.url}/v1/keys/billing`, { headers: { authorization: `Bearer ${root}` } });
    assert.equal(k.status, 200);
  });

  void test('keyholder SIGKILL → 503, API stays up; restart comes back sealed; unseal recovers', async () => {
    const pid = s.keyholderPid()!;
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 50));
    const down = await call(s, 'POST', '/v1/keys/billing/orders/rotate', { token: root });
    assert.equal(down.status, 503, JSON.stringify(down.body));
    assert.ok(['KW_KEYHOLDER_UNAVAILABLE', 'KW_SEALED'].includes(down.body.error.code));
    for (let i = 0; i < 100 && s.keyholderPid() === pid; i++) await new Promise((r) => setTimeout(r, 50));
    await s.keyholderReady();
    let health = await call(s, 'GET', '/v1/sys/health');
    for (let i = 0; i < 50 && health.body.keyholder !== 'up'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      health = await call(s, 'GET', '/v1/sys/health');
    }
    assert.deepEqual([health.body.keyholder, health.body.sealed], ['up', true]);
    const sealed = await signedCall(s, svcToken, device, '/v1/data/billing/orders/datakey', { recipient, context: { table: 'orders' } });
    assert.equal(sealed.status, 503);
    await unsealAll(s, shares.slice(2, 5));
    const dk = await signedCall(s, svcToken, device, '/v1/data/billing/orders/datakey', { recipient, context: { table: 'orders' } });
    assert.equal(dk.status, 200, JSON.stringify(dk.body));
    const rot = await call(s, 'POST', '/v1/keys/billing/orders/rotate', { token: root });
    assert.equal(rot.status, 200, JSON.stringify(rot.body));
    // the audit log is still one consistent history
    const size = await s.store.auditSize();
    const st = await s.keyholder.call('status', {});
    assert.equal(st.audit.size, size);
  });

  void test('rate limit: repeated failed authentication → 429', async () => {
    let limited = 0;
    for (let i = 0; i < 30; i++) {
      const r = await call(s, 'GET', '/v1/keys/billing', { token: `kw_${'A'.repeat(43)}` });
      if (r.status === 429) { limited++; assert.equal(r.body.error.code, 'KW_RATE_LIMITED'); }
      else assert.equal(r.status, 401);
    }
    assert.ok(limited > 0);
  });
});
