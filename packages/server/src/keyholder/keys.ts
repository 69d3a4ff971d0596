/**
 * Key versions: material born here, wrapped under the master key for the
 * store, and loaded back into in-memory handles the operations use.
 *
 *   wrapped = wrap(mk, "key-version", { ns, key, version, type }, material)
 *
 * | type          | material                      | public key                      |
 * |---------------|-------------------------------|---------------------------------|
 * | `aes256`      | 32 random bytes               | —                               |
 * | `hmac-sha256` | 32 random bytes (import: 16–256) | —                            |
 * | `ed25519`     | 32-byte seed (RFC 8032)       | 32 bytes, `kwed25519…`          |
 * | `x25519`      | 32-byte X25519 secret         | 32 bytes, `kwx25519…` (HPKE)    |
 * | `xwing`       | 32-byte X-Wing seed           | 1216 bytes, `kwxwing…` (HPKE)   |
 *
 * Because the type is in the AAD, a blob loaded under another type, key or
 * version fails (KW_WRAPPED_KEY_MISMATCH) before its bytes are interpreted.
 *
 * @example
 * const v1 = await generateVersion(mk, { ns: 'billing', key: 'orders', version: 1, type: 'aes256' });
 * // store v1.wrapped; later, after unseal:
 * const handle = await loadVersion(mk, { ns: 'billing', key: 'orders', version: 1, type: 'aes256' }, v1.wrapped);
 */
import { HpkeIdentity, VerifyingKey } from '@keyward/core';
import type { Pkcs11Token } from '../hsm/token.js';
import { KeyholderError, check } from './errors.js';
import {
  ed25519PrivateKey, ed25519PublicBytes, ed25519PublicKey, equalCT, randomBytes, secretKeyObject, wipe,
  type KeyObject, type SecretInput,
} from './primitives.js';
import { parseArg, versionRefSchema, type KeyType, type VersionRef } from './schemas.js';
import { unwrap, wrap } from './wrap.js';

export const KEY_VERSION_PURPOSE = 'key-version';
const GENERATED_LENGTH = 32;
const HMAC_IMPORT_RANGE = [16, 256] as const;

export interface GeneratedVersion {
  readonly ref: VersionRef;
  /** The material wrapped under the master key: what the store keeps. */
  readonly wrapped: Uint8Array;
  /** Raw public key for ed25519, x25519 and xwing versions. */
  readonly publicKey?: Uint8Array;
  /** Its Keyward string: `kwed25519…`, `kwx25519…`, `kwxwing…`. */
  readonly publicKeyText?: string;
}

type Material =
  | { readonly type: 'aes256' | 'hmac-sha256'; readonly key: KeyObject }
  | { readonly type: 'ed25519'; readonly privateKey: KeyObject; readonly publicKey: KeyObject }
  | { readonly type: 'x25519' | 'xwing'; readonly identity: HpkeIdentity };

function checkLength(type: KeyType, material: Uint8Array, importing: boolean): void {
  check(material instanceof Uint8Array, 'key material must be bytes');
  if (type === 'hmac-sha256' && importing) {
    const [min, max] = HMAC_IMPORT_RANGE;
    check(material.length >= min && material.length <= max, `an imported hmac-sha256 key is ${min} to ${max} bytes`);
  } else {
    check(material.length === GENERATED_LENGTH, `${type} key material is ${GENERATED_LENGTH} bytes`);
  }
}

/** Builds the in-memory form and the public key from raw material (which the caller wipes). */
async function materialize(type: KeyType, raw: Uint8Array): Promise<{ material: Material; publicKey?: Uint8Array; publicKeyText?: string }> {
  switch (type) {
    case 'aes256':
    case 'hmac-sha256':
      return { material: { type, key: secretKeyObject(raw) } };
    case 'ed25519': {
      const privateKey = ed25519PrivateKey(raw);
      const pub = ed25519PublicBytes(privateKey);
      return { material: { type, privateKey, publicKey: ed25519PublicKey(pub) }, publicKey: pub, publicKeyText: new VerifyingKey('ed25519', pub).toString() };
    }
    case 'x25519':
    case 'xwing': {
      const identity = await HpkeIdentity.fromSecretKey(type, raw);
      return { material: { type, identity }, publicKey: identity.publicKey.slice(), publicKeyText: (await identity.recipient()).toString() };
    }
  }
}

