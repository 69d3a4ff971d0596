/**
 * The directory's records (issue #6; docs/directory.md §Identities and
 * devices): what a directory label's value holds and what devices sign.
 * Shared by the key service (which checks every change before it enters the
 * KEYTRANS log) and by clients (which check every value they resolve).
 *
 * - Labels are the UTF-8 entity names: `user:NAME`, `service:NAME`, `group:NAME`.
 * - An identity's value is {@link IdentityValue}: its current devices (each
 *   with an HPKE encryption key, an Ed25519 signing key and its RFC 9421
 *   request-signing key for the key service) and the change that produced it.
 * - Every device change is signed with Ed25519 over {@link changeMessage}:
 *   by the new device itself (proof of possession) when it enrolls or is
 *   approved, additionally by an existing device when approved, and by an
 *   existing device when it revokes one. An administrator's revocation and
 *   group changes carry the administrator's principal instead (and are in
 *   the audit log).
 * - The message binds the label version the change creates, so a signature
 *   cannot be replayed into another version.
 *
 * Pure; runs in Node and browsers.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { base64urlnopad } from '@scure/base';

/** HPKE recipient types a device may publish. */
export const DEVICE_HPKE_ALGS = ['x25519', 'xwing'] as const;
export type DeviceHpkeAlg = (typeof DEVICE_HPKE_ALGS)[number];

/** Raw HPKE public key lengths: X25519 and X-Wing (ML-KEM-768 + X25519). */
const HPKE_KEY_LENGTH: Readonly<Record<DeviceHpkeAlg, number>> = { x25519: 32, xwing: 1216 };

/** An entity name as the directory accepts it. */
export const ENTITY_NAME = /^(user|service|group):[a-z0-9][a-z0-9._-]{0,62}$/;
/** A device id. */
export const DEVICE_ID = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const KEY_ID = /^[\x21-\x7e]{1,255}$/;

/** A device's public keys (base64url without padding). */
export interface DeviceKeys {
  readonly id: string;
  readonly hpke: { readonly alg: DeviceHpkeAlg; readonly key: string };
  /** Ed25519 public key: signs directory changes (and whatever the application signs). */
  readonly sign: string;
  /** RFC 9421 request-signing key for the key service (Ed25519), under `keyId`. */
  readonly request: { readonly keyId: string; readonly key: string };
}

/** A device as published: its keys, when and by what it was added. */
export interface DeviceRecord extends DeviceKeys {
  readonly added: number;
  /** `token:ID` (first device), `device:ID` (approved by that device). */
  readonly addedBy: string;
}

/** Who made a change. */
export type ChangeSigner = { readonly kind: 'token'; readonly id: string } | { readonly kind: 'device'; readonly id: string } | { readonly kind: 'admin'; readonly principal: string };

/** The change that produced a version. */
export interface IdentityChange {
  readonly op: 'enroll' | 'approve' | 'revoke';
  /** The label version this change created. */
  readonly version: number;
  readonly at: number;
  /** The device added (enroll, approve) or revoked. */
  readonly device: DeviceKeys;
  readonly by: ChangeSigner;
  /** The new device's signature (enroll, approve). */
  readonly pop?: string;
  /** The signing device's signature (approve, revoke by device). */
  readonly sig?: string;
}

/** The value of an identity label. */
export interface IdentityValue {
  readonly v: 1;
  readonly name: string;
  readonly devices: readonly DeviceRecord[];
  readonly change: IdentityChange;
}

/** The value of a group label. */
export interface GroupValue {
  readonly v: 1;
  readonly name: string;
  readonly members: readonly string[];
  readonly change: { readonly op: 'group'; readonly version: number; readonly at: number; readonly by: ChangeSigner; readonly added: readonly string[]; readonly removed: readonly string[] };
}

