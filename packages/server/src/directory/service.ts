/**
 * The directory service (issue #6): identities (`user:NAME`, `service:NAME`)
 * with devices, groups (`group:NAME`), enrollment, approval and revocation,
 * over a KEYTRANS log kept in the key service's store.
 *
 * Every change is checked here (names, keys, signatures, the label version it
 * was signed for), then — inside the caller's store transaction, the one that
 * also appends the audit event — becomes the next version of the entity's
 * label in the KEYTRANS log and the entity's new state. Nothing is written
 * when a check fails. The rules:
 *
 * - An administrator issues a one-time enrollment token for an identity
 *   (creating it, optionally bound to a key-service principal). The first
 *   device enrolls with it, signing its own keys (proof of possession).
 * - Further devices are approved: signed by the new device *and* an existing
 *   device of the identity.
 * - A device is revoked by a device of the identity (signed) or an administrator.
 * - Groups are sets of identities; administrators change them.
 * - For an identity bound to a principal, the devices' request-signing keys
 *   are that principal's signing keys in the key service (added and revoked in
 *   the same transaction), so the key service sees exactly the directory's devices.
 *
 * This module holds no HTTP: `routes.ts` maps it to /v1/directory.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  DirectoryBuilder,
  isDirectoryError,
  type Configuration,
  type TreeHead,
  type DirectoryKeyHolder,
  type DirectoryKeys,
  type DirectoryParams,
} from '@keyward/directory';
import {
  DirectoryRecordError,
  checkDeviceKeys,
  encodeEntityValue,
  entityLabel,
  verifyChange,
  type DeviceKeys,
  type DeviceRecord,
  type GroupValue,
  type IdentityValue,
} from '@keyward/client';
import { base64urlnopad } from '@scure/base';
import { ApiError } from '../api/errors.js';
import type { DirEntityRow, Store, StoreOps } from '../store/types.js';
import { KeywardDirectoryStore } from './store.js';

/** How far a change's `at` may be from the server clock. */
export const MAX_CHANGE_SKEW_MS = 5 * 60_000;
/** Default and largest lifetime of an enrollment token. */
export const ENROLL_TOKEN_TTL_S = { default: 24 * 3600, max: 30 * 24 * 3600 } as const;

/**
 * Keys obtained on first use (the keyholder's, keyholder-keys.ts): the service
 * asks for them when a request first needs the log, so it can open before the
 * keyholder is initialised or unsealed. A failure is retried on the next use.
 */
export interface DirectoryKeySource {
  holder(): Promise<DirectoryKeyHolder>;
}

const isKeySource = (k: DirectoryServiceOptions['keys']): k is DirectoryKeySource => typeof (k as Partial<DirectoryKeySource>).holder === 'function';

/** Options of {@link DirectoryService.open}. */
export interface DirectoryServiceOptions {
  readonly store: Store;
  /**
   * The log's VRF and tree-head signing keys: raw (kept in memory: tests, tools), a
   * {@link DirectoryKeyHolder}, or a {@link DirectoryKeySource} (the server: the keyholder's).
   */
  readonly keys: DirectoryKeys | DirectoryKeyHolder | DirectoryKeySource;
  readonly params?: DirectoryParams;
  readonly clock?: () => Date;
  /** The witness head log's note verifier key (docs/witness.md §The directory), when the server can tell it. */
  readonly headLogVerifierKey?: () => Promise<string>;
}

/** A signed head, as the API publishes it (the hook for witnesses). */
export interface PublishedHead {
  readonly treeSize: number;
  readonly root: Uint8Array;
  readonly signature: Uint8Array;
}

/** What one change wrote: for the audit event and the answer. */
export interface ChangeOutcome {
  readonly name: string;
  readonly version: number;
  readonly treeSize: number;
  readonly details: Record<string, string | number | boolean | string[]>;
}

