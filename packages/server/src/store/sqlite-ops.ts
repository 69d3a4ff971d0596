/**
 * The SQL of the SQLite store: every `StoreOps` operation as a synchronous
 * method over prepared statements. `sqlite.ts` wraps each call in a transaction
 * (or a savepoint inside `transaction(fn)`), serialises callers and makes it
 * async; this file only reads and writes rows.
 *
 * Each write checks its preconditions first so the caller gets a precise,
 * typed error; the schema's constraints and triggers stay as the backstop.
 * Every row read is validated by its zod schema before it is returned.
 */
import type { Database, Statement } from 'better-sqlite3';
import { StoreError } from './errors.js';
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
import { z } from 'zod';
import { MFA_OP_KINDS } from './mfa-types.js';
import { SqliteMfaOps } from './sqlite-mfa.js';
import { QUORUM_OP_KINDS } from './quorum-types.js';
import { SqliteQuorumOps } from './sqlite-quorum.js';
import { NONCE_OP_KINDS, SqliteNonceOps, type NewNonce } from './nonces.js';
import { DIRECTORY_OP_KINDS, SqliteDirectoryOps } from './directory-rows.js';
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

/** `StoreOps` with every method synchronous. */
export type SyncStoreOps = {
  [K in keyof StoreOps]: StoreOps[K] extends (...args: infer A) => Promise<infer R> ? (...args: A) => R : never;
};

/** Whether an operation writes: writes take the write lock up front (BEGIN IMMEDIATE). */
export const OP_KINDS = {
  createNamespace: 'write',
  getNamespace: 'read',
  listNamespaces: 'read',
  createKey: 'write',
  getKey: 'read',
  listKeys: 'read',
  updateKey: 'write',
  listKeysDueForRotation: 'read',
  rotateKey: 'write',
  getKeyVersion: 'read',
  listKeyVersions: 'read',
  setKeyVersionState: 'write',
  destroyKeyVersion: 'write',
  listVersionsDueForDestruction: 'read',
  createPrincipal: 'write',
  getPrincipal: 'read',
  listPrincipals: 'read',
  setPrincipalRoles: 'write',
  disablePrincipal: 'write',
  createToken: 'write',
  getTokenByHash: 'read',
  getToken: 'read',
  listTokens: 'read',
  revokeToken: 'write',
  revokePrincipalTokens: 'write',
  addSigningKey: 'write',
  getSigningKey: 'read',
  listSigningKeys: 'read',
  revokeSigningKey: 'write',
  putPolicy: 'write',
  getPolicy: 'read',
  listPolicies: 'read',
  listPolicyVersions: 'read',
  appendAuditEvent: 'write',
  getAuditEvent: 'read',
  readAuditEvents: 'read',
  auditSize: 'read',
  lockAuditHead: 'write',
  addAuditCheckpoint: 'write',
  latestAuditCheckpoint: 'read',
  getAuditCheckpoint: 'read',
  getMeta: 'read',
  setMeta: 'write',
  ...MFA_OP_KINDS,
  ...QUORUM_OP_KINDS,
  ...NONCE_OP_KINDS,
  ...DIRECTORY_OP_KINDS,
} as const satisfies Record<keyof StoreOps, 'read' | 'write'>;

/** Meta keys only the store writes. */
const RESERVED_META_KEYS: ReadonlySet<string> = new Set(['schema_version']);

const IndexSchema = z.number().int().min(0);

const ms = (d: Date): number => d.getTime();
const blob = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const blobOrNull = (b: Uint8Array | null): Buffer | null => (b === null ? null : blob(b));

const KEY_COLUMNS = 'ns, name, type, created, rotation_period_seconds, min_decryption_version, exportable, latest_version';
const VERSION_COLUMNS = 'ns, key, version, state, wrapped, public_key, created, deletion_at, destroyed_at';
const PRINCIPAL_COLUMNS = 'id, ns, kind, name, roles, created, disabled_at';
const TOKEN_COLUMNS = 'id, token_hash, principal, admin, expires_at, revoked_at, created';
const SIGNING_KEY_COLUMNS = 'key_id, principal, alg, public_key, created, revoked_at';
const POLICY_COLUMNS = 'id, ns, version, document, created';

