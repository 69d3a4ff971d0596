/**
 * The PKCS#11 layer against a real token (SoftHSM2): keys generated inside
 * and never extractable (checked independently with OpenSC's pkcs11-tool),
 * RFC 5649 wrapping cross-checked with OpenSSL, Ed25519 and HMAC in the HSM,
 * typed errors for every failure the HSM issue names, a pool serving
 * concurrent operations, and recovery after the token goes away and returns.
 */
import assert from 'node:assert/strict';
import { createCipheriv, createHmac, createPublicKey, randomBytes, verify } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import pkcs11js from 'pkcs11js';
import { isHsmError, type HsmErrorCode } from '../../src/hsm/errors.js';
import { Pkcs11Token } from '../../src/hsm/token.js';
import { SOFTHSM_MODULE, softHsm, type SoftHsm } from './softhsm.js';

async function rejectsHsm(p: Promise<unknown>, code: HsmErrorCode): Promise<void> {
  await assert.rejects(p, (e) => isHsmError(e, code) || assert.fail(`expected ${code}, got ${String(e)}`));
}

let hsm: SoftHsm;
let token: Pkcs11Token;

void describe('Pkcs11Token on SoftHSM2', () => {
  before(async () => {
    hsm = softHsm();
    token = await Pkcs11Token.open({ module: SOFTHSM_MODULE, tokenLabel: hsm.label, pin: hsm.pin, sessions: 3 });
    await token.generate('aes', 'root');
    await token.generate('ed25519', 'audit');
    await token.generate('hmac', 'mac');
  });
  after(() => {
    token.close();
    hsm.cleanup();
  });

  void test('generated keys are sensitive and never extractable (pkcs11-tool agrees)', () => {
    const listing = hsm.pkcs11Tool('--list-objects');
    for (const label of ['root', 'audit', 'mac']) {
      const block = listing.split(/\n(?=\S)/).filter((b) => b.includes(`label:      ${label}`) && !/Public Key Object/.test(b));
      assert.ok(block.length > 0, `pkcs11-tool lists ${label}`);
      for (const b of block) {
        assert.match(b, /Access:.*\bsensitive\b/, `${label} is sensitive`);
        assert.match(b, /never extractable/, `${label} is never extractable`);
      }
    }
  });

  void test('RFC 5649 wrap: 32 bytes → 40, round trip, and the same bytes OpenSSL makes with the same key', async () => {
    const material = randomBytes(32);
    const blob = await token.wrapPad('root', material);
    assert.equal(blob.length, 40);
    assert.deepEqual(Buffer.from(await token.unwrapPad('root', blob)), material);
    // Cross-check the mechanism itself with a known key imported for the purpose.
    const kek = randomBytes(32);
    const t = await importAes(kek, 'known-kek');
    const viaHsm = await t.wrapPad('known-kek', material);
    const c = createCipheriv('id-aes256-wrap-pad', kek, Buffer.from('A65959A6', 'hex'));
    const viaOpenssl = Buffer.concat([c.update(material), c.final()]);
    assert.deepEqual(Buffer.from(viaHsm), viaOpenssl);
  });

  void test('a tampered or foreign blob does not unwrap (typed), and changes nothing', async () => {
    const blob = await token.wrapPad('root', randomBytes(32));
    const bad = Buffer.from(blob);
    bad[5]! ^= 1;
    await rejectsHsm(token.unwrapPad('root', bad), 'KW_HSM_INTEGRITY');
    await rejectsHsm(token.unwrapPad('root', blob.subarray(0, 39)), 'KW_HSM_INTEGRITY');
    await token.generate('aes', 'other');
    await rejectsHsm(token.unwrapPad('other', blob), 'KW_HSM_INTEGRITY');
    assert.equal((await token.unwrapPad('root', blob)).length, 32);
  });

  void test('Ed25519 in the HSM: signatures verify with node:crypto under the exported public key', async () => {
    const pk = await token.ed25519PublicKey('audit');
    const msg = new TextEncoder().encode('keyward checkpoint\n42\n');
    const sig = await token.signEd25519('audit', msg);
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(pk).toString('base64url') }, format: 'jwk' });
    assert.equal(verify(null, msg, key, sig), true);
    assert.equal(verify(null, Buffer.from('other'), key, sig), false);
    // The synchronous path (checkpoint signer) on its own session: the same deterministic signature.
    assert.deepEqual(Buffer.from(token.signEd25519Sync('audit', msg)), Buffer.from(sig));
    assert.throws(() => token.signEd25519Sync('nope', msg), (e) => isHsmError(e, 'KW_HSM_KEY_MISSING'));
  });

  void test('HMAC-SHA256 and AES-256-GCM in the HSM', async () => {
    const mac1 = await token.hmacSha256('mac', Buffer.from('a'));
    assert.equal(mac1.length, 32);
    assert.deepEqual(await token.hmacSha256('mac', Buffer.from('a')), mac1);
    assert.notDeepEqual(await token.hmacSha256('mac', Buffer.from('b')), mac1);
    const iv = randomBytes(12);
    const aad = Buffer.from('ns=billing key=orders v=1');
    const ct = await token.encryptGcm('root', iv, aad, Buffer.from('data key bytes'));
    assert.equal(ct.length, 14 + 16);
    assert.equal(Buffer.from(await token.decryptGcm('root', iv, aad, ct)).toString(), 'data key bytes');
    await rejectsHsm(token.decryptGcm('root', iv, Buffer.from('other aad'), ct), 'KW_HSM_INTEGRITY');
  });

  void test('HMAC of an imported key equals node:crypto', async () => {
    const k = randomBytes(32);
    const t = await importHmac(k, 'known-mac');
    assert.deepEqual(Buffer.from(await t.hmacSha256('known-mac', Buffer.from('x'))), createHmac('sha256', k).update('x').digest());
  });

  void test('missing keys, duplicate labels and unsupported mechanisms are typed errors', async () => {
    await rejectsHsm(token.wrapPad('nope', randomBytes(32)), 'KW_HSM_KEY_MISSING');
    await rejectsHsm(token.signEd25519('nope', Buffer.from('x')), 'KW_HSM_KEY_MISSING');
    await rejectsHsm(token.generate('aes', 'root'), 'KW_HSM_KEY_EXISTS');
    await rejectsHsm(token.signEd25519('mac', Buffer.from('x')), 'KW_HSM_KEY_MISSING');
    await rejectsHsm(token.hmacSha256('root', Buffer.from('x')), 'KW_HSM_KEY_MISSING');
    // SoftHSM2 offers RFC 5649 as 0x210A only; a token configured for 0x210B reports the mechanism.
    const kwp = await Pkcs11Token.open({ module: SOFTHSM_MODULE, tokenLabel: hsm.label, pin: hsm.pin, sessions: 1, wrapMechanism: 'kwp' });
    await rejectsHsm(kwp.wrapPad('root', randomBytes(32)), 'KW_HSM_MECHANISM_UNSUPPORTED');
    kwp.close(); // finalizes the process-wide library: the token under test reconnects on its next call
  });

  void test('the pool serves many concurrent operations', async () => {
    const inputs = Array.from({ length: 40 }, () => randomBytes(32));
    const blobs = await Promise.all(inputs.map((m) => token.wrapPad('root', m)));
    const back = await Promise.all(blobs.map((b) => token.unwrapPad('root', b)));
    back.forEach((b, i) => assert.deepEqual(Buffer.from(b), inputs[i]));
  });

  void test('the token goes away: typed unavailability; it comes back: operations recover', async () => {
    const blob = await token.wrapPad('root', randomBytes(32));
    const moved = `${hsm.tokenDir}.away`;
    renameSync(hsm.tokenDir, moved);
    try {
      forceLibraryFailure(token);
      await rejectsHsm(token.unwrapPad('root', blob), 'KW_HSM_UNAVAILABLE');
    } finally {
      renameSync(moved, hsm.tokenDir);
    }
    forceLibraryFailure(token);
    assert.equal((await token.unwrapPad('root', blob)).length, 32, 'recovers once the token is back');
    await token.ping();
  });
});

