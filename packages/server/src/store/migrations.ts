/**
 * Versioned schema migrations of the SQLite store.
 *
 * `MIGRATIONS` is an ordered list; a database records the last one applied in
 * `meta.schema_version`. At open, every pending migration runs in one
 * transaction (all or nothing), and a database whose version is newer than the
 * last one here is refused (`KW_STORE_SCHEMA_TOO_NEW`): old code must not write
 * to a schema it does not understand.
 *
 * A released migration is never edited (a test pins their hashes); a change is
 * a new entry at the end. Tables are STRICT and carry the integrity rules of
 * `schema.ts` as CHECK constraints and triggers, so a row written by hand is
 * held to them too. Trigger messages start with a store error code, which
 * `sqlite-errors.ts` maps back to a typed error.
 */
import type { Database } from 'better-sqlite3';
import { StoreError, isStoreError } from './errors.js';
import { toStoreError } from './sqlite-errors.js';

/** One schema step. */
export interface Migration {
  /** 1, 2, 3, … without gaps. */
  readonly version: number;
  /** What it changes, for operators and `doctor`. */
  readonly description: string;
  /** The DDL/DML it runs, inside the migration transaction. */
  readonly sql: string;
}

const V1_BASE_TABLES = `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

CREATE TABLE namespaces (
  name    TEXT PRIMARY KEY,
  created INTEGER NOT NULL
) STRICT;

CREATE TABLE keys (
  ns                      TEXT NOT NULL REFERENCES namespaces (name),
  name                    TEXT NOT NULL,
  type                    TEXT NOT NULL CHECK (type IN ('aes256', 'x25519', 'xwing', 'ed25519', 'hmac-sha256')),
  created                 INTEGER NOT NULL,
  rotation_period_seconds INTEGER CHECK (rotation_period_seconds IS NULL OR rotation_period_seconds >= 1),
  min_decryption_version  INTEGER NOT NULL CHECK (min_decryption_version >= 1),
  exportable              INTEGER NOT NULL DEFAULT 0 CHECK (exportable = 0),
  latest_version          INTEGER NOT NULL CHECK (latest_version >= 1),
  PRIMARY KEY (ns, name),
  CHECK (min_decryption_version <= latest_version)
) STRICT;

CREATE TABLE key_versions (
  ns           TEXT NOT NULL,
  key          TEXT NOT NULL,
  version      INTEGER NOT NULL CHECK (version >= 1),
  state        TEXT NOT NULL CHECK (state IN ('enabled', 'disabled', 'scheduled_for_deletion', 'destroyed')),
  wrapped      BLOB,
  public_key   BLOB,
  created      INTEGER NOT NULL,
  deletion_at  INTEGER,
  destroyed_at INTEGER,
  PRIMARY KEY (ns, key, version),
  FOREIGN KEY (ns, key) REFERENCES keys (ns, name),
  CHECK ((state = 'destroyed') = (wrapped IS NULL)),
  CHECK ((state = 'destroyed') = (destroyed_at IS NOT NULL)),
  CHECK (state <> 'scheduled_for_deletion' OR deletion_at IS NOT NULL),
  CHECK (state NOT IN ('enabled', 'disabled') OR deletion_at IS NULL)
) STRICT;

CREATE TABLE principals (
  id      TEXT PRIMARY KEY,
  ns      TEXT NOT NULL REFERENCES namespaces (name),
  kind    TEXT NOT NULL CHECK (kind IN ('person', 'service')),
  name    TEXT NOT NULL,
  roles   TEXT NOT NULL CHECK (json_valid(roles) AND json_type(roles) = 'array'),
  created INTEGER NOT NULL,
  UNIQUE (ns, name)
) STRICT;

CREATE TABLE tokens (
  id         TEXT PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64 AND token_hash NOT GLOB '*[^0-9a-f]*'),
  principal  TEXT NOT NULL REFERENCES principals (id),
  admin      INTEGER NOT NULL CHECK (admin IN (0, 1)),
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER,
  created    INTEGER NOT NULL
) STRICT;

CREATE TABLE signing_keys (
  key_id     TEXT PRIMARY KEY,
  principal  TEXT NOT NULL REFERENCES principals (id),
  alg        TEXT NOT NULL CHECK (alg IN ('ed25519')),
  public_key BLOB NOT NULL,
  created    INTEGER NOT NULL,
  revoked_at INTEGER
) STRICT;

CREATE TABLE policies (
  id       TEXT NOT NULL,
  ns       TEXT NOT NULL REFERENCES namespaces (name),
  version  INTEGER NOT NULL CHECK (version >= 1),
  document TEXT NOT NULL CHECK (json_valid(document)),
  created  INTEGER NOT NULL,
  PRIMARY KEY (id, version)
) STRICT;

CREATE TABLE audit_events (
  idx       INTEGER PRIMARY KEY CHECK (idx >= 0),
  time      INTEGER NOT NULL,
  event     TEXT NOT NULL CHECK (json_valid(event) AND json_type(event) = 'object'),
  leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32)
) STRICT;

CREATE TABLE checkpoints (
  size    INTEGER PRIMARY KEY CHECK (size >= 0),
  root    BLOB NOT NULL CHECK (length(root) = 32),
  note    TEXT NOT NULL,
  created INTEGER NOT NULL
) STRICT;
`;

