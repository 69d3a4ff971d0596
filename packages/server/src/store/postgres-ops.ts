/**
 * The SQL of the PostgreSQL store: every `StoreOps` operation over a
 * {@link PgRunner}, which `postgres.ts` supplies — outside a transaction a
 * write is its own `BEGIN … COMMIT` on a pooled connection; inside
 * `transaction(fn)` it is a `SAVEPOINT`, so a failed one leaves nothing behind.
 *
 * The same checks as `sqlite-ops.ts`, in the same order, so both backends give
 * the same typed error for the same mistake; the schema's constraints and
 * triggers stay as the backstop. Concurrency across connections (and nodes)
 * comes from row locks taken by the statements themselves, under READ
 * COMMITTED:
 * - rotation and key updates lock the key row (`SELECT … FOR UPDATE`), so two
 *   rotations of one key run one after the other, and the second sees the
 *   first's `latest_version`;
 * - state changes are compare-and-set on the state read (`WHERE state = $old`):
 *   a concurrent change makes the second a `KW_STORE_CONFLICT`, never a lost update;
 * - audit appends increment the single `audit_head` row (`UPDATE … RETURNING`),
 *   which stays locked until the appending transaction ends: one total order
 *   of indices across every connection, and a rolled-back index is reused.
 * Every row read is validated by its zod schema before it is returned.
 */
import { z } from 'zod';
import { StoreError } from './errors.js';
import { PgMfaOps } from './postgres-mfa.js';
import { PgQuorumOps } from './postgres-quorum.js';
import { PgNonceOps, type NewNonce } from './nonces.js';
import { PgDirectoryOps } from './directory-rows.js';
import {
  ASYMMETRIC_KEY_TYPES,
  AuditCheckpointRowSchema,
  AuditEventRowSchema,
  AuditRangeSchema,
  IdentifierSchema,
  KeyPatchSchema,
  KeyRowSchema,
  KeyVersionRefSchema,
  KeyVersionRowSchema,
  KeyVersionStateChangeSchema,
  MetaValueSchema,
  NamespaceRowSchema,
  NewAuditCheckpointSchema,
  NewAuditEventSchema,
  NewKeySchema,
  NewNamespaceSchema,
  NewPolicyVersionSchema,
  NewPrincipalSchema,
  NewSigningKeySchema,
  NewTokenSchema,
  PolicyRowSchema,
  PrincipalRowSchema,
  RolesSchema,
  RotateKeySchema,
  SigningKeyRowSchema,
  TimeSchema,
  TokenHashSchema,
  TokenRowSchema,
  VersionSchema,
  isAllowedTransition,
  parseInput,
  parseRow,
  type KeyType,
  type KeyVersionState,
} from './schema.js';
import type {
  AuditCheckpointRow,
  AuditEventRow,
  AuditRange,
  KeyPatch,
  KeyRow,
  KeyVersionRef,
  KeyVersionRow,
  KeyVersionStateChange,
  NamespaceRow,
  NewAuditCheckpoint,
  NewAuditEvent,
  NewKey,
  NewNamespace,
  NewPolicyVersion,
  NewPrincipal,
  NewSigningKey,
  NewToken,
  PolicyRow,
  PrincipalRow,
  RotateKey,
  SigningKeyRow,
  StoreOps,
  TokenRow,
} from './types.js';

/** Runs one statement with positional parameters; rows come back as plain objects. */
export type PgQuery = (text: string, values?: readonly unknown[]) => Promise<{ rows: Record<string, unknown>[]; rowCount: number }>;

/** How operations reach the database (see the module comment). */
export interface PgRunner {
  /** Runs statements that only read. */
  read<T>(name: keyof StoreOps, fn: (q: PgQuery) => Promise<T>): Promise<T>;
  /** Runs statements that write, atomically: all of them or none. */
  write<T>(name: keyof StoreOps, fn: (q: PgQuery) => Promise<T>): Promise<T>;
}

/** Meta keys only the store writes. */
const RESERVED_META_KEYS: ReadonlySet<string> = new Set(['schema_version']);

const IndexSchema = z.number().int().min(0);
/** Row shapes checked on hot paths, built once (zod compiles each schema object the first time it parses). */
const IdxRowSchema = z.object({ idx: IndexSchema });
const NextIdxRowSchema = z.object({ next: IndexSchema });
const MetaRowSchema = z.object({ value: MetaValueSchema });

const ms = (d: Date): number => d.getTime();
const blob = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const blobOrNull = (b: Uint8Array | null): Buffer | null => (b === null ? null : blob(b));

const KEY_COLUMNS = 'ns, name, type, created, rotation_period_seconds, min_decryption_version, exportable, latest_version';
const VERSION_COLUMNS = 'ns, key, version, state, wrapped, public_key, created, deletion_at, destroyed_at';
const PRINCIPAL_COLUMNS = 'id, ns, kind, name, roles, created, disabled_at';
const TOKEN_COLUMNS = 'id, token_hash, principal, admin, expires_at, revoked_at, created';
const SIGNING_KEY_COLUMNS = 'key_id, principal, alg, public_key, created, revoked_at';
const POLICY_COLUMNS = 'id, ns, version, document, created';

