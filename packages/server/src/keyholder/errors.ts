/**
 * The keyholder's stable error codes. Callers (the API, the CLI, tests) match
 * on `code`, never on the message. Codes shared with `@keyward/core` keep the
 * same name and meaning (`KW_INVALID_ARGUMENT`, `KW_LIMIT_EXCEEDED`,
 * `KW_INTERNAL`), so the lead can merge both lists into one registry.
 */

/** Every code the keyholder throws, with the message used when none is given. */
export const ERRORS = {
  // --- custody: sealed / unsealed ------------------------------------------
  KW_SEALED: 'The keyholder is sealed: submit unseal shares first.',
  KW_ALREADY_UNSEALED: 'The keyholder is already unsealed; the share was not used.',
  KW_SHARE_CORRUPTED: 'An unseal share is corrupted (checksum or hash mismatch) and was not counted.',
  KW_SHARE_WRONG_INIT: 'An unseal share belongs to a different initialization of this keyholder and was not counted.',
  KW_SHARE_DUPLICATE: 'This unseal share was already submitted; it is not counted twice.',
  KW_SEALED_SHARE_REJECTED: "A sealed share does not open with this boot's unseal key and context (wrong boot, wrong key, or tampered).",
  KW_UNSEAL_FAILED: 'The shares combined to a key that fails the master-key check; progress was discarded.',
  KW_SHARES_SUPERSEDED: 'The shares are valid but were replaced by a rekey (a newer share set, published by an unsealed node of this deployment); this keyholder adopted the new set and stays sealed: unseal with the new shares.',

  // --- rekey: unseal-share rotation (rekey.ts) --------------------------------
  KW_REKEY_PENDING: 'A rekey is already in progress on this keyholder; finish or cancel it first (one attempt at a time).',
  KW_REKEY_NOT_FOUND: 'No rekey attempt with this id is in progress (none started, cancelled, completed, expired, or lost in a restart).',

  // --- key material --------------------------------------------------------
  KW_WRAPPED_KEY_MISMATCH: 'A wrapped blob does not unwrap for the key, version, type, purpose and context asked for (moved, modified or wrong key).',
  KW_KEY_TYPE_MISMATCH: 'The key version has the wrong type for this operation.',

  // --- key import (bring your own key) ---------------------------------------
  KW_IMPORT_TOKEN_INVALID: 'The import token is unknown to the keyholder (never issued, issued before a restart or seal, or for another key or type).',
  KW_IMPORT_TOKEN_EXPIRED: 'The import token expired; ask for new import parameters.',
  KW_IMPORT_TOKEN_USED: 'The import token was already used (each opens one import attempt); ask for new import parameters.',
  KW_IMPORT_UNWRAP_FAILED: "The wrapped key material does not open with the import's wrapping key (wrong parameters or algorithm, or modified).",
  KW_IMPORT_MATERIAL_INVALID: 'The imported key material has the wrong length or form for the key type.',

  // --- caller mistakes -----------------------------------------------------
  KW_INVALID_ARGUMENT: 'An argument is missing, has the wrong type, or is out of range.',
  KW_LIMIT_EXCEEDED: 'An input exceeds a hard limit.',

  // --- runtime -------------------------------------------------------------
  KW_INTERNAL: 'An unexpected internal failure; please report it.',
} as const;

/** Union of the keyholder's error codes. */
export type KeyholderErrorCode = keyof typeof ERRORS;

/** Structured facts about a failure, for callers that act on them (never secrets). */
export interface KeyholderErrorDetails {
  /** The share index a custody error is about (1-based, as printed on the share file). */
  readonly index?: number;
}

/**
 * The single error class of the keyholder.
 *
 * @example
 * try { await unsealer.submit(text) }
 * catch (e) { if (isKeyholderError(e, 'KW_SHARE_CORRUPTED')) console.log(`share ${e.details.index} is damaged`) }
 */
export class KeyholderError extends Error {
  readonly code: KeyholderErrorCode;
  readonly details: KeyholderErrorDetails;

  constructor(code: KeyholderErrorCode, message?: string, options?: { cause?: unknown; details?: KeyholderErrorDetails }) {
    super(message ?? ERRORS[code], options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KeyholderError';
    this.code = code;
    this.details = options?.details ?? {};
  }
}

/** True when `e` is a KeyholderError, optionally with the given code. */
export function isKeyholderError(e: unknown, code?: KeyholderErrorCode): e is KeyholderError {
  return e instanceof KeyholderError && (code === undefined || e.code === code);
}

/** Throws `code` (KW_INVALID_ARGUMENT by default) unless `cond` holds. */
export function check(cond: unknown, message: string, code: KeyholderErrorCode = 'KW_INVALID_ARGUMENT'): asserts cond {
  if (!cond) throw new KeyholderError(code, message);
}
