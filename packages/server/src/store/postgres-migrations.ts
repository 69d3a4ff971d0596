/**
 * Versioned schema migrations of the PostgreSQL store.
 *
 * The same rules as the SQLite list (`migrations.ts`): an ordered, append-only
 * list; the database records the last one applied in `meta.schema_version`;
 * every pending migration runs in ONE transaction (PostgreSQL DDL is
 * transactional: all or nothing); a database newer than this code is refused
 * (`KW_STORE_SCHEMA_TOO_NEW`). Released migrations are never edited (a test
 * pins their hashes).
 *
 * Several nodes start at once on one database: the migration transaction
 * first takes the transaction-scoped advisory lock {@link MIGRATION_LOCK_ID}
 * (`pg_advisory_xact_lock`), then reads the version. A second node waits on
 * the lock, then finds the schema current and does nothing. The lock is
 * released by COMMIT or ROLLBACK, so a node that dies mid-migration never
 * leaves it held.
 *
 * The tables carry the integrity rules of `schema.ts` as CHECK constraints
 * and triggers, so a row written by hand is held to them too. Trigger
 * messages start with a store error code, which `postgres-errors.ts` maps
 * back to a typed error. Times are BIGINT milliseconds since the epoch,
 * booleans 0/1 SMALLINTs, JSON is TEXT (an audit event is hashed as stored,
 * byte for byte; `jsonb` would reformat it), bytes BYTEA — the representation
 * `schema.ts` validates for both backends.
 */
import type { ClientBase } from 'pg';
import { StoreError, isStoreError } from './errors.js';
import type { Migration } from './migrations.js';
import { toPgStoreError } from './postgres-errors.js';

/**
 * The advisory lock key of migrations: the first 8 bytes of
 * SHA-256("keyward/v1 store migrate"), as a signed 64-bit integer.
 */
export const MIGRATION_LOCK_ID = '-4413539727790562377';

