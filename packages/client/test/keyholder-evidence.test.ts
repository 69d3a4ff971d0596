/**
 * `@keyward/client/keyholder-evidence` on SEV-SNP, TDX and SGX evidence, in
 * the exact format a keyholder's helper program prints
 * (`--evidence command`; docs/tee.md §Evidence from a helper program): an
 * SNP report built at the ABI offsets and signed by a synthetic VCEK under a
 * synthetic ASK / ARK, followed by the PEM VCEK and ASK; DCAP v4 quotes with
 * a synthetic PCK chain (the builders follow packages/attest/test/snp.test.ts
 * and dcap.test.ts). The report data is what the keyholder asks its helper
 * for: binding ‖ 32 zero bytes, the binding being the pin protocol's
 * SHA-256(label ‖ nonce ‖ response key).
 *
 * The Nitro path, end to end through a real keyholder and server:
 * packages/server/test/keyholder-process/keyholder-pin-evidence.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { SNP_REPORT } from '@keyward/attest';
import { isKeywardClientError } from '../src/index.js';
import { evidenceKeyholderPin, type EvidenceKeyholderPinOptions } from '../src/keyholder-evidence.js';
import { base64urlEncode, keyholderResponseKeyBinding, type KeyholderAttestation } from '../src/http/keyholder-pin.js';
import { makeCert, type TestCert } from '../../attest/test/helpers.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const cat = (...p: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(p));
const le16 = (n: number): Uint8Array => Uint8Array.of(n & 0xff, n >> 8);
const le32 = (n: number): Uint8Array => Uint8Array.of(n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff);
/** What the keyholder hands its helper: reportData = binding ‖ 0³². */
const reportDataOf = (binding: Uint8Array): Uint8Array => cat(binding, new Uint8Array(32));

/** The pin protocol's binding for a fresh nonce and a response key. */
const freshBinding = (): Uint8Array => keyholderResponseKeyBinding(randomBytes(32), randomBytes(32));

function expectCode(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isKeywardClientError(e), String(e));
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

/** Runs the verifier as KeywardHttpClient does: challenge for the offer, then verify the evidence against the binding. */
function attest(o: EvidenceKeyholderPinOptions, platform: string, evidence: Uint8Array, binding: Uint8Array): KeyholderAttestation {
  const pending = evidenceKeyholderPin(o).challenge(platform, {});
  assert.deepEqual(pending.challenge, {});
  return pending.verify({ evidence: base64urlEncode(evidence) }, binding) as KeyholderAttestation;
}

