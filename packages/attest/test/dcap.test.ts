/**
 * Intel SGX and TDX DCAP v4 quotes built byte by byte from the quote format,
 * with a synthetic PCK chain (root → platform CA → PCK, P-256), a synthetic
 * QE report signed by the PCK key binding a fresh attestation key, and the
 * quote signed by that key. The real Intel SGX root is documented in
 * docs/tee.md; nothing is downloaded.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { DCAP, enforcePolicy, parseDcapQuote, verifyDcapQuote, type AttestationClaims } from '../src/index.js';
import { flip, makeCert, throwsAttest, toHex, type TestCert } from './helpers.js';

const INTEL_QE_VENDOR_ID = Buffer.from('939a7233f79c4ca9940a0db3957f0607', 'hex');
const QE_MRSIGNER = randomBytes(32);
const MRENCLAVE = randomBytes(32);
const MRTD = randomBytes(48);
const REPORT_DATA = randomBytes(64);

interface QuoteFields {
  tee: 'sgx' | 'tdx';
  version?: number;
  teeType?: number;
  debug?: boolean;
  isvSvn?: number;
  reportData?: Uint8Array;
  /** The key that signs the quote (default: the one the QE report binds). */
  signingKey?: KeyObject;
  /** Corrupt the QE report data binding. */
  qeData?: Uint8Array;
  qeDebug?: boolean;
  qeIsvSvn?: number;
}

const le16 = (n: number): Uint8Array => Uint8Array.of(n & 0xff, n >> 8);
const le32 = (n: number): Uint8Array => Uint8Array.of(n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff);
const cat = (...p: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(p));

function sgxReport(f: { mrEnclave: Uint8Array; mrSigner: Uint8Array; prodId: number; isvSvn: number; debug: boolean; reportData: Uint8Array }): Uint8Array {
  const b = new Uint8Array(384);
  b.set(randomBytes(16), 0); // CPUSVN
  b[48] = f.debug ? 0x07 : 0x05; // ATTRIBUTES.FLAGS: INIT | (DEBUG) | MODE64BIT
  b.set(f.mrEnclave, 64);
  b.set(f.mrSigner, 128);
  b.set(le16(f.prodId), 256);
  b.set(le16(f.isvSvn), 258);
  b.set(f.reportData, 320);
  return b;
}

function tdReport(f: { debug: boolean; reportData: Uint8Array }): Uint8Array {
  const b = new Uint8Array(584);
  b.set([3, 1], 0); // TEE_TCB_SVN: module minor 3, major 1
  b.set(Buffer.alloc(48, 0xa1), 16); // MRSEAM
  b[120] = f.debug ? 0x01 : 0x00; // TDATTRIBUTES.DEBUG
  b.set(MRTD, 136);
  for (let i = 0; i < 4; i++) b.set(Buffer.alloc(48, 0x10 + i), 328 + 48 * i);
  b.set(f.reportData, 520);
  return b;
}