const V1_BASE_TABLES = `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE namespaces (
  name    TEXT PRIMARY KEY,
  created BIGINT NOT NULL
);

CREATE TABLE keys (
  ns                      TEXT NOT NULL REFERENCES namespaces (name),
  name                    TEXT NOT NULL,
  type                    TEXT NOT NULL CONSTRAINT keys_type CHECK (type IN ('aes256', 'x25519', 'xwing', 'ed25519', 'hmac-sha256')),
  created                 BIGINT NOT NULL,
  rotation_period_seconds BIGINT CONSTRAINT keys_rotation CHECK (rotation_period_seconds IS NULL OR rotation_period_seconds >= 1),
  min_decryption_version  INTEGER NOT NULL CONSTRAINT keys_min_decryption CHECK (min_decryption_version >= 1),
  exportable              SMALLINT NOT NULL DEFAULT 0 CONSTRAINT keys_exportable CHECK (exportable = 0),
  latest_version          INTEGER NOT NULL CONSTRAINT keys_latest CHECK (latest_version >= 1),
  PRIMARY KEY (ns, name),
  CONSTRAINT keys_min_le_latest CHECK (min_decryption_version <= latest_version)
);

CREATE TABLE key_versions (
  ns           TEXT NOT NULL,
  key          TEXT NOT NULL,
  version      INTEGER NOT NULL CONSTRAINT key_versions_version CHECK (version >= 1),
  state        TEXT NOT NULL CONSTRAINT key_versions_state CHECK (state IN ('enabled', 'disabled', 'scheduled_for_deletion', 'destroyed')),
  wrapped      BYTEA,
  public_key   BYTEA,
  created      BIGINT NOT NULL,
  deletion_at  BIGINT,
  destroyed_at BIGINT,
  PRIMARY KEY (ns, key, version),
  FOREIGN KEY (ns, key) REFERENCES keys (ns, name),
  CONSTRAINT key_versions_wrapped CHECK ((state = 'destroyed') = (wrapped IS NULL)),
  CONSTRAINT key_versions_destroyed_at CHECK ((state = 'destroyed') = (destroyed_at IS NOT NULL)),
  CONSTRAINT key_versions_scheduled CHECK (state <> 'scheduled_for_deletion' OR deletion_at IS NOT NULL),
  CONSTRAINT key_versions_live CHECK (state NOT IN ('enabled', 'disabled') OR deletion_at IS NULL)
);

CREATE TABLE principals (
  id      TEXT PRIMARY KEY,
  ns      TEXT NOT NULL REFERENCES namespaces (name),
  kind    TEXT NOT NULL CONSTRAINT principals_kind CHECK (kind IN ('person', 'service')),
  name    TEXT NOT NULL,
  roles   TEXT NOT NULL CONSTRAINT principals_roles CHECK (json_typeof(roles::json) = 'array'),
  created BIGINT NOT NULL,
  disabled_at BIGINT CONSTRAINT principals_disabled_at CHECK (disabled_at IS NULL OR disabled_at >= 0),
  UNIQUE (ns, name)
);

CREATE TABLE tokens (
  id         TEXT PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE CONSTRAINT tokens_hash CHECK (token_hash ~ '^[0-9a-f]{64}$'),
  principal  TEXT NOT NULL REFERENCES principals (id),
  admin      SMALLINT NOT NULL CONSTRAINT tokens_admin CHECK (admin IN (0, 1)),
  expires_at BIGINT NOT NULL,
  revoked_at BIGINT,
  created    BIGINT NOT NULL
);

CREATE TABLE signing_keys (
  key_id     TEXT PRIMARY KEY,
  principal  TEXT NOT NULL REFERENCES principals (id),
  alg        TEXT NOT NULL CONSTRAINT signing_keys_alg CHECK (alg IN ('ed25519')),
  public_key BYTEA NOT NULL,
  created    BIGINT NOT NULL,
  revoked_at BIGINT
);

CREATE TABLE policies (
  id       TEXT NOT NULL,
  ns       TEXT NOT NULL REFERENCES namespaces (name),
  version  INTEGER NOT NULL CONSTRAINT policies_version CHECK (version >= 1),
  document TEXT NOT NULL CONSTRAINT policies_document CHECK (json_typeof(document::json) IS NOT NULL),
  created  BIGINT NOT NULL,
  PRIMARY KEY (id, version)
);

CREATE TABLE audit_events (
  idx       BIGINT PRIMARY KEY CONSTRAINT audit_events_idx CHECK (idx >= 0),
  time      BIGINT NOT NULL,
  event     TEXT NOT NULL CONSTRAINT audit_events_event CHECK (json_typeof(event::json) = 'object'),
  leaf_hash BYTEA NOT NULL CONSTRAINT audit_events_leaf_hash CHECK (length(leaf_hash) = 32)
);

CREATE TABLE checkpoints (
  size    BIGINT PRIMARY KEY CONSTRAINT checkpoints_size CHECK (size >= 0),
  root    BYTEA NOT NULL CONSTRAINT checkpoints_root CHECK (length(root) = 32),
  note    TEXT NOT NULL,
  created BIGINT NOT NULL
);
`;