void describe('evidenceKeyholderPin: SEV-SNP (report ‖ PEM VCEK ‖ PEM ASK)', () => {
  const MEASUREMENT = randomBytes(48);
  const CHIP_ID = randomBytes(64);
  const TCB = Uint8Array.of(3, 0, 0, 0, 0, 0, 8, 115); // boot loader 3, TEE 0, SNP 8, microcode 115
  let ark: TestCert;
  let ask: TestCert;
  let vcek: TestCert;

  /** A report at the ABI offsets, signed by the VCEK (R, S little-endian, 72 bytes each); policy bit 19 = debug. */
  function report(reportData: Uint8Array, o: { debug?: boolean } = {}): Uint8Array {
    const b = new Uint8Array(SNP_REPORT.size);
    const v = new DataView(b.buffer);
    v.setUint32(0x00, 3, true);
    v.setUint32(0x04, 2, true);
    v.setBigUint64(0x08, 0x30000n | (o.debug ? 1n << 19n : 0n), true);
    v.setUint32(0x34, 1, true);
    b.set(TCB, 0x38);
    b.set(reportData, 0x50);
    b.set(MEASUREMENT, 0x90);
    b.set(TCB, 0x180);
    b.set(CHIP_ID, 0x1a0);
    b.set(TCB, 0x1e0);
    b.set([5, 55, 1], 0x1e8);
    b.set(TCB, 0x1f0);
    const sig = sign('sha384', b.subarray(0, SNP_REPORT.signedSize), { key: createPrivateKey(vcek.keyPem), dsaEncoding: 'ieee-p1363' });
    b.set(sig.subarray(0, 48).reverse(), 0x2a0);
    b.set(sig.subarray(48).reverse(), 0x2a0 + 72);
    return b;
  }
  /** What an SNP helper prints. */
  const evidence = (binding: Uint8Array, o: { debug?: boolean; certs?: string } = {}): Uint8Array =>
    cat(report(reportDataOf(binding), o), new TextEncoder().encode(o.certs ?? vcek.certPem + ask.certPem));
  const pin = (over: Partial<NonNullable<EvidenceKeyholderPinOptions['platforms']['amd-sev-snp']>> = {}, o: Partial<EvidenceKeyholderPinOptions> = {}): EvidenceKeyholderPinOptions =>
    ({ platforms: { 'amd-sev-snp': { measurements: { MEASUREMENT: hex(MEASUREMENT) }, ...over } }, roots: { amdRoots: [ark.certPem] }, ...o });

  before(() => {
    const colonHex = (b: Uint8Array): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
    ark = makeCert({ subject: '/CN=ARK-Test/O=Advanced Micro Devices', alg: 'rsa-pss', ca: true });
    ask = makeCert({ subject: '/CN=SEV-Test/O=Advanced Micro Devices', alg: 'rsa-pss', ca: true, issuer: ark });
    vcek = makeCert({
      subject: '/CN=SEV-VCEK/O=Advanced Micro Devices', alg: 'p384', ca: false, issuer: ask, extensions: [
        `1.3.6.1.4.1.3704.1.3.1=DER:02:01:${colonHex(TCB.subarray(0, 1))}`, `1.3.6.1.4.1.3704.1.3.2=DER:02:01:${colonHex(TCB.subarray(1, 2))}`,
        `1.3.6.1.4.1.3704.1.3.3=DER:02:01:${colonHex(TCB.subarray(6, 7))}`, `1.3.6.1.4.1.3704.1.3.8=DER:02:01:${colonHex(TCB.subarray(7, 8))}`,
        `1.3.6.1.4.1.3704.1.4=DER:04:40:${colonHex(CHIP_ID)}`,
      ],
    });
  });

  void test('evidence binding the pin protocol\'s binding, from the pinned ARK, with the pinned MEASUREMENT, is accepted', () => {
    const binding = freshBinding();
    const a = attest(pin({ minVersions: { 'snp.tcb.snp': 8 } }), 'amd-sev-snp', evidence(binding), binding);
    assert.equal(a.platform, 'amd-sev-snp');
    assert.equal(a.measurements.MEASUREMENT, hex(MEASUREMENT));
  });

  void test('report data that is not binding ‖ 0³² — another binding, or the right one padded otherwise — is KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', () => {
    const binding = freshBinding();
    expectCode(() => attest(pin(), 'amd-sev-snp', evidence(freshBinding()), binding), 'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', /ATTEST_NONCE_MISMATCH/);
    const padded = cat(report(cat(binding, binding)), new TextEncoder().encode(vcek.certPem + ask.certPem));
    expectCode(() => attest(pin(), 'amd-sev-snp', padded, binding), 'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', /ATTEST_NONCE_MISMATCH/);
  });

  void test('another root (the default AMD ARKs), a missing ASK, an expired chain at the injected clock: KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', () => {
    const binding = freshBinding();
    const { roots: _r, ...noRoots } = pin();
    expectCode(() => attest(noRoots, 'amd-sev-snp', evidence(binding), binding), 'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', /ATTEST_UNTRUSTED_ROOT/);
    expectCode(() => attest(pin(), 'amd-sev-snp', evidence(binding, { certs: vcek.certPem }), binding), 'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', /ATTEST_MALFORMED/);
    expectCode(() => attest(pin({}, { now: () => new Date('2100-01-01T00:00:00Z') }), 'amd-sev-snp', evidence(binding), binding), 'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', /ATTEST_CERT_EXPIRED/);
  });

  void test('another MEASUREMENT, a required measurement SNP does not report, a TCB below the minimum, a debug guest: KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH', () => {
    const binding = freshBinding();
    expectCode(() => attest(pin({ measurements: { MEASUREMENT: 'ab'.repeat(48) } }), 'amd-sev-snp', evidence(binding), binding), 'KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH', /ATTEST_POLICY_MEASUREMENT_MISMATCH/);
    expectCode(() => attest(pin({ measurements: { MEASUREMENT: hex(MEASUREMENT), MRTD: 'ab'.repeat(48) } }), 'amd-sev-snp', evidence(binding), binding), 'KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH', /ATTEST_POLICY_MEASUREMENT_MISSING/);
    expectCode(() => attest(pin({ minVersions: { 'snp.tcb.snp': 9 } }), 'amd-sev-snp', evidence(binding), binding), 'KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH', /ATTEST_POLICY_VERSION/);
    expectCode(() => attest(pin(), 'amd-sev-snp', evidence(binding, { debug: true }), binding), 'KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH', /ATTEST_POLICY_DEBUG/);
    assert.equal(attest(pin({ allowDebug: true }), 'amd-sev-snp', evidence(binding, { debug: true }), binding).measurements.MEASUREMENT, hex(MEASUREMENT));
  });

  void test('a keyholder offering another platform, a non-empty offer, or evidence that is not base64url is refused', () => {
    expectCode(() => evidenceKeyholderPin(pin()).challenge('aws-nitro', {}), 'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', /offers aws-nitro evidence; this pin accepts amd-sev-snp/);
    expectCode(() => evidenceKeyholderPin(pin()).challenge('tpm2', {}), 'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED');
    expectCode(() => evidenceKeyholderPin(pin()).challenge('amd-sev-snp', { ekCertificate: 'AA' }), 'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', /offers nothing/);
    const pending = evidenceKeyholderPin(pin()).challenge('amd-sev-snp', {});
    for (const bad of [{}, { evidence: 'not base64url!' }, { evidence: '' }, { evidence: 'A'.repeat(100_004) }]) {
      expectCode(() => pending.verify(bad, freshBinding()), 'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED');
    }
  });
});

