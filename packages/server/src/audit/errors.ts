/**
 * The audit module's stable error codes (thrown) and problem codes (reported
 * by the offline verifier). Callers match on `code`, never on the message.
 * Codes shared with `@keyward/core` and the keyholder keep the same name and
 * meaning (`KW_INVALID_ARGUMENT`, `KW_LIMIT_EXCEEDED`). Every code is listed in
 * `docs/audit.md`, and a test checks that.
 */

/** Codes of {@link AuditError}: thrown when an audit operation cannot be done. */
export const AUDIT_ERRORS = {
  KW_INVALID_ARGUMENT: 'An argument is missing, has the wrong type, or is out of range.',
  KW_LIMIT_EXCEEDED: 'An audit event or input exceeds a hard limit.',
  KW_AUDIT_MALFORMED: 'A stored or exported audit event is not a canonical, schema-valid event.',
  KW_AUDIT_CORRUPT: 'The stored audit log is inconsistent (gap, broken hash chain, or a fork of its own checkpoint); nothing was signed.',
  KW_AUDIT_CONFLICT: 'The storage appended the event at another index than the log expected (a concurrent writer); the append must be rolled back.',
  KW_AUDIT_BAD_RECEIPT: 'A destroy receipt is malformed, does not match its event, or its signature does not verify.',
} as const;

/** Union of the thrown codes. */
export type AuditErrorCode = keyof typeof AUDIT_ERRORS;

/** Structured facts about a failure (never secrets). */
export interface AuditErrorDetails {
  /** The event index the failure is about, when there is one. */
  readonly index?: number;
}

/**
 * The single error class of the audit module.
 *
 * @example
 * try { await log.checkpoint(signer) }
 * catch (e) { if (isAuditError(e, 'KW_AUDIT_CORRUPT')) alert(`stored log broken at ${e.details.index}`) }
 */
export class AuditError extends Error {
  readonly code: AuditErrorCode;
  readonly details: AuditErrorDetails;

  constructor(code: AuditErrorCode, message?: string, options?: { cause?: unknown; details?: AuditErrorDetails }) {
    super(message ?? AUDIT_ERRORS[code], options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AuditError';
    this.code = code;
    this.details = options?.details ?? {};
  }
}

/**
 * True when `e` is an AuditError, optionally with the given code.
 *
 * @example
 * if (isAuditError(e, 'KW_AUDIT_CONFLICT')) retry();
 */
export function isAuditError(e: unknown, code?: AuditErrorCode): e is AuditError {
  return e instanceof AuditError && (code === undefined || e.code === code);
}

/** Throws `code` (KW_INVALID_ARGUMENT by default) unless `cond` holds. @internal */
export function check(cond: unknown, message: string, code: AuditErrorCode = 'KW_INVALID_ARGUMENT'): asserts cond {
  if (!cond) throw new AuditError(code, message);
}

/**
 * What the offline verifier reports (`verifyExport(...).problems[i].code`).
 * See docs/audit.md for how each is detected.
 */
export const AUDIT_PROBLEMS = {
  AUDIT_MALFORMED: 'The export, a header field or an event line is not well-formed (not canonical JSON, not schema-valid, too long).',
  AUDIT_BAD_CHECKPOINT: "A checkpoint (the export's own, or the saved one) is malformed, has another origin, or its signature does not verify with the log's key.",
  AUDIT_MODIFIED: "An event's bytes differ from what the log committed to: its hash is not the next event's prev, the first event's prev is not the genesis value, or the events do not hash to the signed root.",
  AUDIT_DELETED: 'An event inside the range is missing: the indices jump over it (a gap).',
  AUDIT_REORDERED: 'An event appears at the wrong position: the indices are not increasing.',
  AUDIT_INSERTED: 'An event that the log never held: a second event with the same index, or an index outside the range the checkpoint covers.',
  AUDIT_TRUNCATED: 'The export ends before the end of its range, or the log is shorter than a checkpoint saved earlier (rollback).',
  AUDIT_REWRITTEN: 'The first events of the export do not hash to the root of the checkpoint saved earlier: history was rewritten since then.',
  AUDIT_NOT_COVERED: "The saved checkpoint's size lies outside the export's range, so consistency with it could not be checked.",
  AUDIT_GOVERNANCE_INVALID: 'A governance snapshot in the log does not verify: not signed by the keyholder, not chained to the previous one, not what the change makes of it, or adopted without the approvals its quorum rule requires.',
  AUDIT_APPROVAL_INVALID: "An approval, refusal or execution under quorum in the log does not verify: a signature that fails with the approver's keys of the snapshot in force, or fewer verified approvals than the rule's threshold.",
  AUDIT_NOT_WITNESSED: "The export's checkpoint lacks the required cosignatures: fewer than k of the configured witnesses validly cosigned it (or a listed witness's cosignature is forged).",
} as const;

/** Union of the verifier's problem codes. */
export type AuditProblemCode = keyof typeof AUDIT_PROBLEMS;
