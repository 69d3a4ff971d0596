/**
 * Maps `pg` failures to typed store errors. Like the SQLite store, the
 * PostgreSQL store checks its rules before writing and names the failure
 * itself; this mapping is the backstop for what only the server sees (a
 * constraint raced, a trigger fired, a lock or serialization failure, a lost
 * connection). Messages carry the SQLSTATE and the server's message, which
 * names the constraint or trigger, never the parameters of the statement.
 */
import { STORE_ERROR_CODES, StoreError, type StoreErrorCode } from './errors.js';

/** SQLSTATE classes and codes (PostgreSQL Appendix A) to store codes; the longest match wins. */
const BY_SQLSTATE: readonly (readonly [prefix: string, code: StoreErrorCode])[] = [
  ['23505', 'KW_STORE_CONFLICT'], // unique_violation
  ['23503', 'KW_STORE_NOT_FOUND'], // foreign_key_violation
  ['23', 'KW_STORE_INVALID_ARGUMENT'], // check, not null, exclusion
  ['22', 'KW_STORE_INVALID_ARGUMENT'], // data exception: bad JSON, NUL in text, out of range
  ['40001', 'KW_STORE_CONFLICT'], // serialization_failure
  ['40P01', 'KW_STORE_CONFLICT'], // deadlock_detected (the other transaction went through)
  ['55P03', 'KW_STORE_BUSY'], // lock_not_available (lock_timeout)
  ['57014', 'KW_STORE_BUSY'], // query_canceled (statement_timeout)
  ['53', 'KW_STORE_BUSY'], // insufficient resources: too many connections, out of memory
  ['57P', 'KW_STORE_UNAVAILABLE'], // admin / crash shutdown, cannot connect now
  ['08', 'KW_STORE_UNAVAILABLE'], // connection exception
  ['3D000', 'KW_STORE_UNAVAILABLE'], // invalid_catalog_name: the database does not exist
  ['28', 'KW_STORE_UNAVAILABLE'], // invalid authorization (wrong user or password)
  ['42', 'KW_STORE_CORRUPT_DATABASE'], // undefined table/column: not a Keyward schema
];

/** Node socket errors meaning the server is not there (or went away). */
const NET_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

/** What a `pg` DatabaseError looks like (checked structurally: the class is not exported stably). */
interface PgLikeError {
  code?: unknown;
  message: string;
  severity?: unknown;
}

function isPgDatabaseError(e: unknown): e is PgLikeError & { code: string } {
  return e instanceof Error && typeof (e as PgLikeError).code === 'string' && /^[0-9A-Z]{5}$/.test((e as PgLikeError).code as string) && (e as PgLikeError).severity !== undefined;
}

/** True for errors raised by a lost or refused connection, before or during a query. */
export function isConnectionError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as PgLikeError).code;
  if (typeof code === 'string' && (NET_CODES.has(code) || code.startsWith('08') || code.startsWith('57P'))) return true;
  return /Connection terminated|Client has encountered a connection error|connection timeout|timeout exceeded when trying to connect|Client was closed/i.test(e.message);
}

/**
 * `e` as a StoreError: store errors pass through, PostgreSQL and connection
 * errors are mapped (trigger messages carry their code: `RAISE EXCEPTION
 * 'KW_STORE_…: why'`), anything else — a bug, not a database condition — is
 * rethrown unchanged.
 */
export function toPgStoreError(e: unknown): StoreError {
  if (e instanceof StoreError) return e;
  if (isPgDatabaseError(e)) {
    if (e.code === 'P0001') {
      const m = /^(KW_STORE_[A-Z_]+): /.exec(e.message);
      const code = m?.[1];
      if (code !== undefined && code in STORE_ERROR_CODES) {
        return new StoreError(code as StoreErrorCode, e.message.slice(code.length + 2), { cause: e });
      }
    }
    let best: StoreErrorCode = 'KW_STORE_IO';
    let bestLength = 0;
    for (const [prefix, code] of BY_SQLSTATE) {
      if (e.code.startsWith(prefix) && prefix.length > bestLength) {
        best = code;
        bestLength = prefix.length;
      }
    }
    return new StoreError(best, `${e.code}: ${e.message}`, { cause: e });
  }
  if (isConnectionError(e)) {
    return new StoreError('KW_STORE_UNAVAILABLE', `the PostgreSQL server cannot be reached: ${(e as Error).message}`, { cause: e });
  }
  throw e;
}

/**
 * A connection string with any password replaced by `***`, for logs and
 * error messages (the store never logs a password).
 *
 * @example
 * redactUrl('postgres://kw:secret@db:5432/keyward') // 'postgres://kw:***@db:5432/keyward'
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    for (const k of [...u.searchParams.keys()]) if (/pass|secret|key/i.test(k)) u.searchParams.set(k, '***');
    return u.toString();
  } catch {
    return '(unparsable connection string)';
  }
}
