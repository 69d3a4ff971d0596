/**
 * AWS Nitro Enclaves attestation documents: the three real documents of
 * shared/vectors/nitro/ (expected values from its README.md), verified at
 * their valid instants and refused one second outside them, and every
 * mutation the issue lists refused with its typed code. Synthetic documents
 * (a private P-384 chain, openssl-made) prove the checks that need a valid
 * signature over a broken document.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import { AWS_NITRO_ROOT_G1_PEM, NITRO_LIMITS, enforcePolicy, evaluatePolicy, verifyNitroDocument, type AttestationClaims } from '../src/index.js';
import { assembleCose, cbor, coseSign1, flip, hex, indexOf, makeCert, readVectorBytes, splitNitro, throwsAttest, toHex, type Enc, type TestCert } from './helpers.js';

interface Doc {
  file: string;
  at: string; // an instant at which the whole chain is valid
  notBefore: string; // leaf validity (the tightest bound of the chain)
  notAfter: string;
  timestamp: string;
  debug: boolean;
  nonce: string;
  publicKey: string | undefined;
  pcrs: Record<number, string>;
  moduleId: string;
}

const DOCS: Doc[] = [
  {
    file: 'cape-prod-2022-09-15.cbor',
    at: '2022-09-15T17:44:24Z',
    notBefore: '2022-09-15T17:43:24Z',
    notAfter: '2022-09-15T20:43:27Z',
    timestamp: '2022-09-15T17:43:28.848Z',
    debug: false,
    nonce: '47b5fba6979cbf7e567e2629',
    publicKey: '15db1c67adc9fce91f7da323c708b6e639f0585af8a4a091127f2dfdcfeaf808',
    moduleId: 'i-0697c9729fa547b20-enc0183422ede9a5dc8',
    pcrs: {
      0: 'ea4212ee889ba1b4dbfe744aadecca8b1930de60a3a1ce3b0c79f42b231700fc561c3d9b34f0565ed9eb6f460996624c',
      1: 'bcdf05fefccaa8e55bf2c8d6dee9e79bbff31e34bf28a99aa19e6b29c37ee80b214a414b7607236edf26fcb78654e63f',
      2: '1c8bc2d84761b0da2777d07d889792540966f88930417c214659ec2f2996534e7894b98bf46e5bc83263825e3ce307b8',
      3: 'c1047e6debc48241cc944d65b72981454d40e5bb8859d5b74161aaeb8afb3ea61fe4003f82c6006ded255d9e249eadbb',
      4: '1922848e8ee83c700335ef753da784a5cdcec8e1235b6db6fa46cc4365a47ea8be7bc29691512d3ed8916648d72f3d12',
      8: '6f1ff0f2a7a0b1c4e02a3a544eb0ff2dffb8b2922b8908d46365c0f0120934092149ec35814c8d944ef1b8fb564b46c7',
    },
  },
  {
    file: 'cape-2022-07-12.cbor',
    at: '2022-07-12T21:34:04Z',
    notBefore: '2022-07-12T18:35:15Z',
    notAfter: '2022-07-12T21:35:18Z',
    timestamp: '2022-07-12T18:35:18.399Z',
    debug: true,
    nonce: 'efdf3cd3cf76f39ef6f7cefd',
    publicKey: '81613310f630246dfebe8bbab763bd835a2736b9be839bb8677e9065ce3ce161',
    moduleId: 'i-029e0eacb65267caa-enc0181f3b11fbd2d84',
    pcrs: { 4: '28c7ea32aec0384948c7b6373fb6ec5402789e28000f3bb002ecb97b96a15f583db4785d9d6bb393a8245d1bd6d98832' },
  },
  {
    file: 'brave-p3a-2022-07-26.cbor',
    at: '2022-07-26T18:39:12Z',
    notBefore: '2022-07-26T18:39:09Z',
    notAfter: '2022-07-26T21:39:12Z',
    timestamp: '2022-07-26T18:39:12.566Z',
    debug: true,
    nonce: '831493346b44132e2ffb7988bce351f593eeb8dd',
    publicKey: undefined,
    moduleId: 'i-0936512d5ae6ee91a-enc01823bcde8eb8a8a',
    pcrs: { 4: '5a3e54bd0a5f50b1b5ec641e063a1f1e7e5aadc139f49fd8784afca90a83767ec13dd70b3f2e3f43b8e23355baaa9053' },
  },
];

const ROOTS = [AWS_NITRO_ROOT_G1_PEM];
const load = (d: Doc): Uint8Array => readVectorBytes(`nitro/${d.file}`);
const at = (iso: string, deltaMs = 0): Date => new Date(new Date(iso).getTime() + deltaMs);
const PROD = DOCS[0]!;
const verifyProd = (doc: Uint8Array, extra: { expectedNonce?: Uint8Array; roots?: (string | Uint8Array)[] } = {}): AttestationClaims =>
  verifyNitroDocument(doc, { roots: extra.roots ?? ROOTS, now: new Date(PROD.at), ...(extra.expectedNonce ? { expectedNonce: extra.expectedNonce } : {}) });

void test('the pinned AWS Nitro root is the vector root, with the fingerprint AWS documents', () => {
  const mine = new X509Certificate(AWS_NITRO_ROOT_G1_PEM);
  const vector = new X509Certificate(Buffer.from(readVectorBytes('nitro/aws-nitro-root-g1.pem')));
  assert.equal(mine.fingerprint256, '64:1A:03:21:A3:E2:44:EF:E4:56:46:31:95:D6:06:31:7E:D7:CD:CC:3C:17:56:E0:98:93:F3:C6:8F:79:BB:5B');
  assert.ok(mine.raw.equals(vector.raw));
});

void describe('real Nitro documents', () => {
  for (const d of DOCS) {
    void test(`${d.file} verifies at ${d.at} with the README's claims`, () => {
      const c = verifyNitroDocument(load(d), { roots: ROOTS, now: new Date(d.at), expectedNonce: hex(d.nonce) });
      assert.equal(c.platform, 'aws-nitro');
      assert.equal(c.debug, d.debug);
      assert.equal(toHex(c.nonce!), d.nonce);
      assert.equal(c.publicKey === undefined ? undefined : toHex(c.publicKey), d.publicKey);
      assert.equal(c.issuedAt!.toISOString(), d.timestamp);
      assert.equal(c.verifiedAt.toISOString(), new Date(d.at).toISOString());
      assert.equal(c.extra.moduleId, d.moduleId);
      assert.deepEqual(Object.keys(c.measurements), Array.from({ length: 16 }, (_, i) => `PCR${i}`));
      for (let i = 0; i < 16; i++) assert.equal(toHex(c.measurements[`PCR${i}`]!), d.pcrs[i] ?? '00'.repeat(48), `PCR${i}`);
    });

    void test(`${d.file}: valid from the leaf's notBefore to its notAfter, refused one second outside`, () => {
      const doc = load(d);
      verifyNitroDocument(doc, { roots: ROOTS, now: at(d.notBefore) });
      verifyNitroDocument(doc, { roots: ROOTS, now: at(d.notAfter) });
      throwsAttest(() => verifyNitroDocument(doc, { roots: ROOTS, now: at(d.notBefore, -1000) }), 'ATTEST_CERT_NOT_YET_VALID');
      throwsAttest(() => verifyNitroDocument(doc, { roots: ROOTS, now: at(d.notAfter, 1000) }), 'ATTEST_CERT_EXPIRED');
      throwsAttest(() => verifyNitroDocument(doc, { roots: ROOTS, now: new Date() }), 'ATTEST_CERT_EXPIRED');
    });
  }

  void test('the README user_data of the production document is returned as raw extra', () => {
    const c = verifyProd(load(PROD));
    const userData = c.extra.userData as Uint8Array;
    assert.equal(userData.length, 250);
    assert.deepEqual(Object.keys(JSON.parse(Buffer.from(userData).toString('utf8')) as object), ['func_checksum', 'func_hash', 'key_checksum', 'key_policy_hash']);
  });
});

void describe('mutations of the real production document', () => {
  const doc = load(PROD);
  const parts = splitNitro(doc);
  /** The document with its payload map re-encoded with `change` applied (the original signature kept). */
  const withPayload = (change: (m: Map<number | string, unknown>) => void): Uint8Array => {
    const m = new Map(parts.payload);
    change(m);
    return assembleCose(parts.protectedHeader, cbor(m as Map<string, Enc>), parts.signature);
  };
  const bundle = parts.payload.get('cabundle') as Uint8Array[];

  void test('the re-assembly used by these tests is byte-exact', () => {
    assert.deepEqual(assembleCose(parts.protectedHeader, parts.payloadBytes, parts.signature), doc);
    // the payload map is not in canonical order but is in preferred encoding: re-encoding it is exact
    assert.deepEqual(withPayload(() => undefined), doc);
  });

  void test('a flipped byte in the payload: bad signature', () => {
    const payloadAt = indexOf(doc, parts.payloadBytes);
    for (const field of ['module_id', 'nonce', 'public_key']) {
      const i = indexOf(doc, new TextEncoder().encode(field), payloadAt) + field.length + 3;
      throwsAttest(() => verifyProd(flip(doc, i)), 'ATTEST_BAD_SIGNATURE');
    }
    const pcr0 = indexOf(doc, hex(PROD.pcrs[0]!));
    throwsAttest(() => verifyProd(flip(doc, pcr0 + 10)), 'ATTEST_BAD_SIGNATURE');
  });

  void test('a flipped byte in the signature: bad signature', () => {
    for (const i of [doc.length - 96, doc.length - 49, doc.length - 1]) throwsAttest(() => verifyProd(flip(doc, i)), 'ATTEST_BAD_SIGNATURE');
  });

  void test('a flipped byte in a certificate: broken chain', () => {
    const leaf = parts.payload.get('certificate') as Uint8Array;
    throwsAttest(() => verifyProd(flip(doc, indexOf(doc, leaf) + leaf.length - 1)), 'ATTEST_CHAIN_INVALID');
    for (const i of [1, 2, 3]) {
      const cert = bundle[i]!;
      throwsAttest(() => verifyProd(flip(doc, indexOf(doc, cert) + cert.length - 1)), 'ATTEST_CHAIN_INVALID');
    }
    // the pinned root itself altered: no longer the pinned root
    const root = bundle[0]!;
    throwsAttest(() => verifyProd(flip(doc, indexOf(doc, root) + root.length - 1)), 'ATTEST_UNTRUSTED_ROOT');
  });

  void test('a reordered CA bundle: broken chain', () => {
    const swaps: number[][] = [
      [0, 2, 1, 3],
      [0, 1, 3, 2],
      [3, 2, 1, 0],
    ];
    for (const order of swaps) {
      const code = order[0] === 0 ? 'ATTEST_CHAIN_INVALID' : 'ATTEST_UNTRUSTED_ROOT';
      throwsAttest(() => verifyProd(withPayload((m) => m.set('cabundle', order.map((i) => bundle[i]!)))), code);
    }
  });

  void test('a truncated CA bundle: broken chain, or no root', () => {
    throwsAttest(() => verifyProd(withPayload((m) => m.set('cabundle', bundle.slice(0, 3)))), 'ATTEST_CHAIN_INVALID');
    throwsAttest(() => verifyProd(withPayload((m) => m.set('cabundle', bundle.slice(1)))), 'ATTEST_UNTRUSTED_ROOT');
    throwsAttest(() => verifyProd(withPayload((m) => m.set('cabundle', []))), 'ATTEST_MALFORMED');
    throwsAttest(() => verifyProd(doc.subarray(0, doc.length - 10)), 'ATTEST_MALFORMED');
  });

  void test('a wrong root: untrusted', () => {
    const other = makeCert({ subject: '/CN=aws.nitro-enclaves/O=Amazon/OU=AWS/C=US', alg: 'p384', ca: true });
    throwsAttest(() => verifyProd(doc, { roots: [other.certPem] }), 'ATTEST_UNTRUSTED_ROOT');
  });

  void test('a nonce mismatch', () => {
    verifyProd(doc, { expectedNonce: hex(PROD.nonce) });
    throwsAttest(() => verifyProd(doc, { expectedNonce: flip(hex(PROD.nonce), 11) }), 'ATTEST_NONCE_MISMATCH');
    throwsAttest(() => verifyProd(doc, { expectedNonce: hex(PROD.nonce).subarray(1) }), 'ATTEST_NONCE_MISMATCH');
  });

  void test('non-canonical CBOR: a length in a longer form than needed, indefinite lengths', () => {
    // protected header bstr(4): 0x44 → 0x58 0x04
    assert.equal(doc[1], 0x44);
    const longLength = new Uint8Array([doc[0]!, 0x58, 0x04, ...doc.subarray(2)]);
    throwsAttest(() => verifyProd(longLength), 'ATTEST_NON_CANONICAL');
    // the outer array(4) as indefinite-length: 0x9f … 0xff
    const indefinite = new Uint8Array([0x9f, ...doc.subarray(1), 0xff]);
    throwsAttest(() => verifyProd(indefinite), 'ATTEST_NON_CANONICAL');
    // alg -35 (0x38 0x22) as 0x39 0x00 0x22 inside the protected header
    const prot = Uint8Array.of(0xa1, 0x01, 0x39, 0x00, 0x22);
    throwsAttest(() => verifyProd(assembleCose(prot, parts.payloadBytes, parts.signature)), 'ATTEST_NON_CANONICAL');
  });

  void test('oversize CBOR: too many bytes, too deep, too many items; trailing bytes', () => {
    const big = new Uint8Array(NITRO_LIMITS.maxDocumentBytes + 1);
    big.set(doc);
    throwsAttest(() => verifyProd(big), 'ATTEST_LIMIT_EXCEEDED');
    const deep = new Uint8Array([...Array<number>(20).fill(0x81), 0x00]);
    throwsAttest(() => verifyProd(deep), 'ATTEST_LIMIT_EXCEEDED');
    throwsAttest(() => verifyProd(Uint8Array.of(0x99, 0xff, 0xff)), 'ATTEST_LIMIT_EXCEEDED');
    throwsAttest(() => verifyProd(new Uint8Array([...doc, 0x00])), 'ATTEST_MALFORMED');
    // a byte string that declares more bytes than there are
    throwsAttest(() => verifyProd(Uint8Array.of(0x84, 0x5a, 0x7f, 0xff, 0xff, 0xff)), 'ATTEST_MALFORMED');
  });

  void test('another COSE algorithm, a tag, or a non-empty unprotected header', () => {
    const es256 = Uint8Array.of(0xa1, 0x01, 0x26);
    throwsAttest(() => verifyProd(assembleCose(es256, parts.payloadBytes, parts.signature)), 'ATTEST_UNSUPPORTED');
    const tagged = cbor([parts.protectedHeader, new Map(), { raw: Uint8Array.of(0xd8, 0x18, ...cbor(parts.payloadBytes)) }, parts.signature]);
    throwsAttest(() => verifyProd(tagged), 'ATTEST_MALFORMED');
    const withKid = cbor([parts.protectedHeader, new Map([[4, new Uint8Array(1)]]), parts.payloadBytes, parts.signature]);
    throwsAttest(() => verifyProd(withKid), 'ATTEST_MALFORMED');
  });
});