const refAad = (ref: VersionRef) => ({ ns: ref.ns, key: ref.key, version: ref.version, type: ref.type });

/**
 * Wraps existing material as a key version (bring-your-own-key, and known-
 * answer tests). Lengths are checked per type; hmac-sha256 accepts 16–256 bytes.
 */
export async function importVersion(masterKey: SecretInput, ref: VersionRef, material: Uint8Array): Promise<GeneratedVersion> {
  const r = parseArg(versionRefSchema, ref, 'key version reference');
  checkLength(r.type, material, true);
  const { publicKey, publicKeyText } = await materialize(r.type, material);
  const wrapped = wrap(masterKey, KEY_VERSION_PURPOSE, refAad(r), material);
  return publicKey ? { ref: r, wrapped, publicKey, publicKeyText } : { ref: r, wrapped };
}

/** Generates fresh material for a new key version and returns it wrapped (with its public key, if any). */
export async function generateVersion(masterKey: SecretInput, ref: VersionRef): Promise<GeneratedVersion> {
  const r = parseArg(versionRefSchema, ref, 'key version reference');
  const material = randomBytes(GENERATED_LENGTH);
  try {
    return await importVersion(masterKey, r, material);
  } finally {
    wipe(material);
  }
}

/**
 * Unwraps a stored version into a handle. With `publicKey`, also checks that
 * the stored public key is the one the material has (so the store cannot pair
 * a version with someone else's public key).
 */
export async function loadVersion(masterKey: SecretInput, ref: VersionRef, wrapped: Uint8Array, opts: { publicKey?: Uint8Array } = {}): Promise<KeyVersion> {
  const r = parseArg(versionRefSchema, ref, 'key version reference');
  const raw = unwrap(masterKey, KEY_VERSION_PURPOSE, refAad(r), wrapped);
  try {
    try {
      checkLength(r.type, raw, true);
    } catch (e) {
      throw new KeyholderError('KW_INTERNAL', `${r.ns}/${r.key} v${r.version} unwrapped to material of the wrong length for ${r.type}`, { cause: e });
    }
    const m = await materialize(r.type, raw);
    if (opts.publicKey !== undefined && !(m.publicKey && equalCT(m.publicKey, opts.publicKey))) {
      throw new KeyholderError('KW_WRAPPED_KEY_MISMATCH', `the stored public key of ${r.ns}/${r.key} v${r.version} is not the one its material has`);
    }
    return new KeyVersion(r, m.material, m.publicKey, m.publicKeyText);
  } finally {
    wipe(raw);
  }
}

/**
 * An unwrapped key version. Its secret material stays inside (OpenSSL
 * KeyObjects, or core's HpkeIdentity); the accessors hand it to ops/ after
 * checking the type (KW_KEY_TYPE_MISMATCH). Printing or serialising a handle
 * shows only its reference.
 */
/** Where an HSM-resident version's key is (hsm-resident.ts). */
export interface HsmKeyRef {
  readonly token: Pkcs11Token;
  readonly label: string;
}

export class KeyVersion {
  #material: Material | null;
  /** HSM-resident versions: the key in the HSM (no material here), and the Ed25519 public key for verify. */
  #hsm: HsmKeyRef | null = null;
  #hsmPublic: KeyObject | null = null;
  #disposed = false;

  /** @internal made by loadVersion. */
  constructor(readonly ref: Readonly<VersionRef>, material: Material | null, readonly publicKey?: Uint8Array, readonly publicKeyText?: string) {
    this.#material = material;
  }

  /** @internal made by hsm-resident.ts loadResident: a version whose key never leaves the HSM. */
  static resident(ref: Readonly<VersionRef>, hsm: HsmKeyRef, publicKey?: Uint8Array, publicKeyObject?: KeyObject, publicKeyText?: string): KeyVersion {
    const v = new KeyVersion(ref, null, publicKey, publicKeyText);
    v.#hsm = hsm;
    v.#hsmPublic = publicKeyObject ?? null;
    return v;
  }

