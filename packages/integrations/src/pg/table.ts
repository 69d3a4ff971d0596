/**
 * PostgreSQL helpers around {@link SealedColumns} (`pg` client): insert a row
 * with its sealed columns and blind indexes, read rows back opened, find
 * rows by a blind index, and rotate (rewrap) every sealed value of a table
 * in batches through the key service.
 *
 * Identifiers (table, key and column names) are quoted; values always travel
 * as query parameters. The key column's value is the row key (`String(v)`).
 */
import pg from 'pg';
import { decodeKmsStanza, isKeywardClientError, kmsRewrap, MAX_REWRAP_ITEMS, type KmsKeyService } from '@keyward/client';
import { inspect } from '@keyward/core';
import { IntegrationError, invalid } from '../errors.js';
import { sameContext } from '../sealing.js';
import { decodeContainer, encodeContainer } from './container.js';
import { readKmsStanza, type ColumnValue, type SealedColumns } from './columns.js';

/** A pool or a client (a pool is asked for one client per transaction). */
export type Db = pg.Pool | pg.Client | pg.PoolClient;

/** `"a"."b"` for `a.b`; quotes doubled. */
export function quoteIdent(name: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.includes('\0')) throw invalid('an identifier is a non-empty string without NUL');
  return name.split('.').map((p) => `"${p.replace(/"/g, '""')}"`).join('.');
}

async function query<R extends pg.QueryResultRow>(db: Db, text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
  try {
    return await db.query<R>(text, values);
  } catch (e) {
    throw new IntegrationError('KW_INT_TRANSPORT_FAILED', 'a PostgreSQL query failed', { cause: e });
  }
}

export interface SealedTableOptions {
  /** The primary key column (its value is the bound row key). */
  readonly keyColumn: string;
  /** The table's SQL name, if it differs from the bound name. */
  readonly sqlTable?: string;
}

/**
 * @example
 * const patients = new SealedTable(pool, cols, { keyColumn: 'id' });
 * await patients.insert({ id: 'p-1', name: 'Ada', ssn: '123-45-6789' });
 * const [row] = await patients.findBy('ssn', '123-45-6789');   // via the blind index
 */
export class SealedTable {
  readonly #db: Db;
  readonly cols: SealedColumns;
  readonly keyColumn: string;
  readonly sqlTable: string;

  constructor(db: Db, cols: SealedColumns, options: SealedTableOptions) {
    if (!db || typeof db.query !== 'function') throw invalid('a pg Pool or Client is required');
    if (typeof options?.keyColumn !== 'string' || options.keyColumn.length === 0) throw invalid('keyColumn is required');
    if (cols.columns.includes(options.keyColumn)) throw invalid('the key column cannot be sealed (it is the binding)');
    this.#db = db;
    this.cols = cols;
    this.keyColumn = options.keyColumn;
    this.sqlTable = options.sqlTable ?? cols.table;
  }

