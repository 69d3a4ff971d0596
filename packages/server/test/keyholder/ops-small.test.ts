/**
 * encrypt/decrypt (≤ 4 KiB, `kw:v<N>:`), sign/verify (Ed25519, RFC 8032
 * known answer, cross-checked with node:crypto) and mac (HMAC-SHA256,
 * RFC 4231 known answers through the op, each vector its own test).
 */
import assert from 'node:assert/strict';
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { describe, test } from 'node:test';
import { generateVersion, importVersion, loadVersion, type KeyVersion } from '../../src/keyholder/keys.js';
import type { VersionRef } from '../../src/keyholder/schemas.js';
import { decrypt } from '../../src/keyholder/ops/decrypt.js';
import { encrypt, MAX_ENCRYPT_PLAINTEXT } from '../../src/keyholder/ops/encrypt.js';
import { mac, verifyMac } from '../../src/keyholder/ops/mac.js';
import { MAX_MESSAGE, sign } from '../../src/keyholder/ops/sign.js';
import { verify } from '../../src/keyholder/ops/verify.js';
import { versionOf } from '../../src/keyholder/ops/versioned.js';
import { hex, randomBytes, ref, rejectsKh, utf8 } from './helpers.js';

const mk = randomBytes(32);
async function version(r: VersionRef): Promise<KeyVersion> {
  return loadVersion(mk, r, (await generateVersion(mk, r)).wrapped);
}
async function imported(r: VersionRef, material: Uint8Array): Promise<KeyVersion> {
  return loadVersion(mk, r, (await importVersion(mk, r, material)).wrapped);
}

void describe('encrypt / decrypt', () => {
  const v3P = version(ref({ version: 3 }));
  const context = { user: '42' };

  void test('round trip at 0, 1 and 4096 bytes; the ciphertext names its version', async () => {
    const v3 = await v3P;
    for (const n of [0, 1, MAX_ENCRYPT_PLAINTEXT]) {
      const pt = randomBytes(n);
      const ct = encrypt({ version: v3, plaintext: pt, context });
      assert.match(ct, /^kw:v3:[A-Za-z0-9_-]+$/);
      assert.equal(versionOf(ct), 3);
      assert.deepEqual(decrypt({ version: v3, ciphertext: ct, context }), pt);
    }
  });

  void test('4097 bytes is KW_LIMIT_EXCEEDED', async () => {
    await rejectsKh(async () => encrypt({ version: await v3P, plaintext: randomBytes(MAX_ENCRYPT_PLAINTEXT + 1) }), 'KW_LIMIT_EXCEEDED');
  });

  void test('another context, version or key: KW_WRAPPED_KEY_MISMATCH', async () => {
    const v3 = await v3P;
    const ct = encrypt({ version: v3, plaintext: utf8('secret'), context });
    await rejectsKh(() => decrypt({ version: v3, ciphertext: ct, context: { user: '43' } }), 'KW_WRAPPED_KEY_MISMATCH');
    await rejectsKh(() => decrypt({ version: v3, ciphertext: ct }), 'KW_WRAPPED_KEY_MISMATCH');
    const v4 = await version(ref({ version: 4 }));
    await rejectsKh(() => decrypt({ version: v4, ciphertext: ct, context }), 'KW_WRAPPED_KEY_MISMATCH');
    await rejectsKh(() => decrypt({ version: v4, ciphertext: ct.replace('kw:v3:', 'kw:v4:'), context }), 'KW_WRAPPED_KEY_MISMATCH');
    const otherKey = await version(ref({ key: 'sessions', version: 3 }));
    await rejectsKh(() => decrypt({ version: otherKey, ciphertext: ct, context }), 'KW_WRAPPED_KEY_MISMATCH');
  });

  void test('every changed character of the ciphertext is refused', async () => {
    const v3 = await v3P;
    const ct = encrypt({ version: v3, plaintext: utf8('secret'), context });
    for (let i = 6; i < ct.length; i++) {
      const c = ct[i] === 'A' ? 'B' : 'A';
      await assert.rejects(() => Promise.resolve().then(() => decrypt({ version: v3, ciphertext: ct.slice(0, i) + c + ct.slice(i + 1), context })),
        (e: { code?: string }) => e.code === 'KW_WRAPPED_KEY_MISMATCH' || e.code === 'KW_INVALID_ARGUMENT');
    }
  });

  const malformed = ['', 'kw:v3', 'kw:v0:AAAA', 'kw:v03:AAAA', 'vault:v3:AAAA', 'kw:v3:AA==', 'kw:v3:A+/A', 'kw:v3:AAAA ', 'kw:v99999999999:AAAA'];
  for (const ct of malformed) {
    void test(`malformed ciphertext ${JSON.stringify(ct)} is KW_INVALID_ARGUMENT`, async () => {
      await rejectsKh(async () => decrypt({ version: await v3P, ciphertext: ct, context }), 'KW_INVALID_ARGUMENT');
    });
  }

  void test('an oversize ciphertext is refused before decoding', async () => {
    await rejectsKh(async () => decrypt({ version: await v3P, ciphertext: 'kw:v3:' + 'A'.repeat(8000) }), 'KW_LIMIT_EXCEEDED');
  });
});

