/**
 * The one error registry of the HTTP API: every code the API can return,
 * with its HTTP status and default message. Codes come from `@keyward/core`
 * (ERROR_CODES), the keyholder protocol (PROTOCOL_ERRORS), the store
 * (STORE_ERROR_CODES), the audit module (AUDIT_ERRORS), the RFC 9421 verifier
 * (HTTPSIG_ERROR_CODES), second factors and step-up (MFA_ERRORS) and the API
 * itself (API_ERRORS). docs/errors.md
 * documents every one (test/api/errors.test.ts checks it).
 *
 * Error bodies are `{ error: { code, message } }`. Nothing internal leaks:
 * a 5xx answer carries the registry message, never the exception's, and an
 * unknown exception is `KW_INTERNAL` with a generic message.
 *
 * @example
 * throw new ApiError('KW_FORBIDDEN', 'policy does not grant data.unwrap on billing/orders');
 */
import { ERROR_CODES, isKeywardError } from '@keyward/core';
import { HTTPSIG_ERROR_CODES, isHttpSigError } from '@keyward/client';
import { AUDIT_ERRORS, isAuditError } from '../audit/errors.js';
import { MFA_ERRORS, isMfaError } from '../mfa/errors.js';
import { PROTOCOL_ERRORS, isProtocolError } from '../keyholder/protocol.js';
import { STORE_ERROR_CODES, isStoreError } from '../store/errors.js';
import { DIRECTORY_ERROR_CODES, isDirectoryError } from '@keyward/directory';
import { DIRECTORY_API_ERRORS, DIRECTORY_STATUS } from '../directory/errors.js';

/** Codes that only the HTTP layer produces. */
export const API_ERRORS = {
  KW_UNAUTHENTICATED: 'A valid bearer token is required (missing, malformed, unknown, expired or revoked).',
  KW_FORBIDDEN: 'The policy in force does not grant this operation on this key to this principal.',
  KW_NOT_FOUND: 'No such route, key, key version, token or policy.',
  KW_KEY_EXISTS: 'A key with this name already exists in the namespace.',
  KW_KEY_VERSION_DISABLED: 'The key version is not enabled (disabled, scheduled for deletion, or below the minimum decryption version).',
  KW_KEY_VERSION_DESTROYED: 'The key version was destroyed; what it protected cannot be recovered.',
  KW_BODY_TOO_LARGE: 'The request body exceeds 64 KiB.',
  KW_UNSUPPORTED_MEDIA_TYPE: 'Request bodies must be application/json.',
  KW_RATE_LIMITED: 'Too many requests from this token or address; retry later.',
  KW_KEY_ORIGIN_MISMATCH: 'The key has the other origin: imports add versions only to keys created by import (origin external), and rotate only to keys whose material the service generates.',
  KW_BOOTSTRAP_ONLY: 'The initial admin token of keyward init only enrolls the first administrators; use an administrator token.',
  KW_PRINCIPAL_DISABLED: 'The principal is disabled: it cannot authenticate, and gets no new token, role or signing key.',
  KW_CSRF_REJECTED: 'A request authenticated by the console session cookie came without a valid CSRF proof (X-Keyward-CSRF) or from another site; nothing was read or changed.',
  KW_CONSOLE_NOT_BUILT: 'The web console assets are not built (run npm run build, or install a release that ships them).',
  // Attestation-gated release (api/routes/attest.ts; docs/tee.md §Release flow). `reason` names the @keyward/attest code.
  KW_RELEASE_POLICY_INVALID: 'The release policy is not well formed (unknown platform or field, non-hex measurement, negative version or age); nothing was stored.',
  KW_RELEASE_POLICY_MISSING: 'The key has no release policy: nothing is released to attested workloads until an administrator sets one.',
  KW_ATTEST_NOT_CONFIGURED: 'The server has no trust roots for this evidence type (configure attest.tpmRoots, amdRoots, intelRoots or nitroRoots).',
  KW_ATTEST_EVIDENCE_INVALID: 'The evidence is not well formed (malformed, oversized, non-canonical or unsupported); nothing was released.',
  KW_ATTEST_EVIDENCE_REJECTED: 'The evidence does not verify (signature, certificate chain, trust root, validity period, key binding, PCR digest or attestation key); nothing was released.',
  KW_ATTEST_POLICY_DENIED: "The verified evidence does not satisfy the key's release policy (platform, measurement, debug, version or age); nothing was released.",
} as const;

/** Union of every code of the registry. */
export type ApiErrorCode =
  | keyof typeof ERROR_CODES
  | keyof typeof PROTOCOL_ERRORS
  | keyof typeof STORE_ERROR_CODES
  | keyof typeof AUDIT_ERRORS
  | keyof typeof HTTPSIG_ERROR_CODES
  | keyof typeof MFA_ERRORS
  | keyof typeof DIRECTORY_API_ERRORS
  | keyof typeof DIRECTORY_ERROR_CODES
  | keyof typeof API_ERRORS;

