/**
 * Maps better-sqlite3 failures to typed store errors. The SQLite store checks
 * its rules before writing and names the failure itself; this mapping is the
 * backstop for what only the engine sees (a constraint raced, a trigger fired,
 * a lock, a damaged file).
 */
import BetterSqlite3 from 'better-sqlite3';
import { STORE_ERROR_CODES, StoreError, type StoreErrorCode } from './errors.js';

/** Extended SQLite result codes, by prefix, to store codes. */
const BY_SQLITE_CODE: readonly (readonly [prefix: string, code: StoreErrorCode])[] = [
  ['SQLITE_CONSTRAINT_PRIMARYKEY', 'KW_STORE_CONFLICT'],
  ['SQLITE_CONSTRAINT_UNIQUE', 'KW_STORE_CONFLICT'],
  ['SQLITE_CONSTRAINT_FOREIGNKEY', 'KW_STORE_NOT_FOUND'],
  ['SQLITE_CONSTRAINT', 'KW_STORE_INVALID_ARGUMENT'], // CHECK, NOTNULL, DATATYPE
  ['SQLITE_BUSY', 'KW_STORE_BUSY'],
  ['SQLITE_LOCKED', 'KW_STORE_BUSY'],
  ['SQLITE_CORRUPT', 'KW_STORE_CORRUPT_DATABASE'],
  ['SQLITE_NOTADB', 'KW_STORE_CORRUPT_DATABASE'],
];

/**
 * `e` as a StoreError: store errors pass through, SQLite errors are mapped
 * (trigger messages carry their code: `RAISE(ABORT, 'KW_STORE_…: why')`),
 * anything else — a bug, not a database condition — is rethrown unchanged.
 */
export function toStoreError(e: unknown): StoreError {
  if (e instanceof StoreError) return e;
  if (e instanceof BetterSqlite3.SqliteError) {
    if (e.code === 'SQLITE_CONSTRAINT_TRIGGER') {
      const m = /^(KW_STORE_[A-Z_]+): /.exec(e.message);
      const code = m?.[1];
      if (code !== undefined && code in STORE_ERROR_CODES) {
        return new StoreError(code as StoreErrorCode, e.message.slice(code.length + 2), { cause: e });
      }
    }
    const hit = BY_SQLITE_CODE.find(([prefix]) => e.code.startsWith(prefix));
    return new StoreError(hit?.[1] ?? 'KW_STORE_IO', `${e.code}: ${e.message}`, { cause: e });
  }
  throw e;
}