const V2_GUARDS_SEQUENCER_AND_INDEXES = `
-- Lookups the service makes often.
CREATE INDEX key_versions_due_for_destruction ON key_versions (deletion_at) WHERE state = 'scheduled_for_deletion';
CREATE INDEX tokens_by_principal ON tokens (principal);
CREATE INDEX signing_keys_by_principal ON signing_keys (principal);
CREATE INDEX policies_by_ns ON policies (ns, id, version);

-- The audit sequencer: one row whose size is the next index. An append
-- increments it (UPDATE … RETURNING), which row-locks it until the append's
-- transaction ends: appends from every connection of every node are totally
-- ordered, and a rolled-back append gives its index back.
CREATE TABLE audit_head (
  id   SMALLINT PRIMARY KEY CONSTRAINT audit_head_single CHECK (id = 1),
  size BIGINT NOT NULL CONSTRAINT audit_head_size CHECK (size >= 0)
);
INSERT INTO audit_head (id, size) SELECT 1, coalesce(max(idx) + 1, 0) FROM audit_events;

-- The key version transition table (schema.ts KEY_VERSION_TRANSITIONS), enforced for raw SQL too.
CREATE FUNCTION keyward_key_versions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'KW_STORE_CONFLICT: key versions are never deleted, only destroyed';
  END IF;
  IF OLD.state = 'destroyed' THEN
    RAISE EXCEPTION 'KW_STORE_INVALID_TRANSITION: a destroyed key version never changes';
  END IF;
  IF NEW.ns IS DISTINCT FROM OLD.ns OR NEW.key IS DISTINCT FROM OLD.key OR NEW.version IS DISTINCT FROM OLD.version THEN
    RAISE EXCEPTION 'KW_STORE_CONFLICT: a key version never changes its key or number';
  END IF;
  IF NEW.state IS DISTINCT FROM OLD.state AND NOT (
       (OLD.state = 'enabled' AND NEW.state IN ('disabled', 'scheduled_for_deletion'))
    OR (OLD.state = 'disabled' AND NEW.state IN ('enabled', 'scheduled_for_deletion'))
    OR (OLD.state = 'scheduled_for_deletion' AND NEW.state IN ('disabled', 'destroyed'))) THEN
    RAISE EXCEPTION 'KW_STORE_INVALID_TRANSITION: key version state change not in the transition table';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER key_versions_guard BEFORE UPDATE OR DELETE ON key_versions
  FOR EACH ROW EXECUTE FUNCTION keyward_key_versions_guard();

-- The audit log is append-only and gapless.
CREATE FUNCTION keyward_audit_events_gapless() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  next BIGINT;
BEGIN
  -- The table of the trigger itself, whatever the writer's search_path.
  EXECUTE format('SELECT coalesce(max(idx) + 1, 0) FROM %I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME) INTO next;
  IF NEW.idx IS DISTINCT FROM next THEN
    RAISE EXCEPTION 'KW_STORE_CONFLICT: audit events are appended at the next index';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER audit_events_gapless BEFORE INSERT ON audit_events
  FOR EACH ROW EXECUTE FUNCTION keyward_audit_events_gapless();

CREATE FUNCTION keyward_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'KW_STORE_CONFLICT: % is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION keyward_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION keyward_append_only();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints
  FOR EACH ROW EXECUTE FUNCTION keyward_append_only();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION keyward_append_only();
`;

const V3_CHANGE_NOTIFICATIONS = `
-- Cross-node invalidation: every committed change to what authorises an
-- operation (key versions, keys, tokens, signing keys, principals, policies)
-- is announced on the channel keyward_changes, delivered by PostgreSQL at
-- commit to every node that LISTENs. The payload names the row, never its
-- secret columns (no blob, no token hash).
CREATE FUNCTION keyward_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  r jsonb;
  payload jsonb;
BEGIN
  IF TG_OP = 'DELETE' THEN r := to_jsonb(OLD); ELSE r := to_jsonb(NEW); END IF;
  IF TG_TABLE_NAME = 'key_versions' THEN
    payload := jsonb_build_object('ns', r->'ns', 'key', r->'key', 'version', r->'version', 'state', r->'state');
  ELSIF TG_TABLE_NAME = 'keys' THEN
    payload := jsonb_build_object('ns', r->'ns', 'key', r->'name');
  ELSIF TG_TABLE_NAME = 'signing_keys' THEN
    payload := jsonb_build_object('id', r->'key_id', 'principal', r->'principal');
  ELSIF TG_TABLE_NAME = 'tokens' THEN
    payload := jsonb_build_object('id', r->'id', 'principal', r->'principal');
  ELSIF TG_TABLE_NAME = 'principals' THEN
    payload := jsonb_build_object('id', r->'id', 'ns', r->'ns');
  ELSE
    payload := jsonb_build_object('id', r->'id', 'ns', r->'ns', 'version', r->'version');
  END IF;
  PERFORM pg_notify('keyward_changes', (payload || jsonb_build_object('table', TG_TABLE_NAME, 'schema', TG_TABLE_SCHEMA))::text);
  RETURN NULL;
END $$;
CREATE TRIGGER key_versions_notify AFTER INSERT OR UPDATE ON key_versions FOR EACH ROW EXECUTE FUNCTION keyward_notify_change();
CREATE TRIGGER keys_notify AFTER UPDATE ON keys FOR EACH ROW EXECUTE FUNCTION keyward_notify_change();
CREATE TRIGGER tokens_notify AFTER UPDATE OR DELETE ON tokens FOR EACH ROW EXECUTE FUNCTION keyward_notify_change();
CREATE TRIGGER signing_keys_notify AFTER UPDATE OR DELETE ON signing_keys FOR EACH ROW EXECUTE FUNCTION keyward_notify_change();
CREATE TRIGGER principals_notify AFTER UPDATE OR DELETE ON principals FOR EACH ROW EXECUTE FUNCTION keyward_notify_change();
CREATE TRIGGER policies_notify AFTER INSERT ON policies FOR EACH ROW EXECUTE FUNCTION keyward_notify_change();
`;