export interface RegistryEntry {
  readonly status: number;
  readonly message: string;
}

const STATUS: Readonly<Record<string, number>> = {
  // API
  KW_UNAUTHENTICATED: 401, KW_FORBIDDEN: 403, KW_NOT_FOUND: 404, KW_KEY_EXISTS: 409,
  KW_KEY_VERSION_DISABLED: 409, KW_KEY_VERSION_DESTROYED: 410, KW_BODY_TOO_LARGE: 413,
  KW_UNSUPPORTED_MEDIA_TYPE: 415, KW_RATE_LIMITED: 429, KW_KEY_ORIGIN_MISMATCH: 409, KW_BOOTSTRAP_ONLY: 403, KW_PRINCIPAL_DISABLED: 409,
  KW_CSRF_REJECTED: 403, KW_CONSOLE_NOT_BUILT: 503,
  KW_RELEASE_POLICY_INVALID: 400, KW_RELEASE_POLICY_MISSING: 409, KW_ATTEST_NOT_CONFIGURED: 400, KW_ATTEST_EVIDENCE_INVALID: 400,
  KW_ATTEST_EVIDENCE_REJECTED: 403, KW_ATTEST_POLICY_DENIED: 403,
  KW_ATTEST_NONCE_UNKNOWN: 403, KW_ATTEST_NONCE_EXPIRED: 410, KW_ATTEST_NONCE_USED: 409, KW_ATTEST_BINDING_MISMATCH: 403,
  // core / shared
  KW_INTERNAL: 500, KW_IO: 500, KW_KMS_UNAVAILABLE: 503,
  // keyholder
  KW_SHARES_SUPERSEDED: 409, KW_REKEY_PENDING: 409, KW_REKEY_NOT_FOUND: 404,
  KW_SEALED: 503, KW_ALREADY_UNSEALED: 409, KW_SHARE_CORRUPTED: 400, KW_SHARE_WRONG_INIT: 400, KW_SHARE_DUPLICATE: 409,
  KW_SEALED_SHARE_REJECTED: 400, KW_UNSEAL_FAILED: 400, KW_WRAPPED_KEY_MISMATCH: 400, KW_KEY_TYPE_MISMATCH: 400,
  KW_NOT_INITIALIZED: 503, KW_ALREADY_INITIALIZED: 409, KW_AUDIT_NOT_RESTORED: 503, KW_AUDIT_CONFLICT: 503, KW_AUDIT_FORK: 500,
  KW_DIRECTORY_NO_KEYS: 503, KW_DIRECTORY_KEY_MISMATCH: 500, KW_DIRECTORY_HEAD_REGRESSION: 500, KW_DIRECTORY_HEAD_INCONSISTENT: 500,
  KW_REQUEST_UNAUTHENTICATED: 401, KW_REQUEST_REPLAYED: 401, KW_REQUEST_MISMATCH: 400,
  KW_KEYHOLDER_UNAVAILABLE: 503, KW_KEYHOLDER_TIMEOUT: 504,
  KW_KEYHOLDER_ATTESTATION_FAILED: 503, KW_KEYHOLDER_MEASUREMENT_MISMATCH: 503, KW_KEYHOLDER_CHANNEL_REFUSED: 503, KW_KEYHOLDER_NOT_ATTESTED: 404,
  KW_IMPORT_TOKEN_INVALID: 400, KW_IMPORT_TOKEN_EXPIRED: 410, KW_IMPORT_TOKEN_USED: 409, KW_IMPORT_UNWRAP_FAILED: 400, KW_IMPORT_MATERIAL_INVALID: 400,
  // HSM (hsm/errors.ts; docs/hsm.md)
  KW_HSM_MODULE_MISSING: 503, KW_HSM_TOKEN_MISSING: 503, KW_HSM_PIN_INCORRECT: 503, KW_HSM_KEY_MISSING: 503, KW_HSM_KEY_EXISTS: 409,
  KW_HSM_MECHANISM_UNSUPPORTED: 501, KW_HSM_UNAVAILABLE: 503, KW_HSM_INTEGRITY: 400, KW_HSM_FAILED: 502,
  KW_HSM_AUTO_UNSEAL: 409, KW_HSM_NOT_CONFIGURED: 409, KW_HSM_RESIDENT_KEYS: 409, KW_HSM_SERVICE_RUNNING: 409,
  // store
  KW_STORE_INVALID_ARGUMENT: 400, KW_STORE_TRANSACTION_MISUSE: 500, KW_STORE_NOT_FOUND: 404, KW_STORE_CONFLICT: 409,
  KW_STORE_INVALID_TRANSITION: 409, KW_STORE_CORRUPT_ROW: 500, KW_STORE_CORRUPT_DATABASE: 500, KW_STORE_SCHEMA_TOO_NEW: 500,
  KW_STORE_MIGRATION_FAILED: 500, KW_STORE_BUSY: 503, KW_STORE_UNAVAILABLE: 503, KW_STORE_CLOSED: 503, KW_STORE_IO: 500,
  // audit
  KW_AUDIT_MALFORMED: 500, KW_AUDIT_CORRUPT: 500, KW_AUDIT_BAD_RECEIPT: 400,
  // RFC 9421
  HTTPSIG_MALFORMED: 400,
  // MFA, step-up, quorum (mfa/errors.ts)
  KW_MFA_REQUIRED: 403, KW_MFA_INVALID: 401, KW_MFA_REPLAY: 409, KW_MFA_LOCKED: 429, KW_STEP_UP_MISMATCH: 403, KW_STEP_UP_EXPIRED: 410,
  KW_QUORUM_INVALID: 400, KW_APPROVAL_INVALID: 400, KW_APPROVAL_SELF: 403, KW_APPROVAL_NOT_MEMBER: 403,
  KW_QUORUM_REQUIRED: 403, KW_QUORUM_PENDING: 409, KW_APPROVAL_DENIED: 409, KW_APPROVAL_DUPLICATE: 409, KW_APPROVAL_CLOSED: 409,
  KW_POLICY_DENIED: 403, KW_GOVERNANCE_ANCHORED: 409, KW_GOVERNANCE_NOT_ANCHORED: 409,
};

