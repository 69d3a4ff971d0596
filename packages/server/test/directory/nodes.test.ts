/**
 * The directory service on PostgreSQL with two nodes on one database: both
 * extend one KEYTRANS log at the same time (appends rebuilt after a lost
 * race), changes to one label signed for the same version let exactly one
 * through, and a client verifies the result from either node.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { DirectoryClient } from '@keyward/directory';
import { decodeGroupValue, entityLabel } from '@keyward/client';
import pg from 'pg';
import { DirectoryService } from '../../src/directory/service.js';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres.js';

const ADMIN_URL = process.env.KEYWARD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const DB = `kw_dirn_${randomBytes(6).toString('hex')}`;
const url = (): string => {
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

const keys = { signingKey: randomBytes(32), vrfKey: randomBytes(32) };
const T = new Date();
let a: PostgresStore;
let b: PostgresStore;

before(async () => {
  await admin(`CREATE DATABASE ${DB}`);
  [a, b] = [await openPostgresStore({ url: url(), schema: 'kw' }), await openPostgresStore({ url: url(), schema: 'kw' })];
  for (const m of ['user:m1', 'user:m2', 'user:m3']) await a.putDirEntity({ name: m, state: { devices: [] }, seq: 1, updated: T });
});
after(async () => {
  await a.close();
  await b.close();
  await admin(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
});

void test('two nodes extend one log concurrently; a client verifies it from either', async () => {
  const [na, nb] = [await DirectoryService.open({ store: a, keys }), await DirectoryService.open({ store: b, keys })];
  const jobs = Array.from({ length: 8 }, (_, i) => {
    const [svc, store] = i % 2 === 0 ? [na, a] : [nb, b];
    return store.transaction((tx) => svc.setGroup(tx, { name: `group:g${i}`, members: ['user:m1', `user:m${(i % 3) + 1}`], by: 'admin' }));
  });
  const results = await Promise.allSettled(jobs);
  for (const r of results) assert.equal(r.status, 'fulfilled', r.status === 'rejected' ? String(r.reason) : '');
  assert.equal(await a.ktTreeSize(), 8);
  for (const [svc, i] of [[na, 3], [nb, 6]] as const) {
    const client = new DirectoryClient(svc.config);
    const name = `group:g${i}`;
    const found = client.verifySearch({ label: entityLabel(name) }, await (await svc.builder()).search({ label: entityLabel(name) }));
    assert.deepEqual(decodeGroupValue(found.value, name).members, [...new Set(['user:m1', `user:m${(i % 3) + 1}`])].sort());
  }
  assert.deepEqual((await na.head())!.root, (await nb.head())!.root);
});

void test('two changes of one label for the same version: exactly one is appended', async () => {
  const [na, nb] = [await DirectoryService.open({ store: a, keys }), await DirectoryService.open({ store: b, keys })];
  const version = await a.ktVersionCount(entityLabel('group:g0'));
  const size = await a.ktTreeSize();
  const results = await Promise.allSettled([
    a.transaction((tx) => na.setGroup(tx, { name: 'group:g0', members: ['user:m2'], by: 'admin', version })),
    b.transaction((tx) => nb.setGroup(tx, { name: 'group:g0', members: ['user:m3'], by: 'admin', version })),
  ]);
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  assert.ok(['KW_DIR_STALE_VERSION', 'KW_STORE_CONFLICT'].includes((lost.reason as { code: string }).code), String(lost.reason));
  assert.equal(await a.ktTreeSize(), size + 1);
  assert.equal(await a.ktVersionCount(entityLabel('group:g0')), version + 1);
  assert.equal((await a.getDirEntity('group:g0'))?.seq, 2);
});