// Issue #7: second factors (TOTP seeds sealed by the keyholder, WebAuthn public keys,
// hashed recovery codes), the per-principal failure counter, and step-up records.
const V4_MFA = `
CREATE TABLE mfa_factors (
  id        TEXT PRIMARY KEY,
  principal TEXT NOT NULL REFERENCES principals (id),
  kind      TEXT NOT NULL CONSTRAINT mfa_factors_kind CHECK (kind IN ('totp', 'webauthn', 'recovery')),
  name      TEXT NOT NULL,
  state     TEXT NOT NULL CONSTRAINT mfa_factors_state CHECK (state IN ('pending', 'active')),
  secret    BYTEA,
  data      TEXT NOT NULL CONSTRAINT mfa_factors_data CHECK (json_typeof(data::json) = 'object'),
  last_step BIGINT CONSTRAINT mfa_factors_last_step CHECK (last_step IS NULL OR last_step >= 0),
  counter   BIGINT CONSTRAINT mfa_factors_counter CHECK (counter IS NULL OR counter >= 0),
  created   BIGINT NOT NULL,
  last_used BIGINT,
  CONSTRAINT mfa_factors_secret CHECK (CASE WHEN kind = 'recovery' THEN secret IS NULL ELSE secret IS NOT NULL OR (kind = 'webauthn' AND state = 'pending') END)
);
CREATE INDEX mfa_factors_by_principal ON mfa_factors (principal);

CREATE TABLE mfa_lockouts (
  principal    TEXT PRIMARY KEY REFERENCES principals (id),
  failures     INTEGER NOT NULL CONSTRAINT mfa_lockouts_failures CHECK (failures >= 0),
  locked_until BIGINT,
  updated      BIGINT NOT NULL
);

CREATE TABLE step_ups (
  id          TEXT PRIMARY KEY CONSTRAINT step_ups_id CHECK (length(id) = 43),
  principal   TEXT NOT NULL REFERENCES principals (id),
  request     TEXT NOT NULL CONSTRAINT step_ups_request CHECK (json_typeof(request::json) IS NOT NULL),
  created     BIGINT NOT NULL,
  expires_at  BIGINT NOT NULL CONSTRAINT step_ups_expiry CHECK (expires_at > created),
  verified_at BIGINT,
  factor      TEXT,
  consumed_at BIGINT,
  CONSTRAINT step_ups_verified CHECK ((verified_at IS NULL) = (factor IS NULL)),
  CONSTRAINT step_ups_consumed CHECK (consumed_at IS NULL OR verified_at IS NOT NULL)
);

CREATE FUNCTION keyward_step_ups_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.consumed_at IS NOT NULL THEN
    RAISE EXCEPTION 'KW_STORE_CONFLICT: a consumed step-up never changes';
  END IF;
  IF NEW.id IS DISTINCT FROM OLD.id OR NEW.principal IS DISTINCT FROM OLD.principal OR NEW.request IS DISTINCT FROM OLD.request
     OR NEW.created IS DISTINCT FROM OLD.created OR NEW.expires_at IS DISTINCT FROM OLD.expires_at THEN
    RAISE EXCEPTION 'KW_STORE_CONFLICT: a step-up never changes the request it is bound to';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER step_ups_guard BEFORE UPDATE ON step_ups FOR EACH ROW EXECUTE FUNCTION keyward_step_ups_guard();
`;