/** The statements, by name (PostgreSQL caches their plans per connection). */
const SQL = {
  insertNamespace: 'INSERT INTO namespaces (name, created) VALUES ($1, $2)',
  getNamespace: 'SELECT name, created FROM namespaces WHERE name = $1',
  listNamespaces: 'SELECT name, created FROM namespaces ORDER BY name COLLATE "C"',

  insertKey: `INSERT INTO keys (${KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, 1, 0, 1)`,
  getKey: `SELECT ${KEY_COLUMNS} FROM keys WHERE ns = $1 AND name = $2`,
  lockKey: `SELECT ${KEY_COLUMNS} FROM keys WHERE ns = $1 AND name = $2 FOR UPDATE`,
  listKeys: `SELECT ${KEY_COLUMNS} FROM keys WHERE ns = $1 ORDER BY name COLLATE "C"`,
  updateKey: 'UPDATE keys SET rotation_period_seconds = $1, min_decryption_version = $2 WHERE ns = $3 AND name = $4',
  advanceLatest: 'UPDATE keys SET latest_version = $1 WHERE ns = $2 AND name = $3 AND latest_version = $4',
  keysDueForRotation: `
    SELECT ${KEY_COLUMNS.split(', ').map((c) => `k.${c}`).join(', ')}
    FROM keys k JOIN key_versions v ON v.ns = k.ns AND v.key = k.name AND v.version = k.latest_version
    WHERE k.rotation_period_seconds IS NOT NULL AND v.created + k.rotation_period_seconds * 1000 <= $1
    ORDER BY k.ns COLLATE "C", k.name COLLATE "C"`,

  insertVersion: `INSERT INTO key_versions (ns, key, version, state, wrapped, public_key, created)
                  VALUES ($1, $2, $3, 'enabled', $4, $5, $6)`,
  getVersion: `SELECT ${VERSION_COLUMNS} FROM key_versions WHERE ns = $1 AND key = $2 AND version = $3`,
  listVersions: `SELECT ${VERSION_COLUMNS} FROM key_versions WHERE ns = $1 AND key = $2 ORDER BY version`,
  setVersionState: `UPDATE key_versions SET state = $1, deletion_at = $2
                    WHERE ns = $3 AND key = $4 AND version = $5 AND state = $6`,
  destroyVersion: `UPDATE key_versions SET state = 'destroyed', wrapped = NULL, destroyed_at = $1
                   WHERE ns = $2 AND key = $3 AND version = $4 AND state = 'scheduled_for_deletion'`,
  versionsDueForDestruction: `SELECT ${VERSION_COLUMNS} FROM key_versions
                              WHERE state = 'scheduled_for_deletion' AND deletion_at <= $1
                              ORDER BY deletion_at, ns COLLATE "C", key COLLATE "C", version`,

  insertPrincipal: `INSERT INTO principals (${PRINCIPAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, NULL)`,
  getPrincipal: `SELECT ${PRINCIPAL_COLUMNS} FROM principals WHERE id = $1`,
  getPrincipalByName: 'SELECT id FROM principals WHERE ns = $1 AND name = $2',
  listPrincipals: `SELECT ${PRINCIPAL_COLUMNS} FROM principals WHERE ns = $1 ORDER BY name COLLATE "C"`,
  setPrincipalRoles: 'UPDATE principals SET roles = $1 WHERE id = $2',
  disablePrincipal: 'UPDATE principals SET disabled_at = coalesce(disabled_at, $1) WHERE id = $2',

  insertToken: `INSERT INTO tokens (${TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, NULL, $6)`,
  getTokenByHash: `SELECT ${TOKEN_COLUMNS} FROM tokens WHERE token_hash = $1`,
  getToken: `SELECT ${TOKEN_COLUMNS} FROM tokens WHERE id = $1`,
  listTokens: `SELECT ${TOKEN_COLUMNS} FROM tokens WHERE principal = $1 ORDER BY created, id COLLATE "C"`,
  revokeToken: 'UPDATE tokens SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2',
  revokePrincipalTokens: 'UPDATE tokens SET revoked_at = $1 WHERE principal = $2 AND revoked_at IS NULL',

  insertSigningKey: `INSERT INTO signing_keys (${SIGNING_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, NULL)`,
  getSigningKey: `SELECT ${SIGNING_KEY_COLUMNS} FROM signing_keys WHERE key_id = $1`,
  listSigningKeys: `SELECT ${SIGNING_KEY_COLUMNS} FROM signing_keys WHERE principal = $1 ORDER BY created, key_id COLLATE "C"`,
  revokeSigningKey: 'UPDATE signing_keys SET revoked_at = coalesce(revoked_at, $1) WHERE key_id = $2',

  insertPolicy: `INSERT INTO policies (${POLICY_COLUMNS}) VALUES ($1, $2, $3, $4, $5)`,
  getPolicyVersion: `SELECT ${POLICY_COLUMNS} FROM policies WHERE id = $1 AND version = $2`,
  getPolicyLatest: `SELECT ${POLICY_COLUMNS} FROM policies WHERE id = $1 ORDER BY version DESC LIMIT 1`,
  listPolicies: `SELECT ${POLICY_COLUMNS} FROM policies p
                 WHERE ns = $1 AND version = (SELECT max(version) FROM policies q WHERE q.id = p.id)
                 ORDER BY id COLLATE "C"`,
  listPolicyVersions: `SELECT ${POLICY_COLUMNS} FROM policies WHERE id = $1 ORDER BY version`,

  auditSize: 'SELECT size AS next FROM audit_head WHERE id = 1',
  // The sequencer taken without appending: other appenders (any node) wait until this transaction ends.
  lockAuditHead: 'SELECT size AS next FROM audit_head WHERE id = 1 FOR UPDATE',
  // Takes the next index and keeps the sequencer row locked until the transaction ends.
  reserveAuditIdx: 'UPDATE audit_head SET size = size + 1 WHERE id = 1 RETURNING size - 1 AS idx',
  insertAuditEvent: 'INSERT INTO audit_events (idx, time, event, leaf_hash) VALUES ($1, $2, $3, $4)',
  getAuditEvent: 'SELECT idx, time, event, leaf_hash FROM audit_events WHERE idx = $1',
  readAuditEvents: 'SELECT idx, time, event, leaf_hash FROM audit_events WHERE idx >= $1 AND idx < $2 ORDER BY idx',

  insertCheckpoint: 'INSERT INTO checkpoints (size, root, note, created) VALUES ($1, $2, $3, $4)',
  getCheckpoint: 'SELECT size, root, note, created FROM checkpoints WHERE size = $1',
  latestCheckpoint: 'SELECT size, root, note, created FROM checkpoints ORDER BY size DESC LIMIT 1',

  getMeta: 'SELECT value FROM meta WHERE key = $1',
  setMeta: 'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
} as const;

