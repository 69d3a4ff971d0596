/**
 * AMD SEV-SNP attestation reports (SEV-SNP ABI specification, ATTESTATION_REPORT,
 * 1184 bytes, versions 2–5): byte-exact parsing, ECDSA P-384 / SHA-384
 * signature by the VCEK, VCEK → ASK → ARK chain, and the VCEK's TCB and chip
 * extensions bound to the report.
 */
import { verify, type X509Certificate } from 'node:crypto';
import { abytes, adate, copy, equalBytes, isZero, Reader, toHex } from './bytes.js';
import type { AttestationClaims } from './claims.js';
import { certificateExtensions, derOctets, derSmallInteger } from './der.js';
import { AttestError, check } from './errors.js';
import { parseCertificate, parseRoots, verifyPath } from './x509.js';

/**
 * Sizes and offsets of the report.
 *
 * @example
 * SNP_REPORT.size // 1184
 */
export const SNP_REPORT = { size: 0x4a0, signedSize: 0x2a0, signatureOffset: 0x2a0 } as const;

/** Guest policy bit: debugging allowed. */
const POLICY_DEBUG = 1n << 19n;

/** A parsed SEV-SNP attestation report. TCB values are the raw 64-bit fields. */
export interface SnpReport {
  readonly version: number;
  readonly guestSvn: number;
  readonly policy: bigint;
  readonly familyId: Uint8Array;
  readonly imageId: Uint8Array;
  readonly vmpl: number;
  readonly signatureAlgo: number;
  readonly currentTcb: Uint8Array;
  readonly platformInfo: bigint;
  readonly authorKeyEn: boolean;
  readonly maskChipKey: boolean;
  readonly signingKey: number;
  readonly reportData: Uint8Array;
  readonly measurement: Uint8Array;
  readonly hostData: Uint8Array;
  readonly idKeyDigest: Uint8Array;
  readonly authorKeyDigest: Uint8Array;
  readonly reportId: Uint8Array;
  readonly reportIdMa: Uint8Array;
  readonly reportedTcb: Uint8Array;
  readonly chipId: Uint8Array;
  readonly committedTcb: Uint8Array;
  readonly currentBuild: number;
  readonly currentMinor: number;
  readonly currentMajor: number;
  readonly launchTcb: Uint8Array;
  /** r and s, big-endian, 48 bytes each. */
  readonly signature: { r: Uint8Array; s: Uint8Array };
}

/**
 * Parses a 1184-byte SEV-SNP attestation report; ATTEST_MALFORMED on a wrong
 * length or non-zero signature padding, ATTEST_UNSUPPORTED on other versions
 * or algorithms.
 *
 * @example
 * parseSnpReport(report).measurement // 48 bytes
 */