// Issue #4: the replay cache of signed requests shared by every node (store/nonces.ts).
const V5_NONCES = `
CREATE TABLE request_nonces (
  key_id     TEXT NOT NULL CONSTRAINT request_nonces_key_id CHECK (length(key_id) BETWEEN 1 AND 255),
  nonce      TEXT NOT NULL CONSTRAINT request_nonces_nonce CHECK (length(nonce) BETWEEN 1 AND 255),
  expires_at BIGINT NOT NULL CONSTRAINT request_nonces_expiry CHECK (expires_at >= 0),
  PRIMARY KEY (key_id, nonce)
);
CREATE INDEX request_nonces_by_expiry ON request_nonces (expires_at);
`;

const V6_QUORUM = `
CREATE TABLE approval_requests (
  id         TEXT PRIMARY KEY CONSTRAINT approval_requests_id CHECK (length(id) = 43),
  op         TEXT NOT NULL CONSTRAINT approval_requests_op CHECK (length(op) BETWEEN 1 AND 64),
  requester  TEXT NOT NULL CONSTRAINT approval_requests_requester CHECK (length(requester) BETWEEN 1 AND 255),
  request    TEXT NOT NULL CONSTRAINT approval_requests_request CHECK (json_typeof(request::json) = 'object'),
  rules      TEXT NOT NULL CONSTRAINT approval_requests_rules CHECK (json_typeof(rules::json) = 'array'),
  state      TEXT NOT NULL CONSTRAINT approval_requests_state CHECK (state IN ('pending', 'executed', 'denied', 'expired')),
  created    BIGINT NOT NULL CONSTRAINT approval_requests_created CHECK (created >= 0),
  expires_at BIGINT NOT NULL CONSTRAINT approval_requests_expiry CHECK (expires_at > created),
  closed_at  BIGINT,
  CONSTRAINT approval_requests_closed CHECK ((state = 'pending') = (closed_at IS NULL))
);
CREATE INDEX approval_requests_by_state ON approval_requests (state, created);

CREATE TABLE approvals (
  request_id TEXT NOT NULL REFERENCES approval_requests (id),
  approver   TEXT NOT NULL CONSTRAINT approvals_approver CHECK (length(approver) BETWEEN 1 AND 255),
  decision   TEXT NOT NULL CONSTRAINT approvals_decision CHECK (decision IN ('approve', 'deny')),
  approval   TEXT NOT NULL CONSTRAINT approvals_approval CHECK (json_typeof(approval::json) = 'object'),
  created    BIGINT NOT NULL CONSTRAINT approvals_created CHECK (created >= 0),
  PRIMARY KEY (request_id, approver)
);

CREATE TABLE governance_snapshots (
  seq       BIGINT PRIMARY KEY CONSTRAINT governance_snapshots_seq CHECK (seq >= 0),
  hash      TEXT NOT NULL UNIQUE CONSTRAINT governance_snapshots_hash CHECK (length(hash) = 64),
  snapshot  TEXT NOT NULL,
  signature TEXT NOT NULL CONSTRAINT governance_snapshots_signature CHECK (length(signature) = 128),
  created   BIGINT NOT NULL CONSTRAINT governance_snapshots_created CHECK (created >= 0)
);
`;