void describe('opening a token: typed errors', () => {
  void test('a missing module, a missing token and a wrong PIN', async () => {
    const h = softHsm('present');
    try {
      await rejectsHsm(Pkcs11Token.open({ module: '/nonexistent/libpkcs11.so', tokenLabel: 'present', pin: h.pin }), 'KW_HSM_MODULE_MISSING');
      await rejectsHsm(Pkcs11Token.open({ module: SOFTHSM_MODULE, tokenLabel: 'absent', pin: h.pin }), 'KW_HSM_TOKEN_MISSING');
      await rejectsHsm(Pkcs11Token.open({ module: SOFTHSM_MODULE, tokenLabel: 'present', pin: 'wrong-pin' }), 'KW_HSM_PIN_INCORRECT');
      const ok = await Pkcs11Token.open({ module: SOFTHSM_MODULE, tokenLabel: 'present', pin: h.pin });
      ok.close();
    } finally {
      h.cleanup();
    }
  });
});

/** Makes the next operation see a finalized library, as after a device reset. */
function forceLibraryFailure(t: Pkcs11Token): void {
  const lib = (t as unknown as { lib: { C_Finalize(): void } | null }).lib;
  lib?.C_Finalize();
}

/** A token handle on the same SoftHSM token with an imported (known) key, for cross-checks only. */
function importAes(value: Buffer, label: string): Promise<Pkcs11Token> {
  hsm.pkcs11Tool('--write-object', writeTemp(value), '--type', 'secrkey', '--key-type', 'AES:32', '--label', label, '--usage-wrap');
  return Promise.resolve(token);
}
async function importHmac(value: Buffer, label: string): Promise<Pkcs11Token> {
  // pkcs11-tool cannot write generic secrets: create it on a second handle to the same (process-wide) library.
  const lib = new pkcs11js.PKCS11();
  lib.load(SOFTHSM_MODULE);
  try { lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK }); } catch { /* already initialized by the token under test */ }
  const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trim() === hsm.label)!;
  const session = lib.C_OpenSession(slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION);
  lib.C_CreateObject(session, [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY }, { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
    { type: pkcs11js.CKA_TOKEN, value: true }, { type: pkcs11js.CKA_PRIVATE, value: true }, { type: pkcs11js.CKA_SIGN, value: true },
    { type: pkcs11js.CKA_LABEL, value: label }, { type: pkcs11js.CKA_VALUE, value },
  ]);
  lib.C_CloseSession(session);
  return Promise.resolve(token);
}
function writeTemp(value: Buffer): string {
  const file = `${hsm.dir}/key-${randomBytes(4).toString('hex')}.bin`;
  writeFileSync(file, value, { mode: 0o600 });
  return file;
}