/** Why a record was refused: the directory's stable codes (docs/errors.md). */
export class DirectoryRecordError extends Error {
  constructor(
    readonly code: 'KW_DIR_RECORD_INVALID' | 'KW_DIR_BAD_SIGNATURE',
    message: string,
  ) {
    super(message);
    this.name = 'DirectoryRecordError';
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

function bytes(s: string, what: string, len?: number): Uint8Array {
  let b: Uint8Array;
  try {
    b = base64urlnopad.decode(s);
  } catch {
    throw new DirectoryRecordError('KW_DIR_RECORD_INVALID', `${what} is not base64url`);
  }
  if (len !== undefined && b.length !== len) throw new DirectoryRecordError('KW_DIR_RECORD_INVALID', `${what} is not ${len} bytes`);
  return b;
}

/**
 * Checks a device's keys (shape, lengths, encodings) and returns a copy with only the known fields.
 *
 * @example
 * const keys = checkDeviceKeys(JSON.parse(text));
 */
export function checkDeviceKeys(d: unknown): DeviceKeys {
  const bad = (m: string): never => {
    throw new DirectoryRecordError('KW_DIR_RECORD_INVALID', m);
  };
  if (typeof d !== 'object' || d === null) bad('a device is an object');
  const o = d as Record<string, unknown>;
  const hpke = o.hpke as Record<string, unknown> | undefined;
  const request = o.request as Record<string, unknown> | undefined;
  if (typeof o.id !== 'string' || !DEVICE_ID.test(o.id)) bad('device id: lower-case letters, digits, . _ -, at most 63');
  if (typeof hpke !== 'object' || hpke === null || !DEVICE_HPKE_ALGS.includes(hpke.alg as DeviceHpkeAlg) || typeof hpke.key !== 'string') bad('device hpke: { alg: x25519|xwing, key }');
  if (typeof o.sign !== 'string') bad('device sign key missing');
  if (typeof request !== 'object' || request === null || typeof request.keyId !== 'string' || !KEY_ID.test(request.keyId) || typeof request.key !== 'string') bad('device request key: { keyId, key }');
  const alg = hpke!.alg as DeviceHpkeAlg;
  bytes(hpke!.key as string, 'hpke key', HPKE_KEY_LENGTH[alg]);
  bytes(o.sign as string, 'sign key', 32);
  bytes(request!.key as string, 'request key', 32);
  return { id: o.id as string, hpke: { alg, key: hpke!.key as string }, sign: o.sign as string, request: { keyId: request!.keyId as string, key: request!.key as string } };
}

/**
 * The bytes a device signs for a change: a fixed context string and a JSON array of the
 * change's fields in a fixed order (JSON.stringify of strings and numbers is deterministic).
 *
 * @example
 * const sig = ed25519.sign(changeMessage('user:alice', 'enroll', 0, at, keys), signSeed);
 */
export function changeMessage(entity: string, op: IdentityChange['op'], version: number, at: number, device: DeviceKeys): Uint8Array {
  return enc.encode(
    `keyward/directory/change/v1\n${JSON.stringify([entity, op, version, at, device.id, device.hpke.alg, device.hpke.key, device.sign, device.request.keyId, device.request.key])}`,
  );
}

/**
 * Signs a change with a device's Ed25519 signing seed (32 bytes); base64url.
 *
 * @example
 * const sig = signChange(seed, 'user:alice', 'revoke', 3, Date.now(), lostDevice);
 */
export function signChange(seed: Uint8Array, entity: string, op: IdentityChange['op'], version: number, at: number, device: DeviceKeys): string {
  return base64urlnopad.encode(ed25519.sign(changeMessage(entity, op, version, at, device), seed));
}

/**
 * Verifies a change signature under a device's published `sign` key; throws `KW_DIR_BAD_SIGNATURE`.
 *
 * @example
 * verifyChange(approver.sign, sig, 'user:alice', 'approve', 1, at, newDevice);
 */
export function verifyChange(signKey: string, sig: string | undefined, entity: string, op: IdentityChange['op'], version: number, at: number, device: DeviceKeys): void {
  let ok = false;
  try {
    ok = sig !== undefined && ed25519.verify(bytes(sig, 'signature', 64), changeMessage(entity, op, version, at, device), bytes(signKey, 'sign key', 32), { zip215: false });
  } catch {
    ok = false;
  }
  if (!ok) throw new DirectoryRecordError('KW_DIR_BAD_SIGNATURE', `the ${op} signature for device ${device.id} of ${entity} does not verify`);
}

/**
 * The label of an entity.
 *
 * @example
 * entityLabel('user:alice')
 */
export function entityLabel(name: string): Uint8Array {
  if (!ENTITY_NAME.test(name)) throw new DirectoryRecordError('KW_DIR_RECORD_INVALID', `${JSON.stringify(name)} is not user:NAME, service:NAME or group:NAME`);
  return enc.encode(name);
}

/**
 * Encodes a label value (JSON, UTF-8). Commitments cover these exact bytes.
 *
 * @example
 * const value = encodeEntityValue(identity);
 */
export function encodeEntityValue(v: IdentityValue | GroupValue): Uint8Array {
  return enc.encode(JSON.stringify(v));
}

/**
 * Decodes and checks an identity value for `name` at `version`: every device's keys, and the
 * change's own signatures (a new device's proof of possession; a device signer's signature, when
 * the signer is a device listed in `previous`). Throws `KW_DIR_RECORD_INVALID` / `KW_DIR_BAD_SIGNATURE`.
 *
 * @example
 * const id = decodeIdentityValue(value, 'user:alice', 2, previousValue);
 */
export function decodeIdentityValue(value: Uint8Array, name: string, version: number, previous?: IdentityValue): IdentityValue {
  const bad = (m: string): never => {
    throw new DirectoryRecordError('KW_DIR_RECORD_INVALID', m);
  };
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(dec.decode(value)) as Record<string, unknown>;
  } catch {
    return bad(`the value of ${name} is not JSON`);
  }
  if (typeof o !== 'object' || o === null || o.v !== 1 || o.name !== name || !Array.isArray(o.devices)) bad(`the value is not an identity record of ${name}`);
  const devices = (o.devices as unknown[]).map((d) => {
    const k = checkDeviceKeys(d);
    const r = d as Record<string, unknown>;
    if (typeof r.added !== 'number' || typeof r.addedBy !== 'string') bad('a device record lacks added/addedBy');
    return { ...k, added: r.added as number, addedBy: r.addedBy as string };
  });
  const c = o.change as Record<string, unknown> | undefined;
  if (typeof c !== 'object' || c === null || !['enroll', 'approve', 'revoke'].includes(c.op as string) || c.version !== version || typeof c.at !== 'number') {
    bad(`the change of ${name} v${version} is malformed or for another version`);
  }
  const change = c as unknown as IdentityChange;
  const device = checkDeviceKeys(change.device);
  const by = change.by;
  if (change.op !== 'revoke') {
    verifyChange(device.sign, change.pop, name, change.op, version, change.at, device);
    if (!devices.some((d) => d.id === device.id && d.sign === device.sign)) bad('the added device is not listed');
  } else if (devices.some((d) => d.id === device.id)) bad('the revoked device is still listed');
  if (by.kind === 'device') {
    const signer = previous?.devices.find((d) => d.id === by.id);
    if (previous && !signer) throw new DirectoryRecordError('KW_DIR_BAD_SIGNATURE', `signer ${by.id} is not a device of ${name}`);
    if (signer) verifyChange(signer.sign, change.sig, name, change.op, version, change.at, device);
  }
  return { v: 1, name, devices, change: { ...change, device } };
}

/**
 * Decodes a group value for `name`.
 *
 * @example
 * const g = decodeGroupValue(value, 'group:auditors');
 */
export function decodeGroupValue(value: Uint8Array, name: string): GroupValue {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(dec.decode(value)) as Record<string, unknown>;
  } catch {
    throw new DirectoryRecordError('KW_DIR_RECORD_INVALID', `the value of ${name} is not JSON`);
  }
  if (typeof o !== 'object' || o === null || o.v !== 1 || o.name !== name || !Array.isArray(o.members) || !o.members.every((m) => typeof m === 'string' && ENTITY_NAME.test(m) && !m.startsWith('group:'))) {
    throw new DirectoryRecordError('KW_DIR_RECORD_INVALID', `the value is not a group record of ${name}`);
  }
  return o as unknown as GroupValue;
}