void describe('release policy over the real documents', () => {
  const pcrs = Object.fromEntries(Object.entries(PROD.pcrs).map(([i, h]) => [`PCR${i}`, h]));
  const prodPolicy = { platforms: ['aws-nitro'] as const, measurements: pcrs, maxAgeSeconds: 300 };

  void test('the production document satisfies a policy pinning its PCRs', () => {
    const c = verifyProd(load(PROD));
    assert.deepEqual(evaluatePolicy(prodPolicy, c, new Date(PROD.at)), { allowed: true });
  });

  void test('debug PCRs (PCR0..2 zero) are refused unless the policy allows debug', () => {
    for (const d of DOCS.slice(1)) {
      const c = verifyNitroDocument(load(d), { roots: ROOTS, now: new Date(d.at) });
      assert.equal(c.debug, true);
      const policy = { platforms: ['aws-nitro'] as const, measurements: { PCR4: d.pcrs[4]! } };
      throwsAttest(() => enforcePolicy(policy, c, new Date(d.at)), 'ATTEST_POLICY_DEBUG');
      enforcePolicy({ ...policy, allowDebug: true }, c, new Date(d.at));
      // a production policy pinning PCR0 refuses it on the measurement already
      throwsAttest(() => enforcePolicy(prodPolicy, c, new Date(d.at)), 'ATTEST_POLICY_MEASUREMENT_MISMATCH');
    }
  });

  void test('a PCR the policy requires but the document lacks is refused', () => {
    const c = verifyProd(load(PROD));
    throwsAttest(() => enforcePolicy({ ...prodPolicy, measurements: { ...pcrs, PCR16: '00'.repeat(48) } }, c, new Date(PROD.at)), 'ATTEST_POLICY_MEASUREMENT_MISSING');
  });

  void test('a stale document is refused by max age', () => {
    const c = verifyProd(load(PROD));
    throwsAttest(() => enforcePolicy(prodPolicy, c, at(PROD.timestamp, 301_000)), 'ATTEST_POLICY_EVIDENCE_AGE');
    enforcePolicy(prodPolicy, c, at(PROD.timestamp, 299_000));
  });
});