const hashHex = (s: string): string => createHash('sha256').update(s).digest('hex');
const b64 = (b: Uint8Array): string => base64urlnopad.encode(b);

function recordError(e: unknown): never {
  if (e instanceof DirectoryRecordError) throw new ApiError(e.code, e.message);
  throw e;
}

function identityState(row: DirEntityRow | null): { devices: DeviceRecord[] } {
  const d: unknown = row?.state.devices;
  return { devices: Array.isArray(d) ? (d as DeviceRecord[]) : [] };
}

/**
 * The directory over a store.
 *
 * @example
 * const dir = await DirectoryService.open({ store, keys });
 * const { token } = await store.transaction((tx) => dir.issueEnrollToken(tx, { name: 'user:alice', by: 'admin-1' }));
 */
export class DirectoryService {
  #keys: DirectoryKeys | DirectoryKeyHolder | null;
  #config: Configuration | null;

  private constructor(
    private readonly opts: DirectoryServiceOptions,
    keys: DirectoryKeys | DirectoryKeyHolder | null,
    config: Configuration | null,
  ) {
    this.#keys = keys;
    this.#config = config;
  }

  /** Opens the service; with a {@link DirectoryKeySource}, the keys are asked for on first use. */
  static async open(opts: DirectoryServiceOptions): Promise<DirectoryService> {
    if (isKeySource(opts.keys)) return new DirectoryService(opts, null, null);
    const b = await DirectoryBuilder.create(new KeywardDirectoryStore(opts.store), opts.keys, opts.params ?? {});
    return new DirectoryService(opts, opts.keys, b.config);
  }

