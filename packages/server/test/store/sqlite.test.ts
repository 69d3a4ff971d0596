/**
 * The SQLite store: the shared conformance suite on temporary files, then what
 * only SQLite has — file permissions, connection pragmas, migrations (from an
 * older schema with data in it; refusing a newer one; all-or-nothing), the
 * schema's own guards against raw SQL, two connections on one file, and
 * destroy leaving no trace of the blob in the database file, its WAL or its
 * shared-memory index.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { isStoreError } from '../../src/store/errors.js';
import { CURRENT_SCHEMA_VERSION, MIGRATIONS, migrate, type Migration } from '../../src/store/migrations.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import { toStoreError } from '../../src/store/sqlite-errors.js';
import { KEY_VERSION_STATES, KEY_VERSION_TRANSITIONS } from '../../src/store/schema.js';
import type { KeyVersionState, Store } from '../../src/store/types.js';
import { T0, exerciseStore, expectCode, type CorruptionScenario } from './conformance.js';

// --- temporary files -----------------------------------------------------------------------

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh path in a fresh private temporary directory. */
function tempPath(name = 'keyward.db'): string {
  const dir = mkdtempSync(join(tmpdir(), 'keyward-store-'));
  dirs.push(dir);
  return join(dir, name);
}

const openAt = (path: string, busyTimeoutMs?: number): Promise<SqliteStore> =>
  openSqliteStore(busyTimeoutMs === undefined ? { path } : { path, busyTimeoutMs });

/** A raw connection, as an operator (or an attacker) with the file has. */
function raw(path: string): BetterSqlite3.Database {
  return new BetterSqlite3(path);
}

// --- the conformance suite -------------------------------------------------------------------

/** Raw SQL for each corruption scenario (triggers dropped and CHECKs ignored where they would stop it). */
const CORRUPT_SQL: Record<CorruptionScenario, string> = {
  'namespace.created': `UPDATE namespaces SET created = -1 WHERE name = 'acme'`,
  'key.type': `UPDATE keys SET type = 'rot13' WHERE ns = 'acme' AND name = 'k1'`,
  'key.min_decryption_version': `UPDATE keys SET min_decryption_version = 9 WHERE ns = 'acme' AND name = 'k1'`,
  'key_version.wrapped': `UPDATE key_versions SET wrapped = NULL WHERE ns = 'acme' AND key = 'k1' AND version = 1`,
  'principal.roles': `UPDATE principals SET roles = '{not json' WHERE id = 'p1'`,
  'token.token_hash': `UPDATE tokens SET token_hash = 'NOT-HEX' WHERE id = 't1'`,
  'token.admin': `UPDATE tokens SET admin = 7 WHERE id = 't1'`,
  'signing_key.public_key': `UPDATE signing_keys SET public_key = zeroblob(31) WHERE key_id = 'sk1'`,
  'policy.document': `UPDATE policies SET document = '{not json' WHERE id = 'pol1'`,
  'audit_event.leaf_hash': `DROP TRIGGER audit_events_no_update; UPDATE audit_events SET leaf_hash = zeroblob(5) WHERE idx = 1`,
  'audit_event.missing': `DROP TRIGGER audit_events_no_delete; DELETE FROM audit_events WHERE idx = 1`,
  'checkpoint.root': `DROP TRIGGER checkpoints_no_update; UPDATE checkpoints SET root = zeroblob(5) WHERE size = 3`,
};

exerciseStore('sqlite', () => openAt(tempPath()), {
  corrupt(store: Store, scenario: CorruptionScenario): Promise<void> {
    const db = raw((store as SqliteStore).path);
    try {
      db.pragma('ignore_check_constraints = ON');
      db.exec(CORRUPT_SQL[scenario]);
    } finally {
      db.close();
    }
    return Promise.resolve();
  },
});

// --- SQLite specifics -------------------------------------------------------------------------

