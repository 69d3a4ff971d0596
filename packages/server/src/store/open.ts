/**
 * Which store a deployment uses, from its `store` setting (flag `--store`,
 * env `KEYWARD_STORE`, config key `store`):
 *
 * - absent: the embedded SQLite file `keyward.db` in the data directory;
 * - `postgres://…` or `postgresql://…`: the PostgreSQL database it names
 *   (several nodes may share it). libpq-style query parameters are read by
 *   `pg`; `?schema=NAME` (a Keyward parameter, removed before connecting)
 *   puts the tables in that PostgreSQL schema.
 *
 * The data directory holds the keyholder socket, its state file and the
 * share files either way.
 *
 * @example
 * const store = await openConfiguredStore({ store: process.env.KEYWARD_STORE, dataDir });
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { StoreError } from './errors.js';
import { CURRENT_SCHEMA_VERSION, readSchemaVersion } from './migrations.js';
import { redactUrl } from './postgres-errors.js';
import { PG_SCHEMA_NAME, migratePostgresStore, openPostgresStore } from './postgres.js';
import { openSqliteStore } from './sqlite.js';
import type { Store } from './types.js';

/** The SQLite file name in the data directory. */
export const SQLITE_FILE = 'keyward.db';

/** A parsed `store` setting. */
export type StoreLocation =
  | { readonly kind: 'sqlite'; readonly path: string }
  | { readonly kind: 'postgres'; readonly url: string; readonly schema?: string; readonly display: string };

/** True when `value` is a PostgreSQL connection URL. */
export function isPostgresUrl(value: string): boolean {
  return /^postgres(?:ql)?:\/\//.test(value);
}

/**
 * Parses the `store` setting. `KW_STORE_INVALID_ARGUMENT` for anything that is
 * neither absent nor a postgres URL (the message never shows a password).
 */
export function storeLocation(store: string | undefined, dataDir: string | undefined): StoreLocation {
  if (store === undefined || store === '') {
    if (dataDir === undefined) throw new StoreError('KW_STORE_INVALID_ARGUMENT', 'no store: give a data directory (SQLite) or --store postgres://…');
    return { kind: 'sqlite', path: path.join(dataDir, SQLITE_FILE) };
  }
  if (!isPostgresUrl(store)) {
    throw new StoreError('KW_STORE_INVALID_ARGUMENT', 'the store must be a postgres:// or postgresql:// URL (or absent: SQLite in the data directory)');
  }
  let u: URL;
  try {
    u = new URL(store);
  } catch (e) {
    throw new StoreError('KW_STORE_INVALID_ARGUMENT', 'the store URL does not parse', { cause: e });
  }
  const schema = u.searchParams.get('schema') ?? undefined;
  if (schema !== undefined && !PG_SCHEMA_NAME.test(schema)) {
    throw new StoreError('KW_STORE_INVALID_ARGUMENT', 'the store URL parameter schema must be a lower-case identifier');
  }
  u.searchParams.delete('schema');
  const url = u.toString();
  return { kind: 'postgres', url, ...(schema !== undefined ? { schema } : {}), display: redactUrl(store) };
}

/** Opens (creating or migrating as needed) the store the setting names. */
export async function openConfiguredStore(opts: { store?: string | undefined; dataDir?: string | undefined; onError?: (what: string, e: unknown) => void }): Promise<Store> {
  const loc = storeLocation(opts.store, opts.dataDir);
  if (loc.kind === 'sqlite') return openSqliteStore({ path: loc.path });
  return openPostgresStore({ url: loc.url, ...(loc.schema !== undefined ? { schema: loc.schema } : {}), ...(opts.onError ? { onError: opts.onError } : {}) });
}

/** What `keyward migrate` reports. */
export interface MigrateOutcome {
  readonly store: 'sqlite' | 'postgres';
  /** The SQLite path, or the URL with its password replaced. */
  readonly location: string;
  readonly from: number;
  readonly to: number;
}

/**
 * Applies pending migrations to the store the setting names and reports the
 * versions before and after (`keyward migrate`). PostgreSQL: under the
 * migration advisory lock, safe while nodes run or start. SQLite: in one
 * immediate transaction.
 */
export async function migrateConfiguredStore(opts: { store?: string | undefined; dataDir?: string | undefined }): Promise<MigrateOutcome> {
  const loc = storeLocation(opts.store, opts.dataDir);
  if (loc.kind === 'postgres') {
    const target = { url: loc.url, ...(loc.schema !== undefined ? { schema: loc.schema } : {}) };
    const r = await migratePostgresStore(target);
    return { store: 'postgres', location: loc.display, ...r };
  }
  // SQLite migrates at open; read the version first without creating a file that is not there.
  if (!existsSync(loc.path)) throw new StoreError('KW_STORE_NOT_FOUND', `no store at ${loc.path} (run keyward init first)`);
  const db = new BetterSqlite3(loc.path, { readonly: true, fileMustExist: true });
  let from: number;
  try {
    from = readSchemaVersion(db);
  } finally {
    db.close();
  }
  const store = await openSqliteStore({ path: loc.path });
  await store.close();
  return { store: 'sqlite', location: loc.path, from, to: CURRENT_SCHEMA_VERSION };
}