/** The asynchronous operations over a {@link PgRunner}. */
export class PgOps implements StoreOps {
  readonly #r: PgRunner;
  /** Second factors, lockouts and step-ups (postgres-mfa.ts). */
  readonly #mfa: PgMfaOps;
  /** Approval requests, approvals, governance snapshots (postgres-quorum.ts). */
  readonly #quorum: PgQuorumOps;
  /** The shared replay cache (nonces.ts). */
  readonly #nonces: PgNonceOps;
  /** The directory's log and entities (directory-rows.ts). */
  readonly #dir: PgDirectoryOps;

  constructor(runner: PgRunner) {
    this.#r = runner;
    this.#mfa = new PgMfaOps(runner);
    this.#quorum = new PgQuorumOps(runner);
    this.#nonces = new PgNonceOps(runner);
    this.#dir = new PgDirectoryOps(runner);
  }

  // --- directory (directory-rows.ts) ------------------------------------------------------

  ktLock(...a: Parameters<StoreOps['ktLock']>) { return this.#dir.ktLock(...a); }
  ktTreeSize(...a: Parameters<StoreOps['ktTreeSize']>) { return this.#dir.ktTreeSize(...a); }
  ktLogEntry(...a: Parameters<StoreOps['ktLogEntry']>) { return this.#dir.ktLogEntry(...a); }
  ktLogNode(...a: Parameters<StoreOps['ktLogNode']>) { return this.#dir.ktLogNode(...a); }
  ktPrefixNode(...a: Parameters<StoreOps['ktPrefixNode']>) { return this.#dir.ktPrefixNode(...a); }
  ktVersionCount(...a: Parameters<StoreOps['ktVersionCount']>) { return this.#dir.ktVersionCount(...a); }
  ktLabelVersion(...a: Parameters<StoreOps['ktLabelVersion']>) { return this.#dir.ktLabelVersion(...a); }
  ktAppend(...a: Parameters<StoreOps['ktAppend']>) { return this.#dir.ktAppend(...a); }
  getDirEntity(...a: Parameters<StoreOps['getDirEntity']>) { return this.#dir.getDirEntity(...a); }
  getDirEntityByPrincipal(...a: Parameters<StoreOps['getDirEntityByPrincipal']>) { return this.#dir.getDirEntityByPrincipal(...a); }
  listDirEntities(...a: Parameters<StoreOps['listDirEntities']>) { return this.#dir.listDirEntities(...a); }
  putDirEntity(...a: Parameters<StoreOps['putDirEntity']>) { return this.#dir.putDirEntity(...a); }
  createDirEnrollToken(...a: Parameters<StoreOps['createDirEnrollToken']>) { return this.#dir.createDirEnrollToken(...a); }
  getDirEnrollTokenByHash(...a: Parameters<StoreOps['getDirEnrollTokenByHash']>) { return this.#dir.getDirEnrollTokenByHash(...a); }
  useDirEnrollToken(...a: Parameters<StoreOps['useDirEnrollToken']>) { return this.#dir.useDirEnrollToken(...a); }

  // --- replay cache (nonces.ts) ---------------------------------------------------------

  useNonce(input: NewNonce): Promise<boolean> { return this.#nonces.useNonce(input); }
  releaseNonce(input: { keyId: string; nonce: string }): Promise<void> { return this.#nonces.releaseNonce(input); }
  purgeNonces(now: Date): Promise<number> { return this.#nonces.purgeNonces(now); }

  // --- quorum (postgres-quorum.ts) -------------------------------------------------------

  createApprovalRequest(...a: Parameters<StoreOps['createApprovalRequest']>) { return this.#quorum.createApprovalRequest(...a); }
  getApprovalRequest(...a: Parameters<StoreOps['getApprovalRequest']>) { return this.#quorum.getApprovalRequest(...a); }
  listApprovalRequests(...a: Parameters<StoreOps['listApprovalRequests']>) { return this.#quorum.listApprovalRequests(...a); }
  closeApprovalRequest(...a: Parameters<StoreOps['closeApprovalRequest']>) { return this.#quorum.closeApprovalRequest(...a); }
  addApproval(...a: Parameters<StoreOps['addApproval']>) { return this.#quorum.addApproval(...a); }
  listApprovals(...a: Parameters<StoreOps['listApprovals']>) { return this.#quorum.listApprovals(...a); }
  putGovernanceSnapshot(...a: Parameters<StoreOps['putGovernanceSnapshot']>) { return this.#quorum.putGovernanceSnapshot(...a); }
  latestGovernanceSnapshot(...a: Parameters<StoreOps['latestGovernanceSnapshot']>) { return this.#quorum.latestGovernanceSnapshot(...a); }
  getGovernanceSnapshot(...a: Parameters<StoreOps['getGovernanceSnapshot']>) { return this.#quorum.getGovernanceSnapshot(...a); }

  // --- MFA (postgres-mfa.ts) -----------------------------------------------------------

  addMfaFactor(...a: Parameters<StoreOps['addMfaFactor']>) { return this.#mfa.addMfaFactor(...a); }
  getMfaFactor(...a: Parameters<StoreOps['getMfaFactor']>) { return this.#mfa.getMfaFactor(...a); }
  listMfaFactors(...a: Parameters<StoreOps['listMfaFactors']>) { return this.#mfa.listMfaFactors(...a); }
  updateMfaFactor(...a: Parameters<StoreOps['updateMfaFactor']>) { return this.#mfa.updateMfaFactor(...a); }
  removeMfaFactor(...a: Parameters<StoreOps['removeMfaFactor']>) { return this.#mfa.removeMfaFactor(...a); }
  getMfaLockout(...a: Parameters<StoreOps['getMfaLockout']>) { return this.#mfa.getMfaLockout(...a); }
  setMfaLockout(...a: Parameters<StoreOps['setMfaLockout']>) { return this.#mfa.setMfaLockout(...a); }
  createStepUp(...a: Parameters<StoreOps['createStepUp']>) { return this.#mfa.createStepUp(...a); }
  getStepUp(...a: Parameters<StoreOps['getStepUp']>) { return this.#mfa.getStepUp(...a); }
  markStepUpVerified(...a: Parameters<StoreOps['markStepUpVerified']>) { return this.#mfa.markStepUpVerified(...a); }
  consumeStepUp(...a: Parameters<StoreOps['consumeStepUp']>) { return this.#mfa.consumeStepUp(...a); }

  // --- namespaces ------------------------------------------------------------------

  createNamespace(input: NewNamespace): Promise<NamespaceRow> {
    const n = parseInput(NewNamespaceSchema, input, 'createNamespace');
    return this.#r.write('createNamespace', async (q) => {
      if ((await q(SQL.getNamespace, [n.name])).rowCount !== 0) throw new StoreError('KW_STORE_CONFLICT', `namespace ${n.name} exists`);
      await q(SQL.insertNamespace, [n.name, ms(n.created)]);
      return mustGet(await one(q, NamespaceRowSchema, SQL.getNamespace, [n.name], 'namespaces'), 'namespace');
    });
  }

  getNamespace(name: string): Promise<NamespaceRow | null> {
    const n = parseInput(IdentifierSchema, name, 'namespace name');
    return this.#r.read('getNamespace', (q) => one(q, NamespaceRowSchema, SQL.getNamespace, [n], 'namespaces'));
  }

  listNamespaces(): Promise<NamespaceRow[]> {
    return this.#r.read('listNamespaces', (q) => all(q, NamespaceRowSchema, SQL.listNamespaces, [], 'namespaces'));
  }

  // --- keys ----------------------------------------------------------------------------

  createKey(input: NewKey): Promise<{ key: KeyRow; version: KeyVersionRow }> {
    const k = parseInput(NewKeySchema, input, 'createKey');
    return this.#r.write('createKey', async (q) => {
      await requireNamespace(q, k.ns);
      checkPublicKey(k.type, k.firstVersion.publicKey);
      if ((await q(SQL.getKey, [k.ns, k.name])).rowCount !== 0) throw new StoreError('KW_STORE_CONFLICT', `key ${k.ns}/${k.name} exists`);
      await q(SQL.insertKey, [k.ns, k.name, k.type, ms(k.created), k.rotationPeriodSeconds]);
      await q(SQL.insertVersion, [k.ns, k.name, 1, blob(k.firstVersion.wrapped), blobOrNull(k.firstVersion.publicKey), ms(k.created)]);
      return {
        key: mustGet(await one(q, KeyRowSchema, SQL.getKey, [k.ns, k.name], 'keys'), 'key'),
        version: mustGet(await one(q, KeyVersionRowSchema, SQL.getVersion, [k.ns, k.name, 1], 'key_versions'), 'key version'),
      };
    });
  }

  getKey(ns: string, name: string): Promise<KeyRow | null> {
    const [n, k] = [parseInput(IdentifierSchema, ns, 'namespace'), parseInput(IdentifierSchema, name, 'key name')];
    return this.#r.read('getKey', (q) => one(q, KeyRowSchema, SQL.getKey, [n, k], 'keys'));
  }

  listKeys(ns: string): Promise<KeyRow[]> {
    const n = parseInput(IdentifierSchema, ns, 'namespace');
    return this.#r.read('listKeys', (q) => all(q, KeyRowSchema, SQL.listKeys, [n], 'keys'));
  }

  updateKey(ns: string, name: string, patch: KeyPatch): Promise<KeyRow> {
    const p = parseInput(KeyPatchSchema, patch, 'updateKey');
    const [n, k] = [parseInput(IdentifierSchema, ns, 'namespace'), parseInput(IdentifierSchema, name, 'key name')];
    return this.#r.write('updateKey', async (q) => {
      const key = await lockKey(q, n, k);
      const rotation = p.rotationPeriodSeconds === undefined ? key.rotationPeriodSeconds : p.rotationPeriodSeconds;
      const minDecryption = p.minDecryptionVersion ?? key.minDecryptionVersion;
      if (minDecryption > key.latestVersion) {
        throw new StoreError(
          'KW_STORE_INVALID_ARGUMENT',
          `minDecryptionVersion ${minDecryption} exceeds latest version ${key.latestVersion} of ${key.ns}/${key.name}`,
        );
      }
      await q(SQL.updateKey, [rotation, minDecryption, key.ns, key.name]);
      return mustGet(await one(q, KeyRowSchema, SQL.getKey, [key.ns, key.name], 'keys'), 'key');
    });
  }

  listKeysDueForRotation(now: Date): Promise<KeyRow[]> {
    const t = parseInput(TimeSchema, now, 'now');
    return this.#r.read('listKeysDueForRotation', (q) => all(q, KeyRowSchema, SQL.keysDueForRotation, [ms(t)], 'keys'));
  }

  // --- key versions ----------------------------------------------------------------------

  rotateKey(input: RotateKey): Promise<KeyVersionRow> {
    const r = parseInput(RotateKeySchema, input, 'rotateKey');
    return this.#r.write('rotateKey', async (q) => {
      // The row lock orders concurrent rotations of this key; the second one reads the first's latest_version.
      const key = await lockKey(q, r.ns, r.key);
      checkPublicKey(key.type, r.publicKey);
      const next = key.latestVersion + 1;
      if (r.version !== undefined && r.version !== next) {
        throw new StoreError(
          'KW_STORE_CONFLICT',
          `version ${r.version} of ${key.ns}/${key.name} is not the next one (latest is ${key.latestVersion})`,
        );
      }
      const moved = await q(SQL.advanceLatest, [next, key.ns, key.name, key.latestVersion]);
      if (moved.rowCount !== 1) throw new StoreError('KW_STORE_CONFLICT', `${key.ns}/${key.name} was rotated concurrently; re-read and retry`);
      await q(SQL.insertVersion, [key.ns, key.name, next, blob(r.wrapped), blobOrNull(r.publicKey), ms(r.created)]);
      return mustGet(await one(q, KeyVersionRowSchema, SQL.getVersion, [key.ns, key.name, next], 'key_versions'), 'key version');
    });
  }

  getKeyVersion(ns: string, key: string, version: number): Promise<KeyVersionRow | null> {
    const ref = parseInput(KeyVersionRefSchema, { ns, key, version }, 'key version');
    return this.#r.read('getKeyVersion', (q) => one(q, KeyVersionRowSchema, SQL.getVersion, [ref.ns, ref.key, ref.version], 'key_versions'));
  }

  listKeyVersions(ns: string, key: string): Promise<KeyVersionRow[]> {
    const [n, k] = [parseInput(IdentifierSchema, ns, 'namespace'), parseInput(IdentifierSchema, key, 'key name')];
    return this.#r.read('listKeyVersions', (q) => all(q, KeyVersionRowSchema, SQL.listVersions, [n, k], 'key_versions'));
  }

  setKeyVersionState(ref: KeyVersionRef, change: KeyVersionStateChange): Promise<KeyVersionRow> {
    const c = parseInput(KeyVersionStateChangeSchema, change, 'state change');
    const r = parseInput(KeyVersionRefSchema, ref, 'key version');
    return this.#r.write('setKeyVersionState', async (q) => {
      const current = await requireVersion(q, r);
      checkTransition(current, c.state);
      const deletionAt = c.state === 'scheduled_for_deletion' ? ms(c.deletionAt) : null;
      const res = await q(SQL.setVersionState, [c.state, deletionAt, current.ns, current.key, current.version, current.state]);
      if (res.rowCount !== 1) throw concurrentChange(current);
      return mustGet(await one(q, KeyVersionRowSchema, SQL.getVersion, [current.ns, current.key, current.version], 'key_versions'), 'key version');
    });
  }

  destroyKeyVersion(ref: KeyVersionRef, destroyedAt: Date): Promise<KeyVersionRow> {
    const at = parseInput(TimeSchema, destroyedAt, 'destroyedAt');
    const r = parseInput(KeyVersionRefSchema, ref, 'key version');
    return this.#r.write('destroyKeyVersion', async (q) => {
      const current = await requireVersion(q, r);
      checkTransition(current, 'destroyed');
      const res = await q(SQL.destroyVersion, [ms(at), current.ns, current.key, current.version]);
      if (res.rowCount !== 1) throw concurrentChange(current);
      return mustGet(await one(q, KeyVersionRowSchema, SQL.getVersion, [current.ns, current.key, current.version], 'key_versions'), 'key version');
    });
  }

  listVersionsDueForDestruction(now: Date): Promise<KeyVersionRow[]> {
    const t = parseInput(TimeSchema, now, 'now');
    return this.#r.read('listVersionsDueForDestruction', (q) => all(q, KeyVersionRowSchema, SQL.versionsDueForDestruction, [ms(t)], 'key_versions'));
  }

  // --- principals ------------------------------------------------------------------------

  createPrincipal(input: NewPrincipal): Promise<PrincipalRow> {
    const p = parseInput(NewPrincipalSchema, input, 'createPrincipal');
    return this.#r.write('createPrincipal', async (q) => {
      await requireNamespace(q, p.ns);
      if ((await q(SQL.getPrincipal, [p.id])).rowCount !== 0) throw new StoreError('KW_STORE_CONFLICT', `principal id ${p.id} exists`);
      if ((await q(SQL.getPrincipalByName, [p.ns, p.name])).rowCount !== 0) {
        throw new StoreError('KW_STORE_CONFLICT', `a principal named ${JSON.stringify(p.name)} exists in ${p.ns}`);
      }
      await q(SQL.insertPrincipal, [p.id, p.ns, p.kind, p.name, JSON.stringify(p.roles), ms(p.created)]);
      return mustGet(await one(q, PrincipalRowSchema, SQL.getPrincipal, [p.id], 'principals'), 'principal');
    });
  }

  getPrincipal(id: string): Promise<PrincipalRow | null> {
    const i = parseInput(IdentifierSchema, id, 'principal id');
    return this.#r.read('getPrincipal', (q) => one(q, PrincipalRowSchema, SQL.getPrincipal, [i], 'principals'));
  }

  listPrincipals(ns: string): Promise<PrincipalRow[]> {
    const n = parseInput(IdentifierSchema, ns, 'namespace');
    return this.#r.read('listPrincipals', (q) => all(q, PrincipalRowSchema, SQL.listPrincipals, [n], 'principals'));
  }

  setPrincipalRoles(id: string, roles: readonly string[]): Promise<PrincipalRow> {
    const i = parseInput(IdentifierSchema, id, 'principal id');
    const r = parseInput(RolesSchema, roles, 'roles');
    return this.#r.write('setPrincipalRoles', async (q) => {
      if ((await q(SQL.setPrincipalRoles, [JSON.stringify(r), i])).rowCount !== 1) {
        throw new StoreError('KW_STORE_NOT_FOUND', `principal ${i} does not exist`);
      }
      return mustGet(await one(q, PrincipalRowSchema, SQL.getPrincipal, [i], 'principals'), 'principal');
    });
  }

  disablePrincipal(id: string, disabledAt: Date): Promise<PrincipalRow> {
    const i = parseInput(IdentifierSchema, id, 'principal id');
    const at = parseInput(TimeSchema, disabledAt, 'disabledAt');
    return this.#r.write('disablePrincipal', async (q) => {
      if ((await q(SQL.disablePrincipal, [ms(at), i])).rowCount !== 1) throw new StoreError('KW_STORE_NOT_FOUND', `principal ${i} does not exist`);
      return mustGet(await one(q, PrincipalRowSchema, SQL.getPrincipal, [i], 'principals'), 'principal');
    });
  }

  // --- tokens ----------------------------------------------------------------------------

  createToken(input: NewToken): Promise<TokenRow> {
    const t = parseInput(NewTokenSchema, input, 'createToken');
    return this.#r.write('createToken', async (q) => {
      await requirePrincipal(q, t.principal);
      if ((await q(SQL.getToken, [t.id])).rowCount !== 0) throw new StoreError('KW_STORE_CONFLICT', `token id ${t.id} exists`);
      if ((await q(SQL.getTokenByHash, [t.tokenHash])).rowCount !== 0) throw new StoreError('KW_STORE_CONFLICT', 'a token with this hash exists');
      await q(SQL.insertToken, [t.id, t.tokenHash, t.principal, t.admin ? 1 : 0, ms(t.expiresAt), ms(t.created)]);
      return mustGet(await one(q, TokenRowSchema, SQL.getToken, [t.id], 'tokens'), 'token');
    });
  }

  getTokenByHash(tokenHash: string): Promise<TokenRow | null> {
    const h = parseInput(TokenHashSchema, tokenHash, 'token hash');
    return this.#r.read('getTokenByHash', (q) => one(q, TokenRowSchema, SQL.getTokenByHash, [h], 'tokens'));
  }

  getToken(id: string): Promise<TokenRow | null> {
    const i = parseInput(IdentifierSchema, id, 'token id');
    return this.#r.read('getToken', (q) => one(q, TokenRowSchema, SQL.getToken, [i], 'tokens'));
  }

  listTokens(principal: string): Promise<TokenRow[]> {
    const p = parseInput(IdentifierSchema, principal, 'principal id');
    return this.#r.read('listTokens', (q) => all(q, TokenRowSchema, SQL.listTokens, [p], 'tokens'));
  }

  revokeToken(id: string, revokedAt: Date): Promise<TokenRow> {
    const i = parseInput(IdentifierSchema, id, 'token id');
    const at = parseInput(TimeSchema, revokedAt, 'revokedAt');
    return this.#r.write('revokeToken', async (q) => {
      if ((await q(SQL.revokeToken, [ms(at), i])).rowCount !== 1) throw new StoreError('KW_STORE_NOT_FOUND', `token ${i} does not exist`);
      return mustGet(await one(q, TokenRowSchema, SQL.getToken, [i], 'tokens'), 'token');
    });
  }

  revokePrincipalTokens(principal: string, revokedAt: Date): Promise<number> {
    const p = parseInput(IdentifierSchema, principal, 'principal id');
    const at = parseInput(TimeSchema, revokedAt, 'revokedAt');
    return this.#r.write('revokePrincipalTokens', async (q) => {
      await requirePrincipal(q, p);
      return (await q(SQL.revokePrincipalTokens, [ms(at), p])).rowCount;
    });
  }

  // --- signing keys ------------------------------------------------------------------------

  addSigningKey(input: NewSigningKey): Promise<SigningKeyRow> {
    const k = parseInput(NewSigningKeySchema, input, 'addSigningKey');
    return this.#r.write('addSigningKey', async (q) => {
      await requirePrincipal(q, k.principal);
      if ((await q(SQL.getSigningKey, [k.keyId])).rowCount !== 0) throw new StoreError('KW_STORE_CONFLICT', `signing key ${k.keyId} exists`);
      await q(SQL.insertSigningKey, [k.keyId, k.principal, k.alg, blob(k.publicKey), ms(k.created)]);
      return mustGet(await one(q, SigningKeyRowSchema, SQL.getSigningKey, [k.keyId], 'signing_keys'), 'signing key');
    });
  }

  getSigningKey(keyId: string): Promise<SigningKeyRow | null> {
    const i = parseInput(IdentifierSchema, keyId, 'key id');
    return this.#r.read('getSigningKey', (q) => one(q, SigningKeyRowSchema, SQL.getSigningKey, [i], 'signing_keys'));
  }

  listSigningKeys(principal: string): Promise<SigningKeyRow[]> {
    const p = parseInput(IdentifierSchema, principal, 'principal id');
    return this.#r.read('listSigningKeys', (q) => all(q, SigningKeyRowSchema, SQL.listSigningKeys, [p], 'signing_keys'));
  }

  revokeSigningKey(keyId: string, revokedAt: Date): Promise<SigningKeyRow> {
    const i = parseInput(IdentifierSchema, keyId, 'key id');
    const at = parseInput(TimeSchema, revokedAt, 'revokedAt');
    return this.#r.write('revokeSigningKey', async (q) => {
      if ((await q(SQL.revokeSigningKey, [ms(at), i])).rowCount !== 1) throw new StoreError('KW_STORE_NOT_FOUND', `signing key ${i} does not exist`);
      return mustGet(await one(q, SigningKeyRowSchema, SQL.getSigningKey, [i], 'signing_keys'), 'signing key');
    });
  }

  // --- policies ----------------------------------------------------------------------------

  putPolicy(input: NewPolicyVersion): Promise<PolicyRow> {
    const p = parseInput(NewPolicyVersionSchema, input, 'putPolicy');
    return this.#r.write('putPolicy', async (q) => {
      await requireNamespace(q, p.ns);
      const latest = await one(q, PolicyRowSchema, SQL.getPolicyLatest, [p.id], 'policies');
      if (latest !== null && latest.ns !== p.ns) throw new StoreError('KW_STORE_CONFLICT', `policy ${p.id} belongs to namespace ${latest.ns}`);
      const next = (latest?.version ?? 0) + 1;
      if (p.version !== next) {
        throw new StoreError(
          'KW_STORE_CONFLICT',
          `version ${p.version} of policy ${p.id} is not the next one (latest is ${latest?.version ?? 'none'})`,
        );
      }
      // A concurrent writer of the same version loses on the primary key (unique violation: KW_STORE_CONFLICT).
      await q(SQL.insertPolicy, [p.id, p.ns, p.version, JSON.stringify(p.document), ms(p.created)]);
      return mustGet(await one(q, PolicyRowSchema, SQL.getPolicyVersion, [p.id, p.version], 'policies'), 'policy');
    });
  }

  getPolicy(id: string, version?: number): Promise<PolicyRow | null> {
    const i = parseInput(IdentifierSchema, id, 'policy id');
    if (version === undefined) return this.#r.read('getPolicy', (q) => one(q, PolicyRowSchema, SQL.getPolicyLatest, [i], 'policies'));
    const v = parseInput(VersionSchema, version, 'policy version');
    return this.#r.read('getPolicy', (q) => one(q, PolicyRowSchema, SQL.getPolicyVersion, [i, v], 'policies'));
  }

  listPolicies(ns: string): Promise<PolicyRow[]> {
    const n = parseInput(IdentifierSchema, ns, 'namespace');
    return this.#r.read('listPolicies', (q) => all(q, PolicyRowSchema, SQL.listPolicies, [n], 'policies'));
  }

  listPolicyVersions(id: string): Promise<PolicyRow[]> {
    const i = parseInput(IdentifierSchema, id, 'policy id');
    return this.#r.read('listPolicyVersions', (q) => all(q, PolicyRowSchema, SQL.listPolicyVersions, [i], 'policies'));
  }

  // --- audit -----------------------------------------------------------------------------------

  appendAuditEvent(input: NewAuditEvent): Promise<number> {
    const e = parseInput(NewAuditEventSchema, input, 'appendAuditEvent');
    return this.#r.write('appendAuditEvent', async (q) => {
      const res = await q(SQL.reserveAuditIdx);
      const next = parseRow(IdxRowSchema, res.rows[0], 'audit_head').idx;
      if (e.expectedIdx !== undefined && e.expectedIdx !== next) {
        // Thrown inside the write: the reservation is rolled back with it.
        throw new StoreError('KW_STORE_CONFLICT', `the next audit index is ${next}, not ${e.expectedIdx}`);
      }
      await q(SQL.insertAuditEvent, [next, ms(e.time), e.event, blob(e.leafHash)]);
      return next;
    });
  }

  getAuditEvent(idx: number): Promise<AuditEventRow | null> {
    const i = parseInput(IndexSchema, idx, 'audit index');
    return this.#r.read('getAuditEvent', (q) => one(q, AuditEventRowSchema, SQL.getAuditEvent, [i], 'audit_events'));
  }

  readAuditEvents(range: AuditRange): Promise<AuditEventRow[]> {
    const r = parseInput(AuditRangeSchema, range, 'audit range');
    return this.#r.read('readAuditEvents', async (q) => {
      const rows = await all(q, AuditEventRowSchema, SQL.readAuditEvents, [r.start, r.end], 'audit_events');
      // Gapless by construction and by trigger; a hole here means the database was edited.
      rows.forEach((row, i) => {
        if (row.idx !== r.start + i) throw new StoreError('KW_STORE_CORRUPT_ROW', `audit_events: index ${r.start + i} is missing`);
      });
      return rows;
    });
  }

  auditSize(): Promise<number> {
    return this.#r.read('auditSize', (q) => auditSize(q));
  }

  lockAuditHead(): Promise<number> {
    return this.#r.write('lockAuditHead', async (q) => {
      const res = await q(SQL.lockAuditHead);
      if (res.rowCount !== 1) throw new StoreError('KW_STORE_CORRUPT_DATABASE', 'audit_head: the sequencer row is missing');
      return parseRow(NextIdxRowSchema, res.rows[0], 'audit_head').next;
    });
  }

  addAuditCheckpoint(input: NewAuditCheckpoint): Promise<AuditCheckpointRow> {
    const c = parseInput(NewAuditCheckpointSchema, input, 'addAuditCheckpoint');
    return this.#r.write('addAuditCheckpoint', async (q) => {
      const size = await auditSize(q);
      if (c.size > size) throw new StoreError('KW_STORE_INVALID_ARGUMENT', `checkpoint size ${c.size} exceeds the ${size} stored audit events`);
      if ((await q(SQL.getCheckpoint, [c.size])).rowCount !== 0) throw new StoreError('KW_STORE_CONFLICT', `a checkpoint of size ${c.size} exists`);
      await q(SQL.insertCheckpoint, [c.size, blob(c.root), c.note, ms(c.created)]);
      return mustGet(await one(q, AuditCheckpointRowSchema, SQL.getCheckpoint, [c.size], 'checkpoints'), 'checkpoint');
    });
  }

