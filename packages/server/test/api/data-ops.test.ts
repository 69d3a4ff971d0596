/**
 * Data-plane routes beyond datakey/unwrap: rewrap (after rotation, batch
 * limit, typed per-item errors), encrypt/decrypt (4 KiB limit, the plaintext
 * sealed to the caller), sign/verify, mac. Real keyholder, real SQLite.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { HpkeIdentity, open } from '@keyward/core';
import { releaseContext } from '../../src/keyholder/ops/caller.js';
import { requestHashOf } from '../../src/keyholder/service.js';
import type { RunningServer } from '../../src/server.js';
import { b64u, call, enrollAdmin, newDeviceKeys, newServer, signedCall, unb64u, unsealAll, type Device } from './helpers.js';

void describe('data plane: rewrap, encrypt/decrypt, sign/verify, mac', () => {
  let s: RunningServer;
  let root: string;
  let token: string;
  let device: Device;
  let alice: HpkeIdentity;
  let recipient: string;

  before(async () => {
    s = await newServer();
    const init = await s.initialize({ shares: 3, threshold: 2 });
    assert.equal((await unsealAll(s, init.shares.slice(0, 2))).body.sealed, false);
    root = await enrollAdmin(s, init.rootToken);
    for (const [name, type] of [['files', 'aes256'], ['enc', 'aes256'], ['signer', 'ed25519'], ['macs', 'hmac-sha256']] as const) {
      const c = await call(s, 'POST', `/v1/keys/app/${name}`, { token: root, body: { type } });
      assert.equal(c.status, 201, JSON.stringify(c.body));
    }
    const t = await call(s, 'POST', '/v1/tokens', { token: root, body: { principal: 'svc', ns: 'app', roles: ['worker'] } });
    token = t.body.token;
    const keys = newDeviceKeys();
    const sk = await call(s, 'POST', '/v1/auth/signing-keys', { token, body: { alg: 'ed25519', public_key: b64u(keys.publicKey) } });
    device = { keyId: sk.body.key_id, ...keys };
    const p = await call(s, 'PUT', '/v1/policies/app/worker', {
      token: root,
      body: { grants: [{ roles: ['worker'], operations: ['datakey', 'unwrap', 'rewrap', 'encrypt', 'decrypt', 'sign', 'verify', 'mac'], keys: ['app/*'] }] },
    });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    alice = await HpkeIdentity.generate('x25519');
    recipient = (await alice.recipient()).toString();
  });
  after(async () => { await s.close(); });

  const openSealed = async (sealed: string, sig: Record<string, string>, ref: { ns: string; key: string; version: number }, context: Record<string, string>) =>
    (await open(unb64u(sealed), { identities: [alice], context: releaseContext(requestHashOf(sig), ref, context) })).plaintext;

  void test('rewrap: a data key wrapped under v1 moves to v2 after rotation; unwrap of the v2 blob gives the same key', async () => {
    const ctx1 = { table: 'orders' };
    const dk = await signedCall(s, token, device, '/v1/data/app/files/datakey', { recipient, context: ctx1 });
    assert.equal(dk.status, 200, JSON.stringify(dk.body));
    assert.equal(dk.body.version, 1);
    const original = await openSealed(dk.body.sealed, dk.sig, { ns: 'app', key: 'files', version: 1 }, ctx1);
    const dk2 = await signedCall(s, token, device, '/v1/data/app/files/datakey', { recipient, context: {} });
    const second = await openSealed(dk2.body.sealed, dk2.sig, { ns: 'app', key: 'files', version: 1 }, {});

    assert.equal((await call(s, 'POST', '/v1/keys/app/files/rotate', { token: root })).body.latest_version, 2);
    const auditBefore = await s.store.auditSize();
    const rw = await signedCall(s, token, device, '/v1/data/app/files/rewrap', {
      items: [{ version: 1, wrapped: dk.body.wrapped, context: ctx1 }, { version: 1, wrapped: dk2.body.wrapped }],
    });
    assert.equal(rw.status, 200, JSON.stringify(rw.body));
    assert.equal(rw.body.items.length, 2);
    assert.deepEqual(rw.body.items.map((i: { version: number }) => i.version), [2, 2]);
    assert.notEqual(rw.body.items[0].wrapped, dk.body.wrapped);

    // One audit event per item, naming the version moved from and to.
    const events = (await s.store.readAuditEvents({ start: auditBefore, end: auditBefore + 10 })).map((r) => JSON.parse(r.event) as { op: string; outcome: string; target: { version?: number }; details: { to_version?: number } });
    const rewraps = events.filter((e) => e.op === 'data.rewrap');
    assert.equal(rewraps.length, 2);
    for (const e of rewraps) assert.deepEqual([e.outcome, e.target.version, e.details.to_version], ['allowed', 1, 2]);

    const uw = await signedCall(s, token, device, '/v1/data/app/files/unwrap', { version: 2, wrapped: rw.body.items[0].wrapped, context: ctx1, recipient });
    assert.equal(uw.status, 200, JSON.stringify(uw.body));
    assert.deepEqual(await openSealed(uw.body.sealed, uw.sig, { ns: 'app', key: 'files', version: 2 }, ctx1), original);
    const uw2 = await signedCall(s, token, device, '/v1/data/app/files/unwrap', { version: 2, wrapped: rw.body.items[1].wrapped, context: {}, recipient });
    assert.deepEqual(await openSealed(uw2.body.sealed, uw2.sig, { ns: 'app', key: 'files', version: 2 }, {}), second);
    // The v2 blob does not unwrap as v1, nor under another context.
    const wrongVersion = await signedCall(s, token, device, '/v1/data/app/files/unwrap', { version: 1, wrapped: rw.body.items[0].wrapped, context: ctx1, recipient });
    assert.equal(wrongVersion.body.error.code, 'KW_WRAPPED_KEY_MISMATCH');
  });

  void test('rewrap: batch limit (100), empty batch, and a bad item named by index with nothing returned', async () => {
    const dk = await signedCall(s, token, device, '/v1/data/app/files/datakey', { recipient, context: {} });
    const item = { version: 2, wrapped: dk.body.wrapped };
    const ok100 = await signedCall(s, token, device, '/v1/data/app/files/rewrap', { items: Array.from({ length: 100 }, () => item) });
    assert.equal(ok100.status, 200, JSON.stringify(ok100.body).slice(0, 300));
    assert.equal(ok100.body.items.length, 100);
    const tooMany = await signedCall(s, token, device, '/v1/data/app/files/rewrap', { items: Array.from({ length: 101 }, () => item) });
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.body.error.code, 'KW_INVALID_ARGUMENT');
    assert.match(tooMany.body.error.message, /100/);
    const empty = await signedCall(s, token, device, '/v1/data/app/files/rewrap', { items: [] });
    assert.equal(empty.body.error.code, 'KW_INVALID_ARGUMENT');
    // A blob presented under the wrong context: typed error naming the item.
    const bad = await signedCall(s, token, device, '/v1/data/app/files/rewrap', { items: [item, { ...item, context: { table: 'other' } }] });
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    assert.equal(bad.body.error.code, 'KW_WRAPPED_KEY_MISMATCH');
    assert.match(bad.body.error.message, /^items\[1\]/);
    // An unknown version: 404 before the keyholder is asked anything.
    const unknown = await signedCall(s, token, device, '/v1/data/app/files/rewrap', { items: [{ ...item, version: 9 }] });
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error.message, /^items\[0\]/);
    // Unsigned: refused.
    const unsigned = await call(s, 'POST', '/v1/data/app/files/rewrap', { token, body: { items: [item] } });
    assert.equal(unsigned.status, 401, JSON.stringify(unsigned.body));
  });

  void test('rewrap: the policy must grant rewrap for every item context (denied → 403, nothing done)', async () => {
    const t = await call(s, 'POST', '/v1/tokens', { token: root, body: { principal: 'narrow', ns: 'app', roles: ['narrow'] } });
    const keys = newDeviceKeys();
    const sk = await call(s, 'POST', '/v1/auth/signing-keys', { token: t.body.token, body: { alg: 'ed25519', public_key: b64u(keys.publicKey) } });
    const dev2 = { keyId: sk.body.key_id, ...keys };
    await call(s, 'PUT', '/v1/policies/app/narrow', { token: root, body: { grants: [{ roles: ['narrow'], operations: ['rewrap'], keys: ['app/files'], context: { tenant: 'acme' } }] } });
    const dk = await signedCall(s, token, device, '/v1/data/app/files/datakey', { recipient, context: { tenant: 'acme' } });
    const okOne = await signedCall(s, t.body.token, dev2, '/v1/data/app/files/rewrap', { items: [{ version: 2, wrapped: dk.body.wrapped, context: { tenant: 'acme' } }] });
    assert.equal(okOne.status, 200, JSON.stringify(okOne.body));
    const size = await s.store.auditSize();
    const denied = await signedCall(s, t.body.token, dev2, '/v1/data/app/files/rewrap', { items: [{ version: 2, wrapped: dk.body.wrapped, context: { tenant: 'acme' } }, { version: 2, wrapped: dk.body.wrapped, context: { tenant: 'evil' } }] });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error.code, 'KW_FORBIDDEN');
    const evs = (await s.store.readAuditEvents({ start: size, end: size + 10 })).map((r) => JSON.parse(r.event) as { op: string; outcome: string });
    assert.deepEqual(evs.map((e) => [e.op, e.outcome]), [['data.rewrap', 'denied']]);
  });

  void test('encrypt ≤ 4 KiB → kw:v1:…; decrypt seals the plaintext to the caller; 4097 bytes → typed error', async () => {
    const plaintext = randomBytes(4096);
    const context = { purpose: 'ssn' };
    const enc = await signedCall(s, token, device, '/v1/data/app/enc/encrypt', { plaintext: b64u(plaintext), context });
    assert.equal(enc.status, 200, JSON.stringify(enc.body));
    assert.match(enc.body.ciphertext, /^kw:v1:[A-Za-z0-9_-]+$/);
    const dec = await signedCall(s, token, device, '/v1/data/app/enc/decrypt', { ciphertext: enc.body.ciphertext, context, recipient });
    assert.equal(dec.status, 200, JSON.stringify(dec.body));
    assert.deepEqual(Object.keys(dec.body).sort(), ['key', 'sealed', 'version'], 'no plaintext in the response');
    assert.equal(dec.body.version, 1);
    assert.deepEqual(await openSealed(dec.body.sealed, dec.sig, { ns: 'app', key: 'enc', version: 1 }, context), new Uint8Array(plaintext));
    // Sealed to alice only: another identity cannot open it.
    const bob = await HpkeIdentity.generate('x25519');
    await assert.rejects(open(unb64u(dec.body.sealed), { identities: [bob], context: releaseContext(requestHashOf(dec.sig), { ns: 'app', key: 'enc', version: 1 }, context) }));
    // The wrong context does not decrypt.
    const wrong = await signedCall(s, token, device, '/v1/data/app/enc/decrypt', { ciphertext: enc.body.ciphertext, context: { purpose: 'other' }, recipient });
    assert.equal(wrong.status >= 400 && wrong.status < 500, true, JSON.stringify(wrong.body));
    assert.match(wrong.body.error.code, /^KW_/);
    // 4097 bytes: refused before the keyholder.
    const big = await signedCall(s, token, device, '/v1/data/app/enc/encrypt', { plaintext: b64u(randomBytes(4097)), context });
    assert.equal(big.status, 400);
    assert.equal(big.body.error.code, 'KW_INVALID_ARGUMENT');
    // Not a kw: ciphertext.
    const junk = await signedCall(s, token, device, '/v1/data/app/enc/decrypt', { ciphertext: 'hello', context, recipient });
    assert.equal(junk.body.error.code, 'KW_INVALID_ARGUMENT');
  });

  void test('sign / verify with an ed25519 key', async () => {
    const message = b64u(new TextEncoder().encode('pay 10 EUR to bob'));
    const sg = await signedCall(s, token, device, '/v1/data/app/signer/sign', { message });
    assert.equal(sg.status, 200, JSON.stringify(sg.body));
    assert.match(sg.body.signature, /^kw:v1:/);
    const v = await signedCall(s, token, device, '/v1/data/app/signer/verify', { message, signature: sg.body.signature });
    assert.deepEqual([v.status, v.body], [200, { valid: true }]);
    const other = b64u(new TextEncoder().encode('pay 1000 EUR to eve'));
    const bad = await signedCall(s, token, device, '/v1/data/app/signer/verify', { message: other, signature: sg.body.signature });
    assert.deepEqual([bad.status, bad.body], [200, { valid: false }]);
    // sign on an aes256 key is a typed error.
    const wrongType = await signedCall(s, token, device, '/v1/data/app/enc/sign', { message });
    assert.ok(wrongType.status >= 400 && wrongType.status < 500, JSON.stringify(wrongType.body));
  });

  void test('mac with an hmac-sha256 key: deterministic, per message', async () => {
    const message = b64u(new TextEncoder().encode('alice@example.com'));
    const m1 = await signedCall(s, token, device, '/v1/data/app/macs/mac', { message });
    assert.equal(m1.status, 200, JSON.stringify(m1.body));
    assert.match(m1.body.mac, /^kw:v1:/);
    const m2 = await signedCall(s, token, device, '/v1/data/app/macs/mac', { message });
    assert.equal(m2.body.mac, m1.body.mac);
    const m3 = await signedCall(s, token, device, '/v1/data/app/macs/mac', { message: b64u(new TextEncoder().encode('bob@example.com')) });
    assert.notEqual(m3.body.mac, m1.body.mac);
  });
});
