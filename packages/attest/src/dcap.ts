/**
 * Intel SGX and TDX quotes, DCAP version 4 with an ECDSA-256-with-P-256
 * attestation key (Intel "SGX ECDSA Quote Library API" and "TDX DCAP Quote
 * Generation Library" quote format v4): byte-exact parsing, the PCK
 * certificate chain to the Intel SGX root, the QE report signed by the PCK
 * key, the attestation key bound into the QE report data, and the quote
 * signature by the attestation key.
 */
import { createHash, createPublicKey, verify, type KeyObject, type X509Certificate } from 'node:crypto';
import { abytes, adate, copy, equalBytes, isZero, Reader, toHex } from './bytes.js';
import type { AttestationClaims } from './claims.js';
import { AttestError, check } from './errors.js';
import { parseCertificate, parseRoots, verifyPath } from './x509.js';

/**
 * Constants of the v4 quote format.
 *
 * @example
 * DCAP.teeSgx // 0x00000000
 */
export const DCAP = {
  version: 4,
  attKeyEcdsaP256: 2,
  teeSgx: 0x00000000,
  teeTdx: 0x00000081,
  headerSize: 48,
  sgxReportSize: 384,
  tdReportSize: 584,
  certQeReport: 6,
  certPckChain: 5,
  maxQuoteBytes: 65536,
} as const;

/** An SGX report body (the enclave's, or the QE's). */
export interface SgxReportBody {
  readonly cpuSvn: Uint8Array;
  readonly miscSelect: number;
  readonly attributes: Uint8Array;
  readonly debug: boolean;
  readonly mrEnclave: Uint8Array;
  readonly mrSigner: Uint8Array;
  readonly isvProdId: number;
  readonly isvSvn: number;
  readonly reportData: Uint8Array;
}

/** A TDX TD report body (TDX 1.0). */
export interface TdReportBody {
  readonly teeTcbSvn: Uint8Array;
  readonly mrSeam: Uint8Array;
  readonly mrSignerSeam: Uint8Array;
  readonly seamAttributes: Uint8Array;
  readonly tdAttributes: Uint8Array;
  readonly debug: boolean;
  readonly xfam: Uint8Array;
  readonly mrTd: Uint8Array;
  readonly mrConfigId: Uint8Array;
  readonly mrOwner: Uint8Array;
  readonly mrOwnerConfig: Uint8Array;
  readonly rtmr: readonly Uint8Array[];
  readonly reportData: Uint8Array;
}

/** A parsed v4 quote (not yet verified). */
export interface DcapQuote {
  readonly teeType: number;
  readonly qeVendorId: Uint8Array;
  readonly userData: Uint8Array;
  /** header ‖ body: the bytes the attestation key signed. */
  readonly signedBytes: Uint8Array;
  readonly sgx?: SgxReportBody;
  readonly td?: TdReportBody;
  readonly signature: Uint8Array;
  readonly attestationKey: Uint8Array;
  readonly qeReportBytes: Uint8Array;
  readonly qeReport: SgxReportBody;
  readonly qeReportSignature: Uint8Array;
  readonly qeAuthData: Uint8Array;
  readonly pckChainPem: string;
}

function sgxBody(r: Reader): SgxReportBody {
  const cpuSvn = r.bytes(16, 'CPUSVN');
  const miscSelect = r.u32le('MISCSELECT');
  r.bytes(28, 'reserved');
  const attributes = r.bytes(16, 'ATTRIBUTES');
  const mrEnclave = r.bytes(32, 'MRENCLAVE');
  r.bytes(32, 'reserved');
  const mrSigner = r.bytes(32, 'MRSIGNER');
  r.bytes(96, 'reserved');
  const isvProdId = r.u16le('ISVPRODID');
  const isvSvn = r.u16le('ISVSVN');
  r.bytes(60, 'reserved');
  const reportData = r.bytes(64, 'REPORTDATA');
  return { cpuSvn, miscSelect, attributes, debug: (attributes[0]! & 0x02) !== 0, mrEnclave, mrSigner, isvProdId, isvSvn, reportData };
}

