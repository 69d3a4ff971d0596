/**
 * The evidence a keyholder's helper program prints (`keyward keyholder serve
 * --evidence command`; docs/tee.md §Evidence from a helper program), and its
 * verification with this package's verifiers. One definition, shared by the
 * API (which pins the keyholder on its channel) and by clients (which pin it
 * from `@keyward/client/keyholder-evidence`), so both check the same bytes
 * against the same binding.
 *
 *   aws-nitro     the NSM attestation document (COSE_Sign1) with `nonce` = binding
 *   amd-sev-snp   the 1184-byte report with REPORT_DATA = binding ‖ 0³², then the PEM VCEK and ASK (VCEK first)
 *   intel-tdx / intel-sgx   the DCAP v4 quote with REPORTDATA = binding ‖ 0³² (its PCK chain inside)
 */
import type { X509Certificate } from 'node:crypto';
import { abytes } from './bytes.js';
import type { AttestationClaims } from './claims.js';
import { verifyDcapQuote } from './dcap.js';
import { AttestError, check } from './errors.js';
import { verifyNitroDocument } from './nitro.js';
import { SNP_REPORT, verifySnpReport } from './snp.js';

/**
 * The platforms a helper program can produce evidence for.
 *
 * @example
 * COMMAND_EVIDENCE_PLATFORMS.includes('aws-nitro') // true
 */
export const COMMAND_EVIDENCE_PLATFORMS = ['aws-nitro', 'amd-sev-snp', 'intel-tdx', 'intel-sgx'] as const;

/** One of {@link COMMAND_EVIDENCE_PLATFORMS}. */
export type CommandEvidencePlatform = (typeof COMMAND_EVIDENCE_PLATFORMS)[number];

type Roots = readonly (X509Certificate | string | Uint8Array)[];

/** Options of {@link verifyCommandEvidence}. */
export interface CommandEvidenceVerifyOptions {
  /** The pinned roots per vendor: Nitro (AWS), AMD ARKs (SNP), Intel SGX root (TDX, SGX). Only the evidence's platform's are used. */
  readonly roots: { readonly nitro: Roots; readonly amd: Roots; readonly intel: Roots };
  /** The instant at which every certificate must be valid. */
  readonly now: Date;
  /** The 32-byte binding the helper was given; the evidence must carry it (Nitro nonce; report data = binding ‖ 0³²). */
  readonly binding: Uint8Array;
}

/** The longest PEM text accepted after an SNP report (a VCEK and an ASK are about 4 KiB). */
const MAX_SNP_CERTIFICATE_TEXT = 64 * 1024;
const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * The 64-byte report data a helper puts into SNP / TDX / SGX evidence:
 * binding ‖ 32 zero bytes.
 *
 * @example
 * commandReportData(binding) // 64 bytes, binding first
 */
export function commandReportData(binding: Uint8Array): Uint8Array {
  abytes(binding, 'binding');
  if (binding.length !== 32) throw new AttestError('ATTEST_INVALID_ARGUMENT', 'the evidence binding is 32 bytes');
  const out = new Uint8Array(64);
  out.set(binding);
  return out;
}

/**
 * Verifies a helper program's evidence bytes for `platform` with the
 * platform's verifier (`verifyNitroDocument` with `expectedNonce` = binding;
 * `verifySnpReport` / `verifyDcapQuote` with `expectedReportData` = binding ‖
 * 0³²) and returns the claims; an AttestError otherwise (another platform
 * `ATTEST_UNSUPPORTED`; SNP without its VCEK and ASK, or a DCAP quote of the
 * other Intel TEE, `ATTEST_MALFORMED`; a binding not carried
 * `ATTEST_NONCE_MISMATCH`). The release policy is the caller's to evaluate.
 *
 * @example
 * const claims = verifyCommandEvidence('aws-nitro', bytes, { roots: { nitro: [AWS_NITRO_ROOT_G1_PEM], amd: [], intel: [] }, now: new Date(), binding });
 * claims.measurements.PCR0
 */
export function verifyCommandEvidence(platform: string, evidence: Uint8Array, options: CommandEvidenceVerifyOptions): AttestationClaims {
  abytes(evidence, 'evidence');
  const reportData = commandReportData(options.binding);
  const { roots, now } = options;
  switch (platform) {
    case 'aws-nitro':
      return verifyNitroDocument(evidence, { roots: roots.nitro, now, expectedNonce: options.binding });
    case 'amd-sev-snp': {
      check(evidence.length > SNP_REPORT.size, 'SEV-SNP evidence is the report followed by the PEM VCEK and ASK');
      const tail = evidence.subarray(SNP_REPORT.size);
      if (tail.length > MAX_SNP_CERTIFICATE_TEXT) throw new AttestError('ATTEST_LIMIT_EXCEEDED', `the certificates after the SEV-SNP report are ${tail.length} bytes, more than ${MAX_SNP_CERTIFICATE_TEXT}`);
      const certs = new TextDecoder().decode(tail).match(PEM_CERT) ?? [];
      check(certs.length >= 2, 'SEV-SNP evidence is the report followed by the PEM VCEK and ASK');
      return verifySnpReport(evidence.subarray(0, SNP_REPORT.size), { vcek: certs[0]!, intermediates: certs.slice(1), roots: roots.amd, now, expectedReportData: reportData });
    }
    case 'intel-tdx':
    case 'intel-sgx': {
      const claims = verifyDcapQuote(evidence, { roots: roots.intel, now, expectedReportData: reportData });
      check(claims.platform === platform, `the quote is ${claims.platform}, the evidence was given as ${platform}`);
      return claims;
    }
    default:
      throw new AttestError('ATTEST_UNSUPPORTED', `${String(platform).slice(0, 32)} is not a platform of helper-program evidence (${COMMAND_EVIDENCE_PLATFORMS.join(', ')})`);
  }
}