  /** Seals the sealed columns of `row` and inserts it. */
  async insert(row: Readonly<Record<string, unknown>>): Promise<void> {
    const key = row[this.keyColumn];
    if (typeof key !== 'string' && typeof key !== 'number' && typeof key !== 'bigint') throw invalid(`the row needs its key column "${this.keyColumn}" (a string or a number)`);
    const sealed = await this.cols.sealRow(String(key), row);
    const names = Object.keys(sealed);
    const sql = `INSERT INTO ${quoteIdent(this.sqlTable)} (${names.map(quoteIdent).join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')})`;
    await query(this.#db, sql, names.map((n) => sealed[n]));
  }

  /** The row with key `key`, sealed columns opened; null when absent. */
  async get(key: string | number): Promise<Record<string, unknown> | null> {
    const r = await query(this.#db, `SELECT * FROM ${quoteIdent(this.sqlTable)} WHERE ${quoteIdent(this.keyColumn)} = $1`, [key]);
    const row = r.rows[0];
    return row ? this.cols.openRow(String(key), row) : null;
  }

  /** Rows whose `column` equals `value`, found by its blind index, then opened (and re-checked). */
  async findBy(column: string, value: ColumnValue): Promise<Record<string, unknown>[]> {
    const idx = this.cols.blindIndexOptions?.columns[column];
    if (!idx) throw invalid(`"${column}" has no blind index`);
    const mac = await this.cols.blindIndex(column, value);
    const r = await query(this.#db, `SELECT * FROM ${quoteIdent(this.sqlTable)} WHERE ${quoteIdent(idx)} = $1`, [mac]);
    const out: Record<string, unknown>[] = [];
    for (const row of r.rows) {
      const opened = await this.cols.openRow(String(row[this.keyColumn] as string | number), row);
      const got = opened[column];
      // The index is only a filter: keep rows whose opened value really is equal.
      const same = typeof value === 'string' ? got === value : got instanceof Uint8Array && Buffer.compare(got, value) === 0;
      if (same) out.push(opened);
    }
    return out;
  }
}

export interface RewrapOptions {
  /** The key service client (its device must be granted `rewrap` on the key). */
  readonly service: KmsKeyService;
  /** The primary key column; the scan pages through it in order. */
  readonly keyColumn: string;
  readonly sqlTable?: string;
  /** Rows per batch (one transaction, at most ⌈values/100⌉ rewrap calls); default 100. */
  readonly batchSize?: number;
  /** Skip values whose current key version is at least this (saves calls when re-running). */
  readonly skipAtOrAbove?: number;
  /** Called after each batch. */
  readonly onBatch?: (stats: RewrapStats) => void;
}

export interface RewrapStats {
  /** Rows read. */
  rows: number;
  /** Sealed values seen (non-NULL). */
  values: number;
  /** Values whose blob moved to a newer version and were written back. */
  rewrapped: number;
  /** Values already on the newest version (or skipped by `skipAtOrAbove`). */
  current: number;
  /** Values with no `kms` stanza (sealed to public keys only): nothing to rewrap. */
  noKms: number;
  /** Values whose header names another table, column or row (moved there): left alone and reported. */
  misplaced: number;
  /** Values the service refused (e.g. `KW_WRAPPED_KEY_MISMATCH`): left alone and reported. */
  failed: number;
  /** Values changed by someone else between read and write: left alone. */
  conflicts: number;
  /** Row key and column of every misplaced or failed value, with the code. */
  problems: { row: string; column: string; code: string }[];
}

interface Item {
  /** The key column's value as read. */
  key: unknown;
  row: string;
  column: string;
  stored: Buffer;
  envelope: Uint8Array;
  keyRef: string;
  version: number;
  wrapped: Uint8Array;
  context: [string, string][];
}

/**
 * Rewraps every sealed value of the table to the newest version of its key,
 * in batches, without decrypting anything outside the keyholder: only the
 * container's rewrapped-key field changes (docs/integrations.md §Rotation).
 * Each batch is one transaction; a value is written back only if it is still
 * byte-for-byte the one that was read (optimistic concurrency).
 */
export async function rewrapColumns(db: Db, cols: SealedColumns, options: RewrapOptions): Promise<RewrapStats> {
  const batchSize = options.batchSize ?? 100;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw invalid('batchSize must be a positive integer');
  const table = quoteIdent(options.sqlTable ?? cols.table);
  const key = quoteIdent(options.keyColumn);
  const colList = cols.columns.map(quoteIdent).join(', ');
  const stats: RewrapStats = { rows: 0, values: 0, rewrapped: 0, current: 0, noKms: 0, misplaced: 0, failed: 0, conflicts: 0, problems: [] };
  let last: unknown = null;
  for (;;) {
    const page = await query<Record<string, unknown>>(db,
      `SELECT ${key} AS k, ${colList} FROM ${table}${last === null ? '' : ` WHERE ${key} > $2`} ORDER BY ${key} LIMIT $1`,
      last === null ? [batchSize] : [batchSize, last]);
    if (page.rows.length === 0) break;
    last = page.rows[page.rows.length - 1]!.k;
    stats.rows += page.rows.length;

    const items: Item[] = [];
    for (const r of page.rows) {
      const row = String(r.k);
      for (const column of cols.columns) {
        const v = r[column];
        if (v === null || v === undefined) continue;
        stats.values++;
        const problem = (code: string) => stats.problems.push({ row, column, code });
        if (!(v instanceof Uint8Array)) { stats.failed++; problem('KW_INT_NOT_SEALED'); continue; }
        let c;
        try { c = decodeContainer(v); } catch { stats.failed++; problem('KW_INT_NOT_SEALED'); continue; }
        const expected = cols.context(column, row);
        let headerContext;
        try { headerContext = inspect(c.envelope).context; } catch { stats.failed++; problem('KW_INT_NOT_SEALED'); continue; }
        if (!sameContext(headerContext, expected)) { stats.misplaced++; problem('KW_INT_CONTEXT_MISMATCH'); continue; }
        const found = await readKmsStanza(c.envelope);
        const p = found ? decodeKmsStanza(found.stanza) : null;
        if (!p) { stats.noKms++; continue; }
        const version = c.override?.version ?? p.version;
        const wrapped = c.override?.wrapped ?? p.wrapped;
        if (options.skipAtOrAbove !== undefined && version >= options.skipAtOrAbove) { stats.current++; continue; }
        items.push({ key: r.k, row, column, stored: Buffer.from(v), envelope: c.envelope, keyRef: p.keyRef, version, wrapped, context: expected });
      }
    }

    // Rewrap, per key, in requests of at most 100 items; a refused request is retried item by item to isolate the bad ones.
    const moved: { item: Item; version: number; wrapped: Uint8Array }[] = [];
    const byKey = new Map<string, Item[]>();
    for (const it of items) byKey.set(it.keyRef, [...(byKey.get(it.keyRef) ?? []), it]);
    for (const [keyRef, list] of byKey) {
      for (let i = 0; i < list.length; i += MAX_REWRAP_ITEMS) {
        const chunk = list.slice(i, i + MAX_REWRAP_ITEMS);
        const ask = (xs: Item[]) => kmsRewrap(options.service.http, keyRef, xs.map((x) => ({ version: x.version, wrapped: x.wrapped, context: x.context })));
        try {
          const res = await ask(chunk);
          res.forEach((r, j) => moved.push({ item: chunk[j]!, ...r }));
        } catch (e) {
          if (!isKeywardClientError(e) || e.status < 400 || e.status >= 500) {
            throw new IntegrationError('KW_INT_KEY_SERVICE_FAILED', `rewrap of ${keyRef} failed`, { cause: e });
          }
          for (const x of chunk) {
            try {
              const [r] = await ask([x]);
              moved.push({ item: x, ...r! });
            } catch (e2) {
              if (!isKeywardClientError(e2) || e2.status < 400 || e2.status >= 500) throw new IntegrationError('KW_INT_KEY_SERVICE_FAILED', `rewrap of ${keyRef} failed`, { cause: e2 });
              stats.failed++;
              stats.problems.push({ row: x.row, column: x.column, code: e2.code });
            }
          }
        }
      }
    }

    const writes = moved.filter((m) => {
      if (m.version === m.item.version) { stats.current++; return false; }
      return true;
    });
    if (writes.length > 0) {
      const client = db instanceof pg.Pool ? await db.connect() : db;
      try {
        await query(client, 'BEGIN', []);
        for (const m of writes) {
          const next = encodeContainer(m.item.envelope, { version: m.version, wrapped: m.wrapped });
          const col = quoteIdent(m.item.column);
          const r = await query(client, `UPDATE ${table} SET ${col} = $1 WHERE ${key} = $2 AND ${col} = $3`, [next, m.item.key, m.item.stored]);
          if (r.rowCount === 1) stats.rewrapped++;
          else stats.conflicts++;
        }
        await query(client, 'COMMIT', []);
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      } finally {
        if (db instanceof pg.Pool) (client as pg.PoolClient).release();
      }
    }
    options.onBatch?.(stats);
  }
  return stats;
}