// Issue #6: the public-key directory — its KEYTRANS log (append-only) and its entities and
// one-time enrollment tokens (store/directory-rows.ts).
const V7_DIRECTORY = `
CREATE TABLE kt_log (
  position    BIGINT PRIMARY KEY CONSTRAINT kt_log_position CHECK (position >= 0),
  timestamp   BIGINT NOT NULL CONSTRAINT kt_log_timestamp CHECK (timestamp >= 0),
  prefix_root BYTEA NOT NULL CONSTRAINT kt_log_root CHECK (length(prefix_root) = 32)
);
CREATE TABLE kt_log_nodes (
  start BIGINT NOT NULL CHECK (start >= 0),
  len   BIGINT NOT NULL CHECK (len >= 1 AND (len & (len - 1)) = 0),
  value BYTEA NOT NULL CHECK (length(value) = 32),
  PRIMARY KEY (start, len)
);
CREATE TABLE kt_prefix_nodes (
  value BYTEA PRIMARY KEY CHECK (length(value) = 32),
  node  BYTEA NOT NULL CHECK (length(node) = 65)
);
CREATE TABLE kt_versions (
  label      BYTEA NOT NULL CHECK (length(label) BETWEEN 1 AND 255),
  version    BIGINT NOT NULL CHECK (version >= 0),
  value      BYTEA NOT NULL,
  opening    BYTEA NOT NULL CHECK (length(opening) = 16),
  vrf_output BYTEA NOT NULL CHECK (length(vrf_output) = 32),
  vrf_proof  BYTEA NOT NULL CHECK (length(vrf_proof) = 80),
  commitment BYTEA NOT NULL CHECK (length(commitment) = 32),
  position   BIGINT NOT NULL REFERENCES kt_log (position),
  PRIMARY KEY (label, version)
);
CREATE FUNCTION kt_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'KW_STORE_CONFLICT: the directory log is append-only'; END $$;
CREATE TRIGGER kt_log_append_only BEFORE UPDATE OR DELETE ON kt_log FOR EACH ROW EXECUTE FUNCTION kt_append_only();
CREATE TRIGGER kt_versions_append_only BEFORE UPDATE OR DELETE ON kt_versions FOR EACH ROW EXECUTE FUNCTION kt_append_only();

CREATE TABLE dir_entities (
  name      TEXT PRIMARY KEY,
  kind      TEXT NOT NULL CHECK (kind IN ('user', 'service', 'group')),
  principal TEXT UNIQUE CHECK (principal IS NULL OR kind <> 'group'),
  state     TEXT NOT NULL,
  seq       INTEGER NOT NULL CHECK (seq >= 1),
  updated   BIGINT NOT NULL,
  CHECK (split_part(name, ':', 1) = kind)
);
CREATE TABLE dir_enroll_tokens (
  id         TEXT PRIMARY KEY,
  entity     TEXT NOT NULL REFERENCES dir_entities (name),
  token_hash TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
  created_by TEXT NOT NULL,
  created    BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at    BIGINT
);
CREATE FUNCTION dir_enroll_token_used_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.used_at IS NOT NULL THEN RAISE EXCEPTION 'KW_STORE_CONFLICT: an enrollment token is used once'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER dir_enroll_tokens_used_once BEFORE UPDATE ON dir_enroll_tokens FOR EACH ROW EXECUTE FUNCTION dir_enroll_token_used_once();
`;

/** Every PostgreSQL migration, in order. Append only. */
export const PG_MIGRATIONS: readonly Migration[] = [
  { version: 1, description: 'base tables', sql: V1_BASE_TABLES },
  {
    version: 2,
    description: 'audit sequencer row, integrity triggers (transition table, append-only gapless audit log) and lookup indexes',
    sql: V2_GUARDS_SEQUENCER_AND_INDEXES,
  },
  { version: 3, description: 'change notifications on channel keyward_changes (cross-node invalidation)', sql: V3_CHANGE_NOTIFICATIONS },
  { version: 4, description: 'second factors, MFA lockout counters and step-up records (issue #7)', sql: V4_MFA },
  { version: 5, description: 'shared replay cache of signed requests (request_nonces, issue #4)', sql: V5_NONCES },
  { version: 6, description: 'quorum approval requests, approvals and signed governance snapshots (issue #7)', sql: V6_QUORUM },
  { version: 7, description: 'public-key directory: KEYTRANS log, identities, groups, enrollment tokens (issue #6)', sql: V7_DIRECTORY },
];

