/**
 * `decrypt`: the inverse of `encrypt`. Load the version the ciphertext names
 * (`versionOf(ciphertext)`), then decrypt; a ciphertext naming another
 * version, made under another key, or with another context is
 * KW_WRAPPED_KEY_MISMATCH and returns nothing.
 *
 * @example
 * const pt = decrypt({ version: await load(versionOf(ct)), ciphertext: ct, context: { user: '42' } });
 */
import { KeyholderError } from '../errors.js';
import type { KeyVersion } from '../keys.js';
import type { Context } from '../schemas.js';
import { WRAP_OVERHEAD, unwrap } from '../wrap.js';
import { checkContext } from './caller.js';
import { ENCRYPT_PURPOSE, MAX_ENCRYPT_PLAINTEXT, encryptAad } from './encrypt.js';
import { parseVersioned } from './versioned.js';
import { residentUnwrap } from '../hsm-resident.js';

/** `kw:v2147483647:` plus the base64url of the largest blob. */
const MAX_CIPHERTEXT_TEXT = 14 + Math.ceil(((MAX_ENCRYPT_PLAINTEXT + WRAP_OVERHEAD) * 4) / 3);

export interface DecryptParams {
  readonly version: KeyVersion;
  readonly ciphertext: string;
  readonly context?: Context;
}

export function decrypt(p: DecryptParams): Uint8Array {
  const kek = p.version.secretKey('aes256');
  const context = checkContext(p.context);
  const { version, bytes } = parseVersioned(p.ciphertext, 'the ciphertext', MAX_CIPHERTEXT_TEXT);
  const ref = p.version.ref;
  if (version !== ref.version) {
    throw new KeyholderError('KW_WRAPPED_KEY_MISMATCH', `the ciphertext names v${version}, but ${p.version.keyId} v${ref.version} was given`);
  }
  return unwrap(kek, ENCRYPT_PURPOSE, encryptAad(ref, context), bytes);
}

/** decrypt for a version that may be HSM-resident. */
export async function decryptAny(p: DecryptParams): Promise<Uint8Array> {
  if (!p.version.isResident) return decrypt(p);
  p.version.hsmKey('aes256');
  const context = checkContext(p.context);
  const { version, bytes } = parseVersioned(p.ciphertext, 'the ciphertext', MAX_CIPHERTEXT_TEXT);
  const ref = p.version.ref;
  if (version !== ref.version) {
    throw new KeyholderError('KW_WRAPPED_KEY_MISMATCH', `the ciphertext names v${version}, but ${p.version.keyId} v${ref.version} was given`);
  }
  return residentUnwrap(p.version, ENCRYPT_PURPOSE, encryptAad(ref, context), bytes);
}
