/**
 * Bring-your-own-key import, below the HTTP layer: RFC 5649 known answers
 * through the primitives the keyholder uses, the RSA-OAEP + AES-KWP
 * construction against an independent build with plain node:crypto, and the
 * import tokens (binding, expiry, single use, material checks).
 */
import assert from 'node:assert/strict';
import * as nc from 'node:crypto';
import { describe, test } from 'node:test';
import { aesKwpUnwrap, aesKwpWrap } from '../../src/keyholder/primitives.js';
import {
  IMPORT_ALGORITHM, ImportTokens, MAX_OUTSTANDING_IMPORTS, importParamsMessage, unwrapImport, verifyImportParams, wrapForImport,
} from '../../src/keyholder/import.js';
import { randomBytes, rejectsKh } from './helpers.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// RFC 5649 §6: both vectors use this 192-bit KEK.
const RFC5649_KEK = hex('5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8');

void describe('AES key wrap with padding: RFC 5649 §6 known answers', () => {
  void test('RFC 5649 §6 vector 1: 20-octet key', () => {
    const key = hex('c37b7e6492584340 bed1220780894115 5068f738');
    const wrapped = hex('138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a');
    assert.equal(toHex(aesKwpWrap(RFC5649_KEK, key)), toHex(wrapped));
    assert.equal(toHex(aesKwpUnwrap(RFC5649_KEK, wrapped)!), toHex(key));
  });

  void test('RFC 5649 §6 vector 2: 7-octet key', () => {
    const key = hex('466f7250617369');
    const wrapped = hex('afbeb0f07dfbf541 9200f2ccb50bb24f');
    assert.equal(toHex(aesKwpWrap(RFC5649_KEK, key)), toHex(wrapped));
    assert.equal(toHex(aesKwpUnwrap(RFC5649_KEK, wrapped)!), toHex(key));
  });

  void test('a modified, truncated or misaligned wrap does not unwrap (null, no bytes)', () => {
    const wrapped = hex('138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a');
    for (let i = 0; i < wrapped.length; i += 5) {
      const bad = wrapped.slice();
      bad[i]! ^= 0x80;
      assert.equal(aesKwpUnwrap(RFC5649_KEK, bad), null, `byte ${i}`);
    }
    assert.equal(aesKwpUnwrap(RFC5649_KEK, wrapped.subarray(0, 24)), null);
    assert.equal(aesKwpUnwrap(RFC5649_KEK, wrapped.subarray(0, 31)), null);
    assert.equal(aesKwpUnwrap(RFC5649_KEK, new Uint8Array(8)), null);
  });

  void test('AES-256 KWP round trip for every imported material size (1..256 bytes)', () => {
    const kek = randomBytes(32);
    for (let n = 1; n <= 256; n += 17) {
      const m = randomBytes(n);
      const w = aesKwpWrap(kek, m);
      assert.equal(w.length, 8 * Math.ceil(n / 8) + 8);
      assert.deepEqual(aesKwpUnwrap(kek, w), m);
    }
  });
});

