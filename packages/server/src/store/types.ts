/**
 * The store's contract: row types (derived from the zod schemas of `schema.ts`,
 * so every row read is validated) and the `Store` interface every backend
 * implements and `test/store/conformance.ts` exercises.
 *
 * The interface is async although better-sqlite3 is synchronous: PostgreSQL
 * comes later and must fit the same shape.
 *
 * Conventions of every method:
 * - `get…` returns `null` when the row does not exist; `list…` returns `[]`.
 * - A write to a row that does not exist (or refers to one that does not:
 *   namespace, key, principal) throws `KW_STORE_NOT_FOUND`.
 * - A write that collides with existing data or a concurrent writer throws
 *   `KW_STORE_CONFLICT`; a bad argument `KW_STORE_INVALID_ARGUMENT`. Either way
 *   nothing was written.
 * - A stored row that fails validation throws `KW_STORE_CORRUPT_ROW`.
 * - Lists are in a stable order (by name, version, index or creation).
 * - Times are `Date`s with millisecond precision.
 */
import type { z } from 'zod';
import type {
  AuditCheckpointRowSchema,
  AuditEventRowSchema,
  AuditRangeSchema,
  KeyPatchSchema,
  KeyRowSchema,
  KeyVersionRefSchema,
  KeyVersionRowSchema,
  KeyVersionStateChangeSchema,
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
  RotateKeySchema,
  SigningKeyRowSchema,
  TokenRowSchema,
} from './schema.js';
import type { MfaStore } from './mfa-types.js';
import type { QuorumStore } from './quorum-types.js';
import type { NonceStore } from './nonces.js';
import type { DirectoryRowStore } from './directory-rows.js';

export type * from './mfa-types.js';
export type { ApprovalRequestRow, ApprovalRow, ApprovalState, GovernanceSnapshotRow, NewApproval, NewApprovalRequest, NewGovernanceSnapshot, QuorumStore } from './quorum-types.js';
export type { NewNonce, NonceStore } from './nonces.js';
export type { DirEnrollTokenRow, DirEntityRow, DirectoryRowStore, KtAppend, KtVersionRecord, NewDirEnrollToken, PutDirEntity } from './directory-rows.js';
export type { JsonValue, KeyType, KeyVersionState, PrincipalKind, SigningKeyAlg } from './schema.js';

// --- rows (what the store returns) ----------------------------------------------------

export type NamespaceRow = z.output<typeof NamespaceRowSchema>;
export type KeyRow = z.output<typeof KeyRowSchema>;
export type KeyVersionRow = z.output<typeof KeyVersionRowSchema>;
export type PrincipalRow = z.output<typeof PrincipalRowSchema>;
export type TokenRow = z.output<typeof TokenRowSchema>;
export type SigningKeyRow = z.output<typeof SigningKeyRowSchema>;
export type PolicyRow = z.output<typeof PolicyRowSchema>;
export type AuditEventRow = z.output<typeof AuditEventRowSchema>;
export type AuditCheckpointRow = z.output<typeof AuditCheckpointRowSchema>;

// --- inputs (what a caller passes) ------------------------------------------------------

export type NewNamespace = z.input<typeof NewNamespaceSchema>;
export type NewKey = z.input<typeof NewKeySchema>;
export type KeyPatch = z.input<typeof KeyPatchSchema>;
export type RotateKey = z.input<typeof RotateKeySchema>;
export type KeyVersionRef = z.input<typeof KeyVersionRefSchema>;
export type KeyVersionStateChange = z.input<typeof KeyVersionStateChangeSchema>;
export type NewPrincipal = z.input<typeof NewPrincipalSchema>;
export type NewToken = z.input<typeof NewTokenSchema>;
export type NewSigningKey = z.input<typeof NewSigningKeySchema>;
export type NewPolicyVersion = z.input<typeof NewPolicyVersionSchema>;
export type NewAuditEvent = z.input<typeof NewAuditEventSchema>;
export type AuditRange = z.input<typeof AuditRangeSchema>;
export type NewAuditCheckpoint = z.input<typeof NewAuditCheckpointSchema>;

// --- the interface, by concern -------------------------------------------------------------

/** Namespaces: the top-level partition of keys, principals and policies. */
export interface NamespaceStore {
  createNamespace(input: NewNamespace): Promise<NamespaceRow>;
  getNamespace(name: string): Promise<NamespaceRow | null>;
  listNamespaces(): Promise<NamespaceRow[]>;
}

