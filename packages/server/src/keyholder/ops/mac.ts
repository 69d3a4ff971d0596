/**
 * `mac`: HMAC-SHA256 (RFC 2104) of the message under an `hmac-sha256`
 * version, written `kw:v<N>:<base64url(tag)>`; `verifyMac` recomputes it and
 * compares in constant time.
 *
 * @example
 * const tag = mac({ version: v1, message }); // "kw:v1:…"
 * verifyMac({ version: v1, message, mac: tag }) // true
 */
import { KeyholderError } from '../errors.js';
import type { KeyVersion } from '../keys.js';
import { equalCT, hmacSha256 } from '../primitives.js';
import { checkMessage } from './sign.js';
import { formatVersioned, parseVersioned } from './versioned.js';

export interface MacParams {
  readonly version: KeyVersion;
  readonly message: Uint8Array;
}

export function mac(p: MacParams): string {
  const key = p.version.secretKey('hmac-sha256');
  return formatVersioned(p.version.ref.version, hmacSha256(key, checkMessage(p.message)));
}

export function verifyMac(p: MacParams & { readonly mac: string }): boolean {
  const key = p.version.secretKey('hmac-sha256');
  const message = checkMessage(p.message);
  const { version, bytes } = parseVersioned(p.mac, 'the MAC', 64);
  if (version !== p.version.ref.version) {
    throw new KeyholderError('KW_INVALID_ARGUMENT', `the MAC names v${version}, but ${p.version.keyId} v${p.version.ref.version} was given: load the version it names`);
  }
  return equalCT(hmacSha256(key, message), bytes);
}

/** mac / verifyMac for a version that may be HSM-resident: CKM_SHA256_HMAC in the HSM. */
export async function macAny(p: MacParams): Promise<string> {
  if (!p.version.isResident) return mac(p);
  const { token, label } = p.version.hsmKey('hmac-sha256');
  return formatVersioned(p.version.ref.version, await token.hmacSha256(label, checkMessage(p.message)));
}

export async function verifyMacAny(p: MacParams & { readonly mac: string }): Promise<boolean> {
  if (!p.version.isResident) return verifyMac(p);
  const { token, label } = p.version.hsmKey('hmac-sha256');
  const message = checkMessage(p.message);
  const { version, bytes } = parseVersioned(p.mac, 'the MAC', 64);
  if (version !== p.version.ref.version) {
    throw new KeyholderError('KW_INVALID_ARGUMENT', `the MAC names v${version}, but ${p.version.keyId} v${p.version.ref.version} was given: load the version it names`);
  }
  return equalCT(await token.hmacSha256(label, message), bytes);
}
