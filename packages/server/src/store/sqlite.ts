/**
 * The SQLite store (the embedded default), on better-sqlite3.
 *
 * - The file is created (and kept) with mode 0600; SQLite gives its `-wal` and
 *   `-shm` files the same mode.
 * - `journal_mode = WAL`, `synchronous = FULL` (a commit survives power loss),
 *   `foreign_keys = ON`, `secure_delete = ON` (a destroyed blob is overwritten
 *   in the file's pages, not just unlinked), `trusted_schema = OFF`, a busy
 *   timeout for other processes.
 * - Versioned migrations run at open (`migrations.ts`); a newer schema is refused.
 * - better-sqlite3 is synchronous, the `Store` interface is async: every call is
 *   queued on one FIFO lock, so an operation from outside never runs inside
 *   somebody's open `transaction(fn)` (it would otherwise be committed or rolled
 *   back with it). Single operations are their own transaction; inside
 *   `transaction(fn)` each is a savepoint, so a failed one leaves nothing behind.
 * - After a destroy commits, the WAL is checkpointed and truncated; `checkpoint()`
 *   does it on request and reports when it could not.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import fs from 'node:fs';
import BetterSqlite3, { type Database } from 'better-sqlite3';
import { z } from 'zod';
import { StoreError } from './errors.js';
import { assertSchemaKnown, migrate, readSchemaVersion } from './migrations.js';
import { parseInput } from './schema.js';
import { toStoreError } from './sqlite-errors.js';
import { OP_KINDS, SqliteOps } from './sqlite-ops.js';
import type { Store, StoreOps, StoreTx } from './types.js';

/** Options of {@link openSqliteStore}. */
export interface SqliteStoreOptions {
  /** Path of the database file; created with mode 0600 if it does not exist. */
  path: string;
  /** How long to wait for a lock held by another connection, in milliseconds (default 5000). */
  busyTimeoutMs?: number;
}

const OptionsSchema = z.object({
  path: z.string().min(1).refine((p) => p !== ':memory:' && !p.startsWith('file:'), 'must be a file path'),
  busyTimeoutMs: z.number().int().min(0).max(600_000).default(5000),
});

/** The connection settings in force, for `doctor` and tests. */
export interface SqliteSettings {
  journalMode: string;
  /** 2 = FULL. */
  synchronous: number;
  foreignKeys: boolean;
  secureDelete: boolean;
  trustedSchema: boolean;
  busyTimeoutMs: number;
}

/** The SQLite store; `path` names its file. */
export interface SqliteStore extends Store {
  readonly path: string;
  /** The pragmas of the store's connection. */
  settings(): Promise<SqliteSettings>;
}

/**
 * Opens (creating if needed) the SQLite store at `options.path` and brings its
 * schema up to date.
 *
 * @throws `KW_STORE_SCHEMA_TOO_NEW` if a newer Keyward wrote it (nothing is changed),
 *   `KW_STORE_CORRUPT_DATABASE` if it is not a Keyward database,
 *   `KW_STORE_MIGRATION_FAILED` if a migration fails (the file stays at its old version).
 *
 * @example
 * const store = await openSqliteStore({ path: join(dataDir, 'keyward.db') });
 * try { … } finally { await store.close(); }
 */
export function openSqliteStore(options: SqliteStoreOptions): Promise<SqliteStore> {
  try {
    return Promise.resolve(openSync(options));
  } catch (e) {
    return Promise.reject(e instanceof Error ? e : new Error(String(e)));
  }
}

function openSync(options: SqliteStoreOptions): SqliteStore {
  const { path, busyTimeoutMs } = parseInput(OptionsSchema, options, 'openSqliteStore');
  makePrivate(path, true);
  let db: Database;
  try {
    db = new BetterSqlite3(path, { timeout: busyTimeoutMs });
  } catch (e) {
    throw toStoreError(e);
  }
  try {
    // Connection settings first; they change nothing in the file.
    db.pragma('foreign_keys = ON');
    db.pragma('secure_delete = ON');
    db.pragma('synchronous = FULL');
    db.pragma('trusted_schema = OFF');
    db.pragma('cell_size_check = ON');
    // Refuse a newer schema before writing anything, even the journal mode.
    assertSchemaKnown(readSchemaVersion(db));
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new StoreError('KW_STORE_IO', `cannot switch ${path} to WAL mode (got ${String(mode)})`);
    migrate(db);
    for (const suffix of ['-wal', '-shm']) makePrivate(path + suffix, false);
    return new SqliteStoreImpl(db, path).asStore();
  } catch (e) {
    db.close();
    throw toStoreError(e);
  }
}

/** Sets mode 0600 on `file`, creating it first when `create`. */
function makePrivate(file: string, create: boolean): void {
  try {
    if (!create && !fs.existsSync(file)) return;
    const fd = fs.openSync(file, fs.constants.O_RDWR | (create ? fs.constants.O_CREAT : 0), 0o600);
    try {
      fs.fchmodSync(fd, 0o600);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    throw new StoreError('KW_STORE_IO', `cannot create or restrict ${file}`, { cause: e });
  }
}

/** Which store a running transaction body belongs to, and whether it is still open. */
interface TxContext {
  readonly store: SqliteStoreImpl;
  open: boolean;
}

/** Follows every await inside `transaction(fn)`, so misuse is an error instead of a deadlock. */
const txContext = new AsyncLocalStorage<TxContext>();

type OpKind = 'read' | 'write';
type Call = (name: keyof StoreOps, kind: OpKind, run: () => unknown) => Promise<unknown>;

/** An object with every `StoreOps` method, each forwarding to `ops` through `call`. */
function bindOps(ops: SqliteOps, call: Call): StoreOps {
  const bound: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const name of Object.keys(OP_KINDS) as (keyof StoreOps)[]) {
    bound[name] = (...args) =>
      call(name, OP_KINDS[name], () => (ops as unknown as Record<string, (...a: unknown[]) => unknown>)[name]!(...args));
  }
  return bound as unknown as StoreOps;
}