/** The client side built independently of import.ts, from the construction's description. */
function independentWrap(spkiDer: Uint8Array, material: Uint8Array): Uint8Array {
  const pub = nc.createPublicKey({ key: Buffer.from(spkiDer), format: 'der', type: 'spki' });
  const k = nc.randomBytes(32);
  const rsa = nc.publicEncrypt({ key: pub, padding: nc.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, k);
  const c = nc.createCipheriv('id-aes256-wrap-pad', k, Buffer.from('A65959A6', 'hex'));
  return Uint8Array.from(Buffer.concat([rsa, c.update(material), c.final()]));
}

const binding = { ns: 'app', key: 'byok', type: 'aes256' } as const;

void describe('RSA_AES_KEY_WRAP_SHA_256 and import tokens', () => {
  void test('material wrapped by an independent node:crypto build opens with the token, once', async () => {
    const tokens = new ImportTokens();
    const p = await tokens.issue(binding);
    assert.equal(p.algorithm, IMPORT_ALGORITHM);
    assert.equal(nc.createPublicKey({ key: Buffer.from(p.publicKey), format: 'der', type: 'spki' }).asymmetricKeyDetails?.modulusLength, 3072);
    const material = randomBytes(32);
    const wrapped = independentWrap(p.publicKey, material);
    assert.equal(wrapped.length, 384 + 40);
    assert.deepEqual(tokens.consume(p.token, binding, (k) => unwrapImport(k, wrapped)), material);
    assert.equal(tokens.outstanding, 0);
    assert.throws(() => tokens.consume(p.token, binding, (k) => unwrapImport(k, wrapped)), (e: { code?: string }) => e.code === 'KW_IMPORT_TOKEN_USED');
  });

  void test('wrapForImport (the CLI side) with a 4096-bit wrapping key', async () => {
    const tokens = new ImportTokens();
    const p = await tokens.issue({ ...binding, type: 'hmac-sha256' }, { bits: 4096 });
    const material = randomBytes(64);
    const wrapped = wrapForImport(p.publicKey, material);
    assert.equal(wrapped.length, 512 + 72);
    assert.deepEqual(tokens.consume(p.token, { ...binding, type: 'hmac-sha256' }, (k) => unwrapImport(k, wrapped)), material);
  });

  void test('a tampered RSA block, KWP block or length is KW_IMPORT_UNWRAP_FAILED, and the token is spent', async () => {
    for (const at of [5, 384 + 3, -1]) {
      const tokens = new ImportTokens();
      const p = await tokens.issue(binding);
      const wrapped = wrapForImport(p.publicKey, randomBytes(32));
      const bad = at === -1 ? wrapped.subarray(0, wrapped.length - 8) : wrapped.slice();
      if (at >= 0) bad[at]! ^= 1;
      await rejectsKh(() => tokens.consume(p.token, binding, (k) => unwrapImport(k, bad)), 'KW_IMPORT_UNWRAP_FAILED');
      await rejectsKh(() => tokens.consume(p.token, binding, (k) => unwrapImport(k, wrapped)), 'KW_IMPORT_TOKEN_USED');
    }
  });

  void test('material wrapped for another import\'s key does not open', async () => {
    const tokens = new ImportTokens();
    const a = await tokens.issue(binding);
    const b = await tokens.issue(binding);
    await rejectsKh(() => tokens.consume(a.token, binding, (k) => unwrapImport(k, wrapForImport(b.publicKey, randomBytes(32)))), 'KW_IMPORT_UNWRAP_FAILED');
  });

  void test('wrong length or all-zero material for the type is KW_IMPORT_MATERIAL_INVALID', async () => {
    const cases: [typeof binding.type | 'hmac-sha256' | 'ed25519' | 'x25519' | 'xwing', Uint8Array][] = [
      ['aes256', randomBytes(16)], ['aes256', randomBytes(33)], ['aes256', new Uint8Array(32)],
      ['hmac-sha256', randomBytes(15)], ['hmac-sha256', randomBytes(257)], ['ed25519', randomBytes(64)], ['x25519', randomBytes(31)], ['xwing', randomBytes(1216)],
    ];
    for (const [type, material] of cases) {
      const tokens = new ImportTokens();
      const b = { ...binding, type };
      const p = await tokens.issue(b);
      await rejectsKh(() => tokens.consume(p.token, b, (k) => unwrapImport(k, wrapForImport(p.publicKey, material))), 'KW_IMPORT_MATERIAL_INVALID');
    }
  });

  void test('a token is bound to its namespace, key and type; a mismatch leaves it usable', async () => {
    const tokens = new ImportTokens();
    const p = await tokens.issue(binding);
    const wrapped = wrapForImport(p.publicKey, randomBytes(32));
    for (const other of [{ ...binding, ns: 'x' }, { ...binding, key: 'other' }, { ...binding, type: 'hmac-sha256' as const }]) {
      await rejectsKh(() => tokens.consume(p.token, other, (k) => unwrapImport(k, wrapped)), 'KW_IMPORT_TOKEN_INVALID');
    }
    await rejectsKh(() => tokens.consume('no-such-token', binding, (k) => unwrapImport(k, wrapped)), 'KW_IMPORT_TOKEN_INVALID');
    assert.equal(tokens.consume(p.token, binding, (k) => unwrapImport(k, wrapped)).length, 32);
  });

  void test('an expired token is KW_IMPORT_TOKEN_EXPIRED (injected clock); clear() forgets every token', async () => {
    let now = 1_000_000;
    const tokens = new ImportTokens({ now: () => now });
    const p = await tokens.issue(binding, { ttlMs: 60_000 });
    const wrapped = wrapForImport(p.publicKey, randomBytes(32));
    now += 60_000;
    await rejectsKh(() => tokens.consume(p.token, binding, (k) => unwrapImport(k, wrapped)), 'KW_IMPORT_TOKEN_EXPIRED');
    const q = await tokens.issue(binding);
    tokens.clear();
    await rejectsKh(() => tokens.consume(q.token, binding, (k) => unwrapImport(k, wrapForImport(q.publicKey, randomBytes(32)))), 'KW_IMPORT_TOKEN_INVALID');
    await rejectsKh(() => tokens.issue(binding, { ttlMs: 25 * 3600_000 }), 'KW_INVALID_ARGUMENT');
  });

  void test(`at most ${MAX_OUTSTANDING_IMPORTS} outstanding imports (by default; 3 here), counting those being generated`, async () => {
    assert.equal(MAX_OUTSTANDING_IMPORTS, 32);
    const tokens = new ImportTokens({ maxOutstanding: 3 });
    const three = [tokens.issue(binding), tokens.issue(binding), tokens.issue(binding)];
    await rejectsKh(() => tokens.issue(binding), 'KW_LIMIT_EXCEEDED'); // the three are still being generated
    await Promise.all(three);
    await rejectsKh(() => tokens.issue(binding), 'KW_LIMIT_EXCEEDED');
  });

  void test('signed parameters verify; a changed fact, key or signature does not', async () => {
    const tokens = new ImportTokens();
    const p = await tokens.issue(binding);
    const { privateKey, publicKey } = nc.generateKeyPairSync('ed25519');
    const signer = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url').toString('hex');
    const signature = nc.sign(null, importParamsMessage(p.facts), privateKey).toString('hex');
    assert.equal(verifyImportParams({ facts: p.facts, publicKey: p.publicKey, signer, signature }), true);
    assert.equal(verifyImportParams({ facts: { ...p.facts, key: 'other' }, publicKey: p.publicKey, signer, signature }), false);
    assert.equal(verifyImportParams({ facts: p.facts, publicKey: (await tokens.issue(binding)).publicKey, signer, signature }), false);
    assert.equal(verifyImportParams({ facts: p.facts, publicKey: p.publicKey, signer, signature: signature.replace(/^./, (c) => (c === '0' ? '1' : '0')) }), false);
  });
});