const V2_GUARDS_AND_INDEXES = `
-- Lookups the service makes often.
CREATE INDEX key_versions_due_for_destruction ON key_versions (deletion_at) WHERE state = 'scheduled_for_deletion';
CREATE INDEX tokens_by_principal ON tokens (principal);
CREATE INDEX signing_keys_by_principal ON signing_keys (principal);
CREATE INDEX policies_by_ns ON policies (ns, id, version);

-- The key version transition table (schema.ts KEY_VERSION_TRANSITIONS), enforced for raw SQL too.
CREATE TRIGGER key_versions_transition BEFORE UPDATE OF state ON key_versions
WHEN NEW.state IS NOT OLD.state AND NOT (
     (OLD.state = 'enabled' AND NEW.state IN ('disabled', 'scheduled_for_deletion'))
  OR (OLD.state = 'disabled' AND NEW.state IN ('enabled', 'scheduled_for_deletion'))
  OR (OLD.state = 'scheduled_for_deletion' AND NEW.state IN ('disabled', 'destroyed')))
BEGIN
  SELECT RAISE(ABORT, 'KW_STORE_INVALID_TRANSITION: key version state change not in the transition table');
END;

CREATE TRIGGER key_versions_destroyed_is_terminal BEFORE UPDATE ON key_versions
WHEN OLD.state = 'destroyed'
BEGIN
  SELECT RAISE(ABORT, 'KW_STORE_INVALID_TRANSITION: a destroyed key version never changes');
END;

CREATE TRIGGER key_versions_identity_fixed BEFORE UPDATE OF ns, key, version ON key_versions
BEGIN
  SELECT RAISE(ABORT, 'KW_STORE_CONFLICT: a key version never changes its key or number');
END;

CREATE TRIGGER key_versions_never_deleted BEFORE DELETE ON key_versions
BEGIN
  SELECT RAISE(ABORT, 'KW_STORE_CONFLICT: key versions are never deleted, only destroyed');
END;

-- The audit log is append-only and gapless.
CREATE TRIGGER audit_events_gapless BEFORE INSERT ON audit_events
WHEN NEW.idx IS NOT (SELECT coalesce(max(idx) + 1, 0) FROM audit_events)
BEGIN
  SELECT RAISE(ABORT, 'KW_STORE_CONFLICT: audit events are appended at the next index');
END;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
  SELECT RAISE(ABORT, 'KW_STORE_CONFLICT: audit events are append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
  SELECT RAISE(ABORT, 'KW_STORE_CONFLICT: audit events are append-only');
END;

CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN
  SELECT RAISE(ABORT, 'KW_STORE_CONFLICT: audit checkpoints are append-only');
END;

CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN
  SELECT RAISE(ABORT, 'KW_STORE_CONFLICT: audit checkpoints are append-only');
END;
`;

const V3_PRINCIPAL_DISABLED = `
ALTER TABLE principals ADD COLUMN disabled_at INTEGER CHECK (disabled_at IS NULL OR disabled_at >= 0);
`;