void describe('evidenceKeyholderPin: TDX and SGX (DCAP v4 quotes)', () => {
  const MRTD = randomBytes(48);
  const MRENCLAVE = randomBytes(32);
  let root: TestCert;
  let platformCa: TestCert;
  let pck: TestCert;
  let attKey: { publicKey: KeyObject; privateKey: KeyObject };

  function sgxReport(f: { mrEnclave: Uint8Array; debug: boolean; reportData: Uint8Array; isvSvn?: number }): Uint8Array {
    const b = new Uint8Array(384);
    b[48] = f.debug ? 0x07 : 0x05; // ATTRIBUTES.FLAGS: INIT | (DEBUG) | MODE64BIT
    b.set(f.mrEnclave, 64);
    b.set(Buffer.alloc(32, 0x5e), 128);
    b.set(le16(7), 256);
    b.set(le16(f.isvSvn ?? 4), 258);
    b.set(f.reportData, 320);
    return b;
  }
  function tdReport(f: { debug: boolean; reportData: Uint8Array }): Uint8Array {
    const b = new Uint8Array(584);
    b.set([3, 1], 0);
    b.set(Buffer.alloc(48, 0xa1), 16);
    b[120] = f.debug ? 0x01 : 0x00; // TDATTRIBUTES.DEBUG
    b.set(MRTD, 136);
    for (let i = 0; i < 4; i++) b.set(Buffer.alloc(48, 0x10 + i), 328 + 48 * i);
    b.set(f.reportData, 520);
    return b;
  }
  /** What a TDX / SGX helper prints: the DCAP v4 quote, its PCK chain inside. */
  function quote(tee: 'tdx' | 'sgx', binding: Uint8Array, o: { debug?: boolean } = {}): Uint8Array {
    const header = cat(le16(4), le16(2), le32(tee === 'sgx' ? 0 : 0x81), new Uint8Array(4), Buffer.from('939a7233f79c4ca9940a0db3957f0607', 'hex'), new Uint8Array(20));
    const reportData = reportDataOf(binding);
    const body = tee === 'sgx' ? sgxReport({ mrEnclave: MRENCLAVE, debug: o.debug ?? false, reportData }) : tdReport({ debug: o.debug ?? false, reportData });
    const jwk = attKey.publicKey.export({ format: 'jwk' });
    const attRaw = cat(Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url'));
    const qeAuth = randomBytes(32);
    const qeReport = sgxReport({ mrEnclave: Buffer.alloc(32, 0x9e), debug: false, reportData: cat(createHash('sha256').update(attRaw).update(qeAuth).digest(), new Uint8Array(32)), isvSvn: 8 });
    const qeSig = sign('sha256', qeReport, { key: createPrivateKey(pck.keyPem), dsaEncoding: 'ieee-p1363' });
    const pem = Buffer.from(pck.certPem + platformCa.certPem + root.certPem + '\0');
    const certData = cat(qeReport, qeSig, le16(qeAuth.length), qeAuth, cat(le16(5), le32(pem.length), pem));
    const sig = sign('sha256', cat(header, body), { key: attKey.privateKey, dsaEncoding: 'ieee-p1363' });
    return cat(header, body, le32(sig.length + attRaw.length + 6 + certData.length), sig, attRaw, le16(6), le32(certData.length), certData);
  }
  const pin = (platforms: EvidenceKeyholderPinOptions['platforms'], o: Partial<EvidenceKeyholderPinOptions> = {}): EvidenceKeyholderPinOptions => ({ platforms, roots: { intelRoots: [root.certPem] }, ...o });
  const tdx = (over: Record<string, unknown> = {}) => pin({ 'intel-tdx': { measurements: { MRTD: hex(MRTD), RTMR0: '10'.repeat(48) }, ...over } });

  before(() => {
    root = makeCert({ subject: '/CN=Intel SGX Root CA (test)/O=Intel Corporation', alg: 'p256', ca: true });
    platformCa = makeCert({ subject: '/CN=Intel SGX PCK Platform CA (test)/O=Intel Corporation', alg: 'p256', ca: true, issuer: root });
    pck = makeCert({ subject: '/CN=Intel SGX PCK Certificate (test)/O=Intel Corporation', alg: 'p256', ca: false, issuer: platformCa });
    attKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  });

  void test('a TD quote binding the pin protocol\'s binding with the pinned MRTD and RTMR0 is accepted; an SGX enclave likewise with its MRENCLAVE', () => {
    const binding = freshBinding();
    const a = attest(tdx({ minVersions: { 'tdx.module.majorSvn': 1 } }), 'intel-tdx', quote('tdx', binding), binding);
    assert.equal(a.platform, 'intel-tdx');
    assert.equal(a.measurements.MRTD, hex(MRTD));
    const s = attest(pin({ 'intel-sgx': { measurements: { MRENCLAVE: hex(MRENCLAVE), MRSIGNER: '5e'.repeat(32) } } }), 'intel-sgx', quote('sgx', binding), binding);
    assert.equal(s.measurements.MRENCLAVE, hex(MRENCLAVE));
    // One pin may accept several platforms, each with its own measurements.
    const both = pin({ 'intel-tdx': { measurements: { MRTD: hex(MRTD) } }, 'intel-sgx': { measurements: { MRENCLAVE: hex(MRENCLAVE) } } });
    assert.equal(attest(both, 'intel-sgx', quote('sgx', binding), binding).platform, 'intel-sgx');
    assert.equal(attest(both, 'intel-tdx', quote('tdx', binding), binding).platform, 'intel-tdx');
  });

  void test('another binding, an SGX quote offered as TDX, the default Intel root, a root that is no certificate: KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', () => {
    const binding = freshBinding();
    expectCode(() => attest(tdx(), 'intel-tdx', quote('tdx', freshBinding()), binding), 'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', /ATTEST_NONCE_MISMATCH/);
    const both = pin({ 'intel-tdx': { measurements: { MRTD: hex(MRTD) } }, 'intel-sgx': { measurements: { MRENCLAVE: hex(MRENCLAVE) } } });
    expectCode(() => attest(both, 'intel-tdx', quote('sgx', binding), binding), 'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', /ATTEST_MALFORMED/);
    expectCode(() => attest({ platforms: tdx().platforms }, 'intel-tdx', quote('tdx', binding), binding), 'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', /ATTEST_UNTRUSTED_ROOT/);
    // PEM text that is no certificate passes the pin's shape check and is refused by the verifier.
    const garbled = { platforms: tdx().platforms, roots: { intelRoots: ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'] } };
    expectCode(() => attest(garbled, 'intel-tdx', quote('tdx', binding), binding), 'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', /ATTEST_INVALID_ARGUMENT/);
  });

  void test('another MRTD, a missing RTMR pin name, a debug TD: KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH unless debug is allowed', () => {
    const binding = freshBinding();
    expectCode(() => attest(tdx({ measurements: { MRTD: 'ab'.repeat(48) } }), 'intel-tdx', quote('tdx', binding), binding), 'KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH', /ATTEST_POLICY_MEASUREMENT_MISMATCH/);
    expectCode(() => attest(tdx({ measurements: { MRTD: hex(MRTD), RTMR7: 'ab'.repeat(48) } }), 'intel-tdx', quote('tdx', binding), binding), 'KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH', /ATTEST_POLICY_MEASUREMENT_MISSING/);
    expectCode(() => attest(tdx(), 'intel-tdx', quote('tdx', binding, { debug: true }), binding), 'KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH', /ATTEST_POLICY_DEBUG/);
    assert.equal(attest(tdx({ allowDebug: true }), 'intel-tdx', quote('tdx', binding, { debug: true }), binding).platform, 'intel-tdx');
  });
});

void test('evidenceKeyholderPin refuses a pin that pins nothing or is malformed (KW_INVALID_ARGUMENT)', () => {
  const m = { MRTD: 'ab'.repeat(48) };
  const bad: unknown[] = [
    undefined, {}, { platforms: {} }, { platforms: { 'intel-tdx': { measurements: {} } } }, { platforms: { 'intel-tdx': {} } },
    { platforms: { tpm2: { measurements: { 'sha256:PCR16': 'ab'.repeat(32) } } } }, { platforms: { 'intel-tdx': { measurements: { MRTD: 'XYZ' } } } },
    { platforms: { 'intel-tdx': { measurements: m, extra: true } } }, { platforms: { 'intel-tdx': { measurements: m, allowDebug: 'yes' } } },
    { platforms: { 'intel-tdx': { measurements: m } }, roots: { intelRoots: [] } }, { platforms: { 'intel-tdx': { measurements: m } }, roots: { intelRoots: ['not a certificate'] } },
    { platforms: { 'intel-tdx': { measurements: m } }, now: 'yesterday' },
  ];
  for (const o of bad) expectCode(() => evidenceKeyholderPin(o as EvidenceKeyholderPinOptions), 'KW_INVALID_ARGUMENT');
});