void describe('Intel DCAP v4 quotes (synthetic PCK chain)', () => {
  let root: TestCert;
  let platformCa: TestCert;
  let pck: TestCert;
  let attKey: { publicKey: KeyObject; privateKey: KeyObject };

  before(() => {
    root = makeCert({ subject: '/CN=Intel SGX Root CA (test)/O=Intel Corporation', alg: 'p256', ca: true });
    platformCa = makeCert({ subject: '/CN=Intel SGX PCK Platform CA (test)/O=Intel Corporation', alg: 'p256', ca: true, issuer: root });
    pck = makeCert({ subject: '/CN=Intel SGX PCK Certificate (test)/O=Intel Corporation', alg: 'p256', ca: false, issuer: platformCa });
    attKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  });

  function buildQuote(f: QuoteFields, chain: string = pck.certPem + platformCa.certPem + root.certPem): Uint8Array {
    const header = cat(le16(f.version ?? 4), le16(2), le32(f.teeType ?? (f.tee === 'sgx' ? 0 : 0x81)), new Uint8Array(4), INTEL_QE_VENDOR_ID, new Uint8Array(20));
    const reportData = f.reportData ?? REPORT_DATA;
    const body = f.tee === 'sgx' ? sgxReport({ mrEnclave: MRENCLAVE, mrSigner: Buffer.alloc(32, 0x5e), prodId: 7, isvSvn: f.isvSvn ?? 4, debug: f.debug ?? false, reportData }) : tdReport({ debug: f.debug ?? false, reportData });
    const jwk = attKey.publicKey.export({ format: 'jwk' });
    const attRaw = cat(Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url'));
    const qeAuth = randomBytes(32);
    const qeData = f.qeData ?? cat(createHash('sha256').update(attRaw).update(qeAuth).digest(), new Uint8Array(32));
    const qeReport = sgxReport({ mrEnclave: Buffer.alloc(32, 0x9e), mrSigner: QE_MRSIGNER, prodId: 1, isvSvn: f.qeIsvSvn ?? 8, debug: f.qeDebug ?? false, reportData: qeData });
    const qeSig = sign('sha256', qeReport, { key: createPrivateKey(pck.keyPem), dsaEncoding: 'ieee-p1363' });
    const pem = Buffer.from(chain + '\0');
    const inner = cat(le16(5), le32(pem.length), pem);
    const certData = cat(qeReport, qeSig, le16(qeAuth.length), qeAuth, inner);
    const sig = sign('sha256', cat(header, body), { key: f.signingKey ?? attKey.privateKey, dsaEncoding: 'ieee-p1363' });
    const sigData = cat(sig, attRaw, le16(6), le32(certData.length), certData);
    return cat(header, body, le32(sigData.length), sigData);
  }

  const verify = (quote: Uint8Array, o: { roots?: string[]; now?: Date; expectedReportData?: Uint8Array; qeIdentity?: { mrSigner: Uint8Array; isvProdId: number; minIsvSvn: number } } = {}): AttestationClaims =>
    verifyDcapQuote(quote, { roots: o.roots ?? [root.certPem], now: o.now ?? new Date(), expectedReportData: o.expectedReportData ?? REPORT_DATA, ...(o.qeIdentity ? { qeIdentity: o.qeIdentity } : {}) });

  void test('an SGX quote verifies: MRENCLAVE, MRSIGNER, ISVSVN, report data', () => {
    const c = verify(buildQuote({ tee: 'sgx' }), { qeIdentity: { mrSigner: QE_MRSIGNER, isvProdId: 1, minIsvSvn: 8 } });
    assert.equal(c.platform, 'intel-sgx');
    assert.deepEqual(c.measurements.MRENCLAVE, new Uint8Array(MRENCLAVE));
    assert.deepEqual(c.measurements.MRSIGNER, new Uint8Array(Buffer.alloc(32, 0x5e)));
    assert.deepEqual(c.versions, { 'sgx.isvsvn': 4n, 'sgx.qe.isvsvn': 8n });
    assert.deepEqual(c.nonce, new Uint8Array(REPORT_DATA));
    assert.equal(c.debug, false);
  });

  void test('a TDX quote verifies: MRTD, RTMRs, TEE TCB SVN', () => {
    const c = verify(buildQuote({ tee: 'tdx' }));
    assert.equal(c.platform, 'intel-tdx');
    assert.deepEqual(c.measurements.MRTD, new Uint8Array(MRTD));
    assert.deepEqual(c.measurements.RTMR2, new Uint8Array(Buffer.alloc(48, 0x12)));
    assert.deepEqual(c.measurements.MRSEAM, new Uint8Array(Buffer.alloc(48, 0xa1)));
    assert.equal(c.versions['tdx.module.majorSvn'], 1n);
    assert.equal(c.versions['tdx.module.minorSvn'], 3n);
    assert.equal(c.debug, false);
  });

  void test('parsing is byte-exact and length-checked', () => {
    for (const tee of ['sgx', 'tdx'] as const) {
      const q = buildQuote({ tee });
      const p = parseDcapQuote(q);
      assert.equal(p.signedBytes.length, DCAP.headerSize + (tee === 'sgx' ? DCAP.sgxReportSize : DCAP.tdReportSize));
      assert.equal(p.qeReport.isvSvn, 8);
      throwsAttest(() => parseDcapQuote(q.subarray(0, q.length - 1)), 'ATTEST_MALFORMED');
      throwsAttest(() => parseDcapQuote(new Uint8Array([...q, 0])), 'ATTEST_MALFORMED');
      throwsAttest(() => parseDcapQuote(q.subarray(0, 100)), 'ATTEST_MALFORMED');
    }
    throwsAttest(() => parseDcapQuote(buildQuote({ tee: 'sgx', version: 3 })), 'ATTEST_UNSUPPORTED');
    throwsAttest(() => parseDcapQuote(buildQuote({ tee: 'sgx', teeType: 0x42 })), 'ATTEST_UNSUPPORTED');
    throwsAttest(() => parseDcapQuote(new Uint8Array(DCAP.maxQuoteBytes + 1)), 'ATTEST_LIMIT_EXCEEDED');
  });

  void test('flipped bytes in the body, the quote signature, the QE report or its signature', () => {
    for (const tee of ['sgx', 'tdx'] as const) {
      const q = buildQuote({ tee });
      const bodyEnd = DCAP.headerSize + (tee === 'sgx' ? DCAP.sgxReportSize : DCAP.tdReportSize);
      throwsAttest(() => verify(flip(q, DCAP.headerSize + 70)), 'ATTEST_BAD_SIGNATURE'); // measurement
      throwsAttest(() => verify(flip(q, 30)), 'ATTEST_BAD_SIGNATURE'); // header user data
      throwsAttest(() => verify(flip(q, bodyEnd + 4 + 10)), 'ATTEST_BAD_SIGNATURE'); // quote signature
      const qeAt = bodyEnd + 4 + 64 + 64 + 6;
      throwsAttest(() => verify(flip(q, qeAt + 64)), 'ATTEST_BAD_SIGNATURE'); // QE report
      throwsAttest(() => verify(flip(q, qeAt + 384 + 5)), 'ATTEST_BAD_SIGNATURE'); // QE report signature
    }
  });

  void test('the attestation key must be the one the QE report binds', () => {
    const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    // the QE report binds the genuine key, but the quote is signed (and its key field… stays) by another key
    throwsAttest(() => verify(buildQuote({ tee: 'sgx', signingKey: attacker.privateKey })), 'ATTEST_BAD_SIGNATURE');
    // a QE report whose data does not bind the attestation key
    throwsAttest(() => verify(buildQuote({ tee: 'tdx', qeData: randomBytes(64) })), 'ATTEST_KEY_BINDING');
    throwsAttest(() => verify(buildQuote({ tee: 'sgx' }), { qeIdentity: { mrSigner: randomBytes(32), isvProdId: 1, minIsvSvn: 0 } }), 'ATTEST_KEY_BINDING');
    throwsAttest(() => verify(buildQuote({ tee: 'sgx', qeIsvSvn: 5 }), { qeIdentity: { mrSigner: QE_MRSIGNER, isvProdId: 1, minIsvSvn: 6 } }), 'ATTEST_KEY_BINDING');
  });

  void test('the PCK chain must reach the configured Intel root, in order, valid now', () => {
    const otherRoot = makeCert({ subject: '/CN=Intel SGX Root CA (test)/O=Intel Corporation', alg: 'p256', ca: true });
    throwsAttest(() => verify(buildQuote({ tee: 'sgx' }), { roots: [otherRoot.certPem] }), 'ATTEST_UNTRUSTED_ROOT');
    throwsAttest(() => verify(buildQuote({ tee: 'sgx' }, pck.certPem + root.certPem + platformCa.certPem)), 'ATTEST_CHAIN_INVALID');
    throwsAttest(() => verify(buildQuote({ tee: 'sgx' }, platformCa.certPem + pck.certPem + root.certPem)), 'ATTEST_CHAIN_INVALID');
    throwsAttest(() => verify(buildQuote({ tee: 'sgx' }, pck.certPem)), 'ATTEST_MALFORMED');
    throwsAttest(() => verify(buildQuote({ tee: 'tdx' }), { now: new Date(Date.now() + 11 * 365 * 86400_000) }), 'ATTEST_CERT_EXPIRED');
    // the chain without the root is completed from the configured root
    verify(buildQuote({ tee: 'sgx' }, pck.certPem + platformCa.certPem));
  });

  void test('report data must be the expected value', () => {
    throwsAttest(() => verify(buildQuote({ tee: 'tdx' }), { expectedReportData: flip(REPORT_DATA, 0) }), 'ATTEST_NONCE_MISMATCH');
  });

  void test('policy: debug enclaves / TDs / QEs are refused, minimum SVNs, measurement equality', () => {
    const now = new Date();
    const sgxPolicy = { platforms: ['intel-sgx'] as const, measurements: { MRENCLAVE: toHex(MRENCLAVE) }, minVersions: { 'sgx.isvsvn': 4 } };
    enforcePolicy(sgxPolicy, verify(buildQuote({ tee: 'sgx' })), now);
    const dbg = verify(buildQuote({ tee: 'sgx', debug: true }));
    assert.equal(dbg.debug, true);
    throwsAttest(() => enforcePolicy(sgxPolicy, dbg, now), 'ATTEST_POLICY_DEBUG');
    throwsAttest(() => enforcePolicy(sgxPolicy, verify(buildQuote({ tee: 'sgx', qeDebug: true })), now), 'ATTEST_POLICY_DEBUG');
    throwsAttest(() => enforcePolicy(sgxPolicy, verify(buildQuote({ tee: 'sgx', isvSvn: 3 })), now), 'ATTEST_POLICY_VERSION');
    const tdxPolicy = { platforms: ['intel-tdx'] as const, measurements: { MRTD: toHex(MRTD), RTMR0: '10'.repeat(48) }, minVersions: { 'tdx.module.majorSvn': 1 } };
    enforcePolicy(tdxPolicy, verify(buildQuote({ tee: 'tdx' })), now);
    throwsAttest(() => enforcePolicy(tdxPolicy, verify(buildQuote({ tee: 'tdx', debug: true })), now), 'ATTEST_POLICY_DEBUG');
    throwsAttest(() => enforcePolicy({ ...tdxPolicy, measurements: { MRTD: toHex(MRENCLAVE) + '00'.repeat(16) } }, verify(buildQuote({ tee: 'tdx' })), now), 'ATTEST_POLICY_MEASUREMENT_MISMATCH');
    throwsAttest(() => enforcePolicy(tdxPolicy, verify(buildQuote({ tee: 'sgx' })), now), 'ATTEST_POLICY_PLATFORM');
  });
});