// Issue #7: second factors (TOTP seeds sealed by the keyholder, WebAuthn public keys,
// hashed recovery codes), the per-principal failure counter, and step-up records.
const V4_MFA = `
CREATE TABLE mfa_factors (
  id        TEXT PRIMARY KEY,
  principal TEXT NOT NULL REFERENCES principals (id),
  kind      TEXT NOT NULL CHECK (kind IN ('totp', 'webauthn', 'recovery')),
  name      TEXT NOT NULL,
  state     TEXT NOT NULL CHECK (state IN ('pending', 'active')),
  secret    BLOB,
  data      TEXT NOT NULL CHECK (json_valid(data) AND json_type(data) = 'object'),
  last_step INTEGER CHECK (last_step IS NULL OR last_step >= 0),
  counter   INTEGER CHECK (counter IS NULL OR counter >= 0),
  created   INTEGER NOT NULL,
  last_used INTEGER,
  CHECK (CASE WHEN kind = 'recovery' THEN secret IS NULL ELSE secret IS NOT NULL OR (kind = 'webauthn' AND state = 'pending') END)
) STRICT;
CREATE INDEX mfa_factors_by_principal ON mfa_factors (principal);

CREATE TABLE mfa_lockouts (
  principal    TEXT PRIMARY KEY REFERENCES principals (id),
  failures     INTEGER NOT NULL CHECK (failures >= 0),
  locked_until INTEGER,
  updated      INTEGER NOT NULL
) STRICT;

CREATE TABLE step_ups (
  id          TEXT PRIMARY KEY CHECK (length(id) = 43),
  principal   TEXT NOT NULL REFERENCES principals (id),
  request     TEXT NOT NULL CHECK (json_valid(request)),
  created     INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL CHECK (expires_at > created),
  verified_at INTEGER,
  factor      TEXT,
  consumed_at INTEGER,
  CHECK ((verified_at IS NULL) = (factor IS NULL)),
  CHECK (consumed_at IS NULL OR verified_at IS NOT NULL)
) STRICT;

CREATE TRIGGER step_ups_consumed_is_final BEFORE UPDATE ON step_ups
WHEN OLD.consumed_at IS NOT NULL
BEGIN
  SELECT RAISE(ABORT, 'KW_STORE_CONFLICT: a consumed step-up never changes');
END;

CREATE TRIGGER step_ups_request_fixed BEFORE UPDATE OF id, principal, request, created, expires_at ON step_ups
BEGIN
  SELECT RAISE(ABORT, 'KW_STORE_CONFLICT: a step-up never changes the request it is bound to');
END;
`;

// Issue #4: the replay cache of signed requests shared by every node (store/nonces.ts).
const V5_NONCES = `
CREATE TABLE request_nonces (
  key_id     TEXT NOT NULL CHECK (length(key_id) BETWEEN 1 AND 255),
  nonce      TEXT NOT NULL CHECK (length(nonce) BETWEEN 1 AND 255),
  expires_at INTEGER NOT NULL CHECK (expires_at >= 0),
  PRIMARY KEY (key_id, nonce)
) STRICT, WITHOUT ROWID;
CREATE INDEX request_nonces_by_expiry ON request_nonces (expires_at);
`;

const V6_QUORUM = `
CREATE TABLE approval_requests (
  id         TEXT PRIMARY KEY CHECK (length(id) = 43),
  op         TEXT NOT NULL CHECK (length(op) BETWEEN 1 AND 64),
  requester  TEXT NOT NULL CHECK (length(requester) BETWEEN 1 AND 255),
  request    TEXT NOT NULL CHECK (json_valid(request) AND json_type(request) = 'object'),
  rules      TEXT NOT NULL CHECK (json_valid(rules) AND json_type(rules) = 'array'),
  state      TEXT NOT NULL CHECK (state IN ('pending', 'executed', 'denied', 'expired')),
  created    INTEGER NOT NULL CHECK (created >= 0),
  expires_at INTEGER NOT NULL CHECK (expires_at > created),
  closed_at  INTEGER,
  CHECK ((state = 'pending') = (closed_at IS NULL))
) STRICT;
CREATE INDEX approval_requests_by_state ON approval_requests (state, created);

CREATE TABLE approvals (
  request_id TEXT NOT NULL REFERENCES approval_requests (id),
  approver   TEXT NOT NULL CHECK (length(approver) BETWEEN 1 AND 255),
  decision   TEXT NOT NULL CHECK (decision IN ('approve', 'deny')),
  approval   TEXT NOT NULL CHECK (json_valid(approval) AND json_type(approval) = 'object'),
  created    INTEGER NOT NULL CHECK (created >= 0),
  PRIMARY KEY (request_id, approver)
) STRICT;

CREATE TABLE governance_snapshots (
  seq       INTEGER PRIMARY KEY CHECK (seq >= 0),
  hash      TEXT NOT NULL UNIQUE CHECK (length(hash) = 64),
  snapshot  TEXT NOT NULL CHECK (json_valid(snapshot)),
  signature TEXT NOT NULL CHECK (length(signature) = 128),
  created   INTEGER NOT NULL CHECK (created >= 0)
) STRICT;
`;

