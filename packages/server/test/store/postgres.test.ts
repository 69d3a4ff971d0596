/**
 * The PostgreSQL store against a real PostgreSQL server: the shared
 * conformance suite, then what only PostgreSQL has — concurrency across
 * separate pools (two nodes), the audit sequencer, migrations under an
 * advisory lock (from an older schema with data in it; refusing a newer one;
 * all-or-nothing), the schema's own guards against raw SQL, typed errors for
 * an unreachable server, and the change notifications nodes use to
 * invalidate what they cache.
 *
 * Each run creates its own database with a random name (on the server named
 * by KEYWARD_TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres)
 * and drops it at the end, so runs can go in parallel; each case gets a fresh
 * PostgreSQL schema in it. scripts/install-test-deps.sh installs and starts a
 * server where none answers.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { isStoreError } from '../../src/store/errors.js';
import type { Migration } from '../../src/store/migrations.js';
import { MIGRATION_LOCK_ID, PG_MIGRATIONS, PG_SCHEMA_VERSION, migratePg } from '../../src/store/postgres-migrations.js';
import type { ChangeEvent } from '../../src/store/postgres-notify.js';
import { toPgStoreError } from '../../src/store/postgres-errors.js';
import { migratePostgresStore, openPostgresStore, pgSchemaVersionAt, type PostgresStore } from '../../src/store/postgres.js';
import { KEY_VERSION_STATES, KEY_VERSION_TRANSITIONS } from '../../src/store/schema.js';
import type { Store } from '../../src/store/types.js';
import { T0, exerciseStore, expectCode, type CorruptionScenario } from './conformance.js';

// --- one database per run, one schema per case ------------------------------------------------

const ADMIN_URL = process.env.KEYWARD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const DB = `kw_test_${randomBytes(6).toString('hex')}`;
const dbUrl = (): string => {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${DB}`;
  return u.toString();
};
let schemas = 0;
const freshSchema = (): string => `s${++schemas}_${randomBytes(3).toString('hex')}`;

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
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
});

const openAt = (schema: string, extra: Partial<Parameters<typeof openPostgresStore>[0]> = {}): Promise<PostgresStore> =>
  openPostgresStore({ url: dbUrl(), schema, ...extra });

/** A raw connection with the store's schema first on its search path, as an operator (or an attacker) with database access has. */
async function raw<T>(schema: string | null, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: dbUrl(), ...(schema ? { options: `-c search_path=${schema}` } : {}) });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

// --- the conformance suite -------------------------------------------------------------------

/** Raw SQL for each corruption scenario (the guarding constraint or trigger removed first). */
const CORRUPT_SQL: Record<CorruptionScenario, string> = {
  'namespace.created': `UPDATE namespaces SET created = -1 WHERE name = 'acme'`,
  'key.type': `ALTER TABLE keys DROP CONSTRAINT keys_type; UPDATE keys SET type = 'rot13' WHERE ns = 'acme' AND name = 'k1'`,
  'key.min_decryption_version': `ALTER TABLE keys DROP CONSTRAINT keys_min_le_latest; UPDATE keys SET min_decryption_version = 9 WHERE ns = 'acme' AND name = 'k1'`,
  'key_version.wrapped': `ALTER TABLE key_versions DROP CONSTRAINT key_versions_wrapped; UPDATE key_versions SET wrapped = NULL WHERE ns = 'acme' AND key = 'k1' AND version = 1`,
  'principal.roles': `ALTER TABLE principals DROP CONSTRAINT principals_roles; UPDATE principals SET roles = '{not json' WHERE id = 'p1'`,
  'token.token_hash': `ALTER TABLE tokens DROP CONSTRAINT tokens_hash; UPDATE tokens SET token_hash = 'NOT-HEX' WHERE id = 't1'`,
  'token.admin': `ALTER TABLE tokens DROP CONSTRAINT tokens_admin; UPDATE tokens SET admin = 7 WHERE id = 't1'`,
  'signing_key.public_key': `UPDATE signing_keys SET public_key = decode(repeat('00', 31), 'hex') WHERE key_id = 'sk1'`,
  'policy.document': `ALTER TABLE policies DROP CONSTRAINT policies_document; UPDATE policies SET document = '{not json' WHERE id = 'pol1'`,
  'audit_event.leaf_hash': `ALTER TABLE audit_events DISABLE TRIGGER USER; ALTER TABLE audit_events DROP CONSTRAINT audit_events_leaf_hash;
                            UPDATE audit_events SET leaf_hash = decode('0000000000', 'hex') WHERE idx = 1`,
  'audit_event.missing': `ALTER TABLE audit_events DISABLE TRIGGER USER; DELETE FROM audit_events WHERE idx = 1`,
  'checkpoint.root': `ALTER TABLE checkpoints DISABLE TRIGGER USER; ALTER TABLE checkpoints DROP CONSTRAINT checkpoints_root;
                      UPDATE checkpoints SET root = decode('0000000000', 'hex') WHERE size = 3`,
};