/** The prepared statements, compiled once per connection. */
function prepareStatements(db: Database) {
  const s = <P extends unknown[] = unknown[]>(sql: string): Statement<P> => db.prepare<P>(sql);
  return {
    insertNamespace: s('INSERT INTO namespaces (name, created) VALUES (?, ?)'),
    getNamespace: s('SELECT name, created FROM namespaces WHERE name = ?'),
    listNamespaces: s('SELECT name, created FROM namespaces ORDER BY name'),

    insertKey: s(`INSERT INTO keys (${KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, 1, 0, 1)`),
    getKey: s(`SELECT ${KEY_COLUMNS} FROM keys WHERE ns = ? AND name = ?`),
    listKeys: s(`SELECT ${KEY_COLUMNS} FROM keys WHERE ns = ? ORDER BY name`),
    updateKey: s('UPDATE keys SET rotation_period_seconds = ?, min_decryption_version = ? WHERE ns = ? AND name = ?'),
    // The conditional update that makes rotation atomic: it succeeds only while
    // latest_version is still the one the new number was computed from.
    advanceLatest: s('UPDATE keys SET latest_version = ? WHERE ns = ? AND name = ? AND latest_version = ?'),
    keysDueForRotation: s(`
      SELECT ${KEY_COLUMNS.split(', ').map((c) => `k.${c}`).join(', ')}
      FROM keys k JOIN key_versions v ON v.ns = k.ns AND v.key = k.name AND v.version = k.latest_version
      WHERE k.rotation_period_seconds IS NOT NULL AND v.created + k.rotation_period_seconds * 1000 <= ?
      ORDER BY k.ns, k.name`),

    insertVersion: s(`INSERT INTO key_versions (ns, key, version, state, wrapped, public_key, created)
                      VALUES (?, ?, ?, 'enabled', ?, ?, ?)`),
    getVersion: s(`SELECT ${VERSION_COLUMNS} FROM key_versions WHERE ns = ? AND key = ? AND version = ?`),
    listVersions: s(`SELECT ${VERSION_COLUMNS} FROM key_versions WHERE ns = ? AND key = ? ORDER BY version`),
    // Compare-and-set on the state read just before, so a concurrent change is a conflict, not a lost update.
    setVersionState: s(`UPDATE key_versions SET state = ?, deletion_at = ?
                        WHERE ns = ? AND key = ? AND version = ? AND state = ?`),
    destroyVersion: s(`UPDATE key_versions SET state = 'destroyed', wrapped = NULL, destroyed_at = ?
                       WHERE ns = ? AND key = ? AND version = ? AND state = 'scheduled_for_deletion'`),
    versionsDueForDestruction: s(`SELECT ${VERSION_COLUMNS} FROM key_versions
                                  WHERE state = 'scheduled_for_deletion' AND deletion_at <= ?
                                  ORDER BY deletion_at, ns, key, version`),

    insertPrincipal: s(`INSERT INTO principals (${PRINCIPAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL)`),
    getPrincipal: s(`SELECT ${PRINCIPAL_COLUMNS} FROM principals WHERE id = ?`),
    getPrincipalByName: s('SELECT id FROM principals WHERE ns = ? AND name = ?'),
    listPrincipals: s(`SELECT ${PRINCIPAL_COLUMNS} FROM principals WHERE ns = ? ORDER BY name`),
    setPrincipalRoles: s('UPDATE principals SET roles = ? WHERE id = ?'),
    disablePrincipal: s('UPDATE principals SET disabled_at = coalesce(disabled_at, ?) WHERE id = ?'),

    insertToken: s(`INSERT INTO tokens (${TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL, ?)`),
    getTokenByHash: s(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE token_hash = ?`),
    getToken: s(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE id = ?`),
    listTokens: s(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE principal = ? ORDER BY created, id`),
    revokeToken: s('UPDATE tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?'),
    revokePrincipalTokens: s('UPDATE tokens SET revoked_at = ? WHERE principal = ? AND revoked_at IS NULL'),

    insertSigningKey: s(`INSERT INTO signing_keys (${SIGNING_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL)`),
    getSigningKey: s(`SELECT ${SIGNING_KEY_COLUMNS} FROM signing_keys WHERE key_id = ?`),
    listSigningKeys: s(`SELECT ${SIGNING_KEY_COLUMNS} FROM signing_keys WHERE principal = ? ORDER BY created, key_id`),
    revokeSigningKey: s('UPDATE signing_keys SET revoked_at = coalesce(revoked_at, ?) WHERE key_id = ?'),

    insertPolicy: s(`INSERT INTO policies (${POLICY_COLUMNS}) VALUES (?, ?, ?, ?, ?)`),
    getPolicyVersion: s(`SELECT ${POLICY_COLUMNS} FROM policies WHERE id = ? AND version = ?`),
    getPolicyLatest: s(`SELECT ${POLICY_COLUMNS} FROM policies WHERE id = ? ORDER BY version DESC LIMIT 1`),
    listPolicies: s(`SELECT ${POLICY_COLUMNS} FROM policies p
                     WHERE ns = ? AND version = (SELECT max(version) FROM policies q WHERE q.id = p.id)
                     ORDER BY id`),
    listPolicyVersions: s(`SELECT ${POLICY_COLUMNS} FROM policies WHERE id = ? ORDER BY version`),

    nextAuditIdx: s('SELECT coalesce(max(idx) + 1, 0) AS next FROM audit_events'),
    insertAuditEvent: s('INSERT INTO audit_events (idx, time, event, leaf_hash) VALUES (?, ?, ?, ?)'),
    getAuditEvent: s('SELECT idx, time, event, leaf_hash FROM audit_events WHERE idx = ?'),
    readAuditEvents: s('SELECT idx, time, event, leaf_hash FROM audit_events WHERE idx >= ? AND idx < ? ORDER BY idx'),

    insertCheckpoint: s('INSERT INTO checkpoints (size, root, note, created) VALUES (?, ?, ?, ?)'),
    getCheckpoint: s('SELECT size, root, note, created FROM checkpoints WHERE size = ?'),
    latestCheckpoint: s('SELECT size, root, note, created FROM checkpoints ORDER BY size DESC LIMIT 1'),

    getMeta: s('SELECT value FROM meta WHERE key = ?'),
    setMeta: s('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/** The synchronous operations over one better-sqlite3 connection. */
/** Row shapes checked on hot paths, built once (zod compiles each schema object the first time it parses). */
const NextIdxRowSchema = z.object({ next: IndexSchema });
const MetaRowSchema = z.object({ value: MetaValueSchema });

export class SqliteOps implements SyncStoreOps {
  readonly #st: Statements;
  /** Called after a blob is destroyed, so the store can truncate the WAL once the change commits. */
  readonly #onDestroy: () => void;
  /** Second factors, lockouts and step-ups (sqlite-mfa.ts). */
  readonly #mfa: SqliteMfaOps;
  /** Approval requests, approvals, governance snapshots (sqlite-quorum.ts). */
  readonly #quorum: SqliteQuorumOps;
  /** The shared replay cache (nonces.ts). */
  readonly #nonces: SqliteNonceOps;
  /** The directory's log and entities (directory-rows.ts). */
  readonly #dir: SqliteDirectoryOps;

  constructor(db: Database, onDestroy: () => void) {
    this.#st = prepareStatements(db);
    this.#onDestroy = onDestroy;
    this.#mfa = new SqliteMfaOps(db);
    this.#quorum = new SqliteQuorumOps(db);
    this.#nonces = new SqliteNonceOps(db);
    this.#dir = new SqliteDirectoryOps(db);
  }

  // --- directory (directory-rows.ts) ------------------------------------------------------

  ktLock(...a: Parameters<SyncStoreOps['ktLock']>) { return this.#dir.ktLock(...a); }
  ktTreeSize(...a: Parameters<SyncStoreOps['ktTreeSize']>) { return this.#dir.ktTreeSize(...a); }
  ktLogEntry(...a: Parameters<SyncStoreOps['ktLogEntry']>) { return this.#dir.ktLogEntry(...a); }
  ktLogNode(...a: Parameters<SyncStoreOps['ktLogNode']>) { return this.#dir.ktLogNode(...a); }
  ktPrefixNode(...a: Parameters<SyncStoreOps['ktPrefixNode']>) { return this.#dir.ktPrefixNode(...a); }
  ktVersionCount(...a: Parameters<SyncStoreOps['ktVersionCount']>) { return this.#dir.ktVersionCount(...a); }
  ktLabelVersion(...a: Parameters<SyncStoreOps['ktLabelVersion']>) { return this.#dir.ktLabelVersion(...a); }
  ktAppend(...a: Parameters<SyncStoreOps['ktAppend']>) { return this.#dir.ktAppend(...a); }
  getDirEntity(...a: Parameters<SyncStoreOps['getDirEntity']>) { return this.#dir.getDirEntity(...a); }
  getDirEntityByPrincipal(...a: Parameters<SyncStoreOps['getDirEntityByPrincipal']>) { return this.#dir.getDirEntityByPrincipal(...a); }
  listDirEntities(...a: Parameters<SyncStoreOps['listDirEntities']>) { return this.#dir.listDirEntities(...a); }
  putDirEntity(...a: Parameters<SyncStoreOps['putDirEntity']>) { return this.#dir.putDirEntity(...a); }
  createDirEnrollToken(...a: Parameters<SyncStoreOps['createDirEnrollToken']>) { return this.#dir.createDirEnrollToken(...a); }
  getDirEnrollTokenByHash(...a: Parameters<SyncStoreOps['getDirEnrollTokenByHash']>) { return this.#dir.getDirEnrollTokenByHash(...a); }
  useDirEnrollToken(...a: Parameters<SyncStoreOps['useDirEnrollToken']>) { return this.#dir.useDirEnrollToken(...a); }

  // --- replay cache (nonces.ts) ---------------------------------------------------------

  useNonce(input: NewNonce): boolean { return this.#nonces.useNonce(input); }
  releaseNonce(input: { keyId: string; nonce: string }): void { return this.#nonces.releaseNonce(input); }
  purgeNonces(now: Date): number { return this.#nonces.purgeNonces(now); }

  // --- quorum (sqlite-quorum.ts) ---------------------------------------------------------

  createApprovalRequest(...a: Parameters<SyncStoreOps['createApprovalRequest']>) { return this.#quorum.createApprovalRequest(...a); }
  getApprovalRequest(...a: Parameters<SyncStoreOps['getApprovalRequest']>) { return this.#quorum.getApprovalRequest(...a); }
  listApprovalRequests(...a: Parameters<SyncStoreOps['listApprovalRequests']>) { return this.#quorum.listApprovalRequests(...a); }
  closeApprovalRequest(...a: Parameters<SyncStoreOps['closeApprovalRequest']>) { return this.#quorum.closeApprovalRequest(...a); }
  addApproval(...a: Parameters<SyncStoreOps['addApproval']>) { return this.#quorum.addApproval(...a); }
  listApprovals(...a: Parameters<SyncStoreOps['listApprovals']>) { return this.#quorum.listApprovals(...a); }
  putGovernanceSnapshot(...a: Parameters<SyncStoreOps['putGovernanceSnapshot']>) { return this.#quorum.putGovernanceSnapshot(...a); }
  latestGovernanceSnapshot(...a: Parameters<SyncStoreOps['latestGovernanceSnapshot']>) { return this.#quorum.latestGovernanceSnapshot(...a); }
  getGovernanceSnapshot(...a: Parameters<SyncStoreOps['getGovernanceSnapshot']>) { return this.#quorum.getGovernanceSnapshot(...a); }

  // --- MFA (sqlite-mfa.ts) -------------------------------------------------------------

  addMfaFactor(...a: Parameters<SyncStoreOps['addMfaFactor']>) { return this.#mfa.addMfaFactor(...a); }
  getMfaFactor(...a: Parameters<SyncStoreOps['getMfaFactor']>) { return this.#mfa.getMfaFactor(...a); }
  listMfaFactors(...a: Parameters<SyncStoreOps['listMfaFactors']>) { return this.#mfa.listMfaFactors(...a); }
  updateMfaFactor(...a: Parameters<SyncStoreOps['updateMfaFactor']>) { return this.#mfa.updateMfaFactor(...a); }
  removeMfaFactor(...a: Parameters<SyncStoreOps['removeMfaFactor']>) { return this.#mfa.removeMfaFactor(...a); }
  getMfaLockout(...a: Parameters<SyncStoreOps['getMfaLockout']>) { return this.#mfa.getMfaLockout(...a); }
  setMfaLockout(...a: Parameters<SyncStoreOps['setMfaLockout']>) { return this.#mfa.setMfaLockout(...a); }
  createStepUp(...a: Parameters<SyncStoreOps['createStepUp']>) { return this.#mfa.createStepUp(...a); }
  getStepUp(...a: Parameters<SyncStoreOps['getStepUp']>) { return this.#mfa.getStepUp(...a); }
  markStepUpVerified(...a: Parameters<SyncStoreOps['markStepUpVerified']>) { return this.#mfa.markStepUpVerified(...a); }
  consumeStepUp(...a: Parameters<SyncStoreOps['consumeStepUp']>) { return this.#mfa.consumeStepUp(...a); }

  // --- namespaces ------------------------------------------------------------------

  createNamespace(input: NewNamespace): NamespaceRow {
    const n = parseInput(NewNamespaceSchema, input, 'createNamespace');
    if (this.#st.getNamespace.get(n.name) !== undefined) {
      throw new StoreError('KW_STORE_CONFLICT', `namespace ${n.name} exists`);
    }
    this.#st.insertNamespace.run(n.name, ms(n.created));
    return this.#mustGet(this.getNamespace(n.name), 'namespace');
  }

  getNamespace(name: string): NamespaceRow | null {
    const n = parseInput(IdentifierSchema, name, 'namespace name');
    return this.#one(NamespaceRowSchema, this.#st.getNamespace.get(n), 'namespaces');
  }

  listNamespaces(): NamespaceRow[] {
    return this.#all(NamespaceRowSchema, this.#st.listNamespaces.all(), 'namespaces');
  }

  // --- keys ----------------------------------------------------------------------------

  createKey(input: NewKey): { key: KeyRow; version: KeyVersionRow } {
    const k = parseInput(NewKeySchema, input, 'createKey');
    this.#requireNamespace(k.ns);
    checkPublicKey(k.type, k.firstVersion.publicKey);
    if (this.#st.getKey.get(k.ns, k.name) !== undefined) {
      throw new StoreError('KW_STORE_CONFLICT', `key ${k.ns}/${k.name} exists`);
    }
    this.#st.insertKey.run(k.ns, k.name, k.type, ms(k.created), k.rotationPeriodSeconds);
    this.#st.insertVersion.run(
      k.ns,
      k.name,
      1,
      blob(k.firstVersion.wrapped),
      blobOrNull(k.firstVersion.publicKey),
      ms(k.created),
    );
    return {
      key: this.#mustGet(this.getKey(k.ns, k.name), 'key'),
      version: this.#mustGet(this.getKeyVersion(k.ns, k.name, 1), 'key version'),
    };
  }

  getKey(ns: string, name: string): KeyRow | null {
    const [n, k] = [parseInput(IdentifierSchema, ns, 'namespace'), parseInput(IdentifierSchema, name, 'key name')];
    return this.#one(KeyRowSchema, this.#st.getKey.get(n, k), 'keys');
  }

  listKeys(ns: string): KeyRow[] {
    const n = parseInput(IdentifierSchema, ns, 'namespace');
    return this.#all(KeyRowSchema, this.#st.listKeys.all(n), 'keys');
  }

  updateKey(ns: string, name: string, patch: KeyPatch): KeyRow {
    const p = parseInput(KeyPatchSchema, patch, 'updateKey');
    const key = this.#requireKey(ns, name);
    const rotation = p.rotationPeriodSeconds === undefined ? key.rotationPeriodSeconds : p.rotationPeriodSeconds;
    const minDecryption = p.minDecryptionVersion ?? key.minDecryptionVersion;
    if (minDecryption > key.latestVersion) {
      throw new StoreError(
        'KW_STORE_INVALID_ARGUMENT',
        `minDecryptionVersion ${minDecryption} exceeds latest version ${key.latestVersion} of ${key.ns}/${key.name}`,
      );
    }
    this.#st.updateKey.run(rotation, minDecryption, key.ns, key.name);
    return this.#mustGet(this.getKey(key.ns, key.name), 'key');
  }

  listKeysDueForRotation(now: Date): KeyRow[] {
    const t = parseInput(TimeSchema, now, 'now');
    return this.#all(KeyRowSchema, this.#st.keysDueForRotation.all(ms(t)), 'keys');
  }

  // --- key versions ----------------------------------------------------------------------

  rotateKey(input: RotateKey): KeyVersionRow {
    const r = parseInput(RotateKeySchema, input, 'rotateKey');
    const key = this.#requireKey(r.ns, r.key);
    checkPublicKey(key.type, r.publicKey);
    const next = key.latestVersion + 1;
    if (r.version !== undefined && r.version !== next) {
      throw new StoreError(
        'KW_STORE_CONFLICT',
        `version ${r.version} of ${key.ns}/${key.name} is not the next one (latest is ${key.latestVersion})`,
      );
    }
    const moved = this.#st.advanceLatest.run(next, key.ns, key.name, key.latestVersion);
    if (moved.changes !== 1) {
      throw new StoreError('KW_STORE_CONFLICT', `${key.ns}/${key.name} was rotated concurrently; re-read and retry`);
    }
    this.#st.insertVersion.run(key.ns, key.name, next, blob(r.wrapped), blobOrNull(r.publicKey), ms(r.created));
    return this.#mustGet(this.getKeyVersion(key.ns, key.name, next), 'key version');
  }

  getKeyVersion(ns: string, key: string, version: number): KeyVersionRow | null {
    const ref = parseInput(KeyVersionRefSchema, { ns, key, version }, 'key version');
    return this.#one(KeyVersionRowSchema, this.#st.getVersion.get(ref.ns, ref.key, ref.version), 'key_versions');
  }

  listKeyVersions(ns: string, key: string): KeyVersionRow[] {
    const [n, k] = [parseInput(IdentifierSchema, ns, 'namespace'), parseInput(IdentifierSchema, key, 'key name')];
    return this.#all(KeyVersionRowSchema, this.#st.listVersions.all(n, k), 'key_versions');
  }

  setKeyVersionState(ref: KeyVersionRef, change: KeyVersionStateChange): KeyVersionRow {
    const c = parseInput(KeyVersionStateChangeSchema, change, 'state change');
    const current = this.#requireVersion(ref);
    this.#checkTransition(current, c.state);
    const deletionAt = c.state === 'scheduled_for_deletion' ? ms(c.deletionAt) : null;
    const res = this.#st.setVersionState.run(c.state, deletionAt, current.ns, current.key, current.version, current.state);
    if (res.changes !== 1) throw concurrentChange(current);
    return this.#mustGet(this.getKeyVersion(current.ns, current.key, current.version), 'key version');
  }

  destroyKeyVersion(ref: KeyVersionRef, destroyedAt: Date): KeyVersionRow {
    const at = parseInput(TimeSchema, destroyedAt, 'destroyedAt');
    const current = this.#requireVersion(ref);
    this.#checkTransition(current, 'destroyed');
    const res = this.#st.destroyVersion.run(ms(at), current.ns, current.key, current.version);
    if (res.changes !== 1) throw concurrentChange(current);
    this.#onDestroy();
    return this.#mustGet(this.getKeyVersion(current.ns, current.key, current.version), 'key version');
  }

  listVersionsDueForDestruction(now: Date): KeyVersionRow[] {
    const t = parseInput(TimeSchema, now, 'now');
    return this.#all(KeyVersionRowSchema, this.#st.versionsDueForDestruction.all(ms(t)), 'key_versions');
  }

  // --- principals ------------------------------------------------------------------------

  createPrincipal(input: NewPrincipal): PrincipalRow {
    const p = parseInput(NewPrincipalSchema, input, 'createPrincipal');
    this.#requireNamespace(p.ns);
    if (this.#st.getPrincipal.get(p.id) !== undefined) {
      throw new StoreError('KW_STORE_CONFLICT', `principal id ${p.id} exists`);
    }
    if (this.#st.getPrincipalByName.get(p.ns, p.name) !== undefined) {
      throw new StoreError('KW_STORE_CONFLICT', `a principal named ${JSON.stringify(p.name)} exists in ${p.ns}`);
    }
    this.#st.insertPrincipal.run(p.id, p.ns, p.kind, p.name, JSON.stringify(p.roles), ms(p.created));
    return this.#mustGet(this.getPrincipal(p.id), 'principal');
  }

  getPrincipal(id: string): PrincipalRow | null {
    const i = parseInput(IdentifierSchema, id, 'principal id');
    return this.#one(PrincipalRowSchema, this.#st.getPrincipal.get(i), 'principals');
  }

  listPrincipals(ns: string): PrincipalRow[] {
    const n = parseInput(IdentifierSchema, ns, 'namespace');
    return this.#all(PrincipalRowSchema, this.#st.listPrincipals.all(n), 'principals');
  }

  setPrincipalRoles(id: string, roles: readonly string[]): PrincipalRow {
    const i = parseInput(IdentifierSchema, id, 'principal id');
    const r = parseInput(RolesSchema, roles, 'roles');
    if (this.#st.setPrincipalRoles.run(JSON.stringify(r), i).changes !== 1) {
      throw new StoreError('KW_STORE_NOT_FOUND', `principal ${i} does not exist`);
    }
    return this.#mustGet(this.getPrincipal(i), 'principal');
  }

  disablePrincipal(id: string, disabledAt: Date): PrincipalRow {
    const i = parseInput(IdentifierSchema, id, 'principal id');
    const at = parseInput(TimeSchema, disabledAt, 'disabledAt');
    if (this.#st.disablePrincipal.run(ms(at), i).changes !== 1) {
      throw new StoreError('KW_STORE_NOT_FOUND', `principal ${i} does not exist`);
    }
    return this.#mustGet(this.getPrincipal(i), 'principal');
  }

  // --- tokens ----------------------------------------------------------------------------

  createToken(input: NewToken): TokenRow {
    const t = parseInput(NewTokenSchema, input, 'createToken');
    this.#requirePrincipal(t.principal);
    if (this.#st.getToken.get(t.id) !== undefined) throw new StoreError('KW_STORE_CONFLICT', `token id ${t.id} exists`);
    if (this.#st.getTokenByHash.get(t.tokenHash) !== undefined) {
      throw new StoreError('KW_STORE_CONFLICT', 'a token with this hash exists');
    }
    this.#st.insertToken.run(t.id, t.tokenHash, t.principal, t.admin ? 1 : 0, ms(t.expiresAt), ms(t.created));
    return this.#mustGet(this.getToken(t.id), 'token');
  }

  getTokenByHash(tokenHash: string): TokenRow | null {
    const h = parseInput(TokenHashSchema, tokenHash, 'token hash');
    return this.#one(TokenRowSchema, this.#st.getTokenByHash.get(h), 'tokens');
  }

  getToken(id: string): TokenRow | null {
    const i = parseInput(IdentifierSchema, id, 'token id');
    return this.#one(TokenRowSchema, this.#st.getToken.get(i), 'tokens');
  }

  listTokens(principal: string): TokenRow[] {
    const p = parseInput(IdentifierSchema, principal, 'principal id');
    return this.#all(TokenRowSchema, this.#st.listTokens.all(p), 'tokens');
  }

  revokeToken(id: string, revokedAt: Date): TokenRow {
    const i = parseInput(IdentifierSchema, id, 'token id');
    const at = parseInput(TimeSchema, revokedAt, 'revokedAt');
    if (this.#st.revokeToken.run(ms(at), i).changes !== 1) {
      throw new StoreError('KW_STORE_NOT_FOUND', `token ${i} does not exist`);
    }
    return this.#mustGet(this.getToken(i), 'token');
  }

  revokePrincipalTokens(principal: string, revokedAt: Date): number {
    const p = parseInput(IdentifierSchema, principal, 'principal id');
    const at = parseInput(TimeSchema, revokedAt, 'revokedAt');
    this.#requirePrincipal(p);
    return this.#st.revokePrincipalTokens.run(ms(at), p).changes;
  }

  // --- signing keys ------------------------------------------------------------------------

  addSigningKey(input: NewSigningKey): SigningKeyRow {
    const k = parseInput(NewSigningKeySchema, input, 'addSigningKey');
    this.#requirePrincipal(k.principal);
    if (this.#st.getSigningKey.get(k.keyId) !== undefined) {
      throw new StoreError('KW_STORE_CONFLICT', `signing key ${k.keyId} exists`);
    }
    this.#st.insertSigningKey.run(k.keyId, k.principal, k.alg, blob(k.publicKey), ms(k.created));
    return this.#mustGet(this.getSigningKey(k.keyId), 'signing key');
  }

  getSigningKey(keyId: string): SigningKeyRow | null {
    const i = parseInput(IdentifierSchema, keyId, 'key id');
    return this.#one(SigningKeyRowSchema, this.#st.getSigningKey.get(i), 'signing_keys');
  }

  listSigningKeys(principal: string): SigningKeyRow[] {
    const p = parseInput(IdentifierSchema, principal, 'principal id');
    return this.#all(SigningKeyRowSchema, this.#st.listSigningKeys.all(p), 'signing_keys');
  }

  revokeSigningKey(keyId: string, revokedAt: Date): SigningKeyRow {
    const i = parseInput(IdentifierSchema, keyId, 'key id');
    const at = parseInput(TimeSchema, revokedAt, 'revokedAt');
    if (this.#st.revokeSigningKey.run(ms(at), i).changes !== 1) {
      throw new StoreError('KW_STORE_NOT_FOUND', `signing key ${i} does not exist`);
    }
    return this.#mustGet(this.getSigningKey(i), 'signing key');
  }

  // --- policies ----------------------------------------------------------------------------

  putPolicy(input: NewPolicyVersion): PolicyRow {
    const p = parseInput(NewPolicyVersionSchema, input, 'putPolicy');
    this.#requireNamespace(p.ns);
    const latest = this.getPolicy(p.id);
    if (latest !== null && latest.ns !== p.ns) {
      throw new StoreError('KW_STORE_CONFLICT', `policy ${p.id} belongs to namespace ${latest.ns}`);
    }
    const next = (latest?.version ?? 0) + 1;
    if (p.version !== next) {
      throw new StoreError(
        'KW_STORE_CONFLICT',
        `version ${p.version} of policy ${p.id} is not the next one (latest is ${latest?.version ?? 'none'})`,
      );
    }
    this.#st.insertPolicy.run(p.id, p.ns, p.version, JSON.stringify(p.document), ms(p.created));
    return this.#mustGet(this.getPolicy(p.id, p.version), 'policy');
  }

  getPolicy(id: string, version?: number): PolicyRow | null {
    const i = parseInput(IdentifierSchema, id, 'policy id');
    if (version === undefined) return this.#one(PolicyRowSchema, this.#st.getPolicyLatest.get(i), 'policies');
    const v = parseInput(VersionSchema, version, 'policy version');
    return this.#one(PolicyRowSchema, this.#st.getPolicyVersion.get(i, v), 'policies');
  }

  listPolicies(ns: string): PolicyRow[] {
    const n = parseInput(IdentifierSchema, ns, 'namespace');
    return this.#all(PolicyRowSchema, this.#st.listPolicies.all(n), 'policies');
  }

  listPolicyVersions(id: string): PolicyRow[] {
    const i = parseInput(IdentifierSchema, id, 'policy id');
    return this.#all(PolicyRowSchema, this.#st.listPolicyVersions.all(i), 'policies');
  }

  // --- audit -----------------------------------------------------------------------------------

  appendAuditEvent(input: NewAuditEvent): number {
    const e = parseInput(NewAuditEventSchema, input, 'appendAuditEvent');
    const next = this.auditSize();
    if (e.expectedIdx !== undefined && e.expectedIdx !== next) {
      throw new StoreError('KW_STORE_CONFLICT', `the next audit index is ${next}, not ${e.expectedIdx}`);
    }
    this.#st.insertAuditEvent.run(next, ms(e.time), e.event, blob(e.leafHash));
    return next;
  }

  getAuditEvent(idx: number): AuditEventRow | null {
    const i = parseInput(IndexSchema, idx, 'audit index');
    return this.#one(AuditEventRowSchema, this.#st.getAuditEvent.get(i), 'audit_events');
  }

  readAuditEvents(range: AuditRange): AuditEventRow[] {
    const r = parseInput(AuditRangeSchema, range, 'audit range');
    const rows = this.#all(AuditEventRowSchema, this.#st.readAuditEvents.all(r.start, r.end), 'audit_events');
    // Gapless by construction and by trigger; a hole here means the file was edited.
    rows.forEach((row, i) => {
      if (row.idx !== r.start + i) throw new StoreError('KW_STORE_CORRUPT_ROW', `audit_events: index ${r.start + i} is missing`);
    });
    return rows;
  }

  auditSize(): number {
    const row = this.#st.nextAuditIdx.get() as { next: unknown } | undefined;
    return parseRow(NextIdxRowSchema, row, 'audit_events').next;
  }

  /** A write: outside a transaction BEGIN IMMEDIATE, inside one the transaction already holds the write lock. */
  lockAuditHead(): number {
    return this.auditSize();
  }

  addAuditCheckpoint(input: NewAuditCheckpoint): AuditCheckpointRow {
    const c = parseInput(NewAuditCheckpointSchema, input, 'addAuditCheckpoint');
    const size = this.auditSize();
    if (c.size > size) {
      throw new StoreError('KW_STORE_INVALID_ARGUMENT', `checkpoint size ${c.size} exceeds the ${size} stored audit events`);
    }
    if (this.#st.getCheckpoint.get(c.size) !== undefined) {
      throw new StoreError('KW_STORE_CONFLICT', `a checkpoint of size ${c.size} exists`);
    }
    this.#st.insertCheckpoint.run(c.size, blob(c.root), c.note, ms(c.created));
    return this.#mustGet(this.getAuditCheckpoint(c.size), 'checkpoint');
  }

  latestAuditCheckpoint(): AuditCheckpointRow | null {
    return this.#one(AuditCheckpointRowSchema, this.#st.latestCheckpoint.get(), 'checkpoints');
  }

  getAuditCheckpoint(size: number): AuditCheckpointRow | null {
    const s = parseInput(IndexSchema, size, 'checkpoint size');
    return this.#one(AuditCheckpointRowSchema, this.#st.getCheckpoint.get(s), 'checkpoints');
  }

  // --- meta --------------------------------------------------------------------------------------

  getMeta(key: string): string | null {
    const k = parseInput(IdentifierSchema, key, 'meta key');
    const row = this.#st.getMeta.get(k);
    return row === undefined ? null : parseRow(MetaRowSchema, row, 'meta').value;
  }

  setMeta(key: string, value: string): void {
    const k = parseInput(IdentifierSchema, key, 'meta key');
    const v = parseInput(MetaValueSchema, value, 'meta value');
    if (RESERVED_META_KEYS.has(k)) throw new StoreError('KW_STORE_INVALID_ARGUMENT', `meta key ${k} is reserved to the store`);
    this.#st.setMeta.run(k, v);
  }

  // --- helpers -------------------------------------------------------------------------------------

  #one<S extends z.ZodType>(schema: S, row: unknown, table: string): z.output<S> | null {
    return row === undefined ? null : parseRow(schema, row, table);
  }

  #all<S extends z.ZodType>(schema: S, rows: unknown[], table: string): z.output<S>[] {
    return rows.map((row) => parseRow(schema, row, table));
  }

  /** A row this operation just wrote must be readable; if not, the database misbehaves. */
  #mustGet<T>(row: T | null, what: string): T {
    if (row === null) throw new StoreError('KW_STORE_IO', `the ${what} just written cannot be read back`);
    return row;
  }

  #requireNamespace(ns: string): void {
    if (this.#st.getNamespace.get(ns) === undefined) {
      throw new StoreError('KW_STORE_NOT_FOUND', `namespace ${ns} does not exist`);
    }
  }

  #requirePrincipal(id: string): void {
    if (this.#st.getPrincipal.get(id) === undefined) {
      throw new StoreError('KW_STORE_NOT_FOUND', `principal ${id} does not exist`);
    }
  }

  #requireKey(ns: string, name: string): KeyRow {
    const key = this.getKey(ns, name);
    if (key === null) throw new StoreError('KW_STORE_NOT_FOUND', `key ${ns}/${name} does not exist`);
    return key;
  }

  #requireVersion(ref: KeyVersionRef): KeyVersionRow {
    const r = parseInput(KeyVersionRefSchema, ref, 'key version');
    const v = this.getKeyVersion(r.ns, r.key, r.version);
    if (v === null) throw new StoreError('KW_STORE_NOT_FOUND', `key version ${r.ns}/${r.key}/v${r.version} does not exist`);
    return v;
  }

  #checkTransition(v: KeyVersionRow, to: KeyVersionState): void {
    if (!isAllowedTransition(v.state, to)) {
      throw new StoreError(
        'KW_STORE_INVALID_TRANSITION',
        `key version ${v.ns}/${v.key}/v${v.version} cannot go from ${v.state} to ${to}`,
      );
    }
  }
}

/** A public key goes with the asymmetric key types and only with them. */
function checkPublicKey(type: KeyType, publicKey: Uint8Array | null): void {
  const asymmetric = ASYMMETRIC_KEY_TYPES.has(type);
  if (asymmetric && publicKey === null) {
    throw new StoreError('KW_STORE_INVALID_ARGUMENT', `a ${type} key version needs its public key`);
  }
  if (!asymmetric && publicKey !== null) {
    throw new StoreError('KW_STORE_INVALID_ARGUMENT', `a ${type} key version has no public key`);
  }
}

function concurrentChange(v: KeyVersionRow): StoreError {
  return new StoreError('KW_STORE_CONFLICT', `key version ${v.ns}/${v.key}/v${v.version} changed concurrently; re-read and retry`);
}
