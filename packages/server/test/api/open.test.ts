/**
 * Open for recipient: envelopes sealed (by plain `core.seal`) to the public
 * key of a service-held x25519 or xwing key are opened through the service,
 * the data key coming back sealed to the caller — through the HTTP API, and
 * through @keyward/client over real HTTP (core re-checks the header). Typed
 * refusals: another key's envelope, a tampered header, a payload sent along,
 * a context the policy does not grant, the wrong key type.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { HpkeIdentity, HpkeRecipient, inspect, open, seal, type KemType } from '@keyward/core';
import { KeywardHttpClient, KmsKeyService, serviceKeyIdentities } from '@keyward/client';
import { releaseContext } from '../../src/keyholder/ops/caller.js';
import { requestHashOf } from '../../src/keyholder/service.js';
import type { RunningServer } from '../../src/server.js';
import { b64u, call, enrollAdmin, newDeviceKeys, newServer, signedCall, unb64u, unsealAll, type Device } from './helpers.js';

const text = (s: string) => new TextEncoder().encode(s);
const headerOf = (env: Uint8Array) => env.subarray(0, inspect(env).headerLength);

void describe('open for recipient (x25519, xwing service keys)', () => {
  let s: RunningServer;
  let root: string;
  let token: string;
  let device: Device;
  let me: HpkeIdentity;
  let recipient: string;
  const service: Record<string, HpkeRecipient> = {};

  before(async () => {
    s = await newServer();
    const init = await s.initialize({ shares: 3, threshold: 2 });
    assert.equal((await unsealAll(s, init.shares.slice(0, 2))).body.sealed, false);
    root = await enrollAdmin(s, init.rootToken);
    for (const [name, type] of [['inbox', 'x25519'], ['pq', 'xwing'], ['files', 'aes256']] as const) {
      assert.equal((await call(s, 'POST', `/v1/keys/mail/${name}`, { token: root, body: { type } })).status, 201);
      if (type !== 'aes256') service[name] = await publicRecipient(name, type, 1);
    }
    const t = await call(s, 'POST', '/v1/tokens', { token: root, body: { principal: 'reader', ns: 'mail', roles: ['reader'] } });
    token = t.body.token;
    const keys = newDeviceKeys();
    const sk = await call(s, 'POST', '/v1/auth/signing-keys', { token, body: { alg: 'ed25519', public_key: b64u(keys.publicKey) } });
    device = { keyId: sk.body.key_id, ...keys };
    const p = await call(s, 'PUT', '/v1/policies/mail/reader', {
      token: root, body: { grants: [{ roles: ['reader'], operations: ['open'], keys: ['mail/*'], context: { box: 'team' } }] },
    });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    me = await HpkeIdentity.generate('x25519');
    recipient = (await me.recipient()).toString();
  });
  after(async () => { await s.close(); });

  async function publicRecipient(name: string, type: KemType, v: number): Promise<HpkeRecipient> {
    const r = await call(s, 'GET', `/v1/keys/mail/${name}/versions/${v}/public`, { token: root });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return HpkeRecipient.fromPublicKey(type, unb64u(r.body.public_key));
  }

  /** The data key of `env` via POST …/open, opened with the caller's identity; also the envelope's key via a local co-recipient. */
  async function openVia(name: string, env: Uint8Array, context: Record<string, string>, version = 1): Promise<Uint8Array> {
    const o = await signedCall(s, token, device, `/v1/data/mail/${name}/open`, { header: b64u(headerOf(env)), recipient });
    assert.equal(o.status, 200, JSON.stringify(o.body));
    assert.deepEqual([o.body.key, o.body.version], [`mail/${name}`, version]);
    return (await open(unb64u(o.body.sealed), { identities: [me], context: releaseContext(requestHashOf(o.sig), { ns: 'mail', key: name, version }, context) })).plaintext;
  }

  for (const name of ['inbox', 'pq']) {
    void test(`${name}: the key released is the envelope's data key (it opens the envelope), and the open is audited`, async () => {
      const context = { box: 'team', id: '1' };
      const other = await HpkeIdentity.generate('x25519');
      const env = await seal(text(`hello ${name}`), { recipients: [await other.recipient(), service[name]!], context });
      const a0 = await s.store.auditSize();
      const dk = await openVia(name, env, context);
      assert.equal(dk.length, 32);
      // A core Identity that hands this key to core: core checks commitment and MAC and decrypts the payload.
      const fixed = { type: service[name]!.type, unwrap: () => Promise.resolve(dk.slice()) };
      assert.deepEqual((await open(env, { identities: [fixed], context })).plaintext, text(`hello ${name}`));
      const ev = (await s.store.readAuditEvents({ start: a0, end: a0 + 10 })).map((r) => JSON.parse(r.event) as { op: string; outcome: string; target: unknown });
      assert.deepEqual(ev.filter((e) => e.op === 'data.open').map((e) => [e.outcome, e.target]), [['allowed', { key: name, version: 1 }]]);
    });
  }

  void test('through @keyward/client over HTTP: serviceKeyIdentities open the envelope; anonymous envelopes too', async () => {
    const http = new KeywardHttpClient({ addresses: [s.url], token, device: { keyId: device.keyId, signingSeed: device.seed } });
    const kms = await KmsKeyService.create({ http, identity: me });
    try {
      const context = { box: 'team' };
      for (const anonymous of [false, true]) {
        const env = await seal(text('via the client'), { recipients: [service.inbox!], context, anonymous });
        const r = await open(env, { identities: serviceKeyIdentities(kms, 'mail/inbox', env), context });
        assert.deepEqual(r.plaintext, text('via the client'));
      }
      // Another key's envelope is "not for me": core reports no identity matched.
      const stranger = await HpkeIdentity.generate('x25519');
      const env = await seal(text('x'), { recipients: [await stranger.recipient()], context });
      await assert.rejects(async () => open(env, { identities: serviceKeyIdentities(kms, 'mail/inbox', env), context }), (e: { code?: string }) => e.code === 'KW_NO_IDENTITY_MATCHED');
    } finally {
      http.dispose();
    }
  });

  void test('after rotation the version is found from the stanza key id', async () => {
    assert.equal((await call(s, 'POST', '/v1/keys/mail/inbox/rotate', { token: root })).body.latest_version, 2);
    const v2 = await publicRecipient('inbox', 'x25519', 2);
    const context = { box: 'team' };
    const old = await seal(text('v1'), { recipients: [service.inbox!], context });
    const neu = await seal(text('v2'), { recipients: [v2], context });
    assert.equal((await openVia('inbox', old, context, 1)).length, 32);
    assert.equal((await openVia('inbox', neu, context, 2)).length, 32);
  });

  void test('refusals are typed and release nothing', async () => {
    const context = { box: 'team' };
    const env = await seal(text('secret'), { recipients: [service.inbox!], context });
    const h = headerOf(env);
    const post = (name: string, body: Record<string, unknown>) => signedCall(s, token, device, `/v1/data/mail/${name}/open`, body);
    const code = (r: { status: number; body: { error?: { code: string } } }) => [r.status, r.body.error?.code];

    // Sealed to another key of the service, or to nobody it holds.
    assert.deepEqual(code(await post('pq', { header: b64u(h), recipient, version: 1 })), [400, 'KW_NO_IDENTITY_MATCHED']);
    // A tampered header: the stanza, the context or the MAC.
    for (const at of [h.length - 40, h.length - 1]) {
      const bad = h.slice();
      bad[at]! ^= 1;
      const r = await post('inbox', { header: b64u(bad), recipient });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.ok(['KW_STANZA_UNWRAP_FAILED', 'KW_HEADER_MAC_MISMATCH', 'KW_COMMITMENT_MISMATCH'].includes(r.body.error.code), r.body.error.code);
    }
    // Header and payload: only the header is accepted.
    assert.deepEqual(code(await post('inbox', { header: b64u(env), recipient })), [400, 'KW_INVALID_ARGUMENT']);
    assert.deepEqual(code(await post('inbox', { header: b64u(text('not an envelope')), recipient })), [400, 'KW_NOT_AN_ENVELOPE']);
    // The policy grants open only for box=team.
    const elsewhere = await seal(text('x'), { recipients: [service.inbox!], context: { box: 'other' } });
    assert.deepEqual(code(await post('inbox', { header: b64u(headerOf(elsewhere)), recipient })), [403, 'KW_FORBIDDEN']);
    // Wrong key type (the policy grants mail/* for box=team).
    assert.deepEqual(code(await post('files', { header: b64u(h), recipient })), [400, 'KW_KEY_TYPE_MISMATCH']);
  });
});