  /** True when the key is in the HSM (every operation on it is the HSM's). */
  get isResident(): boolean { return this.#hsm !== null; }

  /** @internal the HSM key of a resident version of type `type`. */
  hsmKey(type: 'aes256' | 'ed25519' | 'hmac-sha256'): HsmKeyRef {
    if (this.#disposed) throw new KeyholderError('KW_SEALED', `${this.keyId} v${this.ref.version} was disposed (the keyholder sealed)`);
    if (this.ref.type !== type) throw new KeyholderError('KW_KEY_TYPE_MISMATCH', `${this.keyId} v${this.ref.version} is ${this.ref.type}; this operation needs ${type}`);
    if (!this.#hsm) throw new KeyholderError('KW_INTERNAL', `${this.keyId} v${this.ref.version} is not HSM-resident`);
    return this.#hsm;
  }

  get type(): KeyType { return this.ref.type; }
  /** `<ns>/<key>`. */
  get keyId(): string { return `${this.ref.ns}/${this.ref.key}`; }

  private take<T extends KeyType>(...types: T[]): Extract<Material, { type: T }> {
    const m = this.#material;
    if (this.#disposed || (!m && !this.#hsm)) throw new KeyholderError('KW_SEALED', `${this.keyId} v${this.ref.version} was disposed (the keyholder sealed)`);
    if (!(types as KeyType[]).includes(this.ref.type)) {
      throw new KeyholderError('KW_KEY_TYPE_MISMATCH', `${this.keyId} v${this.ref.version} is ${this.ref.type}; this operation needs ${types.join(' or ')}`);
    }
    // Fail closed: a software path never gets at an HSM-resident version.
    if (!m) throw new KeyholderError('KW_KEY_TYPE_MISMATCH', `${this.keyId} v${this.ref.version} is HSM-resident: its key is in the HSM and this operation does not run there`);
    if (!(types as KeyType[]).includes(m.type)) {
      throw new KeyholderError('KW_KEY_TYPE_MISMATCH', `${this.keyId} v${this.ref.version} is ${m.type}; this operation needs ${types.join(' or ')}`);
    }
    return m as Extract<Material, { type: T }>;
  }

  /** Checks the type without touching material. */
  requireType(...types: KeyType[]): void {
    if (this.#hsm && !this.#disposed) {
      if (!types.includes(this.ref.type)) throw new KeyholderError('KW_KEY_TYPE_MISMATCH', `${this.keyId} v${this.ref.version} is ${this.ref.type}; this operation needs ${types.join(' or ')}`);
      return;
    }
    this.take(...types);
  }

  /** @internal the secret KeyObject of an aes256 or hmac-sha256 version. */
  secretKey(type: 'aes256' | 'hmac-sha256'): KeyObject { return this.take(type).key; }
  /** @internal the Ed25519 private key. */
  signingKey(): KeyObject { return this.take('ed25519').privateKey; }
  /** The Ed25519 public key. */
  verifyingKey(): KeyObject {
    if (this.#hsm && this.#hsmPublic && !this.#disposed && this.ref.type === 'ed25519') return this.#hsmPublic;
    return this.take('ed25519').publicKey;
  }
  /** @internal the HPKE identity of an x25519 or xwing version. */
  hpkeIdentity(): HpkeIdentity { return this.take('x25519', 'xwing').identity; }

  /** Drops the material (on seal). Later use is KW_SEALED. JS cannot promise the bytes are zeroed; OpenSSL frees them. */
  dispose(): void {
    this.#material = null;
    this.#hsm = null;
    this.#disposed = true;
  }

  toJSON(): object { return { ref: this.ref, publicKey: this.publicKeyText }; }
  [Symbol.for('nodejs.util.inspect.custom')](): string { return `KeyVersion(${this.keyId} v${this.ref.version} ${this.ref.type})`; }
}
