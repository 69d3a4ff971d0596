/**
 * HSM-resident key versions (docs/hsm.md §HSM-resident keys, issue #5): keys
 * created with `--hsm-resident` on an HSM-wrapped deployment have every
 * version generated INSIDE the PKCS#11 token (CKA_SENSITIVE, never
 * extractable), and every operation on them runs in the HSM:
 *
 * | type          | in the HSM                     | operation                                |
 * |---------------|--------------------------------|------------------------------------------|
 * | `aes256`      | AES-256 secret key             | data keys (datakey/unwrap/rewrap) and `encrypt`/`decrypt` by CKM_AES_GCM |
 * | `ed25519`     | Ed25519 key pair               | `sign` by CKM_EDDSA (verify: the public key, in software) |
 * | `hmac-sha256` | generic secret, 32 bytes       | `mac` by CKM_SHA256_HMAC                 |
 *
 * The label of version N of `<ns>/<key>` is `keyward-<initId>/<ns>/<key>/v<N>`
 * (`/` never appears in a name, so labels are unambiguous). The store keeps,
 * in place of the wrapped material, only the marker `kwhsm:<label>`; the
 * keyholder never takes the label from the store: it recomputes it from the
 * reference (ns, key, version) and refuses a marker that names another
 * (KW_WRAPPED_KEY_MISMATCH), so a swapped store row cannot point a version at
 * another key's HSM object.
 *
 * Blobs made by a resident `aes256` version have the length and layout of
 * software ones (wrap.ts) so every length check and the envelope's `kms`
 * stanza stay as they are, with format byte 0x02:
 *
 *   iv   = random(12)
 *   aad  = wrapAad(purpose, { ns, key, version, context })      (the same AAD as software versions)
 *   blob = 0x02 ‖ iv ‖ 0^20 ‖ AES-256-GCM_HSM(label, iv, aad, plaintext) ‖ tag
 *
 * Any blob that does not open (another version, key, context, a damaged or a
 * software blob) is KW_WRAPPED_KEY_MISMATCH, as in software.
 */
import { VerifyingKey } from '@keyward/core';
import { HsmError, isHsmError } from '../hsm/errors.js';
import type { HsmKeyKind, Pkcs11Token } from '../hsm/token.js';
import { concat, utf8 } from './bytes.js';
import { KeyholderError } from './errors.js';
import { KeyVersion, type GeneratedVersion } from './keys.js';
import { ed25519PublicKey, equalCT, randomBytes } from './primitives.js';
import { parseArg, versionRefSchema, type KeyType, type VersionRef } from './schemas.js';
import { WRAP_OVERHEAD, WRAP_SALT_LENGTH, wrapAad } from './wrap.js';
import type { JsonObject } from './canonical-json.js';

/** The key types that can be HSM-resident, and the kind of HSM object each is. */
export const RESIDENT_KINDS: Readonly<Partial<Record<KeyType, HsmKeyKind>>> = Object.freeze({ aes256: 'aes', ed25519: 'ed25519', 'hmac-sha256': 'hmac' });
export const RESIDENT_TYPES = Object.keys(RESIDENT_KINDS) as KeyType[];
const MARKER_PREFIX = 'kwhsm:';
const MARKER_BYTES = utf8.encode(MARKER_PREFIX);
export const RESIDENT_WRAP_FORMAT = 0x02;
const IV_LENGTH = 12;

/** The HSM label of a resident version. */
export const residentLabel = (initId: string, ref: Pick<VersionRef, 'ns' | 'key' | 'version'>): string => `keyward-${initId}/${ref.ns}/${ref.key}/v${ref.version}`;

/** True when a stored "wrapped" value is a resident marker (software blobs start with 0x01). */
export function isResidentMarker(wrapped: Uint8Array): boolean {
  return wrapped.length > MARKER_BYTES.length && MARKER_BYTES.every((b, i) => wrapped[i] === b);
}

function kindOf(type: KeyType): HsmKeyKind {
  const kind = RESIDENT_KINDS[type];
  if (!kind) throw new KeyholderError('KW_INVALID_ARGUMENT', `${type} keys cannot be HSM-resident (only ${RESIDENT_TYPES.join(', ')})`);
  return kind;
}

/** Generates version `ref` inside the HSM; the store keeps the returned marker. KW_HSM_KEY_EXISTS if the label is taken. */
export async function generateResident(token: Pkcs11Token, initId: string, ref: VersionRef): Promise<GeneratedVersion> {
  const r = parseArg(versionRefSchema, ref, 'key version reference');
  const kind = kindOf(r.type);
  const label = residentLabel(initId, r);
  await token.generate(kind, label);
  const wrapped = utf8.encode(`${MARKER_PREFIX}${label}`);
  if (kind !== 'ed25519') return { ref: r, wrapped };
  const publicKey = await token.ed25519PublicKey(label);
  return { ref: r, wrapped, publicKey, publicKeyText: new VerifyingKey('ed25519', publicKey).toString() };
}