  latestAuditCheckpoint(): Promise<AuditCheckpointRow | null> {
    return this.#r.read('latestAuditCheckpoint', (q) => one(q, AuditCheckpointRowSchema, SQL.latestCheckpoint, [], 'checkpoints'));
  }

  getAuditCheckpoint(size: number): Promise<AuditCheckpointRow | null> {
    const s = parseInput(IndexSchema, size, 'checkpoint size');
    return this.#r.read('getAuditCheckpoint', (q) => one(q, AuditCheckpointRowSchema, SQL.getCheckpoint, [s], 'checkpoints'));
  }

  // --- meta --------------------------------------------------------------------------------------

  getMeta(key: string): Promise<string | null> {
    const k = parseInput(IdentifierSchema, key, 'meta key');
    return this.#r.read('getMeta', async (q) => {
      const res = await q(SQL.getMeta, [k]);
      return res.rowCount === 0 ? null : parseRow(MetaRowSchema, res.rows[0], 'meta').value;
    });
  }

  setMeta(key: string, value: string): Promise<void> {
    const k = parseInput(IdentifierSchema, key, 'meta key');
    const v = parseInput(MetaValueSchema, value, 'meta value');
    if (RESERVED_META_KEYS.has(k)) throw new StoreError('KW_STORE_INVALID_ARGUMENT', `meta key ${k} is reserved to the store`);
    return this.#r.write('setMeta', async (q) => {
      await q(SQL.setMeta, [k, v]);
    });
  }
}