function build(): Readonly<Record<string, RegistryEntry>> {
  const out: Record<string, RegistryEntry> = {};
  const add = (codes: Readonly<Record<string, string>>, fallback: (code: string) => number) => {
    for (const [code, message] of Object.entries(codes)) {
      if (out[code]) continue; // first source wins for shared codes (core's wording)
      out[code] = { status: STATUS[code] ?? DIRECTORY_STATUS[code] ?? fallback(code), message };
    }
  };
  add(API_ERRORS, () => 400);
  add(ERROR_CODES, () => 400);
  add(PROTOCOL_ERRORS, () => 400);
  add(STORE_ERROR_CODES, () => 500);
  add(AUDIT_ERRORS, () => 400);
  add(HTTPSIG_ERROR_CODES, () => 401);
  add(MFA_ERRORS, () => 400);
  add(DIRECTORY_API_ERRORS, () => 400);
  add(DIRECTORY_ERROR_CODES, () => 400);
  return Object.freeze(out);
}

/** code → { status, message } for every code the API can answer with. */
export const ERROR_REGISTRY: Readonly<Record<string, RegistryEntry>> = build();

/** An error the HTTP layer raises; `code` must be in the registry. */
export class ApiError extends Error {
  readonly code: ApiErrorCode;
  /** A stable sub-code callers may act on (e.g. the ATTEST_* code behind KW_ATTEST_POLICY_DENIED); sent as `error.reason`. */
  readonly reason: string | undefined;
  constructor(code: ApiErrorCode, message?: string, options?: { cause?: unknown; reason?: string }) {
    super(message ?? ERROR_REGISTRY[code]?.message ?? code, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ApiError';
    this.code = code;
    this.reason = options?.reason;
  }
}

/** The stable sub-code of an error, when it has one (ApiError.reason). */
export function reasonOf(e: unknown): string | undefined {
  return isApiError(e) ? e.reason : undefined;
}

export function isApiError(e: unknown, code?: ApiErrorCode): e is ApiError {
  return e instanceof ApiError && (code === undefined || e.code === code);
}

/** What an error becomes on the wire. */
export interface HttpError {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

/** Fastify's own errors we expect, by their code. */
const FASTIFY_CODES: Readonly<Record<string, ApiErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'KW_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'KW_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'KW_INVALID_ARGUMENT',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'KW_INVALID_ARGUMENT',
  FST_ERR_CTP_INVALID_JSON_BODY: 'KW_INVALID_ARGUMENT',
};

/**
 * Maps any thrown value to the answer: a typed error keeps its code (4xx keep
 * their message, trimmed; 5xx get the registry message), anything else is
 * KW_INTERNAL with a generic message.
 */
export function toHttpError(e: unknown): HttpError {
  let code: string | undefined;
  let message: string | undefined;
  if (isApiError(e) || isProtocolError(e) || isStoreError(e) || isAuditError(e) || isHttpSigError(e) || isMfaError(e) || isDirectoryError(e)) {
    code = e.code;
    message = e.message;
  } else if (typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string') {
    const fc = FASTIFY_CODES[(e as { code: string }).code];
    if (fc) {
      code = fc;
      message = ERROR_REGISTRY[fc]!.message;
    } else if (isKeywardError(e)) {
      code = e.code;
      message = e.message;
    }
  }
  const entry = code === undefined ? undefined : ERROR_REGISTRY[code];
  if (code === undefined || entry === undefined) {
    return { status: 500, code: 'KW_INTERNAL', message: 'An unexpected internal failure.' };
  }
  if (entry.status >= 500) return { status: entry.status, code, message: entry.message };
  return { status: entry.status, code, message: (message ?? entry.message).slice(0, 1024) };
}