export function parseSnpReport(bytes: Uint8Array): SnpReport {
  abytes(bytes, 'report');
  check(bytes.length === SNP_REPORT.size, `SEV-SNP report is ${bytes.length} bytes, not ${SNP_REPORT.size}`);
  const r = new Reader(bytes, 'SEV-SNP report');
  const version = r.u32le('VERSION');
  if (version < 2 || version > 5) throw new AttestError('ATTEST_UNSUPPORTED', `SEV-SNP report version ${version} (2..5 accepted)`);
  const guestSvn = r.u32le('GUEST_SVN');
  const policy = r.u64le('POLICY');
  const familyId = r.bytes(16, 'FAMILY_ID');
  const imageId = r.bytes(16, 'IMAGE_ID');
  const vmpl = r.u32le('VMPL');
  const signatureAlgo = r.u32le('SIGNATURE_ALGO');
  if (signatureAlgo !== 1) throw new AttestError('ATTEST_UNSUPPORTED', `SEV-SNP signature algorithm ${signatureAlgo} is not ECDSA P-384 with SHA-384 (1)`);
  const currentTcb = r.bytes(8, 'CURRENT_TCB');
  const platformInfo = r.u64le('PLATFORM_INFO');
  const keyInfo = r.u32le('KEY_INFO');
  r.bytes(4, 'reserved');
  const reportData = r.bytes(64, 'REPORT_DATA');
  const measurement = r.bytes(48, 'MEASUREMENT');
  const hostData = r.bytes(32, 'HOST_DATA');
  const idKeyDigest = r.bytes(48, 'ID_KEY_DIGEST');
  const authorKeyDigest = r.bytes(48, 'AUTHOR_KEY_DIGEST');
  const reportId = r.bytes(32, 'REPORT_ID');
  const reportIdMa = r.bytes(32, 'REPORT_ID_MA');
  const reportedTcb = r.bytes(8, 'REPORTED_TCB');
  r.bytes(0x1a0 - 0x188, 'reserved (CPUID)');
  const chipId = r.bytes(64, 'CHIP_ID');
  const committedTcb = r.bytes(8, 'COMMITTED_TCB');
  const currentBuild = r.u8('CURRENT_BUILD');
  const currentMinor = r.u8('CURRENT_MINOR');
  const currentMajor = r.u8('CURRENT_MAJOR');
  r.u8('reserved');
  r.bytes(4, 'COMMITTED_VERSION');
  const launchTcb = r.bytes(8, 'LAUNCH_TCB');
  r.bytes(SNP_REPORT.signatureOffset - r.pos, 'reserved');
  const rLe = r.bytes(72, 'SIGNATURE.R');
  const sLe = r.bytes(72, 'SIGNATURE.S');
  r.bytes(368, 'SIGNATURE.reserved');
  r.end();
  // R and S are little-endian, zero-extended to 72 bytes.
  check(isZero(rLe.subarray(48)) && isZero(sLe.subarray(48)), 'SEV-SNP signature R/S have non-zero bytes beyond 48');
  return {
    version,
    guestSvn,
    policy,
    familyId,
    imageId,
    vmpl,
    signatureAlgo,
    currentTcb,
    platformInfo,
    authorKeyEn: (keyInfo & 1) === 1,
    maskChipKey: (keyInfo & 2) === 2,
    signingKey: (keyInfo >> 2) & 7,
    reportData,
    measurement,
    hostData,
    idKeyDigest,
    authorKeyDigest,
    reportId,
    reportIdMa,
    reportedTcb,
    chipId,
    committedTcb,
    currentBuild,
    currentMinor,
    currentMajor,
    launchTcb,
    signature: { r: rLe.slice(0, 48).reverse(), s: sLe.slice(0, 48).reverse() },
  };
}

/** Options of {@link verifySnpReport}. */
export interface SnpVerifyOptions {
  /** The VCEK certificate (DER or PEM) for this chip and reported TCB. */
  readonly vcek: Uint8Array | string;
  /** The ASK certificate (the VCEK's issuer), and anything between it and the ARK. */
  readonly intermediates: readonly (Uint8Array | string)[];
  /** The pinned AMD root keys (ARK) of the product line. */
  readonly roots: readonly (X509Certificate | string | Uint8Array)[];
  readonly now: Date;
  /** When given, REPORT_DATA must equal it (64 bytes). */
  readonly expectedReportData?: Uint8Array;
}

/** AMD VCEK extension OIDs (AMD "Versioned Chip Endorsement Key" specification). */
const VCEK_OID = {
  bootloader: '1.3.6.1.4.1.3704.1.3.1',
  tee: '1.3.6.1.4.1.3704.1.3.2',
  snp: '1.3.6.1.4.1.3704.1.3.3',
  microcode: '1.3.6.1.4.1.3704.1.3.8',
  hwid: '1.3.6.1.4.1.3704.1.4',
} as const;

/**
 * Verifies a SEV-SNP report and returns its claims.
 *
 * Checks: structure; the VCEK → ASK → ARK path at `now`; the VCEK is P-384
 * and its TCB extensions equal REPORTED_TCB and its hwID equals CHIP_ID (unless
 * the chip ID is masked); the ECDSA P-384 signature over bytes 0..0x29F; the
 * report data. Milan/Genoa TCB layout (boot loader, TEE, SNP, microcode).
 *
 * @example
 * const claims = verifySnpReport(report, { vcek, intermediates: [ask], roots: [ARK_MILAN_PEM], now: new Date(), expectedReportData });
 * claims.measurements.MEASUREMENT
 */
