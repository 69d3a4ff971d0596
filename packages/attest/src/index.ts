/**
 * @keyward/attest — TEE evidence verifiers (AWS Nitro Enclaves, TPM 2.0
 * quotes, AMD SEV-SNP, Intel SGX/TDX DCAP v4) that produce one normalized
 * {@link AttestationClaims} set, and the release-policy evaluator over it.
 * Pure functions: the clock and the trust roots are arguments. Node only
 * (node:crypto). See docs/tee.md.
 */
export { ATTEST_ERROR_CODES, AttestError, isAttestError, type AttestErrorCode } from './errors.js';
export { PLATFORMS, type Platform, type AttestationClaims } from './claims.js';
export { AWS_NITRO_ROOT_G1_PEM, AMD_ARK_MILAN_PEM, AMD_ARK_GENOA_PEM, INTEL_SGX_ROOT_CA_PEM } from './roots.js';
export { NITRO_LIMITS, verifyNitroDocument, type NitroVerifyOptions } from './nitro.js';
export { startAkEnrollment, finishAkEnrollment, EnrolledAk, type AkEnrollmentRequest, type AkChallenge, type PendingAkEnrollment } from './tpm/enroll.js';
export { verifyTpmQuote, type TpmQuoteInput, type PcrValues } from './tpm/quote.js';
export { parseReleasePolicy, evaluatePolicy, enforcePolicy, type ReleasePolicy, type PolicyDecision } from './policy.js';
export { SNP_REPORT, parseSnpReport, verifySnpReport, type SnpReport, type SnpVerifyOptions } from './snp.js';
export { DCAP, parseDcapQuote, verifyDcapQuote, type DcapQuote, type DcapVerifyOptions, type SgxReportBody, type TdReportBody } from './dcap.js';
export { COMMAND_EVIDENCE_PLATFORMS, commandReportData, verifyCommandEvidence, type CommandEvidencePlatform, type CommandEvidenceVerifyOptions } from './command-evidence.js';
