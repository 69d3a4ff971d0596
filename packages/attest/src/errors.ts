/**
 * Every failure in `@keyward/attest` carries one stable string `code`. Callers
 * match on the code, never on the message. `docs/errors.md` (section
 * "Attestation") lists every code, and a test checks that the list and this
 * table agree.
 *
 * A verifier that throws has released nothing: evidence is either fully
 * verified into an {@link AttestationClaims} set or refused with one of these.
 */

/**
 * The stable error codes and their default messages.
 *
 * @example
 * Object.keys(ATTEST_ERROR_CODES) // ['ATTEST_INVALID_ARGUMENT', 'ATTEST_MALFORMED', …]
 */
export const ATTEST_ERROR_CODES = {
  // --- caller mistakes ---------------------------------------------------------
  ATTEST_INVALID_ARGUMENT: 'An argument has the wrong type, length or range (no trust root, invalid date, nonce of the wrong type, …).',
  ATTEST_INVALID_POLICY: 'The release policy is not well formed (unknown platform or field, non-hex measurement, negative version or age).',

  // --- decoding untrusted evidence ---------------------------------------------
  ATTEST_MALFORMED: 'The evidence is not well formed: truncated, wrong structure, wrong field type or length, trailing bytes, duplicate keys.',
  ATTEST_LIMIT_EXCEEDED: 'The evidence exceeds a size, nesting-depth or item-count limit.',
  ATTEST_NON_CANONICAL: 'The CBOR is not in its preferred (shortest) encoding, or uses indefinite lengths.',
  ATTEST_UNSUPPORTED: 'The evidence uses an algorithm, version or key type this verifier does not accept.',

  // --- signatures and certificates ----------------------------------------------
  ATTEST_BAD_SIGNATURE: 'A signature over the evidence (or the QE report) does not verify with the key it names.',
  ATTEST_CHAIN_INVALID: 'The certificate chain is broken: an issuer does not match or its signature does not verify, a CA certificate is not a CA, or the bundle is misordered.',
  ATTEST_UNTRUSTED_ROOT: 'The certificate chain does not end at one of the configured trust roots.',
  ATTEST_CERT_NOT_YET_VALID: 'A certificate of the chain is not yet valid at the verification instant.',
  ATTEST_CERT_EXPIRED: 'A certificate of the chain has expired at the verification instant.',
  ATTEST_KEY_BINDING: 'A key does not match its certificate or report (EK certificate vs EK public area, QE report data vs attestation key, VCEK extensions vs report TCB or chip).',

  // --- evidence contents ----------------------------------------------------------
  ATTEST_NONCE_MISMATCH: 'The evidence does not carry the expected nonce / report data.',
  ATTEST_PCR_MISMATCH: 'The PCR values supplied do not hash to the digest the TPM quoted, or do not cover its selection.',

  // --- TPM attestation keys ------------------------------------------------------
  ATTEST_AK_ATTRIBUTES: 'The attestation key is not a restricted, fixed, TPM-generated signing key.',
  ATTEST_ACTIVATION_FAILED: 'The credential returned by the attester is not the one sealed to the EK for this AK (credential activation failed).',
  ATTEST_AK_NOT_ENROLLED: 'The attestation key given to the quote verifier was not enrolled (bound to an EK by credential activation).',

  // --- release policy ------------------------------------------------------------
  ATTEST_POLICY_PLATFORM: 'The policy does not allow this platform.',
  ATTEST_POLICY_MEASUREMENT_MISSING: 'A measurement the policy requires is not in the evidence.',
  ATTEST_POLICY_MEASUREMENT_MISMATCH: 'A measurement differs from every value the policy allows.',
  ATTEST_POLICY_DEBUG: 'The evidence comes from a debug-mode TEE and the policy does not allow debug.',
  ATTEST_POLICY_VERSION: 'A version or security version number is below the policy minimum, or missing.',
  ATTEST_POLICY_EVIDENCE_AGE: 'The evidence is older than the policy allows, or dated in the future beyond the allowed skew.',
} as const;

/** Union of every stable attestation error code. */
export type AttestErrorCode = keyof typeof ATTEST_ERROR_CODES;

/**
 * The single error class of `@keyward/attest`.
 *
 * @example
 * try { verifyNitroDocument(doc, { roots, now }) }
 * catch (e) { if (isAttestError(e, 'ATTEST_CERT_EXPIRED')) … }
 */
export class AttestError extends Error {
  readonly code: AttestErrorCode;

  constructor(code: AttestErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ATTEST_ERROR_CODES[code], options);
    this.name = 'AttestError';
    this.code = code;
  }
}

/**
 * True when `e` is an AttestError, optionally with the given code.
 *
 * @example
 * if (isAttestError(e, 'ATTEST_POLICY_DEBUG')) refuse('debug enclave');
 */
export function isAttestError(e: unknown, code?: AttestErrorCode): e is AttestError {
  return e instanceof AttestError && (code === undefined || e.code === code);
}

/** Throws `code` (default `ATTEST_MALFORMED`) with `message` unless `cond` holds. @internal */
export function check(cond: unknown, message: string, code: AttestErrorCode = 'ATTEST_MALFORMED'): asserts cond {
  if (!cond) throw new AttestError(code, message);
}