exerciseStore('postgres', () => openAt(freshSchema()), {
  async corrupt(store: Store, scenario: CorruptionScenario): Promise<void> {
    await raw((store as PostgresStore).schema, async (c) => {
      await c.query(CORRUPT_SQL[scenario]);
    });
  },
});

// --- helpers -------------------------------------------------------------------------------------

const bytes = (length: number, fill: number): Uint8Array => new Uint8Array(length).fill(fill);
const at = (seconds: number): Date => new Date(T0.getTime() + seconds * 1000);
const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const leaf = (n: number): Uint8Array => bytes(32, n % 256);
const event = (node: string, n: number): string => `{"node":"${node}","n":${n}}`;

/** Two stores on one schema, as two nodes on one database. */
async function twoNodes(extra: Partial<Parameters<typeof openPostgresStore>[0]> = {}): Promise<{ a: PostgresStore; b: PostgresStore; close: () => Promise<void> }> {
  const schema = freshSchema();
  const [a, b] = await Promise.all([openAt(schema, extra), openAt(schema, extra)]);
  return { a, b, close: async () => { await a.close(); await b.close(); } };
}

async function seedKey(s: Store, name = 'k1'): Promise<void> {
  if ((await s.getNamespace('acme')) === null) await s.createNamespace({ name: 'acme', created: T0 });
  await s.createKey({ ns: 'acme', name, type: 'aes256', created: T0, firstVersion: { wrapped: bytes(32, 1), publicKey: null } });
}

// --- two nodes: concurrency ------------------------------------------------------------------------

