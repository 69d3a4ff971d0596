/**
 * Evidence verification inside the keyholder (issue #8; docs/tee.md §Trust split).
 *
 * The API process verifies a workload's evidence first (for early, typed
 * refusals), but the keyholder does not take its word: `attest-verify` runs
 * the same @keyward/attest verifiers here, with the keyholder's own trust
 * roots ({@link KeyholderAttestRoots}, from its own configuration) and its
 * own clock, expecting the binding of the nonce *it* issued and the
 * recipient it will seal to; for TPM evidence it finishes the AK enrollment
 * (credential activation) it started itself with the nonce. `attest-release`
 * then evaluates the release policy over those claims only. So a compromised
 * API process cannot make up claims, enroll an AK of its own, or release to
 * code the hardware did not attest.
 *
 * @example
 * const claims = verifyReleaseEvidence(evidence, { nonce, recipient, roots, now: new Date(), pendingTpm });
 * const decision = evaluatePolicy(parseReleasePolicy(JSON.parse(policyText)), claims, now);
 */
import {
  AWS_NITRO_ROOT_G1_PEM, AMD_ARK_GENOA_PEM, AMD_ARK_MILAN_PEM, INTEL_SGX_ROOT_CA_PEM,
  finishAkEnrollment, isAttestError, parseReleasePolicy, verifyDcapQuote, verifyNitroDocument, verifySnpReport, verifyTpmQuote,
  type AttestErrorCode, type AttestationClaims, type PendingAkEnrollment, type ReleasePolicy,
} from '@keyward/attest';
import { X509Certificate, createHash } from 'node:crypto';
import { z } from 'zod';
import { toHex } from '../bytes.js';
import { equalCT } from '../primitives.js';
import { KeyholderProtocolError, type ParsedParams } from '../protocol.js';
import { evidenceBinding, type ReleasePlatform } from './release.js';

/** The trust roots the keyholder verifies evidence with (PEM). Defaults as the API's (api/attest-settings.ts). */
export interface KeyholderAttestRoots {
  readonly nitro: readonly string[];
  readonly tpm: readonly string[];
  readonly amd: readonly string[];
  readonly intel: readonly string[];
}

const Pem = z.string().min(1).max(64 * 1024).refine((s) => {
  try {
    new X509Certificate(s);
    return true;
  } catch {
    return false;
  }
}, 'must be a PEM (or DER base64) X.509 certificate');

/** The root-certificate fields, shared by the keyholder's config and the server's `attest` settings. */
export const ATTEST_ROOTS_SHAPE = {
  nitroRoots: z.array(Pem).min(1).max(16).optional(),
  tpmRoots: z.array(Pem).max(64).optional(),
  amdRoots: z.array(Pem).min(1).max(16).optional(),
  intelRoots: z.array(Pem).min(1).max(16).optional(),
};

/** The keyholder's attest configuration (`--attest-config FILE`, or $KEYWARD_KEYHOLDER_ATTEST from the server that spawns it). */
export const KeyholderAttestConfigSchema = z.strictObject(ATTEST_ROOTS_SHAPE);
export type KeyholderAttestConfig = z.input<typeof KeyholderAttestConfigSchema>;

/** The roots given, each kind defaulting to the pinned vendor roots (no TPM roots by default). */
export function withDefaultRoots(c: z.output<typeof KeyholderAttestConfigSchema>): KeyholderAttestRoots {
  return {
    nitro: c.nitroRoots ?? [AWS_NITRO_ROOT_G1_PEM],
    tpm: c.tpmRoots ?? [],
    amd: c.amdRoots ?? [AMD_ARK_MILAN_PEM, AMD_ARK_GENOA_PEM],
    intel: c.intelRoots ?? [INTEL_SGX_ROOT_CA_PEM],
  };
}

/** Fills the defaults (pinned vendor roots; no TPM roots). Throws a ZodError on a malformed config. */
export function keyholderAttestRoots(input: unknown = {}): KeyholderAttestRoots {
  return withDefaultRoots(KeyholderAttestConfigSchema.parse(input));
}

export type ReleaseEvidence = ParsedParams<'attest-verify'>['evidence'];

export const PLATFORM_OF_EVIDENCE: Readonly<Record<ReleaseEvidence['type'], ReleasePlatform>> = { nitro: 'aws-nitro', tpm: 'tpm2', snp: 'amd-sev-snp', sgx: 'intel-sgx', tdx: 'intel-tdx' };

/** @keyward/attest codes that mean "not well formed". */
const MALFORMED = new Set<AttestErrorCode>(['ATTEST_MALFORMED', 'ATTEST_LIMIT_EXCEEDED', 'ATTEST_NON_CANONICAL', 'ATTEST_UNSUPPORTED', 'ATTEST_INVALID_ARGUMENT']);

/** A verifier's AttestError as the keyholder's typed refusal (`details.reason` = the ATTEST_* code). */
export function attestRefusal(e: unknown): KeyholderProtocolError {
  if (e instanceof KeyholderProtocolError) return e;
  if (!isAttestError(e)) return new KeyholderProtocolError('KW_INTERNAL', 'evidence verification failed', { cause: e });
  const details = { reason: e.code };
  if (e.code === 'ATTEST_NONCE_MISMATCH') return new KeyholderProtocolError('KW_ATTEST_BINDING_MISMATCH', 'the evidence does not carry the binding of this nonce and recipient', { details });
  if (e.code.startsWith('ATTEST_POLICY_')) return new KeyholderProtocolError('KW_ATTEST_POLICY_DENIED', e.message.slice(0, 1024), { details });
  if (MALFORMED.has(e.code)) return new KeyholderProtocolError('KW_ATTEST_EVIDENCE_INVALID', e.message.slice(0, 1024), { details });
  return new KeyholderProtocolError('KW_ATTEST_EVIDENCE_REJECTED', e.message.slice(0, 1024), { details });
}

