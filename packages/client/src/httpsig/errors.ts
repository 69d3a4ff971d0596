/**
 * The one error class of the HTTP message signature code. Every refusal of a
 * request carries a stable string `code`; callers (the keyholder, the API's
 * status-code registry) match on the code, never on the message.
 */

/** Stable error codes with a one-line explanation each. */
export const HTTPSIG_ERROR_CODES = {
  HTTPSIG_MISSING: 'The request has no Signature-Input or Signature field, or no signature under the expected label.',
  HTTPSIG_MALFORMED: 'A signature field, a covered component or a parameter is not in the accepted form.',
  HTTPSIG_UNKNOWN_KEY: 'The keyid names no registered device key.',
  HTTPSIG_BAD_SIGNATURE: 'The Ed25519 signature does not verify over the signature base.',
  HTTPSIG_EXPIRED: 'The signature was created too long ago, or is past its expires time.',
  HTTPSIG_FUTURE: 'The signature was created further in the future than the allowed clock skew.',
  HTTPSIG_REPLAY: 'The nonce was already used (or the replay cache cannot record it).',
  HTTPSIG_DIGEST_MISMATCH: 'The Content-Digest field does not match the body, or has no sha-256 member.',
  HTTPSIG_COMPONENT_MISSING: 'A required component is not covered by the signature, or a covered field is absent from the request.',
  HTTPSIG_ALG: 'The alg parameter names an algorithm other than ed25519.',
} as const;

/** Union of every HTTP-signature error code. */
export type HttpSigErrorCode = keyof typeof HTTPSIG_ERROR_CODES;

/**
 * Thrown by `verifyRequest`, `verifyContentDigest` and the signature-field parsers.
 *
 * @example
 * try { await verifyRequest(req, opts) }
 * catch (e) { if (isHttpSigError(e, 'HTTPSIG_REPLAY')) return reply(409) ; throw e }
 */
export class HttpSigError extends Error {
  readonly code: HttpSigErrorCode;

  constructor(code: HttpSigErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? HTTPSIG_ERROR_CODES[code], options);
    this.name = 'HttpSigError';
    this.code = code;
  }
}

/** True when `e` is an HttpSigError, optionally with the given code. */
export function isHttpSigError(e: unknown, code?: HttpSigErrorCode): e is HttpSigError {
  return e instanceof HttpSigError && (code === undefined || e.code === code);
}