const bytes = (length: number, fill: number): Uint8Array => new Uint8Array(length).fill(fill);
const at = (seconds: number): Date => new Date(T0.getTime() + seconds * 1000);
const mode = (file: string): number => statSync(file).mode & 0o777;
const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

void describe('sqlite: files and connection', () => {
  void it('creates the database, its WAL and shared-memory files with mode 0600', async () => {
    const previous = process.umask(0o022);
    try {
      const path = tempPath();
      const s = await openAt(path);
      await s.createNamespace({ name: 'acme', created: T0 });
      for (const file of [path, `${path}-wal`, `${path}-shm`]) {
        assert.ok(existsSync(file), file);
        assert.equal(mode(file).toString(8), '600', file);
      }
      await s.close();
    } finally {
      process.umask(previous);
    }
  });

  void it('restricts an existing, too-open database file to 0600', async () => {
    const path = tempPath();
    writeFileSync(path, '');
    chmodSync(path, 0o644);
    const s = await openAt(path);
    assert.equal(mode(path).toString(8), '600');
    await s.close();
  });

  void it('runs with WAL, synchronous=FULL, foreign keys, secure_delete, untrusted schema and a busy timeout', async () => {
    const s = await openAt(tempPath(), 1234);
    assert.deepEqual(await s.settings(), {
      journalMode: 'wal',
      synchronous: 2,
      foreignKeys: true,
      secureDelete: true,
      trustedSchema: false,
      busyTimeoutMs: 1234,
    });
    await s.close();
  });

  void it('refuses paths that are not files', async () => {
    await expectCode(openSqliteStore({ path: ':memory:' }), 'KW_STORE_INVALID_ARGUMENT');
    await expectCode(openSqliteStore({ path: '' }), 'KW_STORE_INVALID_ARGUMENT');
    await expectCode(openSqliteStore({ path: 'file:x.db?mode=memory' }), 'KW_STORE_INVALID_ARGUMENT');
  });

  void it('refuses a file that is not a database', async () => {
    const path = tempPath();
    writeFileSync(path, 'this is not a SQLite database, just text. '.repeat(200));
    await expectCode(openAt(path), 'KW_STORE_CORRUPT_DATABASE');
  });

  void it('refuses a store whose recorded schema version is garbage', async () => {
    const path = tempPath();
    await (await openAt(path)).close();
    const db = raw(path);
    db.exec(`UPDATE meta SET value = 'two' WHERE key = 'schema_version'`);
    db.close();
    await expectCode(openAt(path), 'KW_STORE_CORRUPT_ROW');
  });

  void it('refuses, and leaves alone, a SQLite database that is not a Keyward store', async () => {
    const path = tempPath();
    const db = raw(path);
    db.exec('CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)');
    db.close();
    await expectCode(openAt(path), 'KW_STORE_CORRUPT_DATABASE');
    const check = raw(path);
    const tables = check.prepare(`SELECT name FROM sqlite_schema WHERE type = 'table'`).all();
    check.close();
    assert.deepEqual(tables, [{ name: 'photos' }]);
  });

  void it('reopens an existing store with its data', async () => {
    const path = tempPath();
    let s = await openAt(path);
    await s.createNamespace({ name: 'acme', created: T0 });
    await s.close();
    s = await openAt(path);
    assert.deepEqual(await s.listNamespaces(), [{ name: 'acme', created: T0 }]);
    assert.equal(await s.schemaVersion(), CURRENT_SCHEMA_VERSION);
    await s.close();
  });
});

