/**
 * Every failure of the store carries one stable string `code`. Callers (the
 * API) match on the code, never on the message, and map it to an HTTP status in
 * their own registry. Messages name the table and the rule that failed, never
 * the stored bytes.
 *
 * The store has its own small error class, like `@keyward/tlog`: `KeywardError`
 * of `@keyward/core` has a closed code union that belongs to the seal library.
 */

/** The stable store error codes and their default messages. */
export const STORE_ERROR_CODES = {
  // --- caller mistakes -----------------------------------------------------
  KW_STORE_INVALID_ARGUMENT:
    'An argument has the wrong type, length or range (identifier, time, blob, JSON, hash), or breaks an integrity rule of its own row.',
  KW_STORE_TRANSACTION_MISUSE:
    'The store was used the wrong way around a transaction: the outer store called inside transaction(fn), a nested transaction, or a transaction handle used after it ended.',

  // --- the state of the data -------------------------------------------------
  KW_STORE_NOT_FOUND: 'The row (or the row it refers to: namespace, key, principal) does not exist.',
  KW_STORE_CONFLICT:
    'The write collides with existing data or with a concurrent writer (duplicate name, hash or id; expected version or index no longer the next one).',
  KW_STORE_INVALID_TRANSITION:
    'The key version state change is not in the transition table (destroyed is terminal; destroy only from scheduled_for_deletion).',

  // --- the database itself ---------------------------------------------------
  KW_STORE_CORRUPT_ROW: 'A stored row fails validation when read (edited or damaged database).',
  KW_STORE_CORRUPT_DATABASE: 'The file is not a database or the database is malformed.',
  KW_STORE_SCHEMA_TOO_NEW: 'The database was written by a newer Keyward with a schema this code does not know; refusing to open it.',
  KW_STORE_MIGRATION_FAILED: 'A schema migration failed; the database was left at its previous version.',
  KW_STORE_BUSY: 'The database stayed locked by another connection beyond the busy timeout, or a WAL checkpoint could not complete.',
  KW_STORE_UNAVAILABLE:
    'The database server cannot be reached or dropped the connection (PostgreSQL down, restarting, or refusing connections); retry, possibly on another node.',
  KW_STORE_CLOSED: 'The store was closed.',
  KW_STORE_IO: 'The database engine failed (I/O error, disk full, permissions).',
} as const;

/** Union of every stable store error code. */
export type StoreErrorCode = keyof typeof STORE_ERROR_CODES;

/**
 * The single error class of `server/store`.
 *
 * @example
 * try { await store.rotateKey({ ns, key, version: 4, wrapped, publicKey: null, created }) }
 * catch (e) { if (isStoreError(e, 'KW_STORE_CONFLICT')) … re-read latestVersion and retry … }
 */
export class StoreError extends Error {
  readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? STORE_ERROR_CODES[code], options);
    this.name = 'StoreError';
    this.code = code;
  }
}

/**
 * True when `e` is a StoreError, optionally with the given code.
 *
 * @example
 * if (isStoreError(e, 'KW_STORE_NOT_FOUND')) return reply(404);
 */
export function isStoreError(e: unknown, code?: StoreErrorCode): e is StoreError {
  return e instanceof StoreError && (code === undefined || e.code === code);
}