function tdBody(r: Reader): TdReportBody {
  const teeTcbSvn = r.bytes(16, 'TEE_TCB_SVN');
  const mrSeam = r.bytes(48, 'MRSEAM');
  const mrSignerSeam = r.bytes(48, 'MRSIGNERSEAM');
  const seamAttributes = r.bytes(8, 'SEAMATTRIBUTES');
  const tdAttributes = r.bytes(8, 'TDATTRIBUTES');
  const xfam = r.bytes(8, 'XFAM');
  const mrTd = r.bytes(48, 'MRTD');
  const mrConfigId = r.bytes(48, 'MRCONFIGID');
  const mrOwner = r.bytes(48, 'MROWNER');
  const mrOwnerConfig = r.bytes(48, 'MROWNERCONFIG');
  const rtmr = [0, 1, 2, 3].map((i) => r.bytes(48, `RTMR${i}`));
  const reportData = r.bytes(64, 'REPORTDATA');
  return { teeTcbSvn, mrSeam, mrSignerSeam, seamAttributes, tdAttributes, debug: (tdAttributes[0]! & 0x01) !== 0, xfam, mrTd, mrConfigId, mrOwner, mrOwnerConfig, rtmr, reportData };
}

/**
 * Parses a DCAP v4 quote (SGX or TDX) with every length checked.
 *
 * @example
 * parseDcapQuote(quote).td?.mrTd
 */
export function parseDcapQuote(bytes: Uint8Array): DcapQuote {
  abytes(bytes, 'quote');
  if (bytes.length > DCAP.maxQuoteBytes) throw new AttestError('ATTEST_LIMIT_EXCEEDED', `quote is ${bytes.length} bytes, more than ${DCAP.maxQuoteBytes}`);
  const r = new Reader(bytes, 'DCAP quote');
  const version = r.u16le('header.version');
  if (version !== DCAP.version) throw new AttestError('ATTEST_UNSUPPORTED', `quote version ${version} (only 4 is supported)`);
  const attKeyType = r.u16le('header.att_key_type');
  if (attKeyType !== DCAP.attKeyEcdsaP256) throw new AttestError('ATTEST_UNSUPPORTED', `attestation key type ${attKeyType} is not ECDSA-256-with-P-256 (2)`);
  const teeType = r.u32le('header.tee_type');
  if (teeType !== DCAP.teeSgx && teeType !== DCAP.teeTdx) throw new AttestError('ATTEST_UNSUPPORTED', `TEE type 0x${teeType.toString(16)} is not SGX (0) or TDX (0x81)`);
  r.bytes(4, 'header.reserved');
  const qeVendorId = r.bytes(16, 'header.qe_vendor_id');
  const userData = r.bytes(20, 'header.user_data');
  const sgx = teeType === DCAP.teeSgx ? sgxBody(r) : undefined;
  const td = teeType === DCAP.teeTdx ? tdBody(r) : undefined;
  const signedBytes = bytes.subarray(0, r.pos);

  const sigLen = r.u32le('signature_data_len');
  check(sigLen === r.remaining, `quote signature data is declared ${sigLen} bytes, ${r.remaining} remain`);
  const signature = r.bytes(64, 'signature');
  const attestationKey = r.bytes(64, 'attestation_key');
  const certType = r.u16le('certification_data.type');
  if (certType !== DCAP.certQeReport) throw new AttestError('ATTEST_UNSUPPORTED', `certification data type ${certType} is not the QE report (6)`);
  const certSize = r.u32le('certification_data.size');
  check(certSize === r.remaining, `certification data is declared ${certSize} bytes, ${r.remaining} remain`);
  const qeReportBytes = r.bytes(DCAP.sgxReportSize, 'qe_report');
  const qeReport = sgxBody(new Reader(qeReportBytes, 'QE report'));
  const qeReportSignature = r.bytes(64, 'qe_report_signature');
  const qeAuthSize = r.u16le('qe_auth_data.size');
  const qeAuthData = r.bytes(qeAuthSize, 'qe_auth_data');
  const innerType = r.u16le('pck.type');
  if (innerType !== DCAP.certPckChain) throw new AttestError('ATTEST_UNSUPPORTED', `QE certification data type ${innerType} is not a PCK certificate chain (5)`);
  const innerSize = r.u32le('pck.size');
  check(innerSize === r.remaining, `PCK chain is declared ${innerSize} bytes, ${r.remaining} remain`);
  const pem = r.bytes(innerSize, 'pck.chain');
  r.end();
  let pckChainPem: string;
  try {
    pckChainPem = new TextDecoder('utf-8', { fatal: true }).decode(pem[pem.length - 1] === 0 ? pem.subarray(0, pem.length - 1) : pem);
  } catch (e) {
    throw new AttestError('ATTEST_MALFORMED', 'PCK certificate chain is not text', { cause: e });
  }
  return { teeType, qeVendorId, userData, signedBytes, ...(sgx ? { sgx } : {}), ...(td ? { td } : {}), signature, attestationKey, qeReportBytes, qeReport, qeReportSignature, qeAuthData, pckChainPem };
}

