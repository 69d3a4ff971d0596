/**
 * The key service on a PostgreSQL store (`store: postgres://…`): a real
 * server process and keyholder on a fresh database (random name, dropped at
 * the end), initialised, unsealed and used through the HTTP API; `init` on a
 * PostgreSQL store (once only); `migrate` reporting versions; the store
 * setting parsed without ever showing a password.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { initDataDir } from '../../src/init.js';
import { loadConfig } from '../../src/config.js';
import { PG_SCHEMA_VERSION } from '../../src/store/postgres-migrations.js';
import { migrateConfiguredStore, openConfiguredStore, storeLocation } from '../../src/store/open.js';
import type { PostgresStore } from '../../src/store/postgres.js';
import { isStoreError } from '../../src/store/errors.js';
import { call, enrollAdmin, newServer, unsealAll } from '../api/helpers.js';

const ADMIN_URL = process.env.KEYWARD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const DB = `kw_test_${randomBytes(6).toString('hex')}`;
const storeUrl = (schema: string): string => {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${DB}`;
  u.searchParams.set('schema', schema);
  return u.toString();
};
const dirs: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'kw-pg-'));
  dirs.push(d);
  return d;
};

before(async () => {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${DB}`);
  } finally {
    await admin.end();
  }
});

after(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
});

void describe('the store setting', () => {
  void it('absent: SQLite in the data directory; postgres URL: that database, schema parameter taken out; anything else refused', () => {
    assert.deepEqual(storeLocation(undefined, '/d'), { kind: 'sqlite', path: '/d/keyward.db' });
    assert.deepEqual(storeLocation('postgres://kw:s3cret@db:5432/keyward?schema=blue&sslmode=require', '/d'), {
      kind: 'postgres',
      url: 'postgres://kw:s3cret@db:5432/keyward?sslmode=require',
      schema: 'blue',
      display: 'postgres://kw:***@db:5432/keyward?schema=blue&sslmode=require',
    });
    for (const bad of ['mysql://x/y', 'keyward.db', 'postgres://db/k?schema=Bad-Name']) {
      assert.throws(() => storeLocation(bad, '/d'), (e: unknown) => isStoreError(e, 'KW_STORE_INVALID_ARGUMENT') && !/s3cret/.test((e as Error).message));
    }
  });

  void it('config: flag > KEYWARD_STORE > file; a bad value is refused without echoing it', () => {
    assert.equal(loadConfig({ env: { KEYWARD_STORE: 'postgres://env/db' } }).store, 'postgres://env/db');
    assert.equal(loadConfig({ env: { KEYWARD_STORE: 'postgres://env/db' }, flags: { store: 'postgresql://flag/db' } }).store, 'postgresql://flag/db');
    assert.equal(loadConfig({ env: {} }).store, undefined);
    assert.throws(() => loadConfig({ env: { KEYWARD_STORE: 'mysql://u:topsecret@h/db' } }), (e: unknown) => (e as { reason?: string }).reason === 'CONFIG_INVALID' && !(e as Error).message.includes('topsecret'));
  });
});

void describe('init and migrate on PostgreSQL', () => {
  void it('init writes the store into PostgreSQL (no keyward.db); a second init of the same database is refused and changes nothing', async () => {
    const url = storeUrl('init_once');
    const a = tempDir();
    const r = await initDataDir(a, { shares: 3, threshold: 2, store: url, tokenToFile: true });
    assert.ok(!readdirSync(a).includes('keyward.db'));
    assert.ok(readdirSync(a).includes('keyholder.json'));
    const store = await openConfiguredStore({ store: url });
    try {
      assert.equal(await store.getMeta('init.id'), r.initId);
      assert.equal(await store.auditSize(), 1);
      await assert.rejects(initDataDir(tempDir(), { shares: 3, threshold: 2, store: url }), (e: unknown) => (e as { code?: string }).code === 'KW_INVALID_ARGUMENT' && /already initialized/.test((e as Error).message));
      assert.equal(await store.getMeta('init.id'), r.initId);
      assert.equal(await store.auditSize(), 1);
    } finally {
      await store.close();
    }
  });

  void it('migrate: an empty schema from 0 to current, then current to current; the password is never in the report', async () => {
    const u = new URL(storeUrl('migrate_me'));
    u.password = 'not-used-by-trust-auth';
    const first = await migrateConfiguredStore({ store: u.toString() });
    assert.deepEqual({ ...first, location: undefined }, { store: 'postgres', location: undefined, from: 0, to: PG_SCHEMA_VERSION });
    assert.ok(!first.location.includes('not-used-by-trust-auth') && first.location.includes('***'));
    assert.deepEqual({ ...(await migrateConfiguredStore({ store: u.toString() })), location: undefined }, { store: 'postgres', location: undefined, from: PG_SCHEMA_VERSION, to: PG_SCHEMA_VERSION });
  });
});

void describe('a server node on PostgreSQL', () => {
  void it('initialises, unseals and serves keys; the rows and the audit log are in PostgreSQL; the node listens for other nodes’ changes', async () => {
    const url = storeUrl('one_node');
    const s = await newServer({ store: url });
    try {
      const { shares, rootToken: bootstrap } = await s.initialize({ shares: 3, threshold: 2 });
      assert.equal((await unsealAll(s, shares.slice(0, 2))).status, 200);
      const root = await enrollAdmin(s, bootstrap);
      assert.equal((await call(s, 'POST', '/v1/keys/billing/orders', { token: root, body: { type: 'aes256' } })).status, 201);
      const rot = await call(s, 'POST', '/v1/keys/billing/orders/rotate', { token: root });
      assert.equal(rot.body.latest_version, 2);
      assert.equal((await call(s, 'POST', '/v1/keys/billing/orders/versions/1/disable', { token: root })).body.state, 'disabled');
      assert.ok('watch' in s.store, 'the node uses the PostgreSQL store');
      // What the node wrote is in PostgreSQL, seen by another connection (another node).
      const other = (await openConfiguredStore({ store: url })) as PostgresStore;
      try {
        assert.deepEqual((await other.listKeyVersions('billing', 'orders')).map((v) => [v.version, v.state]), [[1, 'disabled'], [2, 'enabled']]);
        const size = await other.auditSize();
        assert.ok(size >= 4, `audit events in PostgreSQL: ${size}`);
        const events = await other.readAuditEvents({ start: 0, end: size });
        assert.deepEqual(events.map((e) => e.idx), Array.from({ length: size }, (_, i) => i));
        // The node's own change-notification connection is open on the database.
        const listening = await new Promise<number>((resolve, reject) => {
          const c = new pg.Client({ connectionString: ADMIN_URL });
          c.connect()
            .then(() => c.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'keyward-listen'`, [DB]))
            .then((r) => resolve((r.rows[0] as { n: number }).n), reject)
            .finally(() => void c.end());
        });
        assert.ok(listening >= 1);
      } finally {
        await other.close();
      }
    } finally {
      await s.close();
    }
  });
});
