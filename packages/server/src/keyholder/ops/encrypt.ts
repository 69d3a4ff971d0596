/**
 * `encrypt`: small payloads (≤ 4 KiB: secrets, tokens, column values) sealed
 * directly under an `aes256` version, with the wrapping construction:
 *
 *   ciphertext = "kw:v<N>:" ‖ base64url(wrap(version key, "encrypt", { ns, key, version, context }, plaintext))
 *
 * Larger data belongs in an envelope with a data key (`datakey`).
 *
 * @example
 * const ct = encrypt({ version: v3, plaintext: utf8.encode('s3cr3t'), context: { user: '42' } }); // "kw:v3:AQ…"
 */
import { KeyholderError, check } from '../errors.js';
import type { KeyVersion } from '../keys.js';
import type { Context, VersionRef } from '../schemas.js';
import { wrap } from '../wrap.js';
import { checkContext } from './caller.js';
import { formatVersioned } from './versioned.js';
import { residentWrap } from '../hsm-resident.js';

export const ENCRYPT_PURPOSE = 'encrypt';
/** Largest plaintext `encrypt` accepts. */
export const MAX_ENCRYPT_PLAINTEXT = 4096;

export const encryptAad = (ref: VersionRef, context: Context) => ({ ns: ref.ns, key: ref.key, version: ref.version, context });

export interface EncryptParams {
  readonly version: KeyVersion;
  readonly plaintext: Uint8Array;
  readonly context?: Context;
}

export function encrypt(p: EncryptParams): string {
  const kek = p.version.secretKey('aes256');
  check(p.plaintext instanceof Uint8Array, 'the plaintext must be bytes');
  if (p.plaintext.length > MAX_ENCRYPT_PLAINTEXT) {
    throw new KeyholderError('KW_LIMIT_EXCEEDED', `encrypt takes at most ${MAX_ENCRYPT_PLAINTEXT} bytes (got ${p.plaintext.length}); seal larger data with a data key`);
  }
  const context = checkContext(p.context);
  const ref = p.version.ref;
  return formatVersioned(ref.version, wrap(kek, ENCRYPT_PURPOSE, encryptAad(ref, context), p.plaintext));
}

/** encrypt for a version that may be HSM-resident: AES-256-GCM in the HSM, same AAD and text form. */
export async function encryptAny(p: EncryptParams): Promise<string> {
  if (!p.version.isResident) return encrypt(p);
  p.version.hsmKey('aes256');
  check(p.plaintext instanceof Uint8Array, 'the plaintext must be bytes');
  if (p.plaintext.length > MAX_ENCRYPT_PLAINTEXT) {
    throw new KeyholderError('KW_LIMIT_EXCEEDED', `encrypt takes at most ${MAX_ENCRYPT_PLAINTEXT} bytes (got ${p.plaintext.length}); seal larger data with a data key`);
  }
  const context = checkContext(p.context);
  const ref = p.version.ref;
  return formatVersioned(ref.version, await residentWrap(p.version, ENCRYPT_PURPOSE, encryptAad(ref, context), p.plaintext));
}