// --- helpers -------------------------------------------------------------------------------------

async function one<S extends z.ZodType>(q: PgQuery, schema: S, sql: string, values: readonly unknown[], table: string): Promise<z.output<S> | null> {
  const res = await q(sql, values);
  return res.rowCount === 0 ? null : parseRow(schema, res.rows[0], table);
}

async function all<S extends z.ZodType>(q: PgQuery, schema: S, sql: string, values: readonly unknown[], table: string): Promise<z.output<S>[]> {
  const res = await q(sql, values);
  return res.rows.map((row) => parseRow(schema, row, table));
}

async function auditSize(q: PgQuery): Promise<number> {
  const res = await q(SQL.auditSize);
  if (res.rowCount !== 1) throw new StoreError('KW_STORE_CORRUPT_DATABASE', 'audit_head: the sequencer row is missing');
  return parseRow(NextIdxRowSchema, res.rows[0], 'audit_head').next;
}

/** A row this operation just wrote must be readable; if not, the database misbehaves. */
function mustGet<T>(row: T | null, what: string): T {
  if (row === null) throw new StoreError('KW_STORE_IO', `the ${what} just written cannot be read back`);
  return row;
}

async function requireNamespace(q: PgQuery, ns: string): Promise<void> {
  if ((await q(SQL.getNamespace, [ns])).rowCount === 0) throw new StoreError('KW_STORE_NOT_FOUND', `namespace ${ns} does not exist`);
}

