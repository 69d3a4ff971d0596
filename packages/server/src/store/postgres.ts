/**
 * The PostgreSQL store (several stateless nodes on one database), on `pg`.
 *
 * - One connection pool per store. A read runs on any pooled connection; a
 *   write is its own `BEGIN … COMMIT` on one connection; `transaction(fn)`
 *   holds one connection for its whole length, and inside it every write is a
 *   `SAVEPOINT`, so a failed operation that `fn` catches leaves nothing behind
 *   (PostgreSQL would otherwise abort the whole transaction).
 * - Isolation is READ COMMITTED with explicit row locks where the contract
 *   needs them (`postgres-ops.ts`): the key row for rotation, compare-and-set
 *   for state changes, and the single `audit_head` sequencer row for the
 *   audit log, held until the appending transaction ends — so indices are
 *   gapless and totally ordered across every connection of every node.
 * - Versioned migrations (`postgres-migrations.ts`) run at open, under an
 *   advisory lock, so nodes starting together do not race; a newer schema is
 *   refused.
 * - `lock_timeout` (a lock held too long is `KW_STORE_BUSY`) and
 *   `idle_in_transaction_session_timeout` (a node that hangs inside a
 *   transaction cannot hold the audit sequencer for ever) are set per connection.
 * - `watch(listener)` delivers the change notifications of channel
 *   `keyward_changes` (`postgres-notify.ts`): the cross-node invalidation signal.
 * - The connection string may carry a password; the store never logs it and
 *   errors name the server with the password replaced (`redactUrl`).
 * - `schema` puts the tables in a PostgreSQL schema of their own (created if
 *   missing): several deployments, or test runs, in one database.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import { z } from 'zod';
import { StoreError } from './errors.js';
import { PG_SCHEMA_VERSION, assertPgSchemaKnown, migratePg, readPgSchemaVersion } from './postgres-migrations.js';
import { PgChangeFeed, type ChangeListener } from './postgres-notify.js';
import { isConnectionError, redactUrl, toPgStoreError } from './postgres-errors.js';
import { PgOps, type PgQuery, type PgRunner } from './postgres-ops.js';
import { parseInput } from './schema.js';
import { OP_KINDS } from './sqlite-ops.js';
import type { Store, StoreOps, StoreTx } from './types.js';

/** Options of {@link openPostgresStore}. */
export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database` (or `postgresql://`); libpq parameters as `pg` reads them. */
  url: string;
  /** A PostgreSQL schema for the tables (created if missing); default: the connection's search path (`public`). */
  schema?: string;
  /** Most pooled connections (default 10). */
  maxConnections?: number;
  /** How long a statement waits for a row lock before `KW_STORE_BUSY`, ms (default 30 000). */
  lockTimeoutMs?: number;
  /** How long a connection may sit idle inside a transaction before the server ends it, ms (default 60 000). */
  idleInTransactionTimeoutMs?: number;
  /** How long to wait for a connection to the server, ms (default 10 000). */
  connectTimeoutMs?: number;
  /** Apply pending migrations at open (default true); false: refuse a schema that is not current. */
  migrate?: boolean;
  /** Errors on idle connections and of the change feed (they are otherwise retried silently). */
  onError?: (what: string, e: unknown) => void;
}

/** A PostgreSQL schema name the store accepts: lower-case, so it never needs quoting. */
export const PG_SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

const OptionsSchema = z.object({
  url: z.string().regex(/^postgres(?:ql)?:\/\//, 'must be a postgres:// or postgresql:// URL'),
  schema: z.string().regex(PG_SCHEMA_NAME, 'must be a lower-case identifier').optional(),
  maxConnections: z.number().int().min(1).max(1000).default(10),
  lockTimeoutMs: z.number().int().min(1).max(3_600_000).default(30_000),
  idleInTransactionTimeoutMs: z.number().int().min(1000).max(86_400_000).default(60_000),
  connectTimeoutMs: z.number().int().min(1).max(600_000).default(10_000),
  migrate: z.boolean().default(true),
  onError: z.custom<(what: string, e: unknown) => void>((f) => typeof f === 'function').optional(),
});

/** The PostgreSQL store. */
export interface PostgresStore extends Store {
  /** The connection string with its password replaced by `***`. */
  readonly url: string;
  /** The PostgreSQL schema of the tables (`public` by default). */
  readonly schema: string;
  /**
   * Calls `listener` for every committed change to key versions, keys,
   * tokens, signing keys, principals and policies, on any node, and with
   * `{ kind: 'reset' }` whenever notifications may have been missed (the
   * listening connection was lost): then drop every cached row. Resolves once
   * the node is listening; the returned function unsubscribes.
   */
  watch(listener: ChangeListener): Promise<() => void>;
}

/** bigint columns (times, indices) as numbers: they are all below 2^53; a larger one stays a string and fails validation. */
const int8 = (s: string): number | string => {
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : s;
};
const defaultParser = pg.types.getTypeParser.bind(pg.types) as (oid: number, format: 'text' | 'binary') => unknown;
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
    oid === 20 && format !== 'binary' ? int8 : defaultParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
};