/** Keys: the named, typed containers of key versions. */
export interface KeyStore {
  /**
   * Creates a key and its version 1 (enabled) together, so a key never exists
   * without a version. `KW_STORE_NOT_FOUND` if the namespace is missing,
   * `KW_STORE_CONFLICT` if the name is taken.
   *
   * @example
   * const { key, version } = await store.createKey({ ns: 'billing', name: 'invoices', type: 'aes256',
   *   created: new Date(), firstVersion: { wrapped, publicKey: null } });
   */
  createKey(input: NewKey): Promise<{ key: KeyRow; version: KeyVersionRow }>;
  getKey(ns: string, name: string): Promise<KeyRow | null>;
  listKeys(ns: string): Promise<KeyRow[]>;
  /** Changes the rotation period and/or the minimum decryption version (1..latestVersion). */
  updateKey(ns: string, name: string, patch: KeyPatch): Promise<KeyRow>;
  /** Keys with a rotation period whose latest version is at least that old at `now`. */
  listKeysDueForRotation(now: Date): Promise<KeyRow[]>;
}

/** Key versions: wrapped material and its lifecycle. */
export interface KeyVersionStore {
  /**
   * Adds version latestVersion + 1 (enabled) and moves `latestVersion` to it,
   * atomically: concurrent rotations each get their own, distinct number.
   * Pass `version` (the number the keyholder bound into the blob's AAD) to
   * insist on it: if another rotation got there first, `KW_STORE_CONFLICT` and
   * nothing changes; re-read the key and ask the keyholder again.
   *
   * @example
   * const key = await store.getKey(ns, name);
   * const { wrapped } = await keyholder.generate({ ns, name, version: key.latestVersion + 1 });
   * await store.rotateKey({ ns, key: name, version: key.latestVersion + 1, wrapped, publicKey: null, created: new Date() });
   */
  rotateKey(input: RotateKey): Promise<KeyVersionRow>;
  getKeyVersion(ns: string, key: string, version: number): Promise<KeyVersionRow | null>;
  listKeyVersions(ns: string, key: string): Promise<KeyVersionRow[]>;
  /**
   * Moves a version along the transition table (`KEY_VERSION_TRANSITIONS`):
   * enabled ↔ disabled; enabled/disabled → scheduled_for_deletion (with
   * `deletionAt`); scheduled_for_deletion → disabled (cancel, clears
   * `deletionAt`). Anything else, including a change to the same state, is
   * `KW_STORE_INVALID_TRANSITION` and changes nothing. Use
   * {@link destroyKeyVersion} to destroy.
   */
  setKeyVersionState(ref: KeyVersionRef, change: KeyVersionStateChange): Promise<KeyVersionRow>;
  /**
   * Destroys a version that is scheduled_for_deletion: the wrapped blob is set
   * to NULL (SQLite overwrites the freed bytes, `secure_delete`) and the state
   * becomes `destroyed`, which is terminal. Call {@link Store.checkpoint} after
   * the enclosing transaction so no older copy survives in a write-ahead log.
   */
  destroyKeyVersion(ref: KeyVersionRef, destroyedAt: Date): Promise<KeyVersionRow>;
  /** Versions scheduled_for_deletion whose `deletionAt` is at or before `now`. */
  listVersionsDueForDestruction(now: Date): Promise<KeyVersionRow[]>;
}

/** Principals: the people and services that authenticate. */
export interface PrincipalStore {
  /** `KW_STORE_CONFLICT` if the id, or the name within the namespace, is taken. */
  createPrincipal(input: NewPrincipal): Promise<PrincipalRow>;
  getPrincipal(id: string): Promise<PrincipalRow | null>;
  listPrincipals(ns: string): Promise<PrincipalRow[]>;
  setPrincipalRoles(id: string, roles: readonly string[]): Promise<PrincipalRow>;
  /**
   * Sets `disabledAt` (terminal: there is no enable); disabling a disabled
   * principal keeps its first time. `KW_STORE_NOT_FOUND` if it does not exist.
   * Revoking its tokens and signing keys is the caller's business (same transaction).
   */
  disablePrincipal(id: string, disabledAt: Date): Promise<PrincipalRow>;
}

/** Bearer tokens, stored as SHA-256 hashes only. */
export interface TokenStore {
  /** `KW_STORE_CONFLICT` if the id or the hash exists. */
  createToken(input: NewToken): Promise<TokenRow>;
  /** The token with this hash, whatever its expiry or revocation (the API decides). */
  getTokenByHash(tokenHash: string): Promise<TokenRow | null>;
  getToken(id: string): Promise<TokenRow | null>;
  listTokens(principal: string): Promise<TokenRow[]>;
  /** Sets `revokedAt`; revoking a revoked token keeps its first revocation time. */
  revokeToken(id: string, revokedAt: Date): Promise<TokenRow>;
  /** Revokes every unrevoked token of a principal; returns how many. */
  revokePrincipalTokens(principal: string, revokedAt: Date): Promise<number>;
}

/** Request-signing (device) public keys, looked up by RFC 9421 `keyid`. */
export interface SigningKeyStore {
  /** `KW_STORE_CONFLICT` if the key id exists (key ids are global). */
  addSigningKey(input: NewSigningKey): Promise<SigningKeyRow>;
  getSigningKey(keyId: string): Promise<SigningKeyRow | null>;
  listSigningKeys(principal: string): Promise<SigningKeyRow[]>;
  /** Sets `revokedAt`; revoking a revoked key keeps its first revocation time. */
  revokeSigningKey(keyId: string, revokedAt: Date): Promise<SigningKeyRow>;
}