export function verifySnpReport(report: Uint8Array, options: SnpVerifyOptions): AttestationClaims {
  const now = adate(options.now);
  const roots = parseRoots(options.roots, 'roots');
  const rep = parseSnpReport(report);
  if (rep.signingKey !== 0) throw new AttestError('ATTEST_UNSUPPORTED', `SEV-SNP report signed by key type ${rep.signingKey}; only the VCEK (0) is supported`);

  const vcek = parseCertificate(options.vcek, 'VCEK certificate');
  const chain = (options.intermediates ?? []).map((c, i) => parseCertificate(c, `SEV-SNP intermediate ${i}`));
  verifyPath([vcek, ...chain], roots, now, 'in-chain-or-issued', 'SEV-SNP');
  const key = vcek.publicKey;
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'secp384r1') throw new AttestError('ATTEST_UNSUPPORTED', 'the VCEK is not an ECDSA P-384 key');

  const ext = certificateExtensions(vcek.raw);
  const tcb = rep.reportedTcb; // [0] boot loader, [1] TEE, [2..5] reserved, [6] SNP, [7] microcode
  const expect: [string, number][] = [
    [VCEK_OID.bootloader, tcb[0]!],
    [VCEK_OID.tee, tcb[1]!],
    [VCEK_OID.snp, tcb[6]!],
    [VCEK_OID.microcode, tcb[7]!],
  ];
  for (const [oid, want] of expect) {
    const v = ext.get(oid);
    if (v === undefined || derSmallInteger(v) !== want) throw new AttestError('ATTEST_KEY_BINDING', `the VCEK TCB extension ${oid} does not match REPORTED_TCB`);
  }
  if (!rep.maskChipKey) {
    const hwid = ext.get(VCEK_OID.hwid);
    if (hwid === undefined || !equalBytes(derOctets(hwid, 64), rep.chipId)) throw new AttestError('ATTEST_KEY_BINDING', 'the VCEK hwID is not the report CHIP_ID');
  }

  const sig = Buffer.concat([rep.signature.r, rep.signature.s]);
  let ok = false;
  try {
    ok = verify('sha384', report.subarray(0, SNP_REPORT.signedSize), { key, dsaEncoding: 'ieee-p1363' }, sig);
  } catch (e) {
    throw new AttestError('ATTEST_BAD_SIGNATURE', 'SEV-SNP report signature could not be checked', { cause: e });
  }
  if (!ok) throw new AttestError('ATTEST_BAD_SIGNATURE', 'SEV-SNP report signature does not verify with the VCEK');

  if (options.expectedReportData !== undefined && !equalBytes(abytes(options.expectedReportData, 'expectedReportData'), rep.reportData)) {
    throw new AttestError('ATTEST_NONCE_MISMATCH', 'SEV-SNP REPORT_DATA is not the expected value');
  }

  return {
    platform: 'amd-sev-snp',
    measurements: {
      MEASUREMENT: copy(rep.measurement),
      HOST_DATA: copy(rep.hostData),
      ID_KEY_DIGEST: copy(rep.idKeyDigest),
      AUTHOR_KEY_DIGEST: copy(rep.authorKeyDigest),
      FAMILY_ID: copy(rep.familyId),
      IMAGE_ID: copy(rep.imageId),
    },
    versions: {
      'snp.guestSvn': BigInt(rep.guestSvn),
      'snp.tcb.bootloader': BigInt(tcb[0]!),
      'snp.tcb.tee': BigInt(tcb[1]!),
      'snp.tcb.snp': BigInt(tcb[6]!),
      'snp.tcb.microcode': BigInt(tcb[7]!),
      'snp.firmware': BigInt((rep.currentMajor << 16) | (rep.currentMinor << 8) | rep.currentBuild),
    },
    debug: (rep.policy & POLICY_DEBUG) !== 0n,
    nonce: copy(rep.reportData),
    publicKey: undefined,
    issuedAt: undefined,
    verifiedAt: new Date(now.getTime()),
    extra: {
      version: rep.version,
      policy: rep.policy,
      vmpl: rep.vmpl,
      chipId: toHex(rep.chipId),
      reportId: toHex(rep.reportId),
      platformInfo: rep.platformInfo,
      currentTcb: toHex(rep.currentTcb),
      committedTcb: toHex(rep.committedTcb),
      launchTcb: toHex(rep.launchTcb),
      reportedTcb: toHex(rep.reportedTcb),
    },
  };
}
