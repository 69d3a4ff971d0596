/**
 * Bring-your-own-key import through the real HTTP API (real keyholder
 * process, real SQLite): import parameters signed by the keyholder, material
 * wrapped client-side, the imported key used for real work (aes256 data keys,
 * ed25519 signatures, x25519 open-for-recipient), typed refusals that change
 * nothing (tampered, reused, expired, wrong length, wrong origin), audit.
 */
import assert from 'node:assert/strict';
import * as nc from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { HpkeIdentity, inspect, open, seal } from '@keyward/core';
import { parseVerifierKey } from '@keyward/tlog';
import { verifyImportParams, wrapForImport, type ImportParamsFacts } from '../../src/keyholder/import.js';
import { releaseContext } from '../../src/keyholder/ops/caller.js';
import { requestHashOf } from '../../src/keyholder/service.js';
import { unwrap as unwrapBlob } from '../../src/keyholder/wrap.js';
import type { RunningServer } from '../../src/server.js';
import { b64u, call, enrollAdmin, newDeviceKeys, newServer, signedCall, snapshot, unb64u, unsealAll, type Device, type Res } from './helpers.js';

void describe('bring your own key: import through the HTTP API', () => {
  let s: RunningServer;
  let root: string;
  let token: string;
  let device: Device;
  let me: HpkeIdentity;
  let recipient: string;
  let verifierHex: string;

  before(async () => {
    s = await newServer();
    const init = await s.initialize({ shares: 3, threshold: 2 });
    assert.equal((await unsealAll(s, init.shares.slice(0, 2))).body.sealed, false);
    root = await enrollAdmin(s, init.rootToken);
    const t = await call(s, 'POST', '/v1/tokens', { token: root, body: { principal: 'svc', ns: 'byok', roles: ['worker'] } });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    token = t.body.token;
    const keys = newDeviceKeys();
    const sk = await call(s, 'POST', '/v1/auth/signing-keys', { token, body: { alg: 'ed25519', public_key: b64u(keys.publicKey) } });
    device = { keyId: sk.body.key_id, ...keys };
    const p = await call(s, 'PUT', '/v1/policies/byok/worker', {
      token: root, body: { grants: [{ roles: ['worker'], operations: ['datakey', 'unwrap', 'sign', 'verify', 'open'], keys: ['byok/*'] }] },
    });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    me = await HpkeIdentity.generate('x25519');
    recipient = (await me.recipient()).toString();
    const st = await s.keyholder.call('status', {});
    verifierHex = Buffer.from(parseVerifierKey(st.audit.verifierKey!).publicKey).toString('hex');
  });
  after(async () => { await s.close(); });

  const params = async (name: string, body: Record<string, unknown>): Promise<Res> => call(s, 'POST', `/v1/keys/byok/${name}/import-params`, { token: root, body });
  const doImport = (name: string, body: Record<string, unknown>): Promise<Res> => call(s, 'POST', `/v1/keys/byok/${name}/import`, { token: root, body });

  /** Import params checked as a client must: signature by the keyholder's checkpoint key, over these facts. */
  async function checkedParams(name: string, type: string, extra: Record<string, unknown> = {}): Promise<{ token: string; publicKey: Uint8Array }> {
    const r = await params(name, { type, ...extra });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.algorithm, 'RSA_AES_KEY_WRAP_SHA_256');
    const publicKey = unb64u(r.body.public_key);
    assert.equal(nc.createPublicKey(r.body.public_key_pem).export({ format: 'der', type: 'spki' }).toString('base64url'), r.body.public_key);
    const facts: ImportParamsFacts = { ns: 'byok', key: name, type: r.body.type, token: r.body.token, algorithm: r.body.algorithm, public_key_sha256: r.body.public_key_sha256, expires_at: r.body.expires_at };
    assert.equal(r.body.signer, verifierHex, 'signed by the audit checkpoint key');
    assert.ok(verifyImportParams({ facts, publicKey, signer: r.body.signer, signature: r.body.signature }));
    return { token: r.body.token, publicKey };
  }

  type Ev = { op: string; outcome: string; code: string | null; target: { key?: string; version?: number }; details: Record<string, unknown> };
  async function events(from: number): Promise<Ev[]> {
    return (await s.store.readAuditEvents({ start: from, end: from + 100 })).map((r) => JSON.parse(r.event) as Ev);
  }

  void test('aes256: the imported key wraps the data keys it hands out (checked with the material itself), audited, origin external', async () => {
    const material = Uint8Array.from(nc.randomBytes(32));
    const a0 = await s.store.auditSize();
    const p = await checkedParams('files', 'aes256');
    const r = await doImport('files', { type: 'aes256', token: p.token, wrapped: b64u(wrapForImport(p.publicKey, material)) });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual([r.body.type, r.body.latest_version, r.body.origin], ['aes256', 1, 'external']);
    assert.equal((await call(s, 'GET', '/v1/keys/byok/files', { token: root })).body.origin, 'external');

    const ctx = { table: 'orders' };
    const dk = await signedCall(s, token, device, '/v1/data/byok/files/datakey', { recipient, context: ctx });
    assert.equal(dk.status, 200, JSON.stringify(dk.body));
    const dataKey = (await open(unb64u(dk.body.sealed), { identities: [me], context: releaseContext(requestHashOf(dk.sig), { ns: 'byok', key: 'files', version: 1 }, ctx) })).plaintext;
    // The wrapped data key opens under the material we imported: the service really uses it.
    assert.deepEqual(unwrapBlob(material, 'datakey', { ns: 'byok', key: 'files', version: 1, context: ctx }, unb64u(dk.body.wrapped)), dataKey);
    const uw = await signedCall(s, token, device, '/v1/data/byok/files/unwrap', { version: 1, wrapped: dk.body.wrapped, context: ctx, recipient });
    assert.equal(uw.status, 200, JSON.stringify(uw.body));

    const ev = (await events(a0)).filter((e) => e.op.startsWith('keys.import'));
    assert.deepEqual(ev.map((e) => [e.op, e.outcome]), [['keys.import_params', 'allowed'], ['keys.import', 'allowed']]);
    assert.equal(ev[1]!.details.origin, 'external');
    assert.deepEqual(ev[1]!.target, { key: 'files', version: 1 });
    // The audit log never holds the material or the wrapped bytes.
    const all = JSON.stringify(await s.store.readAuditEvents({ start: 0, end: 10_000 }));
    assert.ok(!all.includes(b64u(material)) && !all.includes(Buffer.from(material).toString('hex')));
  });

  void test('a second import adds version 2 to an external key; rotate is refused on it', async () => {
    const p = await checkedParams('files', 'aes256');
    const r = await doImport('files', { token: p.token, wrapped: b64u(wrapForImport(p.publicKey, Uint8Array.from(nc.randomBytes(32)))) });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.latest_version, 2);
    const rot = await call(s, 'POST', '/v1/keys/byok/files/rotate', { token: root });
    assert.deepEqual([rot.status, rot.body.error.code], [409, 'KW_KEY_ORIGIN_MISMATCH']);
    const typ = await params('files', { type: 'ed25519' });
    assert.deepEqual([typ.status, typ.body.error.code], [400, 'KW_KEY_TYPE_MISMATCH']);
  });

  void test('ed25519: signatures by the imported seed verify under the public key derived from it', async () => {
    const seed = Uint8Array.from(nc.randomBytes(32));
    const p = await checkedParams('signer', 'ed25519', { wrapping_key_spec: 'RSA_4096' });
    const r = await doImport('signer', { type: 'ed25519', token: p.token, wrapped: b64u(wrapForImport(p.publicKey, seed)) });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const priv = nc.createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
    const pub = nc.createPublicKey(priv);
    assert.equal(r.body.versions[0].public_key, pub.export({ format: 'jwk' }).x);
    const message = Buffer.from('imported signing key');
    const sg = await signedCall(s, token, device, '/v1/data/byok/signer/sign', { message: b64u(message) });
    assert.equal(sg.status, 200, JSON.stringify(sg.body));
    const sig = unb64u(sg.body.signature.replace(/^kw:v1:/, ''));
    assert.ok(nc.verify(null, message, pub, sig));
    assert.deepEqual(Uint8Array.from(nc.sign(null, message, priv)), sig);
  });

  void test('x25519: an envelope sealed to the recipient of the imported secret opens through the service', async () => {
    const secret = Uint8Array.from(nc.randomBytes(32));
    const p = await checkedParams('inbox', 'x25519');
    const r = await doImport('inbox', { type: 'x25519', token: p.token, wrapped: b64u(wrapForImport(p.publicKey, secret)) });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const local = await HpkeIdentity.fromSecretKey('x25519', secret);
    assert.equal(r.body.versions[0].public_key, b64u(local.publicKey));
    const context = { doc: '7' };
    const env = await seal(new TextEncoder().encode('for the imported key'), { recipients: [await local.recipient()], context });
    const header = env.subarray(0, inspect(env).headerLength);
    const o = await signedCall(s, token, device, '/v1/data/byok/inbox/open', { header: b64u(header), recipient });
    assert.equal(o.status, 200, JSON.stringify(o.body));
    const dk = (await open(unb64u(o.body.sealed), { identities: [me], context: releaseContext(requestHashOf(o.sig), { ns: 'byok', key: 'inbox', version: 1 }, context) })).plaintext;
    assert.equal(dk.length, 32);
  });

  void test('tampered wrapping: KW_IMPORT_UNWRAP_FAILED, nothing stored, the failure audited; the token is then spent', async () => {
    const p = await checkedParams('tamper', 'aes256');
    const wrapped = wrapForImport(p.publicKey, Uint8Array.from(nc.randomBytes(32)));
    const bad = wrapped.slice();
    bad[bad.length - 3]! ^= 1;
    const before = await snapshot(s, 'byok');
    const a0 = await s.store.auditSize();
    const r = await doImport('tamper', { type: 'aes256', token: p.token, wrapped: b64u(bad) });
    assert.deepEqual([r.status, r.body.error.code], [400, 'KW_IMPORT_UNWRAP_FAILED']);
    assert.equal(await snapshot(s, 'byok'), before);
    assert.equal(await s.store.getMeta('key.origin:byok/tamper'), null);
    const ev = (await events(a0)).filter((e) => e.op === 'keys.import');
    assert.deepEqual(ev.map((e) => [e.outcome, e.code]), [['error', 'KW_IMPORT_UNWRAP_FAILED']]);
    const again = await doImport('tamper', { type: 'aes256', token: p.token, wrapped: b64u(wrapped) });
    assert.deepEqual([again.status, again.body.error.code], [409, 'KW_IMPORT_TOKEN_USED']);
    assert.equal(await snapshot(s, 'byok'), before);
  });

  void test('a token is single use, bound to its key and type, and expires', async () => {
    const p = await checkedParams('once', 'aes256');
    const wrapped = b64u(wrapForImport(p.publicKey, Uint8Array.from(nc.randomBytes(32))));
    const other = await doImport('other', { type: 'aes256', token: p.token, wrapped });
    assert.deepEqual([other.status, other.body.error.code], [400, 'KW_IMPORT_TOKEN_INVALID']);
    const typ = await doImport('once', { type: 'hmac-sha256', token: p.token, wrapped });
    assert.deepEqual([typ.status, typ.body.error.code], [400, 'KW_IMPORT_TOKEN_INVALID']);
    assert.equal((await doImport('once', { type: 'aes256', token: p.token, wrapped })).status, 201);
    const before = await snapshot(s, 'byok');
    const reuse = await doImport('once', { token: p.token, wrapped });
    assert.deepEqual([reuse.status, reuse.body.error.code], [409, 'KW_IMPORT_TOKEN_USED']);
    const unknown = await doImport('once', { token: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', wrapped });
    assert.deepEqual([unknown.status, unknown.body.error.code], [400, 'KW_IMPORT_TOKEN_INVALID']);

    const e = await checkedParams('late', 'aes256', { ttl_seconds: 1 });
    const ew = b64u(wrapForImport(e.publicKey, Uint8Array.from(nc.randomBytes(32))));
    await new Promise((r) => setTimeout(r, 1100));
    const late = await doImport('late', { type: 'aes256', token: e.token, wrapped: ew });
    assert.deepEqual([late.status, late.body.error.code], [410, 'KW_IMPORT_TOKEN_EXPIRED']);
    assert.equal(await snapshot(s, 'byok'), before);
  });

  void test('wrong material length for the type: KW_IMPORT_MATERIAL_INVALID, nothing stored', async () => {
    const before = await snapshot(s, 'byok');
    for (const [type, n] of [['aes256', 16], ['ed25519', 64], ['hmac-sha256', 8]] as const) {
      const p = await checkedParams(`short-${type}`, type);
      const r = await doImport(`short-${type}`, { type, token: p.token, wrapped: b64u(wrapForImport(p.publicKey, Uint8Array.from(nc.randomBytes(n)))) });
      assert.deepEqual([r.status, r.body.error.code], [400, 'KW_IMPORT_MATERIAL_INVALID'], type);
    }
    assert.equal(await snapshot(s, 'byok'), before);
  });

  void test('imports go only into keys created by import; params need a type for a new key; admin only', async () => {
    assert.equal((await call(s, 'POST', '/v1/keys/byok/born', { token: root, body: { type: 'aes256' } })).status, 201);
    const r = await params('born', { type: 'aes256' });
    assert.deepEqual([r.status, r.body.error.code], [409, 'KW_KEY_ORIGIN_MISMATCH']);
    const p = await checkedParams('x', 'aes256');
    const into = await doImport('born', { token: p.token, wrapped: b64u(wrapForImport(p.publicKey, Uint8Array.from(nc.randomBytes(32)))) });
    assert.deepEqual([into.status, into.body.error.code], [409, 'KW_KEY_ORIGIN_MISMATCH']);
    assert.equal((await call(s, 'GET', '/v1/keys/byok/born', { token: root })).body.origin, 'generated');
    const none = await params('new', {});
    assert.deepEqual([none.status, none.body.error.code], [400, 'KW_INVALID_ARGUMENT']);
    const svc = await call(s, 'POST', '/v1/keys/byok/new/import-params', { token, body: { type: 'aes256' } });
    assert.deepEqual([svc.status, svc.body.error.code], [403, 'KW_FORBIDDEN']);
    const hmac = await params('audit-hmac', { type: 'hmac-sha256' });
    assert.deepEqual([hmac.status, hmac.body.error.code], [400, 'KW_INVALID_ARGUMENT']);
  });
});