// Issue #6: the public-key directory — its KEYTRANS log (append-only) and its entities and
// one-time enrollment tokens (store/directory-rows.ts).
const V7_DIRECTORY = `
CREATE TABLE kt_log (
  position    INTEGER PRIMARY KEY CHECK (position >= 0),
  timestamp   INTEGER NOT NULL CHECK (timestamp >= 0),
  prefix_root BLOB NOT NULL CHECK (length(prefix_root) = 32)
) STRICT;
CREATE TABLE kt_log_nodes (
  start INTEGER NOT NULL CHECK (start >= 0),
  len   INTEGER NOT NULL CHECK (len >= 1 AND (len & (len - 1)) = 0),
  value BLOB NOT NULL CHECK (length(value) = 32),
  PRIMARY KEY (start, len)
) STRICT, WITHOUT ROWID;
CREATE TABLE kt_prefix_nodes (
  value BLOB PRIMARY KEY CHECK (length(value) = 32),
  node  BLOB NOT NULL CHECK (length(node) = 65)
) STRICT, WITHOUT ROWID;
CREATE TABLE kt_versions (
  label      BLOB NOT NULL CHECK (length(label) BETWEEN 1 AND 255),
  version    INTEGER NOT NULL CHECK (version >= 0),
  value      BLOB NOT NULL,
  opening    BLOB NOT NULL CHECK (length(opening) = 16),
  vrf_output BLOB NOT NULL CHECK (length(vrf_output) = 32),
  vrf_proof  BLOB NOT NULL CHECK (length(vrf_proof) = 80),
  commitment BLOB NOT NULL CHECK (length(commitment) = 32),
  position   INTEGER NOT NULL REFERENCES kt_log (position),
  PRIMARY KEY (label, version)
) STRICT, WITHOUT ROWID;
CREATE TRIGGER kt_log_append_only BEFORE UPDATE ON kt_log
BEGIN SELECT RAISE(ABORT, 'KW_STORE_CONFLICT: the directory log is append-only'); END;
CREATE TRIGGER kt_log_never_deleted BEFORE DELETE ON kt_log
BEGIN SELECT RAISE(ABORT, 'KW_STORE_CONFLICT: the directory log is append-only'); END;
CREATE TRIGGER kt_versions_append_only BEFORE UPDATE ON kt_versions
BEGIN SELECT RAISE(ABORT, 'KW_STORE_CONFLICT: directory label versions never change'); END;
CREATE TRIGGER kt_versions_never_deleted BEFORE DELETE ON kt_versions
BEGIN SELECT RAISE(ABORT, 'KW_STORE_CONFLICT: directory label versions never change'); END;

CREATE TABLE dir_entities (
  name      TEXT PRIMARY KEY,
  kind      TEXT NOT NULL CHECK (kind IN ('user', 'service', 'group')),
  principal TEXT UNIQUE CHECK (principal IS NULL OR kind <> 'group'),
  state     TEXT NOT NULL CHECK (json_valid(state) AND json_type(state) = 'object'),
  seq       INTEGER NOT NULL CHECK (seq >= 1),
  updated   INTEGER NOT NULL,
  CHECK (name GLOB '[a-z]*:[a-z0-9]*' AND substr(name, 1, instr(name, ':') - 1) = kind)
) STRICT;
CREATE TABLE dir_enroll_tokens (
  id         TEXT PRIMARY KEY,
  entity     TEXT NOT NULL REFERENCES dir_entities (name),
  token_hash TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
  created_by TEXT NOT NULL,
  created    INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at    INTEGER
) STRICT;
CREATE TRIGGER dir_enroll_tokens_used_once BEFORE UPDATE OF used_at ON dir_enroll_tokens
WHEN OLD.used_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'KW_STORE_CONFLICT: an enrollment token is used once'); END;
`;