void describe('sqlite: migrations', () => {
  void it('the list is numbered 1..n and matches the current schema version', () => {
    assert.deepEqual(
      MIGRATIONS.map((m) => m.version),
      Array.from({ length: MIGRATIONS.length }, (_, i) => i + 1),
    );
    assert.equal(CURRENT_SCHEMA_VERSION, MIGRATIONS.length);
  });

  void it('released migrations are never edited (their SQL is pinned)', () => {
    // A change to the schema is a new migration at the end, never an edit here.
    const PINNED: Record<number, string> = {
      1: 'f6a1153a5651a5db8aa98ea42f3eacb1c07853dca5554b9010aafa371f6237cf',
      2: '02b261f9e19dc7886ba5ec1356c4e20f5cd21fc82722e5cc3d8ef5ed5eace24f',
      3: '18a55d15ff30ee02b9cc6bf1d36d6fdbd7caeb107d8818efc5ae5ac56912a36d',
      4: '610d912d7b70bdc710b2101185187dc9c46fd83615e89826923f3216b81872bb',
      5: 'a0377eb726ddc20d561113a9f829ff19971cebf58937b9f743415c73214e9bc3',
      6: 'e5574a9bee90cb161786762b14b848005b9c2be56a3e7923a20ac432dabece1c',
      7: '0f980d9c08dbeb7520b9cd24dd726371325aa524ddc9666d3aaeaf6b3d8b66a4',
    };
    for (const m of MIGRATIONS) assert.equal(sha256(m.sql), PINNED[m.version], `migration ${m.version} changed`);
  });

  void it('upgrades a version-1 database that holds data, keeping every row', async () => {
    const path = tempPath();
    // A v1 store as the first release wrote it: v1 DDL, rollback journal, data.
    const db = raw(path);
    db.exec(MIGRATIONS[0]!.sql);
    db.exec(`
      INSERT INTO meta VALUES ('schema_version', '1'), ('init_id', 'init-abc');
      INSERT INTO namespaces VALUES ('acme', ${T0.getTime()});
      INSERT INTO keys VALUES ('acme', 'k1', 'x25519', ${T0.getTime()}, 3600, 1, 0, 2);
      INSERT INTO key_versions VALUES
        ('acme', 'k1', 1, 'scheduled_for_deletion', x'${'a1'.repeat(48)}', x'${'b1'.repeat(32)}', ${T0.getTime()}, ${at(100).getTime()}, NULL),
        ('acme', 'k1', 2, 'enabled', x'${'a2'.repeat(48)}', x'${'b2'.repeat(32)}', ${at(10).getTime()}, NULL, NULL);
      INSERT INTO principals VALUES ('p1', 'acme', 'service', 'billing', '["reader"]', ${T0.getTime()});
      INSERT INTO tokens VALUES ('t1', '${'ab'.repeat(32)}', 'p1', 0, ${at(3600).getTime()}, NULL, ${T0.getTime()});
      INSERT INTO signing_keys VALUES ('sk1', 'p1', 'ed25519', x'${'cd'.repeat(32)}', ${T0.getTime()}, NULL);
      INSERT INTO policies VALUES ('pol', 'acme', 1, '{"allow":[]}', ${T0.getTime()});
      INSERT INTO audit_events VALUES
        (0, ${T0.getTime()}, '{"n":0}', x'${'00'.repeat(32)}'),
        (1, ${at(1).getTime()}, '{"n":1}', x'${'01'.repeat(32)}');
      INSERT INTO checkpoints VALUES (2, x'${'ee'.repeat(32)}', 'note', ${at(2).getTime()});
    `);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'delete');
    db.close();

    const s = await openAt(path);
    assert.equal(await s.schemaVersion(), CURRENT_SCHEMA_VERSION);
    assert.equal((await s.settings()).journalMode, 'wal');
    assert.equal(await s.getMeta('init_id'), 'init-abc');
    assert.deepEqual(await s.getKey('acme', 'k1'), {
      ns: 'acme',
      name: 'k1',
      type: 'x25519',
      created: T0,
      rotationPeriodSeconds: 3600,
      minDecryptionVersion: 1,
      exportable: false,
      latestVersion: 2,
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
    // The store carries on from the old data.
    assert.equal((await s.rotateKey({ ns: 'acme', key: 'k1', wrapped: bytes(32, 3), publicKey: bytes(32, 4), created: at(20) })).version, 3);
    assert.equal(await s.appendAuditEvent({ time: at(20), event: '{"n":2}', leafHash: bytes(32, 2) }), 2);
    assert.equal((await s.destroyKeyVersion({ ns: 'acme', key: 'k1', version: 1 }, at(200))).wrapped, null);
    await s.close();

    // The v2 guards now hold for raw SQL on the migrated data too.
    const after = raw(path);
    try {
      for (const sql of [
        `UPDATE audit_events SET event = '{"n":9}' WHERE idx = 0`,
        `DELETE FROM audit_events WHERE idx = 0`,
        `INSERT INTO audit_events VALUES (7, 0, '{}', zeroblob(32))`,
        `UPDATE key_versions SET state = 'enabled', wrapped = x'00' WHERE version = 1`,
      ]) {
        assert.throws(() => after.exec(sql), (e: unknown) => e instanceof BetterSqlite3.SqliteError && e.code === 'SQLITE_CONSTRAINT_TRIGGER');
      }
    } finally {
      after.close();
    }
  });

  void it('refuses a database with a newer schema and changes nothing in it', async () => {
    const path = tempPath();
    const s = await openAt(path);
    await s.createNamespace({ name: 'acme', created: T0 });
    await s.close();
    const db = raw(path);
    db.prepare(`UPDATE meta SET value = ? WHERE key = 'schema_version'`).run(String(CURRENT_SCHEMA_VERSION + 1));
    db.close();
    const before = sha256(readFileSync(path));

    await expectCode(openAt(path), 'KW_STORE_SCHEMA_TOO_NEW');

    assert.equal(sha256(readFileSync(path)), before);
    const check = raw(path);
    assert.deepEqual(check.prepare(`SELECT value FROM meta WHERE key = 'schema_version'`).get(), {
      value: String(CURRENT_SCHEMA_VERSION + 1),
    });
    check.close();
  });

  void it('a failing migration leaves the database exactly at its previous version', async () => {
    const path = tempPath();
    await (await openAt(path)).close();
    const broken: Migration[] = [
      ...MIGRATIONS,
      { version: MIGRATIONS.length + 1, description: 'adds a table', sql: 'CREATE TABLE extra (a INTEGER) STRICT;' },
      { version: MIGRATIONS.length + 2, description: 'broken', sql: 'INSERT INTO no_such_table VALUES (1);' },
    ];
    const db = raw(path);
    try {
      assert.throws(() => migrate(db, broken), (e: unknown) => isStoreError(e, 'KW_STORE_MIGRATION_FAILED'));
      assert.equal(db.prepare(`SELECT 1 FROM sqlite_schema WHERE name = 'extra'`).get(), undefined);
      assert.deepEqual(db.prepare(`SELECT value FROM meta WHERE key = 'schema_version'`).get(), {
        value: String(CURRENT_SCHEMA_VERSION),
      });
    } finally {
      db.close();
    }
  });

  void it('a failing migration from an empty file creates nothing at all', () => {
    const path = tempPath();
    const db = raw(path);
    try {
      const broken: Migration[] = [MIGRATIONS[0]!, { version: 2, description: 'broken', sql: 'SELECT * FROM nowhere;' }];
      assert.throws(() => migrate(db, broken), (e: unknown) => isStoreError(e, 'KW_STORE_MIGRATION_FAILED'));
      assert.deepEqual(db.prepare(`SELECT name FROM sqlite_schema`).all(), []);
    } finally {
      db.close();
    }
  });

  void it('a migration list out of order is refused before anything runs', () => {
    const db = raw(tempPath());
    try {
      const shuffled: Migration[] = [MIGRATIONS[1]!, MIGRATIONS[0]!];
      assert.throws(() => migrate(db, shuffled), (e: unknown) => isStoreError(e, 'KW_STORE_MIGRATION_FAILED'));
      assert.deepEqual(db.prepare(`SELECT name FROM sqlite_schema`).all(), []);
    } finally {
      db.close();
    }
  });
});

void describe('sqlite: the schema guards raw SQL too', () => {
  void it('trigger refusals map back to typed store errors', async () => {
    const path = tempPath();
    const s = await openAt(path);
    await s.createNamespace({ name: 'acme', created: T0 });
    await s.createKey({ ns: 'acme', name: 'k1', type: 'aes256', created: T0, firstVersion: { wrapped: bytes(32, 1), publicKey: null } });
    await s.appendAuditEvent({ time: T0, event: '{}', leafHash: bytes(32, 0) });
    await s.close();
    const db = raw(path);
    try {
      const codeOf = (sql: string): string => {
        try {
          db.exec(sql);
        } catch (e) {
          return toStoreError(e).code;
        }
        return 'no error';
      };
      assert.equal(codeOf(`UPDATE key_versions SET state = 'destroyed', wrapped = NULL, destroyed_at = 1`), 'KW_STORE_INVALID_TRANSITION');
      assert.equal(codeOf(`UPDATE key_versions SET version = 5`), 'KW_STORE_CONFLICT');
      assert.equal(codeOf(`DELETE FROM key_versions`), 'KW_STORE_CONFLICT');
      assert.equal(codeOf(`UPDATE audit_events SET time = 5`), 'KW_STORE_CONFLICT');
      assert.equal(codeOf(`INSERT INTO audit_events VALUES (5, 0, '{}', zeroblob(32))`), 'KW_STORE_CONFLICT');
      assert.equal(codeOf(`INSERT INTO keys VALUES ('acme', 'k2', 'aes256', 0, NULL, 1, 1, 1)`), 'KW_STORE_INVALID_ARGUMENT');
      db.pragma('foreign_keys = ON'); // per connection; the store always turns it on
      assert.equal(codeOf(`INSERT INTO keys VALUES ('nope', 'k3', 'aes256', 0, NULL, 1, 0, 1)`), 'KW_STORE_NOT_FOUND');
      assert.equal(codeOf(`INSERT INTO namespaces VALUES ('acme', 0)`), 'KW_STORE_CONFLICT');
    } finally {
      db.close();
    }
  });
});

void describe('sqlite: the transition trigger agrees with KEY_VERSION_TRANSITIONS', () => {
  /** Columns that satisfy the table's CHECKs for a version in `state`. */
  const columns = (state: KeyVersionState): string =>
    ({
      enabled: `state = 'enabled', wrapped = x'01', deletion_at = NULL, destroyed_at = NULL`,
      disabled: `state = 'disabled', wrapped = x'01', deletion_at = NULL, destroyed_at = NULL`,
      scheduled_for_deletion: `state = 'scheduled_for_deletion', wrapped = x'01', deletion_at = 1, destroyed_at = NULL`,
      destroyed: `state = 'destroyed', wrapped = NULL, deletion_at = 1, destroyed_at = 2`,
    })[state];

  for (const from of KEY_VERSION_STATES) {
    for (const to of KEY_VERSION_STATES) {
      if (from === to && from !== 'destroyed') continue; // same-state updates of other columns are the store's call
      const allowed = KEY_VERSION_TRANSITIONS[from].includes(to);
      void it(`raw UPDATE ${from} -> ${to} is ${allowed ? 'allowed' : 'refused'}`, () => {
        const path = tempPath();
        const db = raw(path);
        try {
          migrate(db);
          db.exec(`INSERT INTO namespaces VALUES ('acme', 0); INSERT INTO keys VALUES ('acme', 'k', 'aes256', 0, NULL, 1, 0, 1);`);
          db.exec(`INSERT INTO key_versions (ns, key, version, state, wrapped, created) VALUES ('acme', 'k', 1, 'enabled', x'01', 0)`);
          // Reach `from` without the trigger's opinion, as the starting point.
          db.exec('DROP TRIGGER key_versions_transition');
          db.exec(`UPDATE key_versions SET ${columns(from)}`);
          db.exec(MIGRATIONS[1]!.sql.match(/CREATE TRIGGER key_versions_transition[\s\S]*?END;/)![0]);
          const update = () => db.exec(`UPDATE key_versions SET ${columns(to)}`);
          if (allowed) update();
          else assert.throws(update, (e: unknown) => toStoreError(e).code === 'KW_STORE_INVALID_TRANSITION');
        } finally {
          db.close();
        }
      });
    }
  }
});

void describe('sqlite: concurrency', () => {
  void it('read-then-rotate transactions are serialised, so every one of them succeeds', async () => {
    const s = await openAt(tempPath());
    await s.createNamespace({ name: 'acme', created: T0 });
    await s.createKey({ ns: 'acme', name: 'k1', type: 'aes256', created: T0, firstVersion: { wrapped: bytes(32, 1), publicKey: null } });
    const versions = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        s.transaction(async (tx) => {
          const key = (await tx.getKey('acme', 'k1'))!;
          await new Promise((r) => setTimeout(r, 1));
          return (await tx.rotateKey({ ns: 'acme', key: 'k1', version: key.latestVersion + 1, wrapped: bytes(32, i), publicKey: null, created: T0 })).version;
        }),
      ),
    );
    assert.deepEqual([...versions].sort((a, b) => a - b), [2, 3, 4, 5, 6, 7, 8, 9]);
    await s.close();
  });

  void it('two connections on one file rotate without duplicating a version', async () => {
    const path = tempPath();
    const a = await openAt(path);
    const b = await openAt(path);
    await a.createNamespace({ name: 'acme', created: T0 });
    await a.createKey({ ns: 'acme', name: 'k1', type: 'aes256', created: T0, firstVersion: { wrapped: bytes(32, 1), publicKey: null } });
    const versions = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? a : b).rotateKey({ ns: 'acme', key: 'k1', wrapped: bytes(32, i), publicKey: null, created: T0 }),
      ),
    );
    assert.deepEqual(versions.map((v) => v.version).sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i + 2));
    assert.equal((await b.getKey('acme', 'k1'))!.latestVersion, 21);
    await a.close();
    await b.close();
  });

  void it('a write blocked by another connection past the busy timeout is KW_STORE_BUSY and changes nothing', async () => {
    const path = tempPath();
    const a = await openAt(path);
    const b = await openAt(path, 30);
    await a.createNamespace({ name: 'acme', created: T0 });
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    const held = a.transaction(async (tx) => {
      await tx.createNamespace({ name: 'held', created: T0 });
      entered();
      await new Promise((r) => setTimeout(r, 50));
    });
    await inside;
    await expectCode(b.createNamespace({ name: 'blocked', created: T0 }), 'KW_STORE_BUSY');
    await held;
    assert.deepEqual((await b.listNamespaces()).map((n) => n.name), ['acme', 'held']);
    await a.close();
    await b.close();
  });
});