/** Policies: every version kept, the latest one in force. */
export interface PolicyStore {
  /**
   * Stores version `version` of policy `id`: 1 creates it, n + 1 succeeds only
   * while n is the latest (else `KW_STORE_CONFLICT`); a policy never changes
   * namespace.
   */
  putPolicy(input: NewPolicyVersion): Promise<PolicyRow>;
  /** The given version, or the latest when `version` is omitted. */
  getPolicy(id: string, version?: number): Promise<PolicyRow | null>;
  /** The latest version of every policy of the namespace. */
  listPolicies(ns: string): Promise<PolicyRow[]>;
  listPolicyVersions(id: string): Promise<PolicyRow[]>;
}

/**
 * The audit log: append-only and gapless. There is deliberately no method to
 * change or remove an event or a checkpoint.
 */
export interface AuditStore {
  /**
   * Appends an event at the next index (0, 1, 2, …) and returns that index.
   * Indices have no gaps: a rolled-back append gives its index to the next one.
   *
   * @example
   * await store.transaction(async (tx) => {
   *   await tx.setKeyVersionState(ref, { state: 'disabled' });
   *   await tx.appendAuditEvent({ time, event, leafHash, expectedIdx: leafIndex });
   * });
   */
  appendAuditEvent(input: NewAuditEvent): Promise<number>;
  getAuditEvent(idx: number): Promise<AuditEventRow | null>;
  /** Events with start ≤ idx < end (fewer if the log is shorter), at most `MAX_AUDIT_READ`. */
  readAuditEvents(range: AuditRange): Promise<AuditEventRow[]>;
  /** Number of events, which is also the next index. */
  auditSize(): Promise<number>;
  /**
   * The audit sequencer: returns the next index (as {@link auditSize}) and,
   * inside `transaction(fn)`, keeps every other writer of the log — on any
   * node — from appending until this transaction ends (PostgreSQL: `SELECT …
   * FOR UPDATE` of the `audit_head` row; SQLite: the transaction already
   * holds the write lock). The audit pipe takes it first in every audited
   * transaction, so the index it reads is the one its event will get.
   */
  lockAuditHead(): Promise<number>;
  /** Stores a signed checkpoint; its size may not exceed the stored events. */
  addAuditCheckpoint(input: NewAuditCheckpoint): Promise<AuditCheckpointRow>;
  /** The checkpoint with the largest size, or null. */
  latestAuditCheckpoint(): Promise<AuditCheckpointRow | null>;
  getAuditCheckpoint(size: number): Promise<AuditCheckpointRow | null>;
}

/** Small named values of the deployment (`schema_version` is reserved to the store). */
export interface MetaStore {
  getMeta(key: string): Promise<string | null>;
  setMeta(key: string, value: string): Promise<void>;
}

/** Everything that can run inside a transaction. */
export interface StoreOps
  extends NamespaceStore,
    KeyStore,
    KeyVersionStore,
    PrincipalStore,
    TokenStore,
    SigningKeyStore,
    PolicyStore,
    AuditStore,
    MetaStore,
    MfaStore,
    QuorumStore,
    NonceStore,
    DirectoryRowStore {}

/** A transaction handle: the operations, valid only until `transaction(fn)` settles. */
export type StoreTx = StoreOps;

/** A store backend. */
export interface Store extends StoreOps {
  /**
   * Runs `fn` atomically: if it throws (or its promise rejects), every write it
   * made is rolled back and the same error is rethrown; otherwise all of them
   * are committed and its value returned. Inside `fn` use only `tx`: calling the
   * outer store or starting another transaction is `KW_STORE_TRANSACTION_MISUSE`
   * (it could otherwise deadlock), and so is using `tx` after `fn` settles. A
   * failed operation inside `fn` that `fn` catches leaves no partial write.
   *
   * @example
   * const v = await store.transaction(async (tx) => {
   *   const version = await tx.rotateKey({ ns, key, version: next, wrapped, publicKey: null, created });
   *   await tx.appendAuditEvent({ time, event, leafHash });
   *   return version;
   * });
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  /**
   * Makes the main database file the only copy of the data (SQLite:
   * `PRAGMA wal_checkpoint(TRUNCATE)`), so the write-ahead log keeps no page
   * with a destroyed blob. `KW_STORE_BUSY` if a reader kept it from finishing.
   * Unrelated to audit checkpoints.
   */
  checkpoint(): Promise<void>;
  /** The schema version of the open database. */
  schemaVersion(): Promise<number>;
  /** Waits for running operations, then closes; later calls throw `KW_STORE_CLOSED`. */
  close(): Promise<void>;
}
