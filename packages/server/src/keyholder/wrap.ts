/**
 * The wrapping construction (docs/key-service-crypto.md §Wrapping), used for
 * key versions under the master key, data keys under an `aes256` version and
 * small payloads (`encrypt`):
 *
 *   salt = random(32)
 *   k    = HKDF-SHA256(ikm = kek, salt = salt, info = "keyward/v1 wrap " ‖ purpose, L = 32)
 *   aad  = RFC 8785 canonical JSON of { ...aadObject, purpose }
 *   blob = 0x01 ‖ salt ‖ AES-256-GCM(k, nonce = 0^12, aad, plaintext)
 *
 * A fresh key per wrap means the fixed nonce is never reused and no KEK nears
 * the AES-GCM invocation limit. The purpose is bound twice (HKDF info and
 * AAD), the key identity through the AAD. Every failure to unwrap, whatever
 * its cause, is one error: KW_WRAPPED_KEY_MISMATCH.
 *
 * @example
 * const blob = wrap(mk, 'key-version', { ns: 'billing', key: 'orders', version: 1, type: 'aes256' }, material);
 * const back = unwrap(mk, 'key-version', { ns: 'billing', key: 'orders', version: 1, type: 'aes256' }, blob);
 */
import { canonicalJsonBytes, type JsonObject } from './canonical-json.js';
import { concat, utf8 } from './bytes.js';
import { KeyholderError, check } from './errors.js';
import { aesGcmOpen, aesGcmSeal, hkdfSha256, randomBytes, wipe, type KeyObject, type SecretInput } from './primitives.js';

export const WRAP_FORMAT = 0x01;
export const WRAP_SALT_LENGTH = 32;
export const WRAP_TAG_LENGTH = 16;
/** Bytes a wrap adds to its plaintext: format byte, salt, GCM tag. */
export const WRAP_OVERHEAD = 1 + WRAP_SALT_LENGTH + WRAP_TAG_LENGTH;
const KEK_LENGTH = 32;
const NONCE = new Uint8Array(12);
const INFO_PREFIX = 'keyward/v1 wrap ';

/** Purposes are short lowercase labels: they are written into HKDF info and the AAD. */
const PURPOSE = /^[a-z][a-z0-9-]{0,31}$/;

function checkKek(kek: SecretInput): void {
  if (kek instanceof Uint8Array) {
    check(kek.length === KEK_LENGTH, `the wrapping key must be ${KEK_LENGTH} bytes`);
  } else {
    const k: KeyObject = kek;
    check(k.type === 'secret' && k.symmetricKeySize === KEK_LENGTH, `the wrapping key must be a ${KEK_LENGTH}-byte secret key`);
  }
}

/** The AAD bytes for `purpose` and `aad`: canonical JSON of the object with `purpose` added. */
export function wrapAad(purpose: string, aad: JsonObject): Uint8Array {
  check(PURPOSE.test(purpose), `invalid wrap purpose "${purpose}"`);
  check(typeof aad === 'object' && aad !== null && !Array.isArray(aad), 'the AAD must be an object');
  check(!Object.hasOwn(aad, 'purpose'), 'the AAD object must not carry "purpose": wrap adds it');
  return canonicalJsonBytes({ ...aad, purpose });
}

function deriveKey(kek: SecretInput, salt: Uint8Array, purpose: string): Uint8Array {
  return hkdfSha256(kek, salt, utf8.encode(INFO_PREFIX + purpose), 32);
}

/** Wraps `plaintext` under `kek` for `purpose`, bound to `aad`. */
export function wrap(kek: SecretInput, purpose: string, aad: JsonObject, plaintext: Uint8Array): Uint8Array {
  checkKek(kek);
  check(plaintext instanceof Uint8Array, 'the plaintext must be bytes');
  const aadBytes = wrapAad(purpose, aad);
  const salt = randomBytes(WRAP_SALT_LENGTH);
  const k = deriveKey(kek, salt, purpose);
  try {
    return concat(Uint8Array.of(WRAP_FORMAT), salt, aesGcmSeal(k, NONCE, aadBytes, plaintext));
  } finally {
    wipe(k);
  }
}

/**
 * Unwraps a blob made by `wrap` with the same kek, purpose and AAD object.
 * Throws KW_WRAPPED_KEY_MISMATCH on any difference or damage; returns a fresh
 * buffer the caller wipes.
 */
export function unwrap(kek: SecretInput, purpose: string, aad: JsonObject, blob: Uint8Array): Uint8Array {
  checkKek(kek);
  check(blob instanceof Uint8Array, 'the wrapped blob must be bytes');
  const aadBytes = wrapAad(purpose, aad);
  if (blob.length < WRAP_OVERHEAD) throw new KeyholderError('KW_WRAPPED_KEY_MISMATCH', `wrapped blob is too short (${blob.length} bytes)`);
  if (blob[0] !== WRAP_FORMAT) throw new KeyholderError('KW_WRAPPED_KEY_MISMATCH', `unknown wrap format 0x${blob[0]!.toString(16).padStart(2, '0')}`);
  const salt = blob.subarray(1, 1 + WRAP_SALT_LENGTH);
  const k = deriveKey(kek, salt, purpose);
  try {
    const pt = aesGcmOpen(k, NONCE, aadBytes, blob.subarray(1 + WRAP_SALT_LENGTH));
    if (!pt) throw new KeyholderError('KW_WRAPPED_KEY_MISMATCH', `wrapped blob does not open for purpose "${purpose}" and this key, version and context`);
    return pt;
  } finally {
    wipe(k);
  }
}