/**
 * Connects to PostgreSQL, applies pending migrations (under the migration
 * advisory lock) and returns the store.
 *
 * @throws `KW_STORE_UNAVAILABLE` (server unreachable, database missing, authentication refused),
 *   `KW_STORE_SCHEMA_TOO_NEW`, `KW_STORE_CORRUPT_DATABASE` (tables that are not Keyward's),
 *   `KW_STORE_MIGRATION_FAILED` (nothing changed).
 *
 * @example
 * const store = await openPostgresStore({ url: 'postgres://keyward@db.internal/keyward' });
 * try { … } finally { await store.close(); }
 */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  const o = parseInput(OptionsSchema, options, 'openPostgresStore');
  const onError = o.onError ?? (() => undefined);
  const connection = {
    connectionString: o.url,
    types: TYPES,
    application_name: 'keyward',
    connectionTimeoutMillis: o.connectTimeoutMs,
    lock_timeout: o.lockTimeoutMs,
    idle_in_transaction_session_timeout: o.idleInTransactionTimeoutMs,
    ...(o.schema !== undefined ? { options: `-c search_path=${o.schema}` } : {}),
  };
  const pool = new pg.Pool({ ...connection, max: o.maxConnections, idleTimeoutMillis: 30_000 });
  pool.on('error', (e) => onError('idle connection', e));
  try {
    const client = await pool.connect();
    try {
      if (o.schema !== undefined) await ensureSchema(client, o.schema);
      if (o.migrate) {
        await migratePg(client);
      } else {
        const found = await readPgSchemaVersion(client);
        assertPgSchemaKnown(found);
        if (found < PG_SCHEMA_VERSION) {
          throw new StoreError('KW_STORE_MIGRATION_FAILED', `the database schema is at version ${found}, this code needs ${PG_SCHEMA_VERSION}: run keyward migrate`);
        }
      }
      const schema = (await client.query<{ s: string }>('SELECT current_schema() AS s')).rows[0]?.s ?? 'public';
      client.release();
      return new PgStoreImpl(pool, redactUrl(o.url), schema, new PgChangeFeed({ ...connection }, schema, onError)).asStore();
    } catch (e) {
      client.release(isConnectionError(e));
      throw e;
    }
  } catch (e) {
    await pool.end().catch(() => undefined);
    const mapped = toPgStoreError(e);
    if (mapped.code === 'KW_STORE_UNAVAILABLE') {
      throw new StoreError('KW_STORE_UNAVAILABLE', `cannot open the PostgreSQL store at ${redactUrl(o.url)}: ${mapped.message}`, { cause: e });
    }
    throw mapped;
  }
}

/**
 * Applies the pending migrations to the database at `url` and returns the
 * versions before and after (`keyward migrate`). Safe to run while nodes are
 * starting: the migration advisory lock orders them.
 */
