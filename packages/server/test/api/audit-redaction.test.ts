/**
 * Redaction of sensitive values in audit events, end to end: encryption
 * context values, client addresses and token ids become HMAC markers under
 * the namespace's audit key (`<ns>/audit-hmac`, created on first use through
 * a keys.create event, MACed by the keyholder), with the version recorded.
 */
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HpkeIdentity } from '@keyward/core';
import { REDACTED_RE } from '../../src/audit/redact.js';
import { isProtocolError } from '../../src/keyholder/protocol.js';
import { AUDIT_HMAC_KEY } from '../../src/keyholder/service.js';
import type { RunningServer } from '../../src/server.js';
import { b64u, call, enrollAdmin, newDeviceKeys, newServer, signedCall, unsealAll, type Device } from './helpers.js';

type Ev = { index: number; op: string; ns: string | null; principal: string | null; outcome: string; target: { key?: string; version?: number }; details: Record<string, unknown>; hmac_key_version: number | null };

const CANARY = 'canary-123';

void describe('audit redaction (HMAC markers under the namespace audit key)', () => {
  let s: RunningServer;
  let root: string;
  let svc: string;
  let svcTokenId: string;
  let device: Device;
  let recipient: string;

  const rows = async (from = 0) => (await s.store.readAuditEvents({ start: from, end: await s.store.auditSize() })).map((r) => r.event);
  const events = async (from = 0) => (await rows(from)).map((t) => JSON.parse(t) as Ev);
  const datakey = (context: Record<string, string>) => signedCall(s, svc, device, '/v1/data/billing/orders/datakey', { recipient, context });

  before(async () => {
    s = await newServer();
    const init = await s.initialize({ shares: 3, threshold: 2 });
    await unsealAll(s, init.shares.slice(0, 2));
    root = await enrollAdmin(s, init.rootToken);
    assert.equal((await call(s, 'POST', '/v1/keys/billing/orders', { token: root, body: { type: 'aes256' } })).status, 201);
    const t = await call(s, 'POST', '/v1/tokens', { token: root, body: { principal: 'svc-orders', ns: 'billing', roles: ['orders-app'] } });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    svc = t.body.token;
    svcTokenId = t.body.id;
    const keys = newDeviceKeys();
    const sk = await call(s, 'POST', '/v1/auth/signing-keys', { token: svc, body: { alg: 'ed25519', public_key: b64u(keys.publicKey) } });
    device = { keyId: sk.body.key_id, ...keys };
    const p = await call(s, 'PUT', '/v1/policies/billing/orders-app', {
      token: root,
      body: { grants: [
        { roles: ['orders-app'], operations: ['datakey'], keys: ['billing/orders'], context: { secret_project: '*' } },
        { roles: ['orders-app'], operations: ['mac'], keys: ['billing/*'] },
      ] },
    });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    recipient = (await (await HpkeIdentity.generate('x25519')).recipient()).toString();
  });
  after(async () => { await s.close(); });

  void test('a datakey context value never reaches the stored event bytes; its marker is stable per value and version', async () => {
    const start = await s.store.auditSize();
    const a = await datakey({ secret_project: CANARY });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    const b = await datakey({ secret_project: CANARY });
    assert.equal(b.status, 200);
    const other = await datakey({ secret_project: 'canary-456' });
    assert.equal(other.status, 200);

    for (const text of await rows()) assert.ok(!text.includes(CANARY), `the canary is in a stored event: ${text}`);
    // Nor anywhere in the database files.
    for (const f of ['keyward.db', 'keyward.db-wal']) {
      const path = join(s.dataDir, f);
      if (existsSync(path)) assert.ok(!readFileSync(path).includes(CANARY), `the canary is in ${f}`);
    }

    const evs = (await events(start)).filter((e) => e.op === 'data.datakey');
    assert.equal(evs.length, 3);
    const markers = evs.map((e) => (e.details.context as Record<string, string>).secret_project!);
    for (const [i, m] of markers.entries()) {
      const r = REDACTED_RE.exec(m);
      assert.ok(r, `not a marker: ${m}`);
      assert.equal(Number(r[1]), evs[i]!.hmac_key_version, 'the marker names the version the event records');
      assert.equal(evs[i]!.hmac_key_version, 1);
    }
    assert.equal(markers[0], markers[1], 'same value, same version → same marker');
    assert.notEqual(markers[0], markers[2], 'another value → another marker');
  });

  void test('the namespace audit key was created on first use through a keys.create event, and is not a caller key', async () => {
    const evs = await events();
    const created = evs.filter((e) => e.op === 'keys.create' && e.ns === 'billing' && e.target.key === AUDIT_HMAC_KEY);
    assert.equal(created.length, 1);
    assert.equal(created[0]!.principal, null);
    const firstRedacted = evs.find((e) => e.ns === 'billing' && e.hmac_key_version !== null)!;
    assert.ok(created[0]!.index < firstRedacted.index);
    const k = await s.store.getKey('billing', AUDIT_HMAC_KEY);
    assert.equal(k?.type, 'hmac-sha256');

    // Not listed, not creatable, no lifecycle actions through the API.
    const list = await call(s, 'GET', '/v1/keys/billing', { token: root });
    assert.deepEqual(list.body.keys.map((x: { name: string }) => x.name), ['orders']);
    assert.equal((await call(s, 'POST', `/v1/keys/other/${AUDIT_HMAC_KEY}`, { token: root, body: { type: 'hmac-sha256' } })).status, 400);
    for (const action of ['disable', 'destroy']) {
      const r = await call(s, 'POST', `/v1/keys/billing/${AUDIT_HMAC_KEY}/versions/1/${action}`, { token: root });
      assert.equal(r.status, 400, action);
      assert.equal(r.body.error.code, 'KW_INVALID_ARGUMENT');
    }
    // A caller whose policy grants mac on billing/* still cannot use it as a MAC oracle: the keyholder refuses.
    const mac = await signedCall(s, svc, device, `/v1/data/billing/${AUDIT_HMAC_KEY}/mac`, { message: b64u(new TextEncoder().encode('x')) });
    assert.equal(mac.status, 400, JSON.stringify(mac.body));
    assert.equal(mac.body.mac, undefined);
    // And the keyholder's hmac-audit refuses every other key.
    const stored = await s.store.getKeyVersion('billing', 'orders', 1);
    await assert.rejects(
      s.keyholder.call('hmac-audit', { version: { ns: 'billing', key: 'orders', version: 1, type: 'hmac-sha256', wrapped: b64u(stored!.wrapped!) }, messages: [b64u(new TextEncoder().encode('keyward/v1 audit-redact\n"x"'))] }),
      (e: unknown) => isProtocolError(e, 'KW_INVALID_ARGUMENT'),
    );
  });

  void test('client addresses and token ids are markers too', async () => {
    const evs = await events();
    const texts = await rows();
    for (const t of texts) {
      assert.ok(!t.includes('127.0.0.1'), `a client address in ${t}`);
      assert.ok(!t.includes(svcTokenId), `a token id in ${t}`);
    }
    const keysRead = evs.filter((e) => e.op === 'data.datakey');
    for (const e of keysRead) assert.match((e.details.client as { address: string }).address, REDACTED_RE);
    const tok = evs.find((e) => e.op === 'tokens.create' && e.outcome === 'allowed')!;
    assert.match(tok.details.token_id as string, REDACTED_RE, 'token ids of events outside a namespace use the sys key');
    assert.ok(await s.store.getKey('sys', AUDIT_HMAC_KEY));
    // sys.init happened while sealed: no key, so the token id was left out rather than written in the clear.
    const init = evs.find((e) => e.op === 'sys.init')!;
    assert.equal(init.details.token_id, null);
    assert.equal(init.hmac_key_version, null);
  });

  void test('rotating the audit key: later events record the new version, and markers are unlinkable across versions', async () => {
    const rot = await call(s, 'POST', `/v1/keys/billing/${AUDIT_HMAC_KEY}/rotate`, { token: root });
    assert.equal(rot.status, 200, JSON.stringify(rot.body));
    assert.equal(rot.body.latest_version, 2);
    const start = await s.store.auditSize();
    assert.equal((await datakey({ secret_project: CANARY })).status, 200);
    const ev = (await events(start)).find((e) => e.op === 'data.datakey')!;
    assert.equal(ev.hmac_key_version, 2);
    const m = (ev.details.context as Record<string, string>).secret_project!;
    assert.equal(REDACTED_RE.exec(m)![1], '2');
    const v1 = (await events()).find((e) => e.op === 'data.datakey' && e.hmac_key_version === 1)!;
    assert.notEqual(m.split(':')[2], (v1.details.context as Record<string, string>).secret_project!.split(':')[2]);
  });
});