  /**
   * The log's public configuration (clients pin it). Throws before the keys were first obtained:
   * use {@link configuration} where the keys may not be open yet.
   */
  get config(): Configuration {
    if (!this.#config) throw new Error('the directory keys are not open yet (DirectoryService.configuration())');
    return this.#config;
  }

  /** The witness head log's verifier key, or null when this service was opened without one. */
  headLogVerifierKey(): Promise<string | null> {
    return this.opts.headLogVerifierKey ? this.opts.headLogVerifierKey() : Promise.resolve(null);
  }

  /** The log's public configuration, obtaining the keys first if needed. */
  async configuration(): Promise<Configuration> {
    return (await this.builder()).config;
  }

  async #openKeys(): Promise<DirectoryKeys | DirectoryKeyHolder> {
    if (this.#keys) return this.#keys;
    const keys = await (this.opts.keys as DirectoryKeySource).holder();
    this.#keys = keys;
    return keys;
  }

  private now(): Date {
    return this.opts.clock ? this.opts.clock() : new Date();
  }

  /** A builder over `ops` (the store, or a transaction handle). */
  async builder(ops: StoreOps = this.opts.store): Promise<DirectoryBuilder> {
    const b = await DirectoryBuilder.create(new KeywardDirectoryStore(ops), await this.#openKeys(), { ...(this.opts.params ?? {}), now: () => this.now().getTime() });
    this.#config ??= b.config;
    return b;
  }

  /** The current signed tree head, or null while the log is empty. */
  async head(): Promise<PublishedHead | null> {
    const b = await this.builder();
    if ((await b.treeSize()) === 0) return null;
    const { treeHead, root } = await b.treeHead();
    return { treeSize: treeHead.treeSize, root, signature: treeHead.signature };
  }

  /**
   * The log's heartbeat (docs/directory.md §Freshness): appends an entry that changes no label
   * when the newest one is at least `maxAgeMs` old, so an idle log stays within the
   * Configuration's `max_behind` (clients refuse an older rightmost entry). Serialised with
   * changes by the log lock; another node's heartbeat first is not an error. Returns the new
   * position, or null when none was due.
   */
  async heartbeat(maxAgeMs: number): Promise<number | null> {
    // Cheap reads first: no lock, no keys (nor their creation) while nothing is due.
    const rows = new KeywardDirectoryStore(this.opts.store);
    const size = await rows.treeSize();
    if (size === 0) return null;
    const newest = await rows.logEntry(size - 1);
    if (newest && this.now().getTime() - newest.timestamp < maxAgeMs) return null;
    try {
      return await this.opts.store.transaction(async (tx) => {
        await tx.ktLock();
        return (await this.builder(tx)).heartbeat(maxAgeMs);
      });
    } catch (e) {
      if (isDirectoryError(e, 'KT_CONFLICT')) return null;
      throw e;
    }
  }

  // --- enrollment ---------------------------------------------------------------------------------

  /**
   * Issues a one-time enrollment token for identity `name` (created if missing, bound to
   * `principal` if given). Returns the token once; only its SHA-256 is stored.
   */
  async issueEnrollToken(tx: StoreOps, input: { name: string; principal?: string; ttlSeconds?: number; by: string }): Promise<{ token: string; id: string; expiresAt: Date; created: boolean }> {
    if (input.name.startsWith('group:')) throw new ApiError('KW_DIR_RECORD_INVALID', 'enrollment tokens are for identities (user:NAME, service:NAME)');
    try {
      entityLabel(input.name);
    } catch (e) {
      recordError(e);
    }
    const now = this.now();
    let row = await tx.getDirEntity(input.name);
    if (input.principal !== undefined) {
      if ((await tx.getPrincipal(input.principal)) === null) throw new ApiError('KW_NOT_FOUND', `no principal ${input.principal}`);
      const bound = await tx.getDirEntityByPrincipal(input.principal);
      if (bound !== null && bound.name !== input.name) throw new ApiError('KW_DIR_ENTITY_EXISTS', `principal ${input.principal} is bound to ${bound.name}`);
      if (row !== null && row.principal !== null && row.principal !== input.principal) throw new ApiError('KW_DIR_ENTITY_EXISTS', `${input.name} is bound to another principal`);
    }
    const created = row === null;
    if (row === null) {
      row = await tx.putDirEntity({ name: input.name, principal: input.principal ?? null, state: { devices: [] }, seq: 1, updated: now });
    } else if (input.principal !== undefined && row.principal === null) {
      row = await tx.putDirEntity({ name: input.name, principal: input.principal, state: row.state as never, seq: row.seq + 1, updated: now });
    }
    const ttl = Math.min(input.ttlSeconds ?? ENROLL_TOKEN_TTL_S.default, ENROLL_TOKEN_TTL_S.max);
    const token = `kwe_${b64(randomBytes(32))}`;
    const id = `et_${randomBytes(8).toString('hex')}`;
    const expiresAt = new Date(now.getTime() + ttl * 1000);
    await tx.createDirEnrollToken({ id, entity: input.name, tokenHash: hashHex(token), createdBy: input.by, created: now, expiresAt });
    return { token, id, expiresAt, created };
  }

  /** The checks every device change shares; returns the current row, state and the next version. */
  private async prepare(tx: StoreOps, name: string, version: number, at: number): Promise<{ row: DirEntityRow; devices: DeviceRecord[]; label: Uint8Array }> {
    let label: Uint8Array;
    try {
      label = entityLabel(name);
    } catch (e) {
      recordError(e);
    }
    if (name.startsWith('group:')) throw new ApiError('KW_DIR_RECORD_INVALID', 'groups have no devices');
    // One directory writer at a time on every node: what this change reads stays current until it commits.
    await tx.ktLock();
    const row = await tx.getDirEntity(name);
    if (row === null) throw new ApiError('KW_DIR_UNKNOWN_ENTITY', `no identity ${name}`);
    if (!Number.isSafeInteger(at) || Math.abs(at - this.now().getTime()) > MAX_CHANGE_SKEW_MS) {
      throw new ApiError('KW_DIR_RECORD_INVALID', 'the change time is more than 5 minutes from the server clock');
    }
    const next = await tx.ktVersionCount(label!);
    if (version !== next) throw new ApiError('KW_DIR_STALE_VERSION', `the change was signed for version ${version}; the next version of ${name} is ${next}`);
    return { row, devices: identityState(row).devices, label: label! };
  }

  private checkKeys(device: unknown): DeviceKeys {
    try {
      return checkDeviceKeys(device);
    } catch (e) {
      return recordError(e);
    }
  }

  private async requestKeyFree(tx: StoreOps, keyId: string): Promise<void> {
    if ((await tx.getSigningKey(keyId)) !== null) throw new ApiError('KW_DIR_DEVICE_EXISTS', `request-signing key id ${keyId} is taken`);
  }

  /** Writes the new value into the log, the entity state, and the principal's signing keys. */
  private async commit(
    tx: StoreOps,
    row: DirEntityRow,
    label: Uint8Array,
    value: IdentityValue,
    keyChange: { add?: DeviceKeys; revoke?: DeviceKeys },
  ): Promise<{ version: number; treeSize: number }> {
    const now = this.now();
    const { treeHead } = await this.append(tx, label, value.change.version, encodeEntityValue(value));
    await tx.putDirEntity({ name: row.name, principal: row.principal, state: { devices: value.devices as never }, seq: row.seq + 1, updated: now });
    if (row.principal !== null) {
      if (keyChange.add) {
        await tx.addSigningKey({ keyId: keyChange.add.request.keyId, principal: row.principal, alg: 'ed25519', publicKey: base64urlnopad.decode(keyChange.add.request.key), created: now });
      }
      if (keyChange.revoke) {
        const k = await tx.getSigningKey(keyChange.revoke.request.keyId);
        if (k !== null && k.revokedAt === null && k.principal === row.principal) await tx.revokeSigningKey(k.keyId, now);
      }
    }
    return { version: value.change.version, treeSize: treeHead.treeSize };
  }

  /**
   * Appends `value` as version `version` of `label`. Another node may extend the log between this
   * transaction's reads and its append (`KT_CONFLICT`, nothing written): the append is rebuilt on
   * the new log, a few times. The version must still be the one the value names (and the change
   * was signed for), else `KW_DIR_STALE_VERSION`.
   */
  private async append(tx: StoreOps, label: Uint8Array, version: number, value: Uint8Array): Promise<{ treeHead: TreeHead }> {
    for (let attempt = 1; ; attempt++) {
      try {
        const { versions, treeHead } = await (await this.builder(tx)).update([{ label, value }]);
        if (versions[0] !== version) throw new ApiError('KW_DIR_STALE_VERSION', `the log is at version ${versions[0]} of the label, the change is for ${version}`);
        return { treeHead };
      } catch (e) {
        if (!isDirectoryError(e, 'KT_CONFLICT') || attempt >= 5) throw e;
        if ((await tx.ktVersionCount(label)) !== version) throw new ApiError('KW_DIR_STALE_VERSION', `another change to the label came first; the change is for version ${version}`);
      }
    }
  }

  /** The first device of an identity, with a one-time token. */
  async enroll(tx: StoreOps, input: { token: string; name: string; device: unknown; version: number; at: number; pop: string }): Promise<ChangeOutcome> {
    const t = await tx.getDirEnrollTokenByHash(hashHex(input.token));
    if (t === null || t.entity !== input.name) throw new ApiError('KW_DIR_TOKEN_INVALID', 'unknown enrollment token, or one for another identity');
    if (t.usedAt !== null) throw new ApiError('KW_DIR_TOKEN_USED', 'the enrollment token was used already');
    if (t.expiresAt.getTime() <= this.now().getTime()) throw new ApiError('KW_DIR_TOKEN_EXPIRED', 'the enrollment token has expired');
    const { row, devices, label } = await this.prepare(tx, input.name, input.version, input.at);
    if (devices.length > 0) throw new ApiError('KW_DIR_ALREADY_ENROLLED', `${input.name} has devices: approve a new one from one of them`);
    const device = this.checkKeys(input.device);
    try {
      verifyChange(device.sign, input.pop, input.name, 'enroll', input.version, input.at, device);
    } catch (e) {
      recordError(e);
    }
    if (row.principal !== null) await this.requestKeyFree(tx, device.request.keyId);
    await tx.useDirEnrollToken(t.id, this.now());
    const record: DeviceRecord = { ...device, added: input.at, addedBy: `token:${t.id}` };
    const value: IdentityValue = { v: 1, name: input.name, devices: [record], change: { op: 'enroll', version: input.version, at: input.at, device, by: { kind: 'token', id: t.id }, pop: input.pop } };
    const r = await this.commit(tx, row, label, value, { add: device });
    return { name: input.name, ...r, details: { device: device.id, token_id: t.id, hpke: device.hpke.alg, request_key_id: device.request.keyId } };
  }

  /** A further device, approved by an existing one. */
  async approve(tx: StoreOps, input: { name: string; device: unknown; version: number; at: number; pop: string; approver: string; sig: string }): Promise<ChangeOutcome> {
    const { row, devices, label } = await this.prepare(tx, input.name, input.version, input.at);
    const device = this.checkKeys(input.device);
    const approver = devices.find((d) => d.id === input.approver);
    if (!approver) throw new ApiError('KW_DIR_NOT_A_DEVICE', `${input.approver} is not a current device of ${input.name}`);
    if (devices.some((d) => d.id === device.id)) throw new ApiError('KW_DIR_DEVICE_EXISTS', `${input.name} has a device ${device.id}`);
    try {
      verifyChange(device.sign, input.pop, input.name, 'approve', input.version, input.at, device);
      verifyChange(approver.sign, input.sig, input.name, 'approve', input.version, input.at, device);
    } catch (e) {
      recordError(e);
    }
    if (row.principal !== null) await this.requestKeyFree(tx, device.request.keyId);
    const record: DeviceRecord = { ...device, added: input.at, addedBy: `device:${approver.id}` };
    const value: IdentityValue = {
      v: 1, name: input.name, devices: [...devices, record],
      change: { op: 'approve', version: input.version, at: input.at, device, by: { kind: 'device', id: approver.id }, pop: input.pop, sig: input.sig },
    };
    const r = await this.commit(tx, row, label, value, { add: device });
    return { name: input.name, ...r, details: { device: device.id, approver: approver.id, hpke: device.hpke.alg, request_key_id: device.request.keyId } };
  }

  /** Revokes a device: signed by a device of the identity (`by.device`), or by an administrator. */
  async revoke(tx: StoreOps, input: { name: string; deviceId: string; version: number; at: number; by: { device: string; sig: string } | { admin: string } }): Promise<ChangeOutcome> {
    const { row, devices, label } = await this.prepare(tx, input.name, input.version, input.at);
    const target = devices.find((d) => d.id === input.deviceId);
    if (!target) throw new ApiError('KW_DIR_UNKNOWN_DEVICE', `${input.name} has no current device ${input.deviceId}`);
    const keys: DeviceKeys = { id: target.id, hpke: target.hpke, sign: target.sign, request: target.request };
    let by: IdentityValue['change']['by'];
    let sig: string | undefined;
    if ('device' in input.by) {
      const signerId = input.by.device;
      const signer = devices.find((d) => d.id === signerId);
      if (!signer) throw new ApiError('KW_DIR_NOT_A_DEVICE', `${signerId} is not a current device of ${input.name}`);
      try {
        verifyChange(signer.sign, input.by.sig, input.name, 'revoke', input.version, input.at, keys);
      } catch (e) {
        recordError(e);
      }
      by = { kind: 'device', id: signer.id };
      sig = input.by.sig;
    } else {
      by = { kind: 'admin', principal: input.by.admin };
    }
    const value: IdentityValue = {
      v: 1, name: input.name, devices: devices.filter((d) => d.id !== target.id),
      change: { op: 'revoke', version: input.version, at: input.at, device: keys, by, ...(sig !== undefined ? { sig } : {}) },
    };
    const r = await this.commit(tx, row, label, value, { revoke: keys });
    return { name: input.name, ...r, details: { device: target.id, by: by.kind === 'device' ? `device:${by.id}` : 'admin' } };
  }

  // --- groups ---------------------------------------------------------------------------------------

  /** Replaces a group's members (creating the group); each member must be an existing identity. */
  async setGroup(tx: StoreOps, input: { name: string; members: readonly string[]; by: string; version?: number }): Promise<ChangeOutcome> {
    let label: Uint8Array;
    try {
      label = entityLabel(input.name);
    } catch (e) {
      recordError(e);
    }
    if (!input.name.startsWith('group:')) throw new ApiError('KW_DIR_RECORD_INVALID', 'a group name is group:NAME');
    const members = [...new Set(input.members)].sort();
    if (members.length > 1000) throw new ApiError('KW_DIR_RECORD_INVALID', 'a group has at most 1000 members');
    for (const m of members) {
      if (m.startsWith('group:')) throw new ApiError('KW_DIR_RECORD_INVALID', 'groups do not nest');
      if ((await tx.getDirEntity(m)) === null) throw new ApiError('KW_DIR_UNKNOWN_ENTITY', `no identity ${m}`);
    }
    await tx.ktLock();
    const row = await tx.getDirEntity(input.name);
    const before = Array.isArray(row?.state.members) ? (row.state.members as string[]) : [];
    const now = this.now();
    const version = await tx.ktVersionCount(label!);
    if (input.version !== undefined && input.version !== version) throw new ApiError('KW_DIR_STALE_VERSION', `the next version of ${input.name} is ${version}, not ${input.version}`);
    const value: GroupValue = {
      v: 1, name: input.name, members,
      change: { op: 'group', version, at: now.getTime(), by: { kind: 'admin', principal: input.by }, added: members.filter((m) => !before.includes(m)), removed: before.filter((m) => !members.includes(m)) },
    };
    const { treeHead } = await this.append(tx, label!, version, encodeEntityValue(value));
    await tx.putDirEntity({ name: input.name, state: { members }, seq: (row?.seq ?? 0) + 1, updated: now });
    return { name: input.name, version, treeSize: treeHead.treeSize, details: { added: [...value.change.added], removed: [...value.change.removed], members: members.length } };
  }

  /** The entity row (for the admin views), or KW_DIR_UNKNOWN_ENTITY. */
  async entity(name: string): Promise<DirEntityRow> {
    const row = await this.opts.store.getDirEntity(name).catch(() => null);
    if (row === null) throw new ApiError('KW_DIR_UNKNOWN_ENTITY', `no ${name} in the directory`);
    return row;
  }

  /**
   * Item 5 of issue #6: is `keyId` a current device request key of the identity bound to
   * `principal`? `null` when the principal has no identity (the caller's policy decides).
   */
  async requestKeyIsDevice(principal: string, keyId: string, ops: StoreOps = this.opts.store): Promise<boolean | null> {
    const row = await ops.getDirEntityByPrincipal(principal);
    if (row === null) return null;
    return identityState(row).devices.some((d) => d.request.keyId === keyId);
  }

  /** Like {@link requestKeyIsDevice} for an HPKE recipient public key (raw bytes). */
  async recipientIsDevice(principal: string, publicKey: Uint8Array, ops: StoreOps = this.opts.store): Promise<boolean | null> {
    const row = await ops.getDirEntityByPrincipal(principal);
    if (row === null) return null;
    const k = b64(publicKey);
    return identityState(row).devices.some((d) => d.hpke.key === k);
  }
}
