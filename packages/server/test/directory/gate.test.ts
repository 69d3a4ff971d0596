/**
 * Issue #6 item 5 through the API of a real server: a principal bound to a
 * directory identity signs data-plane requests only with its devices'
 * request keys and receives sealed results only for its devices' HPKE keys;
 * it cannot register other signing keys. Unbound principals keep working,
 * unless the server sets `directory.requireDevices`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Directory, generateDevice, type DeviceSecrets, type DirectoryTransport } from '@keyward/client';
import { HpkeIdentity } from '@keyward/core';
import { base64urlnopad } from '@scure/base';
import type { RunningServer } from '../../src/server.js';
import { b64u, call, enrollAdmin, newDeviceKeys, newServer, signedCall, unsealAll, type Device } from '../api/helpers.js';

const transport = (s: RunningServer): DirectoryTransport => async ({ method, path, body }) => {
  const r = await call(s, method, path, body !== undefined ? { body } : {});
  return { status: r.status, body: r.body };
};

async function recipientOf(d: DeviceSecrets): Promise<string> {
  return (await (await HpkeIdentity.parse(d.hpke.identity, d.hpke.alg)).recipient()).toString();
}

const requestDevice = (d: DeviceSecrets): Device => {
  const seed = base64urlnopad.decode(d.requestSeed);
  return { keyId: d.requestKeyId, seed, publicKey: new Uint8Array(0) };
};

async function setup(requireDevices: boolean): Promise<{ s: RunningServer; admin: string; svc: string; other: string }> {
  const s = await newServer({ schedulerMs: 0, directory: { enabled: true, requireDevices } });
  const init = await s.initialize({ shares: 2, threshold: 2 });
  await unsealAll(s, init.shares);
  const admin = await enrollAdmin(s, init.rootToken);
  assert.equal((await call(s, 'POST', '/v1/keys/app/k', { token: admin, body: { type: 'aes256' } })).status, 201);
  const svc = (await call(s, 'POST', '/v1/tokens', { token: admin, body: { principal: 'svc', ns: 'app', roles: ['w'] } })).body.token as string;
  const other = (await call(s, 'POST', '/v1/tokens', { token: admin, body: { principal: 'other', ns: 'app', roles: ['w'] } })).body.token as string;
  assert.equal((await call(s, 'PUT', '/v1/policies/app/w', { token: admin, body: { grants: [{ roles: ['w'], operations: ['datakey'], keys: ['app/*'] }] } })).status, 200);
  return { s, admin, svc, other };
}

void describe('key service accepts only directory devices of bound principals', () => {
  let s: RunningServer;
  let admin: string;
  let svc: string;
  let other: string;
  let node: DeviceSecrets;

  before(async () => {
    ({ s, admin, svc, other } = await setup(false));
    const tok = await call(s, 'POST', '/v1/directory/enroll-tokens', { token: admin, body: { name: 'service:svc', principal: 'svc' } });
    node = await generateDevice('node-1');
    const dir = await Directory.connect(transport(s));
    await dir.enroll('service:svc', tok.body.token, node);
  });
  after(async () => { await s.close(); });

  void test('the device signs, and the result is sealed to its HPKE key', async () => {
    const r = await signedCall(s, svc, requestDevice(node), '/v1/data/app/k/datakey', { recipient: await recipientOf(node) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  });

  void test('a recipient that is not a device of the identity is refused, and audited', async () => {
    const stranger = (await (await HpkeIdentity.generate('x25519')).recipient()).toString();
    const from = await s.store.auditSize();
    const r = await signedCall(s, svc, requestDevice(node), '/v1/data/app/k/datakey', { recipient: stranger });
    assert.equal(r.status, 403);
    assert.equal(r.body.error.code, 'KW_DIR_NOT_A_DEVICE');
    const ev = (await s.store.readAuditEvents({ start: from, end: await s.store.auditSize() })).map((e) => JSON.parse(e.event) as { code: string | null });
    assert.ok(ev.some((e) => e.code === 'KW_DIR_NOT_A_DEVICE'));
  });

  void test('a bound principal cannot register its own signing key', async () => {
    const r = await call(s, 'POST', '/v1/auth/signing-keys', { token: svc, body: { alg: 'ed25519', public_key: b64u(newDeviceKeys().publicKey) } });
    assert.equal(r.status, 403);
    assert.equal(r.body.error.code, 'KW_DIR_NOT_A_DEVICE');
    assert.deepEqual((await s.store.listSigningKeys('svc')).map((k) => k.keyId), [node.requestKeyId]);
  });

  void test('an unbound principal keeps working as before (requireDevices off)', async () => {
    const keys = newDeviceKeys();
    const sk = await call(s, 'POST', '/v1/auth/signing-keys', { token: other, body: { alg: 'ed25519', public_key: b64u(keys.publicKey) } });
    assert.equal(sk.status, 201);
    const r = await signedCall(s, other, { keyId: sk.body.key_id, ...keys }, '/v1/data/app/k/datakey', { recipient: (await (await HpkeIdentity.generate('x25519')).recipient()).toString() });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  });

  void test('after an administrator revokes the device, its key no longer signs', async () => {
    const del = await call(s, 'DELETE', '/v1/directory/identities/service:svc/devices/node-1', { token: admin });
    assert.equal(del.status, 200, JSON.stringify(del.body));
    const r = await signedCall(s, svc, requestDevice(node), '/v1/data/app/k/datakey', { recipient: await recipientOf(node) });
    assert.equal(r.status, 401, JSON.stringify(r.body));
  });
});

void describe('directory.requireDevices', () => {
  void test('refuses principals without a directory identity, for signing keys and signed requests', async () => {
    const { s, other } = await setup(true);
    try {
      const keys = newDeviceKeys();
      const sk = await call(s, 'POST', '/v1/auth/signing-keys', { token: other, body: { alg: 'ed25519', public_key: b64u(keys.publicKey) } });
      assert.equal(sk.status, 403);
      assert.equal(sk.body.error.code, 'KW_DIR_NOT_A_DEVICE');
      // A key registered directly in the store (before the switch was turned on) does not sign either.
      await s.store.addSigningKey({ keyId: 'legacy-1', principal: 'other', alg: 'ed25519', publicKey: keys.publicKey, created: new Date() });
      const r = await signedCall(s, other, { keyId: 'legacy-1', ...keys }, '/v1/data/app/k/datakey', { recipient: (await (await HpkeIdentity.generate('x25519')).recipient()).toString() });
      assert.equal(r.status, 403);
      assert.equal(r.body.error.code, 'KW_DIR_NOT_A_DEVICE');
    } finally {
      await s.close();
    }
  });
});
