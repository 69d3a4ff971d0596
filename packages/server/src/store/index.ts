/**
 * `server/store`: persistence behind one interface. SQLite (embedded
 * default) and PostgreSQL (several nodes on one database), passing the same conformance suite
 * (`test/store/conformance.ts`). The store keeps data and its integrity (types,
 * references, the key-version transition table, an append-only gapless audit
 * log); it holds no business rules — who may do what is decided by the API.
 */
export type * from './types.js';
export { STORE_ERROR_CODES, StoreError, isStoreError, type StoreErrorCode } from './errors.js';
export {
  ASYMMETRIC_KEY_TYPES,
  KEY_TYPES,
  KEY_VERSION_STATES,
  KEY_VERSION_TRANSITIONS,
  MAX_AUDIT_READ,
  MAX_BLOB_BYTES,
  MAX_IDENTIFIER_LENGTH,
  MAX_TEXT_LENGTH,
  PRINCIPAL_KINDS,
  SIGNING_KEY_ALGS,
  isAllowedTransition,
} from './schema.js';
export { CURRENT_SCHEMA_VERSION, MIGRATIONS, type Migration } from './migrations.js';
export { openSqliteStore, type SqliteSettings, type SqliteStore, type SqliteStoreOptions } from './sqlite.js';
export { PG_MIGRATIONS, PG_SCHEMA_VERSION } from './postgres-migrations.js';
export { migratePostgresStore, openPostgresStore, type PostgresStore, type PostgresStoreOptions } from './postgres.js';
export { CHANGE_CHANNEL, MAX_CACHE_TTL_MS, type ChangeEvent, type ChangeListener, type StoreChange } from './postgres-notify.js';
export { redactUrl } from './postgres-errors.js';
export { withReadCache, type ReadCacheOptions, type ReadCacheStats } from './read-cache.js';
export { SQLITE_FILE, isPostgresUrl, migrateConfiguredStore, openConfiguredStore, storeLocation, type MigrateOutcome, type StoreLocation } from './open.js';