void describe('synthetic documents signed by a private P-384 chain', () => {
  let root: TestCert;
  let inter: TestCert;
  let leaf: TestCert;
  const pcr = (n: number): Uint8Array => createHash('sha384').update(`pcr${n}`).digest();

  before(() => {
    root = makeCert({ subject: '/CN=test nitro root', alg: 'p384', ca: true });
    inter = makeCert({ subject: '/CN=test nitro intermediate', alg: 'p384', ca: true, issuer: root });
    leaf = makeCert({ subject: '/CN=test enclave', alg: 'p384', ca: false, issuer: inter });
  });

  const payload = (change: (m: Map<string, Enc>) => void = () => undefined): Map<string, Enc> => {
    const m = new Map<string, Enc>([
      ['module_id', 'i-test-enc0'],
      ['digest', 'SHA384'],
      ['timestamp', Date.now()],
      ['pcrs', new Map<number, Enc>([0, 1, 2, 3, 4, 8].map((i) => [i, pcr(i)]))],
      ['certificate', leaf.der],
      ['cabundle', [root.der, inter.der]],
      ['public_key', new Uint8Array(32).fill(7)],
      ['user_data', null],
      ['nonce', Uint8Array.of(1, 2, 3)],
    ]);
    change(m);
    return m;
  };
  const sign = (m: Map<string, Enc>): Uint8Array => coseSign1(cbor(m), leaf.keyPem);
  const verify = (doc: Uint8Array, roots = [root.certPem]): AttestationClaims => verifyNitroDocument(doc, { roots, now: new Date(), expectedNonce: Uint8Array.of(1, 2, 3) });

  void test('a well-formed document verifies, with its PCRs, key and nonce', () => {
    const c = verify(sign(payload()));
    assert.equal(c.debug, false);
    assert.deepEqual(c.measurements.PCR8, new Uint8Array(pcr(8)));
    assert.deepEqual(c.publicKey, new Uint8Array(32).fill(7));
  });

  void test('a validly signed document from another root is untrusted (by the AWS root and by ours)', () => {
    throwsAttest(() => verify(sign(payload()), [AWS_NITRO_ROOT_G1_PEM]), 'ATTEST_UNTRUSTED_ROOT');
    const otherRoot = makeCert({ subject: '/CN=test nitro root', alg: 'p384', ca: true });
    throwsAttest(() => verify(sign(payload((m) => m.set('cabundle', [otherRoot.der, inter.der])))), 'ATTEST_UNTRUSTED_ROOT');
  });

  void test('a validly signed document whose payload is non-canonical is refused', () => {
    // the first PCR index (0) in a two-byte form, in a payload that is then properly signed
    const m = payload();
    const body = cbor(m);
    const pcrsKey = indexOf(body, cbor('pcrs'));
    // first PCR index (0x00) → 0x18 0x00
    const at0 = pcrsKey + cbor('pcrs').length + 1;
    assert.equal(body[at0], 0x00);
    const nonCanonical = new Uint8Array([...body.subarray(0, at0), 0x18, ...body.subarray(at0)]);
    throwsAttest(() => verify(coseSign1(nonCanonical, leaf.keyPem)), 'ATTEST_NON_CANONICAL');
  });

  void test('a validly signed document with a required PCR omitted is refused by the policy', () => {
    const c = verify(sign(payload((m) => (m.get('pcrs') as Map<number, Enc>).delete(0))));
    assert.equal(c.measurements.PCR0, undefined);
    assert.equal(c.debug, true, 'a document without PCR0 cannot prove it is not in debug mode');
    const policy = { platforms: ['aws-nitro'] as const, measurements: { PCR0: toHex(pcr(0)), PCR8: toHex(pcr(8)) }, allowDebug: true };
    throwsAttest(() => enforcePolicy(policy, c, new Date()), 'ATTEST_POLICY_MEASUREMENT_MISSING');
    enforcePolicy(policy, verify(sign(payload())), new Date());
  });

  void test('field checks: digest, unknown fields, sizes, PCR lengths, leaf key type', () => {
    throwsAttest(() => verify(sign(payload((m) => m.set('digest', 'SHA256')))), 'ATTEST_UNSUPPORTED');
    throwsAttest(() => verify(sign(payload((m) => m.set('extra', 1)))), 'ATTEST_MALFORMED');
    throwsAttest(() => verify(sign(payload((m) => m.set('nonce', new Uint8Array(513))))), 'ATTEST_MALFORMED');
    throwsAttest(() => verify(sign(payload((m) => m.set('pcrs', new Map([[0, new Uint8Array(32)]]))))), 'ATTEST_MALFORMED');
    throwsAttest(() => verify(sign(payload((m) => m.set('pcrs', new Map([[32, pcr(0)]]))))), 'ATTEST_MALFORMED');
    throwsAttest(() => verify(sign(payload((m) => m.set('timestamp', 'now')))), 'ATTEST_MALFORMED');
    throwsAttest(() => verify(sign(payload((m) => m.delete('certificate')))), 'ATTEST_MALFORMED');
    const p256 = makeCert({ subject: '/CN=p256 enclave', alg: 'p256', ca: false, issuer: inter });
    throwsAttest(() => verify(coseSign1(cbor(payload((m) => m.set('certificate', p256.der))), leaf.keyPem)), 'ATTEST_UNSUPPORTED');
  });

  void test('a CA certificate as the leaf, or a non-CA intermediate, breaks the chain', () => {
    throwsAttest(() => verify(coseSign1(cbor(payload((m) => m.set('certificate', inter.der))), inter.keyPem)), 'ATTEST_CHAIN_INVALID');
    const notCa = makeCert({ subject: '/CN=not a ca', alg: 'p384', ca: false, issuer: root });
    const under = makeCert({ subject: '/CN=under not a ca', alg: 'p384', ca: false, issuer: notCa });
    throwsAttest(() => verify(coseSign1(cbor(payload((m) => m.set('certificate', under.der).set('cabundle', [root.der, notCa.der]))), under.keyPem)), 'ATTEST_CHAIN_INVALID');
  });
});