class SqliteStoreImpl {
  readonly path: string;
  readonly #db: Database;
  readonly #ops: SqliteOps;
  /** BEGIN … COMMIT around `run` outside a transaction; a SAVEPOINT inside one. */
  readonly #atomic: BetterSqlite3.Transaction<(run: () => unknown) => unknown>;
  /** Tail of the FIFO lock: every public call starts after the previous one settled. */
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** A blob was destroyed since the WAL was last truncated. */
  #walMayHoldDestroyed = false;

  constructor(db: Database, path: string) {
    this.#db = db;
    this.path = path;
    this.#ops = new SqliteOps(db, () => {
      this.#walMayHoldDestroyed = true;
    });
    this.#atomic = db.transaction((run: () => unknown) => run());
  }

  /** The public face: every operation goes through the lock. */
  asStore(): SqliteStore {
    const outer = bindOps(this.#ops, (name, kind, run) =>
      this.#exclusive(name, () => {
        // Writes take the write lock at BEGIN, so they never fail half-way on a lock upgrade.
        const result = kind === 'write' ? this.#atomic.immediate(run) : this.#atomic.deferred(run);
        this.#afterCommit();
        return result;
      }),
    );
    return Object.assign(outer, {
      path: this.path,
      transaction: <T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> => this.#transaction(fn),
      checkpoint: (): Promise<void> => this.#exclusive('checkpoint', () => this.#truncateWal()),
      schemaVersion: (): Promise<number> => this.#exclusive('schemaVersion', () => readSchemaVersion(this.#db)),
      close: (): Promise<void> => this.#close(),
      settings: (): Promise<SqliteSettings> => this.#exclusive('settings', () => this.#settings()),
    });
  }

  /**
   * Runs `run` after every earlier call has settled. Refuses a call made from
   * inside this store's own open transaction (it would wait for itself).
   */
  #exclusive<T>(name: string, run: () => T | Promise<T>, whenClosed: 'throw' | 'skip' = 'throw'): Promise<T> {
    const ctx = txContext.getStore();
    if (ctx !== undefined && ctx.open && ctx.store === this) {
      return Promise.reject(
        new StoreError(
          'KW_STORE_TRANSACTION_MISUSE',
          `${name} called on the store inside its own transaction; use the tx handle passed to fn`,
        ),
      );
    }
    const result = this.#tail.then(async () => {
      if (this.#closed) {
        // Only close() skips, and its T is void.
        if (whenClosed === 'skip') return undefined as T;
        throw new StoreError('KW_STORE_CLOSED', `${name}: the store is closed`);
      }
      try {
        return await run();
      } catch (e) {
        throw toStoreError(e);
      }
    });
    this.#tail = result.catch(() => undefined);
    return result;
  }

  #transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.#exclusive('transaction', async () => {
      const ctx: TxContext = { store: this, open: true };
      const tx = bindOps(this.#ops, (name, _kind, run) => {
        if (!ctx.open) {
          return Promise.reject(
            new StoreError('KW_STORE_TRANSACTION_MISUSE', `${name} called on a transaction handle after its transaction ended`),
          );
        }
        if (!this.#db.inTransaction) {
          // SQLite rolled the transaction back itself (disk full, I/O error): never run on in autocommit.
          return Promise.reject(new StoreError('KW_STORE_IO', `${name}: the engine aborted the transaction`));
        }
        try {
          return Promise.resolve(this.#atomic(run));
        } catch (e) {
          return Promise.reject(toStoreError(e));
        }
      });
      this.#db.exec('BEGIN IMMEDIATE');
      let result: T;
      try {
        result = await txContext.run(ctx, () => fn(tx));
      } catch (e) {
        ctx.open = false;
        this.#rollback();
        throw e; // the caller's own error, unchanged
      }
      ctx.open = false;
      if (!this.#db.inTransaction) {
        throw new StoreError('KW_STORE_IO', 'the engine aborted the transaction; nothing was committed');
      }
      try {
        this.#db.exec('COMMIT');
      } catch (e) {
        this.#rollback();
        throw toStoreError(e);
      }
      this.#afterCommit();
      return result;
    });
  }

  #settings(): SqliteSettings {
    const get = (name: string): unknown => this.#db.pragma(name, { simple: true });
    return {
      journalMode: String(get('journal_mode')),
      synchronous: Number(get('synchronous')),
      foreignKeys: get('foreign_keys') === 1,
      secureDelete: get('secure_delete') === 1,
      trustedSchema: get('trusted_schema') === 1,
      busyTimeoutMs: Number(get('busy_timeout')),
    };
  }

  #rollback(): void {
    if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
  }

  /** Once a destroy is committed, leave no older copy of the blob in the WAL (best effort; see checkpoint()). */
  #afterCommit(): void {
    if (!this.#walMayHoldDestroyed || this.#db.inTransaction) return;
    try {
      this.#truncateWal();
    } catch {
      // The change is committed; the next commit or an explicit checkpoint() tries again.
    }
  }

  #truncateWal(): void {
    const rows = this.#db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[];
    if (rows[0]?.busy !== 0) {
      throw new StoreError('KW_STORE_BUSY', 'a reader kept the WAL checkpoint from completing; retry');
    }
    this.#walMayHoldDestroyed = false;
  }

  async #close(): Promise<void> {
    await this.#exclusive(
      'close',
      () => {
        this.#closed = true;
        this.#db.close();
      },
      'skip',
    );
  }
}
