/**
 * Every failure in `@keyward/directory` is a {@link DirectoryError} with one
 * stable string `code`. Callers match on the code, never on the message.
 * `docs/errors.md` lists every code (section "Directory"), and a test checks
 * that the list and this table agree.
 */

/**
 * The stable error codes and their default messages.
 *
 * @example
 * Object.keys(DIRECTORY_ERROR_CODES) // ['KT_INVALID_ARGUMENT', 'KT_MALFORMED', …]
 */
export const DIRECTORY_ERROR_CODES = {
  KT_INVALID_ARGUMENT: 'An argument has the wrong type, length or range.',
  KT_MALFORMED: 'Bytes do not decode as the expected KEYTRANS structure (truncated, trailing bytes, unknown enum, over-long vector).',
  KT_BAD_VRF_PROOF: 'A VRF proof does not verify for this public key and input, or a key or proof is not a valid encoding.',
  KT_BAD_COMMITMENT: 'A commitment opening does not match the commitment.',
  KT_BAD_PREFIX_PROOF: 'A prefix-tree proof is malformed or does not evaluate to the expected root.',
  KT_BAD_LOG_PROOF: 'A log-tree proof is malformed, contradicts a retained subtree head, or does not evaluate to the expected root.',
  KT_BAD_SIGNATURE: 'A tree head signature does not verify under the configured key.',
  KT_BAD_RESPONSE: 'A search, update or monitor response is inconsistent with the request or the proofs it carries.',
  KT_ROLLBACK: 'The log presented a tree head older than one this client has already verified.',
  KT_FORK: 'Two tree heads cannot both be honest: same size with different roots, or a newer head that does not extend an older one.',
  KT_UNEXPECTED_VERSION: 'Monitoring found a version of a label that its owner did not add (or a version above the one the owner holds).',
  KT_NOT_FOUND: 'The label, or the requested version of it, does not exist in the directory.',
  KT_CONFLICT: 'The update conflicts with the directory state (version not next, duplicate label-version pair).',
} as const;

/** Union of every stable directory error code. */
export type DirectoryErrorCode = keyof typeof DIRECTORY_ERROR_CODES;

/**
 * The single error class of `@keyward/directory`.
 *
 * @example
 * try { client.verifySearch(req, res) }
 * catch (e) { if (isDirectoryError(e, 'KT_FORK')) alarm('split view'); }
 */
export class DirectoryError extends Error {
  readonly code: DirectoryErrorCode;

  constructor(code: DirectoryErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? DIRECTORY_ERROR_CODES[code], options);
    this.name = 'DirectoryError';
    this.code = code;
  }
}

/**
 * True when `e` is a DirectoryError, optionally with the given code.
 *
 * @example
 * if (isDirectoryError(e, 'KT_ROLLBACK')) …
 */
export function isDirectoryError(e: unknown, code?: DirectoryErrorCode): e is DirectoryError {
  return e instanceof DirectoryError && (code === undefined || e.code === code);
}

/** Throws `code` (default `KT_INVALID_ARGUMENT`) with `message` unless `cond` holds. @internal */
export function check(cond: unknown, message: string, code: DirectoryErrorCode = 'KT_INVALID_ARGUMENT'): asserts cond {
  if (!cond) throw new DirectoryError(code, message);
}