/** Every migration, in order. Append only. */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, description: 'base tables', sql: V1_BASE_TABLES },
  {
    version: 2,
    description: 'integrity triggers (transition table, append-only gapless audit log) and lookup indexes',
    sql: V2_GUARDS_AND_INDEXES,
  },
  { version: 3, description: 'principals can be disabled (disabled_at)', sql: V3_PRINCIPAL_DISABLED },
  { version: 4, description: 'second factors, MFA lockout counters and step-up records (issue #7)', sql: V4_MFA },
  { version: 5, description: 'shared replay cache of signed requests (request_nonces, issue #4)', sql: V5_NONCES },
  { version: 6, description: 'quorum approval requests, approvals and signed governance snapshots (issue #7)', sql: V6_QUORUM },
  { version: 7, description: 'public-key directory: KEYTRANS log, identities, groups, enrollment tokens (issue #6)', sql: V7_DIRECTORY },
];

/** The schema version this code writes. */
export const CURRENT_SCHEMA_VERSION: number = MIGRATIONS.length;

/**
 * The schema version recorded in `db`: 0 for an empty database.
 * `KW_STORE_CORRUPT_DATABASE` if it has tables but is not a Keyward store (or
 * is not a database); `KW_STORE_CORRUPT_ROW` if the recorded version is garbage.
 */
export function readSchemaVersion(db: Database): number {
  try {
    const hasMeta = db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'`).get();
    if (hasMeta === undefined) {
      const anyTable = db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' LIMIT 1`).get();
      if (anyTable !== undefined) {
        throw new StoreError('KW_STORE_CORRUPT_DATABASE', 'the database has tables but no meta table: not a Keyward store');
      }
      return 0;
    }
    const row = db.prepare(`SELECT value FROM meta WHERE key = 'schema_version'`).get() as { value: unknown } | undefined;
    if (row === undefined) {
      throw new StoreError('KW_STORE_CORRUPT_DATABASE', 'meta has no schema_version: not a Keyward store');
    }
    if (typeof row.value !== 'string' || !/^[1-9][0-9]{0,8}$/.test(row.value)) {
      throw new StoreError('KW_STORE_CORRUPT_ROW', 'meta: schema_version is not a positive integer');
    }
    return Number(row.value);
  } catch (e) {
    throw toStoreError(e);
  }
}

/** Throws unless `migrations` is numbered 1, 2, 3, … */
function checkMigrationList(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new StoreError('KW_STORE_MIGRATION_FAILED', `migration list out of order at position ${i}: version ${m.version}`);
    }
  });
}

/** Throws `KW_STORE_SCHEMA_TOO_NEW` when `found` is newer than the newest of `migrations`. */
export function assertSchemaKnown(found: number, migrations: readonly Migration[] = MIGRATIONS): void {
  if (found > migrations.length) {
    throw new StoreError(
      'KW_STORE_SCHEMA_TOO_NEW',
      `database schema version ${found} is newer than this code knows (${migrations.length}); upgrade Keyward`,
    );
  }
}

/**
 * Brings `db` to the newest version of `migrations`, in one immediate
 * transaction: on any failure nothing changes (`KW_STORE_MIGRATION_FAILED`,
 * with the cause). Returns the versions before and after.
 */
export function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS): { from: number; to: number } {
  checkMigrationList(migrations);
  const run = db.transaction(() => {
    // Re-read inside the write lock: another process may have migrated meanwhile.
    const from = readSchemaVersion(db);
    assertSchemaKnown(from, migrations);
    // Foreign keys are checked at commit, so a migration may rebuild a table.
    db.pragma('defer_foreign_keys = ON');
    for (const m of migrations.slice(from)) {
      try {
        db.exec(m.sql);
        db.prepare(`INSERT INTO meta (key, value) VALUES ('schema_version', ?)
                    ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(String(m.version));
      } catch (e) {
        throw new StoreError('KW_STORE_MIGRATION_FAILED', `migration ${m.version} (${m.description}) failed`, { cause: e });
      }
    }
    const violations = db.pragma('foreign_key_check') as unknown[];
    if (violations.length > 0) {
      throw new StoreError('KW_STORE_MIGRATION_FAILED', `migrations left ${violations.length} foreign key violation(s)`);
    }
    return { from, to: migrations.length };
  });
  try {
    return run.immediate();
  } catch (e) {
    if (isStoreError(e)) throw e;
    throw new StoreError('KW_STORE_MIGRATION_FAILED', 'schema migration failed', { cause: toStoreError(e) });
  }
}
