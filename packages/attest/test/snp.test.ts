/**
 * AMD SEV-SNP reports built byte by byte from the ABI layout and signed by a
 * synthetic VCEK (P-384) under a synthetic ASK/ARK (RSA-PSS, like AMD's),
 * with the VCEK's TCB and hwID extensions. The real AMD roots are documented
 * in docs/tee.md; nothing is downloaded.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { SNP_REPORT, enforcePolicy, parseSnpReport, verifySnpReport, type AttestationClaims } from '../src/index.js';
import { flip, makeCert, throwsAttest, toHex, type TestCert } from './helpers.js';

interface ReportFields {
  version?: number;
  guestSvn?: number;
  policy?: bigint;
  keyInfo?: number;
  sigAlgo?: number;
  reportData?: Uint8Array;
  measurement?: Uint8Array;
  hostData?: Uint8Array;
  reportedTcb?: Uint8Array;
  chipId?: Uint8Array;
}

const MEASUREMENT = randomBytes(48);
const CHIP_ID = randomBytes(64);
const REPORT_DATA = randomBytes(64);
// boot loader 3, TEE 0, reserved, SNP 8, microcode 115 (Milan/Genoa layout)
const TCB = Uint8Array.of(3, 0, 0, 0, 0, 0, 8, 115);

/** A report laid out at the ABI offsets, signed with `keyPem` (R and S little-endian, 72 bytes each). */
function buildReport(keyPem: string, f: ReportFields = {}): Uint8Array {
  const b = new Uint8Array(SNP_REPORT.size);
  const v = new DataView(b.buffer);
  v.setUint32(0x00, f.version ?? 3, true);
  v.setUint32(0x04, f.guestSvn ?? 2, true);
  v.setBigUint64(0x08, f.policy ?? 0x30000n, true);
  v.setUint32(0x34, f.sigAlgo ?? 1, true);
  b.set(TCB, 0x38);
  v.setUint32(0x48, f.keyInfo ?? 0, true);
  b.set(f.reportData ?? REPORT_DATA, 0x50);
  b.set(f.measurement ?? MEASUREMENT, 0x90);
  b.set(f.hostData ?? new Uint8Array(32), 0xc0);
  b.set(f.reportedTcb ?? TCB, 0x180);
  b.set(f.chipId ?? CHIP_ID, 0x1a0);
  b.set(TCB, 0x1e0);
  b.set([5, 55, 1], 0x1e8); // build 5, minor 55, major 1
  b.set(TCB, 0x1f0);
  const sig = sign('sha384', b.subarray(0, SNP_REPORT.signedSize), { key: createPrivateKey(keyPem), dsaEncoding: 'ieee-p1363' });
  b.set(sig.subarray(0, 48).reverse(), 0x2a0);
  b.set(sig.subarray(48).reverse(), 0x2a0 + 72);
  return b;
}

const colonHex = (b: Uint8Array): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
const vcekExtensions = (tcb: Uint8Array, chipId: Uint8Array): string[] => [
  `1.3.6.1.4.1.3704.1.3.1=DER:02:01:${colonHex(tcb.subarray(0, 1))}`,
  `1.3.6.1.4.1.3704.1.3.2=DER:02:01:${colonHex(tcb.subarray(1, 2))}`,
  `1.3.6.1.4.1.3704.1.3.3=DER:02:01:${colonHex(tcb.subarray(6, 7))}`,
  `1.3.6.1.4.1.3704.1.3.8=DER:02:01:${colonHex(tcb.subarray(7, 8))}`,
  `1.3.6.1.4.1.3704.1.4=DER:04:40:${colonHex(chipId)}`,
];