/**
 * Verifies `evidence` with the keyholder's roots at `now`, expecting the
 * binding of `nonce` and `recipient` (ops/release.ts evidenceBinding). For TPM
 * evidence `pendingTpm` is the enrollment started with the nonce. Throws
 * AttestError or KeyholderProtocolError (map with {@link attestRefusal}).
 */
export function verifyReleaseEvidence(
  evidence: ReleaseEvidence,
  o: { nonce: Uint8Array; recipient: string; roots: KeyholderAttestRoots; now: Date; pendingTpm?: PendingAkEnrollment | undefined },
): AttestationClaims {
  const platform = PLATFORM_OF_EVIDENCE[evidence.type];
  const expected = evidenceBinding(platform, o.nonce, o.recipient);
  const notConfigured = (what: string) => new KeyholderProtocolError('KW_ATTEST_NOT_CONFIGURED', `the keyholder has no ${what} roots configured`);
  switch (evidence.type) {
    case 'nitro': {
      if (o.roots.nitro.length === 0) throw notConfigured('AWS Nitro');
      const claims = verifyNitroDocument(evidence.document, { roots: o.roots.nitro, now: o.now, expectedNonce: expected.nonce });
      const pk = claims.publicKey;
      if (!pk || pk.length !== expected.publicKey!.length || !equalCT(pk, expected.publicKey!)) {
        throw new KeyholderProtocolError('KW_ATTEST_BINDING_MISMATCH', 'the document binds another public key than the recipient', { details: { reason: 'public_key' } });
      }
      return claims;
    }
    case 'tpm': {
      if (o.roots.tpm.length === 0) throw notConfigured('TPM manufacturer');
      if (!o.pendingTpm) throw new KeyholderProtocolError('KW_ATTEST_EVIDENCE_REJECTED', 'no TPM attestation key was enrolled with this nonce (send tpm with the nonce request)', { details: { reason: 'ATTEST_AK_NOT_ENROLLED' } });
      const ak = finishAkEnrollment(o.pendingTpm, evidence.activatedCredential);
      const pcrs: Record<string, Record<number, Uint8Array>> = {};
      for (const [bank, values] of Object.entries(evidence.pcrs)) {
        if (!values) continue;
        pcrs[bank] = Object.fromEntries(Object.entries(values).map(([i, h]) => [Number(i), Uint8Array.from(Buffer.from(h, 'hex'))]));
      }
      return verifyTpmQuote({ ak, attest: evidence.attest, signature: evidence.signature, pcrs, expectedNonce: expected.nonce, now: o.now });
    }
    case 'snp':
      if (o.roots.amd.length === 0) throw notConfigured('AMD');
      return verifySnpReport(evidence.report, { vcek: evidence.vcek, intermediates: evidence.intermediates, roots: o.roots.amd, now: o.now, expectedReportData: expected.nonce });
    case 'sgx':
    case 'tdx': {
      if (o.roots.intel.length === 0) throw notConfigured('Intel');
      const claims = verifyDcapQuote(evidence.quote, { roots: o.roots.intel, now: o.now, expectedReportData: expected.nonce });
      if (claims.platform !== platform) throw new KeyholderProtocolError('KW_ATTEST_EVIDENCE_INVALID', `the quote is ${claims.platform} evidence, not ${platform}`, { details: { reason: 'ATTEST_MALFORMED' } });
      return claims;
    }
  }
}

export type ClaimsSummary = {
  platform: ReleasePlatform;
  debug: boolean;
  measurements: Record<string, string>;
  versions: Record<string, string>;
  issued_at?: string;
};

/** The claims summary of attest-verify's result and the audit log (no raw evidence, no secrets). */
export function summarizeClaims(c: AttestationClaims): ClaimsSummary {
  return {
    platform: c.platform,
    debug: c.debug,
    measurements: Object.fromEntries(Object.entries(c.measurements).map(([k, v]) => [k, toHex(v)])),
    versions: Object.fromEntries(Object.entries(c.versions).map(([k, v]) => [k, v.toString()])),
    ...(c.issuedAt ? { issued_at: c.issuedAt.toISOString() } : {}),
  };
}

/**
 * The release policy the API relays: its SHA-256 must be `hash` (the hash
 * bound into the HPKE info and the audit event), and it must parse
 * (KW_ATTEST_POLICY_DENIED, reason ATTEST_INVALID_POLICY, otherwise).
 */
export function checkPolicyText(text: string, hash: string): ReleasePolicy {
  const got = createHash('sha256').update(text, 'utf8').digest();
  if (!/^[0-9a-f]{64}$/.test(hash) || !equalCT(got, Buffer.from(hash, 'hex'))) {
    throw new KeyholderProtocolError('KW_ATTEST_POLICY_DENIED', 'the release policy does not hash to the policy hash', { details: { reason: 'ATTEST_INVALID_POLICY' } });
  }
  try {
    return parseReleasePolicy(JSON.parse(text) as unknown);
  } catch (e) {
    throw new KeyholderProtocolError('KW_ATTEST_POLICY_DENIED', 'the release policy does not parse', { cause: e, details: { reason: 'ATTEST_INVALID_POLICY' } });
  }
}
