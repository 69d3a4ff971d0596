/**
 * Sealed PostgreSQL columns on the real PostgreSQL of this machine (a fresh
 * database per run) with the real key service process: values bound to
 * table, column and row (swapped in SQL → typed refusal), the keyed blind
 * index (key service `mac`), rotation by rewrap in batches (old version then
 * disabled: rows still open), and the canaries never in the rows, the heap
 * file or the WAL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { HpkeIdentity } from '@keyward/core';
import { kmsMac, kmsRewrap } from '@keyward/client';
import {
  decodeContainer, isIntegrationError, readKmsStanza, rewrapColumns, SealedColumns, SealedTable,
  type IntegrationErrorCode,
} from '../src/index.js';
import { canary, enrollPrincipal, findCanaries, freshDatabase, must, startKeyService, type FreshDb, type KeyService, type ServicePrincipal } from './helpers.js';

const rejects = (c: IntegrationErrorCode) => (e: unknown) => {
  assert.ok(isIntegrationError(e), `expected IntegrationError ${c}, got ${String(e)}`);
  assert.equal(e.code, c, e.message);
  return true;
};

let ks: KeyService;
let db: FreshDb;
let app: ServicePrincipal;
let rotator: ServicePrincipal;
let outsider: ServicePrincipal;
let cols: SealedColumns;
let table: SealedTable;
const rows = Array.from({ length: 12 }, (_, i) => ({ id: `p${String(i).padStart(2, '0')}`, name: `patient ${i}`, ssn: canary(`ssn${i}`), notes: canary(`notes${i}`) }));
const allCanaries = rows.flatMap((r) => [r.ssn, r.notes]);

before(async () => {
  ks = await startKeyService();
  await must(ks.admin('POST', '/v1/keys/app/rows', { type: 'aes256' }));
  await must(ks.admin('POST', '/v1/keys/app/index', { type: 'hmac-sha256' }));
  app = await enrollPrincipal(ks, 'records', 'app', ['datakey', 'unwrap', 'mac'], ['app/rows', 'app/index']);
  rotator = await enrollPrincipal(ks, 'rotator', 'app', ['rewrap'], ['app/rows']);
  outsider = await enrollPrincipal(ks, 'outsider', 'app', ['unwrap'], ['app/index']);
  db = await freshDatabase();
  await db.pool.query('CREATE TABLE patients (id text PRIMARY KEY, name text NOT NULL, ssn bytea, notes bytea, ssn_bidx text)');
  await db.pool.query('CREATE INDEX ON patients (ssn_bidx)');
  cols = new SealedColumns({
    table: 'patients', columns: ['ssn', 'notes'],
    seal: { kms: { service: app.kms, key: 'app/rows' } }, open: { kms: app.kms },
    blindIndex: { service: app.kms, key: 'app/index', columns: { ssn: 'ssn_bidx' } },
  });
  table = new SealedTable(db.pool, cols, { keyColumn: 'id' });
  for (const r of rows) await table.insert(r);
});
after(async () => {
  await db?.drop();
  await ks?.stop();
});

void describe('sealed columns', () => {
  void test('rows read back opened; NULL stays NULL', async () => {
    for (const r of rows.slice(0, 3)) assert.deepEqual({ ...(await table.get(r.id)) }, { ...r, ssn_bidx: (await table.get(r.id))!.ssn_bidx });
    await table.insert({ id: 'nulls', name: 'n', ssn: null, notes: null });
    const n = await table.get('nulls');
    assert.equal(n!.ssn, null);
    assert.equal(n!.ssn_bidx, null);
  });

  void test('swapping two rows\' ciphertexts in SQL: both refuse to open (KW_INT_CONTEXT_MISMATCH); swapping back restores them', async () => {
    const swap = `UPDATE patients p SET ssn = o.ssn FROM patients o WHERE (p.id, o.id) IN (('p01','p02'),('p02','p01'))`;
    await db.pool.query(swap);
    await assert.rejects(table.get('p01'), rejects('KW_INT_CONTEXT_MISMATCH'));
    await assert.rejects(table.get('p02'), rejects('KW_INT_CONTEXT_MISMATCH'));
    await db.pool.query(swap);
    assert.equal((await table.get('p01'))!.ssn, rows[1]!.ssn);
  });

  void test('moving a value to another column of the same row is refused too', async () => {
    const { rows: [r] } = await db.pool.query<{ ssn: Buffer; notes: Buffer }>('SELECT ssn, notes FROM patients WHERE id = $1', ['p03']);
    await assert.rejects(cols.openValue('notes', 'p03', r!.ssn), rejects('KW_INT_CONTEXT_MISMATCH'));
    await assert.rejects(cols.openValue('ssn', 'p04', r!.ssn), rejects('KW_INT_CONTEXT_MISMATCH'));
    assert.equal(await cols.openValue('ssn', 'p03', r!.ssn), rows[3]!.ssn);
  });

  void test('a header rewritten to name the new row (bypassing the early check) still fails: the binding is authenticated', async () => {
    const { rows: [r] } = await db.pool.query<{ ssn: Buffer }>('SELECT ssn FROM patients WHERE id = $1', ['p05']);
    const forged = Buffer.from(r!.ssn);
    const at = forged.indexOf(Buffer.from('p05'));
    assert.ok(at > 0);
    forged.write('p06', at);
    await assert.rejects(cols.openValue('ssn', 'p06', forged), rejects('KW_INT_OPEN_FAILED'));
  });

  void test('another principal without a grant on app/rows cannot open (KW_INT_OPEN_FAILED)', async () => {
    const reader = new SealedColumns({ table: 'patients', columns: ['ssn', 'notes'], open: { kms: outsider.kms } });
    const { rows: [r] } = await db.pool.query<{ ssn: Buffer }>('SELECT ssn FROM patients WHERE id = $1', ['p07']);
    await assert.rejects(reader.openValue('ssn', 'p07', r!.ssn), rejects('KW_INT_OPEN_FAILED'));
  });

  void test('blind index: equality search without opening; equal values share an index, others do not', async () => {
    const found = await table.findBy('ssn', rows[8]!.ssn);
    assert.deepEqual(found.map((f) => f.id), ['p08']);
    assert.deepEqual(await table.findBy('ssn', 'not-a-stored-ssn'), []);
    await table.insert({ id: 'dup', name: 'twin', ssn: rows[8]!.ssn, notes: 'x' });
    assert.deepEqual((await table.findBy('ssn', rows[8]!.ssn)).map((f) => f.id).sort(), ['dup', 'p08']);
    const { rows: idx } = await db.pool.query<{ ssn_bidx: string }>('SELECT ssn_bidx FROM patients WHERE id IN ($1, $2)', ['p08', 'p09']);
    for (const i of idx) assert.match(i.ssn_bidx, /^kw:v1:[A-Za-z0-9_-]{43}$/);
    assert.notEqual(idx[0]!.ssn_bidx, idx[1]!.ssn_bidx);
    await db.pool.query(`DELETE FROM patients WHERE id = 'dup'`);
  });

  void test('client mac: deterministic, 32-byte tag, versioned', async () => {
    const m1 = await kmsMac(app.http, 'app/index', new TextEncoder().encode('x'));
    const m2 = await kmsMac(app.http, 'app/index', new TextEncoder().encode('x'));
    assert.equal(m1.mac, m2.mac);
    assert.equal(m1.version, 1);
    assert.equal(m1.tag.length, 32);
    assert.notEqual((await kmsMac(app.http, 'app/index', new TextEncoder().encode('y'))).mac, m1.mac);
  });

  void test('what PostgreSQL holds — rows, heap file, WAL — never contains a canary', async () => {
    const { rows: raw } = await db.pool.query<Record<string, unknown>>('SELECT * FROM patients');
    assert.ok(raw.length >= rows.length);
    for (const r of raw) {
      for (const v of Object.values(r)) assert.deepEqual(findCanaries(v instanceof Uint8Array ? v : String(v), allCanaries), []);
    }
    const text = await db.pool.query<{ t: string }>('SELECT patients::text AS t FROM patients');
    assert.deepEqual(findCanaries(text.rows.map((r) => r.t).join('\n'), allCanaries), []);
    await db.pool.query('CHECKPOINT');
    const heap = await db.pool.query<{ b: Buffer }>(`SELECT pg_read_binary_file(pg_relation_filepath('patients')) AS b`);
    assert.ok(heap.rows[0]!.b.length > 0);
    assert.deepEqual(findCanaries(heap.rows[0]!.b, allCanaries), []);
    const wal = await db.pool.query<{ b: Buffer }>(`SELECT pg_read_binary_file('pg_wal/' || pg_walfile_name(pg_current_wal_lsn())) AS b`);
    assert.ok(wal.rows[0]!.b.includes(Buffer.from('patient 1')), 'the WAL segment read does hold this run\'s unsealed columns (the search is meaningful)');
    assert.deepEqual(findCanaries(wal.rows[0]!.b, allCanaries), []);
  });
});

void describe('rotation by rewrap', () => {
  void test('client rewrap: a v1 blob moves to the newest version; order kept', async () => {
    const { rows: [r] } = await db.pool.query<{ ssn: Buffer }>('SELECT ssn FROM patients WHERE id = $1', ['p00']);
    const st = await readKmsStanza(decodeContainer(r!.ssn).envelope);
    assert.ok(st);
    const out = await kmsRewrap(rotator.http, 'app/rows', [{ version: 1, wrapped: st.stanza.fields[2]!, context: cols.context('ssn', 'p00') }]);
    assert.equal(out.length, 1);
    assert.equal(out[0]!.version, 1, 'no rotation yet: the same version');
  });

  void test('after rotate: every value rewrapped in batches, envelopes untouched, still open after v1 is disabled; a re-run has nothing to do', async () => {
    await must(ks.admin('POST', '/v1/keys/app/rows/rotate'));
    const before = await db.pool.query<{ id: string; ssn: Buffer | null; notes: Buffer | null }>('SELECT id, ssn, notes FROM patients ORDER BY id');
    const batches: number[] = [];
    const stats = await rewrapColumns(db.pool, cols, { service: rotator.kms, keyColumn: 'id', batchSize: 5, onBatch: (s) => batches.push(s.rows) });
    const values = before.rows.reduce((n, r) => n + (r.ssn ? 1 : 0) + (r.notes ? 1 : 0), 0);
    assert.equal(stats.values, values);
    assert.equal(stats.rewrapped, values);
    assert.deepEqual([stats.failed, stats.misplaced, stats.conflicts, stats.noKms], [0, 0, 0, 0]);
    assert.ok(batches.length >= 3, `batches: ${batches.join(',')}`);

    const afterRows = await db.pool.query<{ id: string; ssn: Buffer | null }>('SELECT id, ssn FROM patients ORDER BY id');
    for (const [i, r] of afterRows.rows.entries()) {
      if (!r.ssn) continue;
      const was = decodeContainer(before.rows[i]!.ssn!);
      const now = decodeContainer(r.ssn);
      assert.ok(Buffer.from(now.envelope).equals(Buffer.from(was.envelope)), 'the envelope bytes did not change');
      assert.equal(was.override, null);
      assert.equal(now.override!.version, 2);
    }
    await must(ks.admin('POST', '/v1/keys/app/rows/versions/1/disable'));
    app.cache.clear();
    for (const r of rows) assert.equal((await table.get(r.id))!.notes, r.notes);

    const again = await rewrapColumns(db.pool, cols, { service: rotator.kms, keyColumn: 'id' });
    assert.equal(again.rewrapped, 0);
    assert.equal(again.current, values);
  });

  void test('misplaced values are reported, not rewrapped; a principal without rewrap fails typed', async () => {
    await db.pool.query(`UPDATE patients p SET notes = o.notes FROM patients o WHERE p.id = 'p10' AND o.id = 'p11'`);
    const stats = await rewrapColumns(db.pool, cols, { service: rotator.kms, keyColumn: 'id' });
    assert.equal(stats.misplaced, 1);
    assert.deepEqual(stats.problems, [{ row: 'p10', column: 'notes', code: 'KW_INT_CONTEXT_MISMATCH' }]);
    await must(ks.admin('POST', '/v1/keys/app/rows/rotate'));
    const noGrant = await rewrapColumns(db.pool, cols, { service: app.kms, keyColumn: 'id' });
    assert.equal(noGrant.rewrapped, 0);
    assert.ok(noGrant.failed > 0 && noGrant.problems.every((p) => p.code === 'KW_FORBIDDEN' || p.code === 'KW_INT_CONTEXT_MISMATCH'), JSON.stringify(noGrant.problems.slice(0, 3)));
  });
});

void describe('sealed columns to public keys (no key service)', () => {
  void test('HPKE recipient: opens for the holder; a swapped value refuses; rewrap reports it has nothing to rewrap', async () => {
    const analyst = await HpkeIdentity.generate('x25519');
    const c = new SealedColumns({ table: 'notes', columns: ['body'], seal: { recipients: [await analyst.recipient()], context: { tenant: 'acme' } }, open: { identities: [analyst], context: { tenant: 'acme' } } });
    await db.pool.query('CREATE TABLE notes (id int PRIMARY KEY, body bytea)');
    const t = new SealedTable(db.pool, c, { keyColumn: 'id' });
    await t.insert({ id: 1, body: 'first' });
    await t.insert({ id: 2, body: new Uint8Array([1, 2, 3]) });
    assert.equal((await t.get(1))!.body, 'first');
    assert.deepEqual((await t.get(2))!.body, new Uint8Array([1, 2, 3]));
    await db.pool.query('UPDATE notes SET body = (SELECT body FROM notes WHERE id = 2) WHERE id = 1');
    await assert.rejects(t.get(1), rejects('KW_INT_CONTEXT_MISMATCH'));
    const other = new SealedColumns({ table: 'notes', columns: ['body'], open: { identities: [analyst], context: { tenant: 'other' } } });
    await assert.rejects(other.openValue('body', '2', (await db.pool.query<{ body: Buffer }>('SELECT body FROM notes WHERE id = 2')).rows[0]!.body), rejects('KW_INT_CONTEXT_MISMATCH'));
    const s = await rewrapColumns(db.pool, c, { service: rotator.kms, keyColumn: 'id' });
    assert.equal(s.noKms, 1);
  });
});
