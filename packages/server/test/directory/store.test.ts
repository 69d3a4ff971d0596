/**
 * The directory's persistence: the shared conformance suite on SQLite (a
 * temporary file per case) and on PostgreSQL (one database per run, one
 * schema per case; KEYWARD_TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import pg from 'pg';
import { openPostgresStore } from '../../src/store/postgres.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { exerciseDirectoryStore } from './conformance.js';

const dir = mkdtempSync(join(tmpdir(), 'kw-dir-store-'));
let files = 0;
after(() => rmSync(dir, { recursive: true, force: true }));
exerciseDirectoryStore('sqlite', () => openSqliteStore({ path: join(dir, `s${++files}.db`) }));

const ADMIN_URL = process.env.KEYWARD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const DB = `kw_dir_${randomBytes(6).toString('hex')}`;
const dbUrl = (): string => {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${DB}`;
  return u.toString();
};
const admin = async (sql: string): Promise<void> => {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
};
before(() => admin(`CREATE DATABASE ${DB}`));
after(() => admin(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
let schemas = 0;
exerciseDirectoryStore('postgres', () => openPostgresStore({ url: dbUrl(), schema: `d${++schemas}_${randomBytes(3).toString('hex')}`, maxConnections: 4 }));