/** The schema version this code writes on PostgreSQL. */
export const PG_SCHEMA_VERSION: number = PG_MIGRATIONS.length;

/**
 * The schema version recorded in the connected database: 0 for an empty one.
 * `KW_STORE_CORRUPT_DATABASE` if it has tables in the current schema but is
 * not a Keyward store; `KW_STORE_CORRUPT_ROW` if the recorded version is garbage.
 */
export async function readPgSchemaVersion(db: ClientBase): Promise<number> {
  try {
    const meta = await db.query<{ t: string | null }>(`SELECT to_regclass('meta')::text AS t`);
    if (meta.rows[0]?.t === null || meta.rows[0]?.t === undefined) {
      const any = await db.query(
        `SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() LIMIT 1`,
      );
      if (any.rowCount !== 0) {
        throw new StoreError('KW_STORE_CORRUPT_DATABASE', 'the database schema has tables but no meta table: not a Keyward store');
      }
      return 0;
    }
    const row = await db.query<{ value: unknown }>(`SELECT value FROM meta WHERE key = 'schema_version'`);
    if (row.rowCount === 0) throw new StoreError('KW_STORE_CORRUPT_DATABASE', 'meta has no schema_version: not a Keyward store');
    const value = row.rows[0]!.value;
    if (typeof value !== 'string' || !/^[1-9][0-9]{0,8}$/.test(value)) {
      throw new StoreError('KW_STORE_CORRUPT_ROW', 'meta: schema_version is not a positive integer');
    }
    return Number(value);
  } catch (e) {
    throw toPgStoreError(e);
  }
}

function checkMigrationList(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new StoreError('KW_STORE_MIGRATION_FAILED', `migration list out of order at position ${i}: version ${m.version}`);
    }
  });
}

/** Throws `KW_STORE_SCHEMA_TOO_NEW` when `found` is newer than the newest of `migrations`. */
export function assertPgSchemaKnown(found: number, migrations: readonly Migration[] = PG_MIGRATIONS): void {
  if (found > migrations.length) {
    throw new StoreError(
      'KW_STORE_SCHEMA_TOO_NEW',
      `database schema version ${found} is newer than this code knows (${migrations.length}); upgrade Keyward`,
    );
  }
}

/**
 * Brings the connected database to the newest version of `migrations`, in
 * one transaction under the migration advisory lock (see the module
 * comment). On any failure nothing changes (`KW_STORE_MIGRATION_FAILED`, with
 * the cause). Returns the versions before and after. `db` must be a client
 * not in a transaction.
 */
export async function migratePg(db: ClientBase, migrations: readonly Migration[] = PG_MIGRATIONS): Promise<{ from: number; to: number }> {
  checkMigrationList(migrations);
  try {
    await db.query('BEGIN');
  } catch (e) {
    throw toPgStoreError(e);
  }
  try {
    await db.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_ID]);
    // Read under the lock: another node may have migrated while we waited.
    const from = await readPgSchemaVersion(db);
    assertPgSchemaKnown(from, migrations);
    for (const m of migrations.slice(from)) {
      try {
        await db.query(m.sql);
        await db.query(
          `INSERT INTO meta (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
          [String(m.version)],
        );
      } catch (e) {
        throw new StoreError('KW_STORE_MIGRATION_FAILED', `migration ${m.version} (${m.description}) failed`, { cause: e });
      }
    }
    await db.query('COMMIT');
    return { from, to: migrations.length };
  } catch (e) {
    await db.query('ROLLBACK').catch(() => undefined);
    if (isStoreError(e)) throw e;
    const mapped = toPgStoreError(e);
    if (mapped.code === 'KW_STORE_UNAVAILABLE') throw mapped;
    throw new StoreError('KW_STORE_MIGRATION_FAILED', 'schema migration failed', { cause: mapped });
  }
}