void describe('postgres: two nodes (separate pools) on one database', () => {
  void it('concurrent rotations from both nodes: consecutive versions, no duplicate, each blob at its version', async () => {
    const { a, b, close } = await twoNodes();
    try {
      await seedKey(a);
      const n = 40;
      const results = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          (i % 2 === 0 ? a : b).rotateKey({ ns: 'acme', key: 'k1', wrapped: bytes(32, (i % 250) + 2), publicKey: null, created: at(i) }),
        ),
      );
      assert.deepEqual(results.map((v) => v.version).sort((x, y) => x - y), Array.from({ length: n }, (_, i) => i + 2));
      assert.equal((await b.getKey('acme', 'k1'))!.latestVersion, n + 1);
      const stored = await a.listKeyVersions('acme', 'k1');
      assert.deepEqual(stored.map((v) => v.version), Array.from({ length: n + 1 }, (_, i) => i + 1));
      for (const r of results) assert.deepEqual(stored[r.version - 1]!.wrapped, r.wrapped);
    } finally {
      await close();
    }
  });

  void it('two read-then-rotate transactions for the same next version, one per node: exactly one wins, the other conflicts', async () => {
    const { a, b, close } = await twoNodes();
    try {
      await seedKey(a);
      for (let round = 0; round < 5; round++) {
        let arrived = 0;
        let release!: () => void;
        const both = new Promise<void>((r) => (release = r));
        const attempt = (s: Store, fill: number) =>
          s.transaction(async (tx) => {
            const key = (await tx.getKey('acme', 'k1'))!;
            // Both have read the same latestVersion before either rotates: a real race.
            if (++arrived === 2) release();
            await both;
            const v = await tx.rotateKey({ ns: 'acme', key: 'k1', version: key.latestVersion + 1, wrapped: bytes(32, fill), publicKey: null, created: T0 });
            await tx.appendAuditEvent({ time: T0, event: event(fill === 10 ? 'a' : 'b', round), leafHash: leaf(round) });
            return v.version;
          });
        const settled = await Promise.allSettled([attempt(a, 10), attempt(b, 11)]);
        const won = settled.filter((r) => r.status === 'fulfilled');
        const lost = settled.filter((r) => r.status === 'rejected');
        assert.equal(won.length, 1, `round ${round}`);
        assert.equal((won[0] as PromiseFulfilledResult<number>).value, round + 2);
        assert.ok(isStoreError(lost[0]!.reason, 'KW_STORE_CONFLICT'), String(lost[0]!.reason));
      }
      assert.equal((await a.getKey('acme', 'k1'))!.latestVersion, 6);
      assert.equal((await b.listKeyVersions('acme', 'k1')).length, 6);
      // The losers' audit appends were rolled back with them: no gap, one event per winner.
      assert.equal(await a.auditSize(), 5);
      assert.deepEqual((await b.readAuditEvents({ start: 0, end: 10 })).map((e) => e.idx), [0, 1, 2, 3, 4]);
    } finally {
      await close();
    }
  });

  void it('concurrent audit appends from both nodes, some inside transactions that roll back: gapless, totally ordered, each event at the index it was told', async () => {
    const { a, b, close } = await twoNodes();
    try {
      const told = new Map<string, number>();
      const ops: Promise<unknown>[] = [];
      for (let i = 0; i < 60; i++) {
        const s = i % 2 === 0 ? a : b;
        const node = i % 2 === 0 ? 'a' : 'b';
        if (i % 5 === 0) {
          // A transaction that appends, holds the sequencer a moment, then rolls back.
          ops.push(
            s.transaction(async (tx) => {
              await tx.appendAuditEvent({ time: at(i), event: event(`${node}-rolled-back`, i), leafHash: leaf(i) });
              await sleep(3);
              throw new Error('roll back');
            }).catch(() => undefined),
          );
        } else if (i % 3 === 0) {
          ops.push(
            s.transaction(async (tx) => {
              const idx = await tx.appendAuditEvent({ time: at(i), event: event(node, i), leafHash: leaf(i) });
              await sleep(2);
              told.set(event(node, i), idx);
            }),
          );
        } else {
          ops.push(s.appendAuditEvent({ time: at(i), event: event(node, i), leafHash: leaf(i) }).then((idx) => told.set(event(node, i), idx)));
        }
      }
      await Promise.all(ops);
      const size = await b.auditSize();
      assert.equal(size, told.size);
      assert.equal(size, 60 - 12);
      const stored = await a.readAuditEvents({ start: 0, end: size });
      assert.deepEqual(stored.map((e) => e.idx), Array.from({ length: size }, (_, i) => i));
      for (const e of stored) assert.equal(told.get(e.event), e.idx, e.event);
      assert.ok(!stored.some((e) => e.event.includes('rolled-back')));
      assert.ok(stored.some((e) => e.event.includes('"a"')) && stored.some((e) => e.event.includes('"b"')));
    } finally {
      await close();
    }
  });

  void it('an append waits for another node’s open transaction holding the sequencer, and takes the next index after it commits', async () => {
    const { a, b, close } = await twoNodes();
    try {
      let entered!: () => void;
      const inside = new Promise<void>((r) => (entered = r));
      const held = a.transaction(async (tx) => {
        const idx = await tx.appendAuditEvent({ time: T0, event: event('a', 0), leafHash: leaf(0) });
        entered();
        await sleep(150);
        return idx;
      });
      await inside;
      const started = Date.now();
      const second = await b.appendAuditEvent({ time: T0, event: event('b', 1), leafHash: leaf(1) });
      assert.ok(Date.now() - started >= 100, 'the second append should have waited for the sequencer');
      assert.equal(await held, 0);
      assert.equal(second, 1);
      // Inside a transaction, auditSize sees its own reservation.
      await a.transaction(async (tx) => {
        await tx.appendAuditEvent({ time: T0, event: event('a', 2), leafHash: leaf(2) });
        assert.equal(await tx.auditSize(), 3);
      });
    } finally {
      await close();
    }
  });

  void it('a row lock held beyond lock_timeout is KW_STORE_BUSY and changes nothing', async () => {
    const schema = freshSchema();
    const a = await openAt(schema);
    const b = await openAt(schema, { lockTimeoutMs: 100 });
    try {
      await seedKey(a);
      let entered!: () => void;
      const inside = new Promise<void>((r) => (entered = r));
      const held = a.transaction(async (tx) => {
        await tx.rotateKey({ ns: 'acme', key: 'k1', wrapped: bytes(32, 2), publicKey: null, created: T0 });
        entered();
        await sleep(400);
      });
      await inside;
      await expectCode(b.rotateKey({ ns: 'acme', key: 'k1', wrapped: bytes(32, 3), publicKey: null, created: T0 }), 'KW_STORE_BUSY');
      await held;
      assert.equal((await b.getKey('acme', 'k1'))!.latestVersion, 2);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

// --- change notifications (cross-node invalidation) ------------------------------------------------

void describe('postgres: change notifications', () => {
  /** Collects the events a store's watch delivers, and lets a test wait for one. */
  function collector() {
    const events: ChangeEvent[] = [];
    const waiters: { pred: (e: ChangeEvent) => boolean; resolve: (e: ChangeEvent) => void }[] = [];
    const listener = (e: ChangeEvent): void => {
      events.push(e);
      for (const w of [...waiters]) if (w.pred(e)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(e); }
    };
    const waitFor = (pred: (e: ChangeEvent) => boolean, ms: number): Promise<ChangeEvent> => {
      const seen = events.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no matching change within ${ms} ms; saw ${JSON.stringify(events)}`)), ms);
        waiters.push({ pred, resolve: (e) => { clearTimeout(t); resolve(e); } });
      });
    };
    return { events, listener, waitFor };
  }

  void it('a version disabled on node A is announced to node B within one second, and B then reads it disabled', async () => {
    const { a, b, close } = await twoNodes();
    try {
      await seedKey(a);
      const c = collector();
      await b.watch(c.listener);
      const started = Date.now();
      await a.setKeyVersionState({ ns: 'acme', key: 'k1', version: 1 }, { state: 'disabled' });
      const e = await c.waitFor((x) => x.kind === 'change' && x.change.table === 'key_versions' && x.change.state === 'disabled', 1000);
      assert.ok(Date.now() - started < 1000);
      assert.deepEqual(e, { kind: 'change', change: { table: 'key_versions', ns: 'acme', key: 'k1', version: 1, state: 'disabled' } });
      assert.equal((await b.getKeyVersion('acme', 'k1', 1))!.state, 'disabled');
    } finally {
      await close();
    }
  });

  void it('announces destroy, rotation, key updates, token and signing-key revocation, principal changes and policy versions; nothing secret in them', async () => {
    const { a, b, close } = await twoNodes();
    try {
      await seedKey(a);
      await a.createPrincipal({ id: 'p1', ns: 'acme', kind: 'service', name: 'svc', roles: [], created: T0 });
      const tokenHash = 'ab'.repeat(32);
      await a.createToken({ id: 't1', tokenHash, principal: 'p1', admin: false, expiresAt: at(60), created: T0 });
      await a.addSigningKey({ keyId: 'sk1', principal: 'p1', alg: 'ed25519', publicKey: bytes(32, 9), created: T0 });
      const c = collector();
      await b.watch(c.listener);
      const ref = { ns: 'acme', key: 'k1', version: 1 };
      await a.setKeyVersionState(ref, { state: 'scheduled_for_deletion', deletionAt: at(10) });
      await a.destroyKeyVersion(ref, at(20));
      await a.rotateKey({ ns: 'acme', key: 'k1', wrapped: bytes(32, 2), publicKey: null, created: at(30) });
      await a.updateKey('acme', 'k1', { minDecryptionVersion: 2 });
      await a.revokeToken('t1', at(40));
      await a.revokeSigningKey('sk1', at(41));
      await a.setPrincipalRoles('p1', ['reader']);
      await a.disablePrincipal('p1', at(42));
      await a.putPolicy({ id: 'pol', ns: 'acme', version: 1, document: { allow: [] }, created: at(43) });
      const want = [
        { table: 'key_versions', ns: 'acme', key: 'k1', version: 1, state: 'scheduled_for_deletion' },
        { table: 'key_versions', ns: 'acme', key: 'k1', version: 1, state: 'destroyed' },
        { table: 'keys', ns: 'acme', key: 'k1' },
        { table: 'key_versions', ns: 'acme', key: 'k1', version: 2, state: 'enabled' },
        { table: 'keys', ns: 'acme', key: 'k1' },
        { table: 'tokens', id: 't1', principal: 'p1' },
        { table: 'signing_keys', id: 'sk1', principal: 'p1' },
        { table: 'principals', id: 'p1', ns: 'acme' },
        { table: 'principals', id: 'p1', ns: 'acme' },
        { table: 'policies', id: 'pol', ns: 'acme', version: 1 },
      ];
      await c.waitFor((e) => e.kind === 'change' && e.change.table === 'policies', 1000);
      assert.deepEqual(c.events.map((e) => (e.kind === 'change' ? e.change : e)), want);
      const text = JSON.stringify(c.events);
      assert.ok(!text.includes(tokenHash) && !text.includes('AQEB'), 'no token hash or blob in a notification');
    } finally {
      await close();
    }
  });

  void it('a change inside a rolled-back transaction is never announced; a committed one is, at commit', async () => {
    const { a, b, close } = await twoNodes();
    try {
      await seedKey(a);
      const c = collector();
      await b.watch(c.listener);
      await assert.rejects(
        a.transaction(async (tx) => {
          await tx.setKeyVersionState({ ns: 'acme', key: 'k1', version: 1 }, { state: 'disabled' });
          throw new Error('no');
        }),
        /no/,
      );
      await a.transaction(async (tx) => {
        await tx.rotateKey({ ns: 'acme', key: 'k1', wrapped: bytes(32, 2), publicKey: null, created: T0 });
        await sleep(100);
        assert.deepEqual(c.events, [], 'nothing is announced before commit');
      });
      await c.waitFor((e) => e.kind === 'change' && e.change.table === 'key_versions', 1000);
      assert.ok(!c.events.some((e) => e.kind === 'change' && e.change.table === 'key_versions' && e.change.state === 'disabled'));
    } finally {
      await close();
    }
  });

  void it('another deployment in another schema of the same database is not heard', async () => {
    const { a, close } = await twoNodes();
    const other = await openAt(freshSchema());
    try {
      await seedKey(a);
      await seedKey(other);
      const c = collector();
      await a.watch(c.listener);
      await other.setKeyVersionState({ ns: 'acme', key: 'k1', version: 1 }, { state: 'disabled' });
      await a.setKeyVersionState({ ns: 'acme', key: 'k1', version: 1 }, { state: 'scheduled_for_deletion', deletionAt: at(5) });
      await c.waitFor((e) => e.kind === 'change', 1000);
      await sleep(100);
      assert.deepEqual(c.events.map((e) => (e.kind === 'change' && e.change.table === 'key_versions' ? e.change.state : e.kind)), ['scheduled_for_deletion']);
    } finally {
      await close();
      await other.close();
    }
  });

  void it('when the listening connection is lost, listeners are told to reset, and changes are heard again after it reconnects', async () => {
    const { a, b, close } = await twoNodes();
    try {
      await seedKey(a);
      const c = collector();
      await b.watch(c.listener);
      await raw(null, (r) => r.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'keyward-listen' AND datname = $1`, [DB]));
      await c.waitFor((e) => e.kind === 'reset' && /lost/.test(e.reason), 2000);
      await c.waitFor((e) => e.kind === 'reset' && /listening again/.test(e.reason), 3000);
      await a.setKeyVersionState({ ns: 'acme', key: 'k1', version: 1 }, { state: 'disabled' });
      await c.waitFor((e) => e.kind === 'change' && e.change.table === 'key_versions' && e.change.state === 'disabled', 1000);
    } finally {
      await close();
    }
  });
});