/** The label a stored marker must name for `ref` (KW_WRAPPED_KEY_MISMATCH otherwise). */
export function checkMarker(initId: string, ref: VersionRef, wrapped: Uint8Array): string {
  kindOf(ref.type);
  const label = residentLabel(initId, ref);
  if (!equalCT(wrapped, utf8.encode(`${MARKER_PREFIX}${label}`))) {
    throw new KeyholderError('KW_WRAPPED_KEY_MISMATCH', `the stored marker of ${ref.ns}/${ref.key} v${ref.version} does not name its HSM key`);
  }
  return label;
}

/**
 * A handle on a resident version: checks the marker, that the HSM holds the
 * key (KW_HSM_KEY_MISSING) and, for ed25519, that the stored public key is the
 * HSM pair's (KW_WRAPPED_KEY_MISMATCH).
 */
export async function loadResident(token: Pkcs11Token, initId: string, ref: VersionRef, wrapped: Uint8Array, storedPublicKey?: Uint8Array): Promise<KeyVersion> {
  const r = parseArg(versionRefSchema, ref, 'key version reference');
  const label = checkMarker(initId, r, wrapped);
  const kind = kindOf(r.type);
  if (!(await token.has(kind, label))) throw new HsmError('KW_HSM_KEY_MISSING', `the HSM holds no key for ${r.ns}/${r.key} v${r.version} (label '${label}')`);
  if (kind !== 'ed25519') return KeyVersion.resident(r, { token, label });
  const pub = await token.ed25519PublicKey(label);
  if (storedPublicKey === undefined || !equalCT(pub, storedPublicKey)) {
    throw new KeyholderError('KW_WRAPPED_KEY_MISMATCH', `the stored public key of ${r.ns}/${r.key} v${r.version} is not the HSM key pair's`);
  }
  return KeyVersion.resident(r, { token, label }, pub, ed25519PublicKey(pub), new VerifyingKey('ed25519', pub).toString());
}

/** Destroys the HSM object of a resident version (a missing one is already gone: destroy may be retried). */
export async function destroyResident(token: Pkcs11Token, initId: string, ref: VersionRef, wrapped: Uint8Array): Promise<void> {
  const label = checkMarker(initId, ref, wrapped);
  await token.destroy(kindOf(ref.type), label).catch((e: unknown) => {
    if (!isHsmError(e, 'KW_HSM_KEY_MISSING')) throw e;
  });
}

/** AES-256-GCM in the HSM under an `aes256` resident version, with wrap.ts's AAD: a blob of software length and layout, format 0x02. */
export async function residentWrap(v: KeyVersion, purpose: string, aad: JsonObject, plaintext: Uint8Array): Promise<Uint8Array> {
  const { token, label } = v.hsmKey('aes256');
  const iv = randomBytes(IV_LENGTH);
  const ct = await token.encryptGcm(label, iv, wrapAad(purpose, aad), plaintext);
  return concat(Uint8Array.of(RESIDENT_WRAP_FORMAT), iv, new Uint8Array(WRAP_SALT_LENGTH - IV_LENGTH), ct);
}

/** Opens what residentWrap made; every failure to authenticate is KW_WRAPPED_KEY_MISMATCH. */
export async function residentUnwrap(v: KeyVersion, purpose: string, aad: JsonObject, blob: Uint8Array): Promise<Uint8Array> {
  const { token, label } = v.hsmKey('aes256');
  const mismatch = (cause?: unknown) => new KeyholderError('KW_WRAPPED_KEY_MISMATCH', `the blob does not open under ${v.keyId} v${v.ref.version}`, cause === undefined ? {} : { cause });
  if (!(blob instanceof Uint8Array) || blob.length < WRAP_OVERHEAD || blob[0] !== RESIDENT_WRAP_FORMAT) throw mismatch();
  if (blob.subarray(1 + IV_LENGTH, 1 + WRAP_SALT_LENGTH).some((b) => b !== 0)) throw mismatch();
  try {
    return await token.decryptGcm(label, blob.subarray(1, 1 + IV_LENGTH), wrapAad(purpose, aad), blob.subarray(1 + WRAP_SALT_LENGTH));
  } catch (e) {
    if (isHsmError(e, 'KW_HSM_INTEGRITY')) throw mismatch(e);
    throw e;
  }
}

/** Wraps under a version, in software or in the HSM as the version is. */
export function wrapUnder(v: KeyVersion, purpose: string, aad: JsonObject, plaintext: Uint8Array, software: () => Uint8Array): Promise<Uint8Array> {
  return v.isResident ? residentWrap(v, purpose, aad, plaintext) : Promise.resolve().then(software);
}

/** Unwraps under a version, in software or in the HSM as the version is. */
export function unwrapUnder(v: KeyVersion, purpose: string, aad: JsonObject, blob: Uint8Array, software: () => Uint8Array): Promise<Uint8Array> {
  return v.isResident ? residentUnwrap(v, purpose, aad, blob) : Promise.resolve().then(software);
}
