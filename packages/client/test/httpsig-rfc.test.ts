/**
 * Known-answer tests from the RFCs, one vector per test:
 * RFC 9421 Appendix B.2.6 (Ed25519 request signature, key B.1.4) and
 * RFC 9530 Content-Digest examples. Values are copied from the RFC text.
 */
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { describe, test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { base64 } from '@scure/base';
import { contentDigest, createSignatureBase, HttpSigError, verifyContentDigest } from '../src/index.js';
import { buildSignatureBase } from '../src/httpsig/base.js';
import { parseSignatureField, parseSignatureInput, serializeDictionary } from '../src/httpsig/structured.js';
import { rejectsWith } from './httpsig-helpers.js';

// --- RFC 9421 Appendix B.1.4, test-key-ed25519 -----------------------------
const B14_PUBLIC_PEM = `-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----
`;
const B14_PRIVATE_PEM = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
`;
/** RFC 8410 DER prefixes: SPKI and PKCS#8 for Ed25519, followed by the raw 32-byte key. */
const SPKI_PREFIX = '302a300506032b6570032100';
const PKCS8_PREFIX = '302e020100300506032b657004220420';

function pemBody(pem: string): Uint8Array {
  return base64.decode(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''));
}
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
function rawKey(pem: string, prefix: string): Uint8Array {
  const der = pemBody(pem);
  assert.equal(hex(der.subarray(0, prefix.length / 2)), prefix);
  assert.equal(der.length, prefix.length / 2 + 32);
  return der.subarray(prefix.length / 2);
}
const B14_SEED = rawKey(B14_PRIVATE_PEM, PKCS8_PREFIX);
const B14_PUBLIC = rawKey(B14_PUBLIC_PEM, SPKI_PREFIX);

// --- RFC 9421 Appendix B.2 test-request, as far as B.2.6 covers it ---------
const B2_REQUEST = {
  method: 'POST',
  url: 'https://example.com/foo?param=Value&Pet=dog',
  headers: {
    Host: 'example.com',
    Date: 'Tue, 20 Apr 2021 02:07:55 GMT',
    'Content-Type': 'application/json',
    'Content-Length': '18',
  },
  body: '{"hello": "world"}',
};

// --- RFC 9421 Appendix B.2.6 (line wrapping of RFC 8792 undone) -------------
const B26_COMPONENTS = ['date', '@method', '@path', '@authority', 'content-type', 'content-length'];
const B26_PARAMS = { created: 1618884473, keyid: 'test-key-ed25519' };
const B26_BASE = [
  '"date": Tue, 20 Apr 2021 02:07:55 GMT',
  '"@method": POST',
  '"@path": /foo',
  '"@authority": example.com',
  '"content-type": application/json',
  '"content-length": 18',
  '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"',
].join('\n');
const B26_SIGNATURE_INPUT =
  'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"';
const B26_SIGNATURE = 'sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:';
const B26_SIGNATURE_BYTES = base64.decode('wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==');

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

void describe('RFC 9421 B.1.4 test-key-ed25519', () => {
  void test('the private key derives the published public key', () => {
    assert.equal(hex(ed25519.getPublicKey(B14_SEED)), hex(B14_PUBLIC));
  });
});

void describe('RFC 9421 B.2.6 signing a request using ed25519', () => {
  void test('signature base, byte for byte', () => {
    const { base, signatureParams } = createSignatureBase(B2_REQUEST, { components: B26_COMPONENTS, params: B26_PARAMS });
    assert.equal(base, B26_BASE);
    assert.equal(`sig-b26=${signatureParams}`, B26_SIGNATURE_INPUT);
  });

  void test('signature, byte for byte (Ed25519 is deterministic)', () => {
    const signature = ed25519.sign(enc(B26_BASE), B14_SEED);
    assert.equal(hex(signature), hex(B26_SIGNATURE_BYTES));
    assert.equal(serializeDictionary([['sig-b26', { kind: 'item', value: signature, params: [] }]]), B26_SIGNATURE);
  });

  void test('the published fields parse, rebuild the same base, and the signature verifies', () => {
    const [input, ...moreInputs] = parseSignatureInput(B26_SIGNATURE_INPUT);
    const [sig, ...moreSigs] = parseSignatureField(B26_SIGNATURE);
    assert.equal(moreInputs.length + moreSigs.length, 0);
    assert.equal(input!.label, 'sig-b26');
    assert.deepEqual(input!.components, B26_COMPONENTS);
    assert.deepEqual(input!.params, B26_PARAMS);
    const base = buildSignatureBase(B2_REQUEST, input!.components, input!.serialized);
    assert.equal(base, B26_BASE);
    assert.equal(ed25519.verify(sig!.signature, enc(base), B14_PUBLIC, { zip215: false }), true);
  });

  void test('cross-check with node:crypto (OpenSSL) on the same base and PEM keys', () => {
    const sig = nodeSign(null, Buffer.from(B26_BASE), createPrivateKey(B14_PRIVATE_PEM));
    assert.equal(hex(sig), hex(B26_SIGNATURE_BYTES));
    assert.equal(nodeVerify(null, Buffer.from(B26_BASE), createPublicKey(B14_PUBLIC_PEM), B26_SIGNATURE_BYTES), true);
  });

  void test('a one-bit change of the base makes the published signature fail', () => {
    const base = enc(B26_BASE);
    base[10]! ^= 1;
    assert.equal(ed25519.verify(B26_SIGNATURE_BYTES, base, B14_PUBLIC, { zip215: false }), false);
  });

  void test('verifyRequest refuses it under the Keyward profile (no nonce, no content-digest)', async () => {
    const req = { ...B2_REQUEST, headers: { ...B2_REQUEST.headers, 'Signature-Input': B26_SIGNATURE_INPUT, Signature: B26_SIGNATURE } };
    await rejectsWith(req, 'HTTPSIG_MALFORMED', {
      keyLookup: (id) => (id === 'test-key-ed25519' ? B14_PUBLIC : null),
      seenNonce: () => false,
      now: 1618884473,
      requiredComponents: B26_COMPONENTS,
    });
  });
});

void describe('RFC 9530 Content-Digest', () => {
  // Appendix B.1: computed over {"hello": "world"} followed by an LF.
  const B1_CONTENT = enc('{"hello": "world"}\n');
  const B1_SHA256 = 'sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:';
  // Section 2's sha-512 example value; it is the digest of the same content.
  const S2_SHA512 = 'sha-512=:YMAam51Jz/jOATT6/zvHrLVgOYTGFy1d6GJiOHTohq4yP+pgk4vf2aCsyRZOtw8MjkM7iw7yZ/WkppmM44T3qg==:';

  void test('B.1: contentDigest({"hello": "world"}\\n) is the published sha-256 value', () => {
    assert.equal(contentDigest(B1_CONTENT), B1_SHA256);
  });

  void test('B.1: verifyContentDigest accepts the published value', () => {
    verifyContentDigest(B1_SHA256, B1_CONTENT);
  });

  void test('B.1 + section 2: both sha-256 and sha-512 members are checked', () => {
    verifyContentDigest(`${B1_SHA256}, ${S2_SHA512}`, B1_CONTENT);
    // The same sha-512 member against other content: refused even though sha-256 would be checked too.
    assert.throws(() => verifyContentDigest(`${contentDigest(enc('x'))}, ${S2_SHA512}`, enc('x')), isCode('HTTPSIG_DIGEST_MISMATCH'));
  });

  void test('section 2: a lone sha-512 member is refused (sha-256 is required)', () => {
    assert.throws(() => verifyContentDigest(S2_SHA512, B1_CONTENT), isCode('HTTPSIG_DIGEST_MISMATCH'));
  });

  void test('B.1 value against the content without its LF: mismatch', () => {
    assert.throws(() => verifyContentDigest(B1_SHA256, enc('{"hello": "world"}')), isCode('HTTPSIG_DIGEST_MISMATCH'));
  });

  void test('the 18-byte test-request body of RFC 9421 and empty content agree with node:crypto', () => {
    for (const content of [enc('{"hello": "world"}'), new Uint8Array(0)]) {
      const expected = `sha-256=:${createHash('sha256').update(content).digest('base64')}:`;
      assert.equal(contentDigest(content), expected);
      verifyContentDigest(expected, content);
    }
  });
});

function isCode(code: string) {
  return (e: unknown): boolean => e instanceof HttpSigError && e.code === code;
}