// --- migrations ----------------------------------------------------------------------------------------

void describe('postgres: migrations', () => {
  void it('the list is numbered 1..n and matches the schema version', () => {
    assert.deepEqual(PG_MIGRATIONS.map((m) => m.version), Array.from({ length: PG_MIGRATIONS.length }, (_, i) => i + 1));
    assert.equal(PG_SCHEMA_VERSION, PG_MIGRATIONS.length);
  });

  void it('released migrations are never edited (their SQL is pinned)', () => {
    // A change to the schema is a new migration at the end, never an edit here.
    const PINNED: Record<number, string> = {
      1: 'cd6da162d84ec573e4a2f8901513e98e01673a6086836aa21547aeb93aaf4b8c',
      2: '7d8443e3a28ac6d203b9f81e5ed064d0ae200a91d3d9c06f10a59aea34fbd37b',
      3: 'f24b1e0301fbb4fe1bdaed861ec20ce68aa0f3bd5184a10257b9aa2ba4c2425b',
      4: 'b6946eb028b815359a4b303ef5ca60b8a0cd493182bd764d214a0b4bfd1c3a88',
      5: 'a89b58500c34e53f1bf0e3f491ce79937b11a29eff4446bea3a4382129d798c0',
      6: '3ea4bb82ccbaaa13996398a49e83177b7e6b9e224224a347ca2ddf3d72f499c7',
      7: '475575288d8cde0609055d2af74344a431cc6b2d30e016db76b2cc98f6d64969',
    };
    for (const m of PG_MIGRATIONS) assert.equal(sha256(m.sql), PINNED[m.version], `migration ${m.version} changed`);
  });

  void it('several nodes opening an empty database at once: migrations run once, under the advisory lock, and all open', async () => {
    const schema = freshSchema();
    const stores = await Promise.all(Array.from({ length: 5 }, () => openAt(schema)));
    try {
      for (const s of stores) assert.equal(await s.schemaVersion(), PG_SCHEMA_VERSION);
      await stores[0]!.createNamespace({ name: 'acme', created: T0 });
      assert.equal((await stores[4]!.listNamespaces()).length, 1);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  void it('a node waits for the migration lock while another session holds it', async () => {
    const schema = freshSchema();
    const holder = new pg.Client({ connectionString: dbUrl() });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_ID]);
      let opened = false;
      const opening = openAt(schema).then((s) => { opened = true; return s; });
      await sleep(300);
      assert.equal(opened, false, 'open must wait for the migration lock');
      await holder.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_ID]);
      const s = await opening;
      assert.equal(await s.schemaVersion(), PG_SCHEMA_VERSION);
      await s.close();
    } finally {
      await holder.end();
    }
  });

  void it('keyward migrate: from 0 to current, then from current to current; a store opened without migrate refuses an old schema', async () => {
    const schema = freshSchema();
    assert.equal(await pgSchemaVersionAt({ url: dbUrl(), schema }), 0);
    await raw(null, (c) => c.query(`CREATE SCHEMA ${schema}`));
    await expectCode(openAt(schema, { migrate: false }), 'KW_STORE_MIGRATION_FAILED');
    assert.deepEqual(await migratePostgresStore({ url: dbUrl(), schema }), { from: 0, to: PG_SCHEMA_VERSION });
    assert.deepEqual(await migratePostgresStore({ url: dbUrl(), schema }), { from: PG_SCHEMA_VERSION, to: PG_SCHEMA_VERSION });
    const s = await openAt(schema, { migrate: false });
    assert.equal(await s.schemaVersion(), PG_SCHEMA_VERSION);
    await s.close();
  });

  void it('upgrades a version-1 database that holds data, keeping every row; the audit sequencer starts after the last event', async () => {
    const schema = freshSchema();
    await raw(null, (c) => c.query(`CREATE SCHEMA ${schema}`));
    await raw(schema, async (c) => {
      await c.query(PG_MIGRATIONS[0]!.sql);
      await c.query(`
        INSERT INTO meta VALUES ('schema_version', '1'), ('init_id', 'init-abc');
        INSERT INTO namespaces VALUES ('acme', ${T0.getTime()});
        INSERT INTO keys VALUES ('acme', 'k1', 'x25519', ${T0.getTime()}, 3600, 1, 0, 2);
        INSERT INTO key_versions VALUES
          ('acme', 'k1', 1, 'scheduled_for_deletion', '\\x${'a1'.repeat(48)}', '\\x${'b1'.repeat(32)}', ${T0.getTime()}, ${at(100).getTime()}, NULL),
          ('acme', 'k1', 2, 'enabled', '\\x${'a2'.repeat(48)}', '\\x${'b2'.repeat(32)}', ${at(10).getTime()}, NULL, NULL);
        INSERT INTO principals VALUES ('p1', 'acme', 'service', 'billing', '["reader"]', ${T0.getTime()}, NULL);
        INSERT INTO tokens VALUES ('t1', '${'ab'.repeat(32)}', 'p1', 0, ${at(3600).getTime()}, NULL, ${T0.getTime()});
        INSERT INTO signing_keys VALUES ('sk1', 'p1', 'ed25519', '\\x${'cd'.repeat(32)}', ${T0.getTime()}, NULL);
        INSERT INTO policies VALUES ('pol', 'acme', 1, '{"allow":[]}', ${T0.getTime()});
        INSERT INTO audit_events VALUES
          (0, ${T0.getTime()}, '{"n":0}', '\\x${'00'.repeat(32)}'),
          (1, ${at(1).getTime()}, '{"n":1}', '\\x${'01'.repeat(32)}');
        INSERT INTO checkpoints VALUES (2, '\\x${'ee'.repeat(32)}', 'note', ${at(2).getTime()});
      `);
    });
    const s = await openAt(schema);
    try {
      assert.equal(await s.schemaVersion(), PG_SCHEMA_VERSION);
      assert.equal(await s.getMeta('init_id'), 'init-abc');
      assert.deepEqual(await s.getKey('acme', 'k1'), {
        ns: 'acme', name: 'k1', type: 'x25519', created: T0, rotationPeriodSeconds: 3600, minDecryptionVersion: 1, exportable: false, latestVersion: 2,
      });
      const versions = await s.listKeyVersions('acme', 'k1');
      assert.deepEqual(versions.map((v) => [v.version, v.state]), [[1, 'scheduled_for_deletion'], [2, 'enabled']]);
      assert.deepEqual(versions[1]!.wrapped, bytes(48, 0xa2));
      assert.deepEqual((await s.getPrincipal('p1'))!.roles, ['reader']);
      assert.equal((await s.getTokenByHash('ab'.repeat(32)))!.id, 't1');
      assert.deepEqual((await s.getSigningKey('sk1'))!.publicKey, bytes(32, 0xcd));
      assert.deepEqual((await s.getPolicy('pol'))!.document, { allow: [] });
      assert.deepEqual((await s.readAuditEvents({ start: 0, end: 10 })).map((e) => e.event), ['{"n":0}', '{"n":1}']);
      assert.equal((await s.latestAuditCheckpoint())!.size, 2);
      assert.equal(await s.auditSize(), 2);
      // The store carries on from the old data.
      assert.equal((await s.rotateKey({ ns: 'acme', key: 'k1', wrapped: bytes(32, 3), publicKey: bytes(32, 4), created: at(20) })).version, 3);
      assert.equal(await s.appendAuditEvent({ time: at(20), event: '{"n":2}', leafHash: bytes(32, 2) }), 2);
      assert.equal((await s.destroyKeyVersion({ ns: 'acme', key: 'k1', version: 1 }, at(200))).wrapped, null);
    } finally {
      await s.close();
    }
    // The v2 guards now hold for raw SQL on the migrated data too.
    await raw(schema, async (c) => {
      for (const sql of [
        `UPDATE audit_events SET event = '{"n":9}' WHERE idx = 0`,
        `DELETE FROM audit_events WHERE idx = 0`,
        `INSERT INTO audit_events VALUES (7, 0, '{}', decode(repeat('00', 32), 'hex'))`,
        `UPDATE key_versions SET state = 'enabled', wrapped = '\\x00' WHERE version = 1`,
      ]) {
        await assert.rejects(c.query(sql), (e: unknown) => ['KW_STORE_CONFLICT', 'KW_STORE_INVALID_TRANSITION'].includes(toPgStoreError(e).code), sql);
      }
    });
  });

  void it('refuses a database with a newer schema and changes nothing in it', async () => {
    const schema = freshSchema();
    const s = await openAt(schema);
    await s.createNamespace({ name: 'acme', created: T0 });
    await s.close();
    await raw(schema, (c) => c.query(`UPDATE meta SET value = $1 WHERE key = 'schema_version'`, [String(PG_SCHEMA_VERSION + 1)]));
    await expectCode(openAt(schema), 'KW_STORE_SCHEMA_TOO_NEW');
    await raw(schema, async (c) => {
      assert.deepEqual((await c.query(`SELECT value FROM meta WHERE key = 'schema_version'`)).rows, [{ value: String(PG_SCHEMA_VERSION + 1) }]);
      assert.equal((await c.query('SELECT count(*)::int AS n FROM namespaces')).rows[0].n, 1);
    });
  });

  void it('a failing migration leaves the database exactly at its previous version', async () => {
    const schema = freshSchema();
    await (await openAt(schema)).close();
    const broken: Migration[] = [
      ...PG_MIGRATIONS,
      { version: PG_MIGRATIONS.length + 1, description: 'adds a table', sql: 'CREATE TABLE extra (a INTEGER);' },
      { version: PG_MIGRATIONS.length + 2, description: 'broken', sql: 'INSERT INTO no_such_table VALUES (1);' },
    ];
    await raw(schema, async (c) => {
      await assert.rejects(migratePg(c, broken), (e: unknown) => isStoreError(e, 'KW_STORE_MIGRATION_FAILED'));
      assert.equal((await c.query(`SELECT to_regclass('extra') AS t`)).rows[0].t, null);
      assert.deepEqual((await c.query(`SELECT value FROM meta WHERE key = 'schema_version'`)).rows, [{ value: String(PG_SCHEMA_VERSION) }]);
    });
  });

  void it('a failing migration from an empty schema creates nothing at all', async () => {
    const schema = freshSchema();
    await raw(null, (c) => c.query(`CREATE SCHEMA ${schema}`));
    await raw(schema, async (c) => {
      const broken: Migration[] = [PG_MIGRATIONS[0]!, { version: 2, description: 'broken', sql: 'SELECT * FROM nowhere;' }];
      await assert.rejects(migratePg(c, broken), (e: unknown) => isStoreError(e, 'KW_STORE_MIGRATION_FAILED'));
      assert.deepEqual((await c.query(`SELECT tablename FROM pg_tables WHERE schemaname = $1`, [schema])).rows, []);
    });
  });

  void it('refuses, and leaves alone, a schema with tables that is not a Keyward store', async () => {
    const schema = freshSchema();
    await raw(null, (c) => c.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.photos (id INTEGER PRIMARY KEY, name TEXT)`));
    await expectCode(openAt(schema), 'KW_STORE_CORRUPT_DATABASE');
    await raw(schema, async (c) => {
      assert.deepEqual((await c.query(`SELECT tablename FROM pg_tables WHERE schemaname = $1`, [schema])).rows, [{ tablename: 'photos' }]);
    });
  });

  void it('refuses a store whose recorded schema version is garbage', async () => {
    const schema = freshSchema();
    await (await openAt(schema)).close();
    await raw(schema, (c) => c.query(`UPDATE meta SET value = 'two' WHERE key = 'schema_version'`));
    await expectCode(openAt(schema), 'KW_STORE_CORRUPT_ROW');
  });
});

// --- connection ----------------------------------------------------------------------------------------

void describe('postgres: connection', () => {
  void it('an unreachable server is KW_STORE_UNAVAILABLE, and the error never shows the password', async () => {
    await assert.rejects(
      openPostgresStore({ url: 'postgres://kw:hunter2-secret@127.0.0.1:1/keyward', connectTimeoutMs: 2000 }),
      (e: unknown) => {
        assert.ok(isStoreError(e, 'KW_STORE_UNAVAILABLE'), String(e));
        assert.ok(!e.message.includes('hunter2'), e.message);
        assert.match(e.message, /kw:\*\*\*@127\.0\.0\.1:1/);
        return true;
      },
    );
  });

  void it('a database that does not exist is KW_STORE_UNAVAILABLE', async () => {
    const u = new URL(ADMIN_URL);
    u.pathname = `/kw_missing_${randomBytes(4).toString('hex')}`;
    await expectCode(openPostgresStore({ url: u.toString() }), 'KW_STORE_UNAVAILABLE');
  });

  void it('refuses connection strings that are not postgres URLs and schema names that would need quoting', async () => {
    await expectCode(openPostgresStore({ url: 'mysql://x@y/z' }), 'KW_STORE_INVALID_ARGUMENT');
    await expectCode(openPostgresStore({ url: dbUrl(), schema: 'Bad-Name; DROP' }), 'KW_STORE_INVALID_ARGUMENT');
  });

  void it('checkpoint() vacuums key_versions after a destroy; the store stays usable', async () => {
    const s = await openAt(freshSchema());
    try {
      await seedKey(s);
      const ref = { ns: 'acme', key: 'k1', version: 1 };
      await s.setKeyVersionState(ref, { state: 'scheduled_for_deletion', deletionAt: at(1) });
      await s.destroyKeyVersion(ref, at(2));
      await s.checkpoint();
      assert.equal((await s.getKeyVersion('acme', 'k1', 1))!.wrapped, null);
    } finally {
      await s.close();
    }
  });
});

// --- the schema guards raw SQL too ------------------------------------------------------------------------

void describe('postgres: the schema guards raw SQL too', () => {
  void it('trigger and constraint refusals map back to typed store errors', async () => {
    const schema = freshSchema();
    const s = await openAt(schema);
    await seedKey(s);
    await s.appendAuditEvent({ time: T0, event: '{}', leafHash: bytes(32, 0) });
    await s.close();
    await raw(schema, async (c) => {
      const codeOf = async (sql: string): Promise<string> => {
        try {
          await c.query(sql);
        } catch (e) {
          return toPgStoreError(e).code;
        }
        return 'no error';
      };
      assert.equal(await codeOf(`UPDATE key_versions SET state = 'destroyed', wrapped = NULL, destroyed_at = 1`), 'KW_STORE_INVALID_TRANSITION');
      assert.equal(await codeOf(`UPDATE key_versions SET version = 5`), 'KW_STORE_CONFLICT');
      assert.equal(await codeOf(`DELETE FROM key_versions`), 'KW_STORE_CONFLICT');
      assert.equal(await codeOf(`UPDATE audit_events SET time = 5`), 'KW_STORE_CONFLICT');
      assert.equal(await codeOf(`TRUNCATE audit_events`), 'KW_STORE_CONFLICT');
      assert.equal(await codeOf(`INSERT INTO audit_events VALUES (5, 0, '{}', decode(repeat('00', 32), 'hex'))`), 'KW_STORE_CONFLICT');
      assert.equal(await codeOf(`INSERT INTO audit_events VALUES (1, 0, '[1]', decode(repeat('00', 32), 'hex'))`), 'KW_STORE_INVALID_ARGUMENT');
      assert.equal(await codeOf(`INSERT INTO keys VALUES ('acme', 'k2', 'aes256', 0, NULL, 1, 1, 1)`), 'KW_STORE_INVALID_ARGUMENT');
      assert.equal(await codeOf(`INSERT INTO keys VALUES ('nope', 'k3', 'aes256', 0, NULL, 1, 0, 1)`), 'KW_STORE_NOT_FOUND');
      assert.equal(await codeOf(`INSERT INTO namespaces VALUES ('acme', 0)`), 'KW_STORE_CONFLICT');
      assert.equal(await codeOf(`INSERT INTO audit_head VALUES (2, 0)`), 'KW_STORE_INVALID_ARGUMENT');
    });
  });

  /** Columns that satisfy the table's CHECKs for a version in `state`. */
  const columns = (state: string): string =>
    ({
      enabled: `state = 'enabled', wrapped = '\\x01', deletion_at = NULL, destroyed_at = NULL`,
      disabled: `state = 'disabled', wrapped = '\\x01', deletion_at = NULL, destroyed_at = NULL`,
      scheduled_for_deletion: `state = 'scheduled_for_deletion', wrapped = '\\x01', deletion_at = 1, destroyed_at = NULL`,
      destroyed: `state = 'destroyed', wrapped = NULL, deletion_at = 1, destroyed_at = 2`,
    })[state]!;

  void it('the transition trigger agrees with KEY_VERSION_TRANSITIONS for every pair of states', async () => {
    const schema = freshSchema();
    await (await openAt(schema)).close();
    await raw(schema, async (c) => {
      await c.query(`INSERT INTO namespaces VALUES ('acme', 0); INSERT INTO keys VALUES ('acme', 'k', 'aes256', 0, NULL, 1, 0, 1);`);
      await c.query(`INSERT INTO key_versions (ns, key, version, state, wrapped, created) VALUES ('acme', 'k', 1, 'enabled', '\\x01', 0)`);
      for (const from of KEY_VERSION_STATES) {
        for (const to of KEY_VERSION_STATES) {
          if (from === to && from !== 'destroyed') continue;
          const allowed = KEY_VERSION_TRANSITIONS[from].includes(to);
          await c.query('BEGIN');
          // Reach `from` without the trigger's opinion, as the starting point.
          await c.query('ALTER TABLE key_versions DISABLE TRIGGER key_versions_guard');
          await c.query(`UPDATE key_versions SET ${columns(from)}`);
          await c.query('ALTER TABLE key_versions ENABLE TRIGGER key_versions_guard');
          await c.query('SAVEPOINT t');
          let code = 'no error';
          try {
            await c.query(`UPDATE key_versions SET ${columns(to)}`);
          } catch (e) {
            code = toPgStoreError(e).code;
            await c.query('ROLLBACK TO SAVEPOINT t');
          }
          await c.query('ROLLBACK');
          assert.equal(code, allowed ? 'no error' : 'KW_STORE_INVALID_TRANSITION', `${from} -> ${to}`);
        }
      }
    });
  });
});