void describe('AMD SEV-SNP reports (synthetic VCEK/ASK/ARK)', () => {
  let ark: TestCert;
  let ask: TestCert;
  let vcek: TestCert;
  const verify = (report: Uint8Array, o: { vcek?: TestCert; roots?: string[]; now?: Date; expectedReportData?: Uint8Array } = {}): AttestationClaims =>
    verifySnpReport(report, { vcek: (o.vcek ?? vcek).der, intermediates: [ask.der], roots: o.roots ?? [ark.certPem], now: o.now ?? new Date(), expectedReportData: o.expectedReportData ?? REPORT_DATA });

  before(() => {
    ark = makeCert({ subject: '/CN=ARK-Test/O=Advanced Micro Devices', alg: 'rsa-pss', ca: true });
    ask = makeCert({ subject: '/CN=SEV-Test/O=Advanced Micro Devices', alg: 'rsa-pss', ca: true, issuer: ark });
    vcek = makeCert({ subject: '/CN=SEV-VCEK/O=Advanced Micro Devices', alg: 'p384', ca: false, issuer: ask, extensions: vcekExtensions(TCB, CHIP_ID) });
  });

  void test('a signed report verifies and yields its measurement, TCB, report data', () => {
    const c = verify(buildReport(vcek.keyPem));
    assert.equal(c.platform, 'amd-sev-snp');
    assert.deepEqual(c.measurements.MEASUREMENT, new Uint8Array(MEASUREMENT));
    assert.deepEqual(c.nonce, new Uint8Array(REPORT_DATA));
    assert.equal(c.debug, false);
    assert.deepEqual(c.versions, { 'snp.guestSvn': 2n, 'snp.tcb.bootloader': 3n, 'snp.tcb.tee': 0n, 'snp.tcb.snp': 8n, 'snp.tcb.microcode': 115n, 'snp.firmware': 0x013705n });
    assert.equal(c.extra.chipId, toHex(CHIP_ID));
  });

  void test('parsing is byte-exact: fields at their ABI offsets, wrong lengths refused', () => {
    const r = buildReport(vcek.keyPem, { guestSvn: 0x01020304, policy: 0x30000n | (1n << 19n) });
    const p = parseSnpReport(r);
    assert.equal(p.guestSvn, 0x01020304);
    assert.equal(p.policy, 0x30000n | (1n << 19n));
    assert.deepEqual(p.chipId, new Uint8Array(CHIP_ID));
    assert.deepEqual(p.reportedTcb, TCB);
    assert.equal(p.currentMajor, 1);
    throwsAttest(() => parseSnpReport(r.subarray(0, r.length - 1)), 'ATTEST_MALFORMED');
    throwsAttest(() => parseSnpReport(new Uint8Array([...r, 0])), 'ATTEST_MALFORMED');
    throwsAttest(() => parseSnpReport(buildReport(vcek.keyPem, { version: 1 })), 'ATTEST_UNSUPPORTED');
    throwsAttest(() => parseSnpReport(buildReport(vcek.keyPem, { sigAlgo: 2 })), 'ATTEST_UNSUPPORTED');
    throwsAttest(() => parseSnpReport(flip(r, 0x2a0 + 60)), 'ATTEST_MALFORMED'); // R padding not zero
  });

  void test('a flipped byte in the signed part or the signature: bad signature', () => {
    const r = buildReport(vcek.keyPem);
    throwsAttest(() => verify(flip(r, 0x90)), 'ATTEST_BAD_SIGNATURE'); // MEASUREMENT
    throwsAttest(() => verify(flip(r, 0x08)), 'ATTEST_BAD_SIGNATURE'); // POLICY
    throwsAttest(() => verify(flip(r, 0x2a0)), 'ATTEST_BAD_SIGNATURE');
    // signed by another P-384 key than the VCEK
    const other = makeCert({ subject: '/CN=other', alg: 'p384', ca: false, issuer: ask, extensions: vcekExtensions(TCB, CHIP_ID) });
    throwsAttest(() => verify(buildReport(other.keyPem)), 'ATTEST_BAD_SIGNATURE');
  });

  void test('the VCEK must match the reported TCB and the chip', () => {
    throwsAttest(() => verify(buildReport(vcek.keyPem, { reportedTcb: Uint8Array.of(3, 0, 0, 0, 0, 0, 9, 115) })), 'ATTEST_KEY_BINDING');
    throwsAttest(() => verify(buildReport(vcek.keyPem, { chipId: randomBytes(64) })), 'ATTEST_KEY_BINDING');
    // MASK_CHIP_KEY: the chip ID is not reported, and not compared
    verify(buildReport(vcek.keyPem, { keyInfo: 0b10, chipId: new Uint8Array(64) }));
    // VLEK-signed reports are not supported
    throwsAttest(() => verify(buildReport(vcek.keyPem, { keyInfo: 1 << 2 })), 'ATTEST_UNSUPPORTED');
  });

  void test('the chain must reach the configured ARK and be valid now', () => {
    const otherArk = makeCert({ subject: '/CN=ARK-Test/O=Advanced Micro Devices', alg: 'rsa-pss', ca: true });
    throwsAttest(() => verify(buildReport(vcek.keyPem), { roots: [otherArk.certPem] }), 'ATTEST_UNTRUSTED_ROOT');
    throwsAttest(() => verify(buildReport(vcek.keyPem), { now: new Date(Date.now() + 11 * 365 * 86400_000) }), 'ATTEST_CERT_EXPIRED');
    throwsAttest(() => verify(buildReport(vcek.keyPem), { now: new Date(Date.now() - 86400_000) }), 'ATTEST_CERT_NOT_YET_VALID');
  });

  void test('report data must be the expected value', () => {
    throwsAttest(() => verify(buildReport(vcek.keyPem), { expectedReportData: flip(REPORT_DATA, 63) }), 'ATTEST_NONCE_MISMATCH');
  });

  void test('policy: measurement equality, debug bit, minimum TCB and guest SVN', () => {
    const policy = { platforms: ['amd-sev-snp'] as const, measurements: { MEASUREMENT: toHex(MEASUREMENT) }, minVersions: { 'snp.tcb.snp': 8, 'snp.tcb.microcode': 115, 'snp.guestSvn': 2 } };
    const now = new Date();
    enforcePolicy(policy, verify(buildReport(vcek.keyPem)), now);
    throwsAttest(() => enforcePolicy(policy, verify(buildReport(vcek.keyPem, { measurement: randomBytes(48) })), now), 'ATTEST_POLICY_MEASUREMENT_MISMATCH');
    const debug = verify(buildReport(vcek.keyPem, { policy: 0x30000n | (1n << 19n) }));
    assert.equal(debug.debug, true);
    throwsAttest(() => enforcePolicy(policy, debug, now), 'ATTEST_POLICY_DEBUG');
    throwsAttest(() => enforcePolicy({ ...policy, minVersions: { 'snp.tcb.snp': 9 } }, verify(buildReport(vcek.keyPem)), now), 'ATTEST_POLICY_VERSION');
    throwsAttest(() => enforcePolicy({ ...policy, minVersions: { 'snp.guestSvn': 3 } }, verify(buildReport(vcek.keyPem)), now), 'ATTEST_POLICY_VERSION');
    throwsAttest(() => enforcePolicy({ ...policy, platforms: ['aws-nitro'] }, verify(buildReport(vcek.keyPem)), now), 'ATTEST_POLICY_PLATFORM');
  });
});