void describe('sqlite: destroy leaves no trace of the blob', () => {
  /** 32 recognisable bytes standing for a wrapped key. */
  const PATTERN = new TextEncoder().encode('KEYWARD/DESTROY-ME/0123456789ABC');
  assert.equal(PATTERN.length, 32);
  /**
   * A freed cell is partly overwritten by page bookkeeping, so searching for
   * the whole pattern could miss a surviving remnant: look for every 8-byte
   * window of it instead.
   */
  const WINDOWS = Array.from({ length: PATTERN.length - 7 }, (_, i) => PATTERN.subarray(i, i + 8));

  const FILES = (path: string) => [path, `${path}-wal`, `${path}-shm`];
  /** The files (database, WAL, shm) whose raw bytes contain any 8-byte piece of PATTERN. */
  const holders = (path: string): string[] =>
    FILES(path).filter((f) => {
      if (!existsSync(f)) return false;
      const data = readFileSync(f);
      return WINDOWS.some((w) => data.indexOf(w) !== -1);
    });

  /** A store holding PATTERN as version 1 of acme/secret among `neighbours` other keys. */
  async function seeded(path: string, neighbours: number): Promise<{ s: SqliteStore; others: Map<string, Uint8Array> }> {
    const s = await openAt(path);
    await s.createNamespace({ name: 'acme', created: T0 });
    const others = new Map<string, Uint8Array>();
    const created = { ns: 'acme', type: 'aes256', created: T0 } as const;
    for (let i = 0; i < neighbours; i++) {
      if (i === Math.floor(neighbours / 2)) {
        await s.createKey({ ...created, name: 'secret', firstVersion: { wrapped: PATTERN, publicKey: null } });
      }
      const name = `k${String(i).padStart(3, '0')}`;
      const wrapped = new Uint8Array(randomBytes(60));
      others.set(name, wrapped);
      await s.createKey({ ...created, name, firstVersion: { wrapped, publicKey: null } });
    }
    await s.rotateKey({ ns: 'acme', key: 'secret', wrapped: bytes(48, 0x11), publicKey: null, created: at(1) });
    return { s, others };
  }

  async function destroySecret(s: SqliteStore): Promise<void> {
    await s.transaction(async (tx) => {
      const v1 = { ns: 'acme', key: 'secret', version: 1 };
      await tx.setKeyVersionState(v1, { state: 'scheduled_for_deletion', deletionAt: at(10) });
      await tx.destroyKeyVersion(v1, at(20));
      await tx.appendAuditEvent({ time: at(20), event: '{"op":"destroy","key":"secret","version":1}', leafHash: bytes(32, 7) });
    });
  }

  async function othersIntact(s: SqliteStore, others: Map<string, Uint8Array>): Promise<void> {
    for (const [name, wrapped] of others) assert.deepEqual((await s.getKeyVersion('acme', name, 1))!.wrapped, wrapped, name);
    assert.deepEqual((await s.getKeyVersion('acme', 'secret', 2))!.wrapped, bytes(48, 0x11));
    const v1 = (await s.getKeyVersion('acme', 'secret', 1))!;
    assert.deepEqual([v1.state, v1.wrapped], ['destroyed', null]);
  }

  for (const neighbours of [1, 150]) {
    void it(`${neighbours} other key(s), blob checkpointed into the main file: destroy + checkpoint() leaves none in .db, -wal, -shm`, async () => {
      const path = tempPath();
      const { s, others } = await seeded(path, neighbours);
      // Controls: the scan sees the blob, in the WAL before a checkpoint and in the main file after one.
      assert.ok(holders(path).includes(`${path}-wal`), 'control: the blob should be in the WAL');
      await s.checkpoint();
      assert.deepEqual(holders(path), [path], 'control: after a checkpoint the blob sits in the main file');

      await destroySecret(s);
      await s.checkpoint();

      assert.deepEqual(holders(path), []);
      assert.equal(statSync(`${path}-wal`).size, 0);
      await othersIntact(s, others);
      await s.close();
      assert.deepEqual(holders(path), []);
    });

    void it(`${neighbours} other key(s), blob only in the WAL: the store truncates the WAL itself once the destroy commits`, async () => {
      const path = tempPath();
      const { s, others } = await seeded(path, neighbours);
      assert.ok(holders(path).includes(`${path}-wal`), 'control: the blob should be in the WAL');

      await destroySecret(s); // no explicit checkpoint()

      assert.deepEqual(holders(path), []);
      await othersIntact(s, others);
      await s.close();
    });
  }

  void it('control: the same destroy without secure_delete leaves pieces of the blob in the file', async () => {
    // Shows the scan can find a remnant and that secure_delete is what removes it.
    const path = tempPath();
    const { s } = await seeded(path, 1);
    await s.close();
    const db = raw(path);
    try {
      db.pragma('secure_delete = OFF');
      db.exec(`UPDATE key_versions SET state = 'scheduled_for_deletion', deletion_at = 1 WHERE key = 'secret' AND version = 1`);
      db.exec(`UPDATE key_versions SET state = 'destroyed', wrapped = NULL, destroyed_at = 2 WHERE key = 'secret' AND version = 1`);
      db.pragma('wal_checkpoint(TRUNCATE)');
      assert.deepEqual(holders(path), [path]);
    } finally {
      db.close();
    }
  });
});