/** Options of {@link verifyDcapQuote}. */
export interface DcapVerifyOptions {
  /** The pinned Intel SGX root CA(s). */
  readonly roots: readonly (X509Certificate | string | Uint8Array)[];
  readonly now: Date;
  /** When given, the enclave's / TD's REPORTDATA must equal it (64 bytes). */
  readonly expectedReportData?: Uint8Array;
  /** When given, the Quoting Enclave must have this identity (Intel's QE identity collateral). */
  readonly qeIdentity?: { readonly mrSigner: Uint8Array; readonly isvProdId: number; readonly minIsvSvn: number };
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * Verifies an SGX or TDX DCAP v4 quote and returns its claims.
 *
 * Checks: structure; the PCK chain (PCK → platform/processor CA → root) at
 * `now`; the QE report's ECDSA P-256 signature by the PCK key; the QE report
 * data = SHA-256(attestation key ‖ QE auth data) ‖ 32 zero bytes; the quote's
 * ECDSA P-256 signature over header ‖ body by the attestation key; the QE
 * identity and report data when given. TCB-level evaluation against Intel's
 * TCB Info collateral is not done (see docs/tee.md).
 *
 * @example
 * const claims = verifyDcapQuote(quote, { roots: [INTEL_SGX_ROOT_CA_PEM], now: new Date(), expectedReportData });
 * claims.measurements.MRTD
 */
export function verifyDcapQuote(quote: Uint8Array, options: DcapVerifyOptions): AttestationClaims {
  const now = adate(options.now);
  const roots = parseRoots(options.roots, 'roots');
  const q = parseDcapQuote(quote);

  const pems = q.pckChainPem.match(PEM_CERT) ?? [];
  check(pems.length >= 2 && pems.length <= 4, `PCK chain has ${pems.length} certificates (2..4 accepted)`);
  const certs = pems.map((p, i) => parseCertificate(p, `PCK chain [${i}]`));
  verifyPath(certs, roots, now, 'in-chain-or-issued', 'PCK');
  const pck = certs[0]!.publicKey;
  if (pck.asymmetricKeyType !== 'ec' || pck.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new AttestError('ATTEST_UNSUPPORTED', 'the PCK key is not ECDSA P-256');

  p256Verify(pck, q.qeReportBytes, q.qeReportSignature, 'the QE report signature does not verify with the PCK key');
  const expectedQeData = createHash('sha256').update(q.attestationKey).update(q.qeAuthData).digest();
  if (!equalBytes(q.qeReport.reportData.subarray(0, 32), expectedQeData) || !isZero(q.qeReport.reportData.subarray(32))) {
    throw new AttestError('ATTEST_KEY_BINDING', 'the QE report data does not bind the attestation key');
  }
  let attKey: KeyObject;
  try {
    attKey = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: Buffer.from(q.attestationKey.subarray(0, 32)).toString('base64url'), y: Buffer.from(q.attestationKey.subarray(32)).toString('base64url') }, format: 'jwk' });
  } catch (e) {
    throw new AttestError('ATTEST_MALFORMED', 'the attestation key is not a P-256 point', { cause: e });
  }
  p256Verify(attKey, q.signedBytes, q.signature, 'the quote signature does not verify with the attestation key');

  if (options.qeIdentity !== undefined) {
    const id = options.qeIdentity;
    if (!equalBytes(q.qeReport.mrSigner, id.mrSigner) || q.qeReport.isvProdId !== id.isvProdId || q.qeReport.isvSvn < id.minIsvSvn) {
      throw new AttestError('ATTEST_KEY_BINDING', 'the Quoting Enclave is not the expected one (MRSIGNER, ISVPRODID or ISVSVN)');
    }
  }
  const reportData = q.sgx?.reportData ?? q.td!.reportData;
  if (options.expectedReportData !== undefined && !equalBytes(abytes(options.expectedReportData, 'expectedReportData'), reportData)) {
    throw new AttestError('ATTEST_NONCE_MISMATCH', 'the quote REPORTDATA is not the expected value');
  }

  const common = {
    nonce: copy(reportData),
    publicKey: undefined,
    issuedAt: undefined,
    verifiedAt: new Date(now.getTime()),
  };
  const qeExtra = { qeVendorId: toHex(q.qeVendorId), qeMrEnclave: toHex(q.qeReport.mrEnclave), qeMrSigner: toHex(q.qeReport.mrSigner), qeIsvSvn: q.qeReport.isvSvn, pckCertificate: copy(certs[0]!.raw) };
  if (q.sgx !== undefined) {
    const b = q.sgx;
    return {
      platform: 'intel-sgx',
      measurements: { MRENCLAVE: copy(b.mrEnclave), MRSIGNER: copy(b.mrSigner), ISVPRODID: Uint8Array.of(b.isvProdId >> 8, b.isvProdId & 0xff) },
      versions: { 'sgx.isvsvn': BigInt(b.isvSvn), 'sgx.qe.isvsvn': BigInt(q.qeReport.isvSvn) },
      debug: b.debug || q.qeReport.debug,
      ...common,
      extra: { cpuSvn: toHex(b.cpuSvn), miscSelect: b.miscSelect, attributes: toHex(b.attributes), ...qeExtra },
    };
  }
  const t = q.td!;
  return {
    platform: 'intel-tdx',
    measurements: {
      MRTD: copy(t.mrTd),
      RTMR0: copy(t.rtmr[0]!),
      RTMR1: copy(t.rtmr[1]!),
      RTMR2: copy(t.rtmr[2]!),
      RTMR3: copy(t.rtmr[3]!),
      MRSEAM: copy(t.mrSeam),
      MRSIGNERSEAM: copy(t.mrSignerSeam),
      MRCONFIGID: copy(t.mrConfigId),
      MROWNER: copy(t.mrOwner),
      MROWNERCONFIG: copy(t.mrOwnerConfig),
    },
    versions: { 'tdx.module.minorSvn': BigInt(t.teeTcbSvn[0]!), 'tdx.module.majorSvn': BigInt(t.teeTcbSvn[1]!), 'tdx.qe.isvsvn': BigInt(q.qeReport.isvSvn) },
    debug: t.debug || q.qeReport.debug,
    ...common,
    extra: { teeTcbSvn: toHex(t.teeTcbSvn), tdAttributes: toHex(t.tdAttributes), seamAttributes: toHex(t.seamAttributes), xfam: toHex(t.xfam), ...qeExtra },
  };
}

function p256Verify(key: KeyObject, data: Uint8Array, sig: Uint8Array, message: string): void {
  let ok = false;
  try {
    ok = verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig);
  } catch (e) {
    throw new AttestError('ATTEST_BAD_SIGNATURE', message, { cause: e });
  }
  if (!ok) throw new AttestError('ATTEST_BAD_SIGNATURE', message);
}
