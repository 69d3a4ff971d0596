/**
 * A read-only view of a SQLite store, for `keyward doctor --data DIR`: it
 * inspects a deployment without changing a byte of it (no migration, no
 * journal-mode switch, no chmod, no WAL checkpoint). The connection is opened
 * with SQLite's own read-only flag, so even a bug here cannot write. (To read
 * a WAL database SQLite may create the empty `-wal` and `-shm` side files,
 * with the database file's own mode, when no server has them open.)
 *
 * Only the reading operations of the store are offered, with the same row
 * validation as the read-write store (`SqliteOps`): a damaged row is
 * `KW_STORE_CORRUPT_ROW`, as it would be for the server.
 *
 * Refusals (StoreError):
 * - `KW_STORE_UNAVAILABLE`: the file does not exist;
 * - `KW_STORE_CORRUPT_DATABASE`: not a Keyward database;
 * - `KW_STORE_SCHEMA_TOO_NEW`: written by a newer Keyward;
 * - `KW_STORE_SCHEMA_OUTDATED` is not a code: an older schema opens, and
 *   {@link ReadOnlyStore.schemaVersion} against {@link CURRENT_SCHEMA_VERSION}
 *   tells the caller (reads of columns added later may then fail).
 *
 * @example
 * const ro = await openSqliteStoreReadOnly({ path: join(dataDir, 'keyward.db') });
 * try { console.log(await ro.listNamespaces()); } finally { ro.close(); }
 */
import fs from 'node:fs';
import BetterSqlite3, { type Database } from 'better-sqlite3';
import { StoreError } from './errors.js';
import { CURRENT_SCHEMA_VERSION, assertSchemaKnown, readSchemaVersion } from './migrations.js';
import { toStoreError } from './sqlite-errors.js';
import { SqliteOps } from './sqlite-ops.js';
import type { StoreOps } from './types.js';

/** The reading operations of the store. */
export type ReadOnlyStoreOps = Pick<
  StoreOps,
  | 'getNamespace' | 'listNamespaces'
  | 'getKey' | 'listKeys' | 'listKeysDueForRotation'
  | 'getKeyVersion' | 'listKeyVersions' | 'listVersionsDueForDestruction'
  | 'getPrincipal' | 'listPrincipals'
  | 'getToken' | 'listTokens'
  | 'getSigningKey' | 'listSigningKeys'
  | 'getPolicy' | 'listPolicies' | 'listPolicyVersions'
  | 'getAuditEvent' | 'readAuditEvents' | 'auditSize' | 'latestAuditCheckpoint' | 'getAuditCheckpoint'
  | 'getMeta'
  | 'listMfaFactors'
  | 'ktTreeSize'
>;

const READ_OPS = [
  'getNamespace', 'listNamespaces', 'getKey', 'listKeys', 'listKeysDueForRotation', 'getKeyVersion', 'listKeyVersions',
  'listVersionsDueForDestruction', 'getPrincipal', 'listPrincipals', 'getToken', 'listTokens', 'getSigningKey',
  'listSigningKeys', 'getPolicy', 'listPolicies', 'listPolicyVersions', 'getAuditEvent', 'readAuditEvents', 'auditSize',
  'latestAuditCheckpoint', 'getAuditCheckpoint', 'getMeta', 'listMfaFactors', 'ktTreeSize',
] as const satisfies readonly (keyof ReadOnlyStoreOps)[];

/** A read-only SQLite store. */
export interface ReadOnlyStore extends ReadOnlyStoreOps {
  readonly path: string;
  /** The schema version recorded in the file (compare with {@link CURRENT_SCHEMA_VERSION}). */
  readonly schemaVersion: number;
  close(): void;
}

/** Opens the SQLite store at `path` read-only. See the module comment for the refusals. */
export function openSqliteStoreReadOnly(options: { path: string }): Promise<ReadOnlyStore> {
  try {
    return Promise.resolve(openSync(options.path));
  } catch (e) {
    return Promise.reject(e instanceof Error ? e : new Error(String(e)));
  }
}

function openSync(path: string): ReadOnlyStore {
  if (!fs.existsSync(path)) throw new StoreError('KW_STORE_UNAVAILABLE', `no store at ${path}`);
  let db: Database;
  try {
    db = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
  } catch (e) {
    throw toStoreError(e);
  }
  try {
    db.pragma('trusted_schema = OFF');
    const schemaVersion = readSchemaVersion(db);
    if (schemaVersion === 0) throw new StoreError('KW_STORE_CORRUPT_DATABASE', `${path} is an empty database, not a Keyward store`);
    assertSchemaKnown(schemaVersion);
    const ops = new SqliteOps(db, () => undefined);
    const out: Record<string, unknown> = { path, schemaVersion, close: () => db.close() };
    for (const name of READ_OPS) {
      out[name] = (...args: unknown[]): Promise<unknown> => {
        try {
          return Promise.resolve((ops as unknown as Record<string, (...a: unknown[]) => unknown>)[name]!(...args));
        } catch (e) {
          return Promise.reject(toStoreError(e));
        }
      };
    }
    return out as unknown as ReadOnlyStore;
  } catch (e) {
    db.close();
    throw toStoreError(e);
  }
}

export { CURRENT_SCHEMA_VERSION };
