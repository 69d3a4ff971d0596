/**
 * Every failure in `@keyward/tlog` carries one stable string `code`. Callers
 * match on the code, never on the message. `docs/tlog.md` lists every code, and
 * a test checks that the list and this table agree.
 *
 * tlog does not depend on `@keyward/core`, so it has its own small error class;
 * the server maps these codes to HTTP statuses next to the `KW_*` ones.
 */

/**
 * The stable error codes and their default messages.
 *
 * @example
 * Object.keys(TLOG_ERROR_CODES) // ['TLOG_INVALID_ARGUMENT', 'TLOG_BAD_PROOF', …]
 */
export const TLOG_ERROR_CODES = {
  // --- caller mistakes -----------------------------------------------------
  TLOG_INVALID_ARGUMENT:
    'An argument has the wrong type, length or range (hash not 32 bytes, index ≥ size, m > n, size 0 where no proof exists, …).',

  // --- Merkle proofs and frontiers ------------------------------------------
  TLOG_BAD_PROOF: 'A Merkle proof has the wrong length or does not lead to the expected root.',
  TLOG_INCONSISTENT:
    'Two views of the log cannot both be true: equal sizes with different roots, or a frontier that does not extend a checkpoint.',

  // --- signed notes and keys -------------------------------------------------
  TLOG_MALFORMED_NOTE: 'The text is not a well-formed signed note (encoding, blank line, signature lines).',
  TLOG_LIMIT_EXCEEDED: 'The note exceeds a size, line-count or signature-count limit.',
  TLOG_MALFORMED_KEY: 'A verifier or signer key string is malformed, has an unsupported type, or its key ID does not match.',
  TLOG_BAD_SIGNATURE: 'A signature line from a known key does not verify.',
  TLOG_NO_VERIFIED_SIGNATURE: 'The note carries no signature from any of the given keys.',

  // --- checkpoints and cosignatures -----------------------------------------
  TLOG_MALFORMED_CHECKPOINT: 'The note text is not a well-formed checkpoint (origin, decimal size, base64 32-byte root, extension lines).',
  TLOG_ORIGIN_MISMATCH: 'The checkpoint origin is not the expected one.',
  TLOG_NOT_ENOUGH_COSIGNATURES: 'Fewer distinct witnesses than required cosigned the checkpoint.',
  TLOG_STALE_COSIGNATURES: "The k-th freshest cosignature is older than the verifier's maximum age: an old (possibly rolled-back) head, or witnesses no longer refreshed.",

  // --- the witness protocol (tlog-witness) -----------------------------------
  TLOG_MALFORMED_WITNESS_MESSAGE: 'An add-checkpoint request or a witness answer is not well-formed (HTTP 400).',
  TLOG_WITNESS_UNKNOWN_LOG: 'The witness is not configured to witness this log origin (HTTP 404).',
  TLOG_WITNESS_CONFLICT: 'The old size is not the size the witness last cosigned (HTTP 409): a stale client, a rollback or a second view of the log.',
  TLOG_WITNESS_REFUSED: 'The witness refused to cosign (400, 403, 404, 409 fork, 422 inconsistent log).',
  TLOG_WITNESS_UNAVAILABLE: 'The witness could not be reached, timed out or failed (network error, HTTP 5xx).',
} as const;

/** Union of every stable tlog error code. */
export type TlogErrorCode = keyof typeof TLOG_ERROR_CODES;

/**
 * The single error class of `@keyward/tlog`.
 *
 * @example
 * try { verifyInclusion(leaf, index, size, proof, root) }
 * catch (e) { if (isTlogError(e, 'TLOG_BAD_PROOF')) … }
 */
export class TlogError extends Error {
  readonly code: TlogErrorCode;

  constructor(code: TlogErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? TLOG_ERROR_CODES[code], options);
    this.name = 'TlogError';
    this.code = code;
  }
}

/**
 * True when `e` is a TlogError, optionally with the given code.
 *
 * @example
 * if (isTlogError(e, 'TLOG_INCONSISTENT')) alarm('fork detected');
 */
export function isTlogError(e: unknown, code?: TlogErrorCode): e is TlogError {
  return e instanceof TlogError && (code === undefined || e.code === code);
}

/** Throws `code` (default `TLOG_INVALID_ARGUMENT`) with `message` unless `cond` holds. @internal */
export function check(cond: unknown, message: string, code: TlogErrorCode = 'TLOG_INVALID_ARGUMENT'): asserts cond {
  if (!cond) throw new TlogError(code, message);
}