export async function migratePostgresStore(options: { url: string; schema?: string }): Promise<{ from: number; to: number }> {
  const o = parseInput(OptionsSchema.pick({ url: true, schema: true }), options, 'migratePostgresStore');
  const client = new pg.Client({ connectionString: o.url, types: TYPES, application_name: 'keyward-migrate', ...(o.schema !== undefined ? { options: `-c search_path=${o.schema}` } : {}) });
  client.on('error', () => undefined);
  try {
    await client.connect();
    if (o.schema !== undefined) await ensureSchema(client, o.schema);
    return await migratePg(client);
  } catch (e) {
    const mapped = toPgStoreError(e);
    if (mapped.code === 'KW_STORE_UNAVAILABLE') throw new StoreError('KW_STORE_UNAVAILABLE', `cannot reach ${redactUrl(o.url)}: ${mapped.message}`, { cause: e });
    throw mapped;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The schema version of the database at `url` without changing it (0: empty). */
export async function pgSchemaVersionAt(options: { url: string; schema?: string }): Promise<number> {
  const o = parseInput(OptionsSchema.pick({ url: true, schema: true }), options, 'pgSchemaVersionAt');
  const client = new pg.Client({ connectionString: o.url, types: TYPES, application_name: 'keyward-migrate', ...(o.schema !== undefined ? { options: `-c search_path=${o.schema}` } : {}) });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await readPgSchemaVersion(client);
  } catch (e) {
    throw toPgStoreError(e);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Creates `schema` unless it exists; two nodes doing it at once is fine (the loser's unique violation is the answer). */
async function ensureSchema(client: pg.ClientBase, schema: string): Promise<void> {
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code !== '23505' && code !== '42P06') throw e;
  }
}

/** Which store a running transaction body belongs to, and whether it is still open. */
interface TxContext {
  readonly store: PgStoreImpl;
  open: boolean;
}

/** Follows every await inside `transaction(fn)`, so using the outer store there is an error, not a pool deadlock. */
const txContext = new AsyncLocalStorage<TxContext>();

type Call = (name: keyof StoreOps, run: () => Promise<unknown>) => Promise<unknown>;

/** An object with every `StoreOps` method, each forwarding to `ops` through `call` (a synchronous throw becomes a rejection). */
function bindOps(ops: PgOps, call: Call): StoreOps {
  const bound: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const name of Object.keys(OP_KINDS) as (keyof StoreOps)[]) {
    bound[name] = (...args) =>
      call(name, () => {
        try {
          return (ops as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[name]!(...args);
        } catch (e) {
          return Promise.reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
  }
  return bound as unknown as StoreOps;
}

/** A query function over one client or the pool. */
function queryOn(db: pg.Pool | pg.PoolClient): PgQuery {
  return async (text, values) => {
    const res = await db.query(text, values as unknown[] | undefined);
    return { rows: res.rows as Record<string, unknown>[], rowCount: res.rowCount ?? 0 };
  };
}

class PgStoreImpl {
  readonly #pool: pg.Pool;
  readonly #feed: PgChangeFeed;
  readonly url: string;
  readonly schema: string;
  #closed = false;
  #closing: Promise<void> | null = null;
  readonly #inFlight = new Set<Promise<unknown>>();

  constructor(pool: pg.Pool, url: string, schema: string, feed: PgChangeFeed) {
    this.#pool = pool;
    this.url = url;
    this.schema = schema;
    this.#feed = feed;
  }

  asStore(): PostgresStore {
    const pool = this.#pool;
    const outerRunner: PgRunner = {
      read: (_name, fn) => fn(queryOn(pool)),
      write: async (_name, fn) => {
        const client = await pool.connect();
        let broken = false;
        try {
          await client.query('BEGIN');
          try {
            const result = await fn(queryOn(client));
            await client.query('COMMIT');
            return result;
          } catch (e) {
            broken = isConnectionError(e);
            if (!broken) await client.query('ROLLBACK').catch(() => (broken = true));
            throw e;
          }
        } finally {
          client.release(broken);
        }
      },
    };
    const outer = bindOps(new PgOps(outerRunner), (name, run) => this.#track(name, run));
    return Object.assign(outer, {
      url: this.url,
      schema: this.schema,
      transaction: <T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> => this.#track('transaction', () => this.#transaction(fn)) as Promise<T>,
      checkpoint: (): Promise<void> => this.#track('checkpoint', () => this.#vacuum()) as Promise<void>,
      schemaVersion: (): Promise<number> =>
        this.#track('schemaVersion', async () => {
          const client = await pool.connect();
          try {
            return await readPgSchemaVersion(client);
          } finally {
            client.release();
          }
        }) as Promise<number>,
      close: (): Promise<void> => this.#close(),
      watch: (listener: ChangeListener): Promise<() => void> => {
        if (this.#closed) return Promise.reject(new StoreError('KW_STORE_CLOSED', 'watch: the store is closed'));
        return this.#feed.subscribe(listener);
      },
    });
  }

  /**
   * Runs `run` as a public call: refused inside this store's own open
   * transaction (`KW_STORE_TRANSACTION_MISUSE`) and after close
   * (`KW_STORE_CLOSED`); errors become typed store errors; close() waits for it.
   */
  #track(name: string, run: () => Promise<unknown>): Promise<unknown> {
    const ctx = txContext.getStore();
    if (ctx !== undefined && ctx.open && ctx.store === this) {
      return Promise.reject(
        new StoreError('KW_STORE_TRANSACTION_MISUSE', `${name} called on the store inside its own transaction; use the tx handle passed to fn`),
      );
    }
    if (this.#closed) return Promise.reject(new StoreError('KW_STORE_CLOSED', `${name}: the store is closed`));
    const p = (async () => {
      try {
        return await run();
      } catch (e) {
        // The body's own errors of transaction(fn) pass unchanged (toPgStoreError rethrows what it does not know).
        throw toPgStoreError(e);
      }
    })();
    this.#inFlight.add(p);
    void p.then(
      () => this.#inFlight.delete(p),
      () => this.#inFlight.delete(p),
    );
    return p;
  }

  async #transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    const q = queryOn(client);
    const ctx: TxContext = { store: this, open: true };
    /** A statement failed outside a savepoint: PostgreSQL has aborted the transaction. */
    let aborted = false;
    let broken = false;
    /** Operations of one transaction run one at a time (savepoints must not interleave). */
    let tail: Promise<unknown> = Promise.resolve();
    let savepoints = 0;
    const runner: PgRunner = {
      read: async (_name, body) => {
        try {
          return await body(q);
        } catch (e) {
          // A validation error of a row read (KW_STORE_CORRUPT_ROW) leaves the transaction usable; a database error does not.
          if (!(e instanceof StoreError)) aborted = true;
          throw e;
        }
      },
      write: async (_name, body) => {
        const sp = `kw_op_${++savepoints}`;
        await q(`SAVEPOINT ${sp}`);
        try {
          const result = await body(q);
          await q(`RELEASE SAVEPOINT ${sp}`);
          return result;
        } catch (e) {
          try {
            await q(`ROLLBACK TO SAVEPOINT ${sp}`);
            await q(`RELEASE SAVEPOINT ${sp}`);
          } catch (e2) {
            aborted = true;
            broken = isConnectionError(e2);
          }
          throw e;
        }
      },
    };
    const tx = bindOps(new PgOps(runner), (name, run) => {
      if (!ctx.open) {
        return Promise.reject(new StoreError('KW_STORE_TRANSACTION_MISUSE', `${name} called on a transaction handle after its transaction ended`));
      }
      if (aborted) return Promise.reject(new StoreError('KW_STORE_IO', `${name}: the database aborted the transaction; nothing will be committed`));
      const p = tail.then(async () => {
        try {
          return await run();
        } catch (e) {
          throw toPgStoreError(e);
        }
      });
      tail = p.catch(() => undefined);
      return p;
    });

    try {
      await client.query('BEGIN');
    } catch (e) {
      client.release(true);
      throw e;
    }
    let result: T;
    try {
      result = await txContext.run(ctx, () => fn(tx));
    } catch (e) {
      ctx.open = false;
      await tail;
      await client.query('ROLLBACK').catch(() => (broken = true));
      client.release(broken);
      throw e; // the caller's own error, unchanged
    }
    ctx.open = false;
    await tail;
    try {
      if (aborted) {
        await client.query('ROLLBACK').catch(() => (broken = true));
        throw new StoreError('KW_STORE_IO', 'the database aborted the transaction; nothing was committed');
      }
      const res = await client.query('COMMIT');
      // COMMIT of a transaction PostgreSQL already aborted answers ROLLBACK, not an error.
      if (res.command !== 'COMMIT') throw new StoreError('KW_STORE_IO', 'the database rolled the transaction back; nothing was committed');
    } catch (e) {
      broken = broken || isConnectionError(e);
      client.release(broken);
      throw e;
    }
    client.release();
    return result;
  }

  /**
   * Removes dead row versions of key_versions (the pre-destroy copies of a
   * blob) from the table's pages. What PostgreSQL keeps elsewhere — WAL
   * segments until recycled, replicas, base backups — is outside the store's
   * reach: docs/key-service-design.md §Several nodes.
   */
  async #vacuum(): Promise<void> {
    try {
      await this.#pool.query('VACUUM key_versions');
    } catch (e) {
      const mapped = toPgStoreError(e);
      throw new StoreError(mapped.code === 'KW_STORE_UNAVAILABLE' ? mapped.code : 'KW_STORE_BUSY', `VACUUM of key_versions failed: ${mapped.message}`, { cause: e });
    }
  }

  #close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#closing = (async () => {
      while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
      await this.#feed.close();
      await this.#pool.end();
    })();
    return this.#closing;
  }
}