void describe('sign / verify', () => {
  // RFC 8032 §7.1 TEST 1 and TEST 2.
  const RFC8032 = [
    ['TEST 1 (empty message)', '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', '',
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b'],
    ['TEST 2 (one byte)', '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb', '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c', '72',
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00'],
  ] as const;
  for (const [name, seed, pub, msg, sig] of RFC8032) {
    void test(`RFC 8032 ${name} through sign and verify`, async () => {
      const r = ref({ type: 'ed25519', version: 5 });
      const g = await importVersion(mk, r, hex(seed));
      assert.deepEqual(g.publicKey, hex(pub));
      const v = await loadVersion(mk, r, g.wrapped, { publicKey: hex(pub) });
      const s = sign({ version: v, message: hex(msg) });
      assert.equal(s, `kw:v5:${Buffer.from(sig, 'hex').toString('base64url')}`);
      assert.equal(verify({ version: v, message: hex(msg), signature: s }), true);
    });
  }

  void test('signatures verify with node:crypto and the published public key alone', async () => {
    const r = ref({ type: 'ed25519' });
    const g = await generateVersion(mk, r);
    const v = await loadVersion(mk, r, g.wrapped);
    const message = utf8('release 1.4.0');
    const s = sign({ version: v, message });
    const pk = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(g.publicKey!).toString('base64url') }, format: 'jwk' });
    assert.ok(nodeVerify(null, message, pk, Buffer.from(s.slice('kw:v1:'.length), 'base64url')));
  });

  void test('another message, a flipped signature, another key: false', async () => {
    const v = await version(ref({ type: 'ed25519' }));
    const other = await version(ref({ type: 'ed25519', key: 'other' }));
    const message = utf8('m');
    const s = sign({ version: v, message });
    assert.equal(verify({ version: v, message: utf8('n'), signature: s }), false);
    const raw = Buffer.from(s.slice(6), 'base64url');
    raw[10]! ^= 1;
    assert.equal(verify({ version: v, message, signature: `kw:v1:${raw.toString('base64url')}` }), false);
    assert.equal(verify({ version: other, message, signature: s }), false);
  });

  void test('a signature naming another version, or malformed, is KW_INVALID_ARGUMENT', async () => {
    const v = await version(ref({ type: 'ed25519' }));
    const s = sign({ version: v, message: utf8('m') });
    await rejectsKh(() => verify({ version: v, message: utf8('m'), signature: s.replace('kw:v1:', 'kw:v2:') }), 'KW_INVALID_ARGUMENT');
    await rejectsKh(() => verify({ version: v, message: utf8('m'), signature: 'not a signature' }), 'KW_INVALID_ARGUMENT');
  });

  void test(`messages over ${MAX_MESSAGE} bytes are KW_LIMIT_EXCEEDED`, async () => {
    const v = await version(ref({ type: 'ed25519' }));
    sign({ version: v, message: new Uint8Array(MAX_MESSAGE) });
    await rejectsKh(() => sign({ version: v, message: new Uint8Array(MAX_MESSAGE + 1) }), 'KW_LIMIT_EXCEEDED');
  });
});

void describe('mac', () => {
  // RFC 4231 §4 (HMAC-SHA-256 column). Test case 2 ("Jefe", 4 bytes) is below the 16-byte import minimum.
  const RFC4231: [string, Uint8Array, Uint8Array, string][] = [
    ['test case 1', new Uint8Array(20).fill(0x0b), utf8('Hi There'), 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'],
    ['test case 3', new Uint8Array(20).fill(0xaa), new Uint8Array(50).fill(0xdd), '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe'],
    ['test case 4', Uint8Array.from({ length: 25 }, (_, i) => i + 1), new Uint8Array(50).fill(0xcd), '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b'],
    ['test case 6 (key longer than a block)', new Uint8Array(131).fill(0xaa), utf8('Test Using Larger Than Block-Size Key - Hash Key First'), '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54'],
  ];
  for (const [name, key, data, expected] of RFC4231) {
    void test(`RFC 4231 ${name} through the mac op`, async () => {
      const v = await imported(ref({ type: 'hmac-sha256', version: 9 }), key);
      const m = mac({ version: v, message: data });
      assert.equal(m, `kw:v9:${Buffer.from(expected, 'hex').toString('base64url')}`);
      assert.equal(verifyMac({ version: v, message: data, mac: m }), true);
    });
  }

  void test('verifyMac: another message or key is false; another version or malformed is KW_INVALID_ARGUMENT', async () => {
    const v = await version(ref({ type: 'hmac-sha256' }));
    const other = await version(ref({ type: 'hmac-sha256', key: 'other' }));
    const m = mac({ version: v, message: utf8('a') });
    assert.equal(verifyMac({ version: v, message: utf8('b'), mac: m }), false);
    assert.equal(verifyMac({ version: other, message: utf8('a'), mac: m }), false);
    assert.equal(verifyMac({ version: v, message: utf8('a'), mac: 'kw:v1:AAAA' }), false);
    await rejectsKh(() => verifyMac({ version: v, message: utf8('a'), mac: m.replace('kw:v1:', 'kw:v2:') }), 'KW_INVALID_ARGUMENT');
    await rejectsKh(() => verifyMac({ version: v, message: utf8('a'), mac: 'x' }), 'KW_INVALID_ARGUMENT');
  });
});
