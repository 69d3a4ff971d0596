/**
 * The one error class of the key service client. A failure reported by the
 * service keeps the service's code (`KW_SEALED`, `KW_FORBIDDEN`, …) and the
 * HTTP status; a failure the client detects itself has one of the
 * `KW_CLIENT_*` codes below (or `KW_INVALID_ARGUMENT` for a bad call) and
 * status 0. Match on `code`, never on the message.
 */

/** Codes the client itself reports, with a one-line explanation each. */
export const CLIENT_ERROR_CODES = {
  KW_INVALID_ARGUMENT: 'An argument of the client call is missing, malformed or out of range; nothing was sent.',
  KW_CLIENT_UNAVAILABLE: 'No address of the key service could be used: connection refused or lost, timed out, or answered 503 (retried on every address when the operation is safe to repeat).',
  KW_CLIENT_TIMEOUT: 'No answer within the timeout for an operation that is not retried: it may or may not have happened.',
  KW_CLIENT_BAD_RESPONSE: 'The service answered with something that is not a valid v1 response (not JSON, wrong shape, too large, or a plaintext key that must never travel).',
  KW_CLIENT_RESPONSE_MISMATCH: 'The response names another key or version than the one the request asked for.',
  KW_CLIENT_SEALED_KEY_REJECTED: 'The sealed key in the response does not open with this device identity, or is bound to another request, key, version or context.',
  KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED: "keyholderPin: the keyholder's evidence does not verify to the pinned roots (certificate chain, credential activation, quote, or a binding of another nonce or response key); nothing was sent to the data plane.",
  KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH: "keyholderPin: the keyholder's verified measurements are not the pinned ones; nothing was sent to the data plane.",
  KW_CLIENT_KEYHOLDER_SIGNATURE_MISSING: 'keyholderPin: a data-plane response carries no Keyward-Keyholder-Signature (stripped on the way, or answered without the attested keyholder); its result is not used.',
  KW_CLIENT_KEYHOLDER_SIGNATURE_INVALID: "keyholderPin: the response's keyholder signature does not verify under the attested response key for this request and this result; the result is not used.",
  KW_CLIENT_WITNESSES_CHANGED: "The directory's witness configuration the server presents (head-log key, witness keys, k) is not the one this client pinned; the directory is not used until the change is checked and pinned again.",
} as const;

/** Codes the client reports itself. Service codes (`KW_…`) pass through as plain strings. */
export type ClientErrorCode = keyof typeof CLIENT_ERROR_CODES;

/** One attempt of a request that failed over: which address, and what happened there. */
export interface AttemptFailure {
  readonly address: string;
  /** The HTTP status, or 0 when no response arrived. */
  readonly status: number;
  /** The service's error code, or a client code (`KW_CLIENT_UNAVAILABLE` for a connection error, `KW_CLIENT_TIMEOUT`). */
  readonly code: string;
  readonly message: string;
}

export interface KeywardClientErrorOptions {
  readonly status?: number;
  readonly cause?: unknown;
  /** The base URL that produced this error, when one did. */
  readonly address?: string;
  /** Every failed attempt, in order, when the request was tried on several addresses. */
  readonly attempts?: readonly AttemptFailure[];
}

/**
 * Thrown by every client call.
 *
 * @example
 * try { await kms.generateDataKey('billing/orders', ctx) }
 * catch (e) {
 *   if (isKeywardClientError(e, 'KW_SEALED')) retryLater();          // the service reported it (status 503)
 *   if (isKeywardClientError(e, 'KW_CLIENT_UNAVAILABLE')) alert();   // no address answered
 * }
 */
export class KeywardClientError extends Error {
  /** The service's code (`KW_…`) or one of {@link CLIENT_ERROR_CODES}. */
  readonly code: string;
  /** The HTTP status of the response that carried the error; 0 when the client detected it without one. */
  readonly status: number;
  readonly address: string | undefined;
  readonly attempts: readonly AttemptFailure[];

  constructor(code: string, message?: string, options: KeywardClientErrorOptions = {}) {
    super(message ?? (CLIENT_ERROR_CODES as Record<string, string>)[code] ?? code, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KeywardClientError';
    this.code = code;
    this.status = options.status ?? 0;
    this.address = options.address;
    this.attempts = options.attempts ?? [];
  }
}

/** True when `e` is a KeywardClientError, optionally with the given code. */
export function isKeywardClientError(e: unknown, code?: ClientErrorCode | (string & {})): e is KeywardClientError {
  return e instanceof KeywardClientError && (code === undefined || e.code === code);
}