async function requirePrincipal(q: PgQuery, id: string): Promise<void> {
  if ((await q(SQL.getPrincipal, [id])).rowCount === 0) throw new StoreError('KW_STORE_NOT_FOUND', `principal ${id} does not exist`);
}

async function lockKey(q: PgQuery, ns: string, name: string): Promise<KeyRow> {
  const [n, k] = [parseInput(IdentifierSchema, ns, 'namespace'), parseInput(IdentifierSchema, name, 'key name')];
  const key = await one(q, KeyRowSchema, SQL.lockKey, [n, k], 'keys');
  if (key === null) throw new StoreError('KW_STORE_NOT_FOUND', `key ${n}/${k} does not exist`);
  return key;
}

async function requireVersion(q: PgQuery, r: { ns: string; key: string; version: number }): Promise<KeyVersionRow> {
  const v = await one(q, KeyVersionRowSchema, SQL.getVersion, [r.ns, r.key, r.version], 'key_versions');
  if (v === null) throw new StoreError('KW_STORE_NOT_FOUND', `key version ${r.ns}/${r.key}/v${r.version} does not exist`);
  return v;
}

function checkTransition(v: KeyVersionRow, to: KeyVersionState): void {
  if (!isAllowedTransition(v.state, to)) {
    throw new StoreError('KW_STORE_INVALID_TRANSITION', `key version ${v.ns}/${v.key}/v${v.version} cannot go from ${v.state} to ${to}`);
  }
}

/** A public key goes with the asymmetric key types and only with them. */
function checkPublicKey(type: KeyType, publicKey: Uint8Array | null): void {
  const asymmetric = ASYMMETRIC_KEY_TYPES.has(type);
  if (asymmetric && publicKey === null) throw new StoreError('KW_STORE_INVALID_ARGUMENT', `a ${type} key version needs its public key`);
  if (!asymmetric && publicKey !== null) throw new StoreError('KW_STORE_INVALID_ARGUMENT', `a ${type} key version has no public key`);
}

function concurrentChange(v: KeyVersionRow): StoreError {
  return new StoreError('KW_STORE_CONFLICT', `key version ${v.ns}/${v.key}/v${v.version} changed concurrently; re-read and retry`);
}
