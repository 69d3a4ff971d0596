/**
 * The MFA module's stable error codes: second factors, step-up bound to one
 * request, and quorum approval. Callers (and the HTTP registry) match on
 * `code`, never on the message. Messages never say whether a principal or a
 * factor exists (no user enumeration): a wrong code, an unknown credential and
 * a locked factor read the same to the caller where that matters, and the
 * audit log keeps the precise reason.
 */

/** Codes of {@link MfaError}. */
export const MFA_ERRORS = {
  KW_MFA_REQUIRED: 'This operation needs a fresh second factor bound to this exact request (step-up).',
  KW_MFA_INVALID: 'The second factor did not verify (wrong or malformed code, assertion or recovery code).',
  KW_MFA_REPLAY: 'This code or assertion was already used; each is accepted once.',
  KW_MFA_LOCKED: 'Too many failed second-factor attempts; try again later.',
  KW_STEP_UP_MISMATCH: 'The verified factor is bound to another request; a step-up is valid only for the request whose hash it signed.',
  KW_STEP_UP_EXPIRED: 'The step-up or approval request has expired.',
  KW_QUORUM_INVALID: 'A quorum must need at least 1 and at most as many approvers as its role has members.',
  KW_APPROVAL_INVALID: 'The approval does not verify for this request (signature, key or credential).',
  KW_APPROVAL_SELF: 'The requester of an operation cannot approve it.',
  KW_APPROVAL_NOT_MEMBER: 'The approver is not a member of the role the quorum names.',
  KW_QUORUM_REQUIRED: 'This operation needs the approval of a quorum: create an approval request (POST /v1/approvals), then send the request again with its id in the Keyward-Approval header once approved.',
  KW_QUORUM_PENDING: 'The approval request does not have enough verified approvals yet.',
  KW_APPROVAL_DENIED: 'An approver refused this request; it can no longer execute.',
  KW_APPROVAL_DUPLICATE: 'This approver already answered this request; an answer counts once.',
  KW_APPROVAL_CLOSED: 'The approval request is closed (executed, denied or expired).',
} as const;

/** Union of the codes. */
export type MfaErrorCode = keyof typeof MFA_ERRORS;

/**
 * The single error class of the MFA module.
 *
 * @example
 * try { await verifyStepUp(...) }
 * catch (e) { if (isMfaError(e, 'KW_STEP_UP_MISMATCH')) ask the user to confirm the new request }
 */
export class MfaError extends Error {
  readonly code: MfaErrorCode;
  constructor(code: MfaErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? MFA_ERRORS[code], options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MfaError';
    this.code = code;
  }
}

/** True when `e` is an MfaError, optionally with the given code. */
export function isMfaError(e: unknown, code?: MfaErrorCode): e is MfaError {
  return e instanceof MfaError && (code === undefined || e.code === code);
}
