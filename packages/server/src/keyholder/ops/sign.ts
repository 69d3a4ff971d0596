/**
 * `sign`: a plain Ed25519 signature (RFC 8032, over the message itself, so
 * anyone holding the version's public key verifies it with any Ed25519
 * library), written `kw:v<N>:<base64url(signature)>` so it names the version
 * to verify with.
 *
 * @example
 * const sig = sign({ version: v2, message: utf8.encode('release 1.4.0') }); // "kw:v2:…"
 */
import { KeyholderError, check } from '../errors.js';
import type { KeyVersion } from '../keys.js';
import { ed25519Sign } from '../primitives.js';
import { formatVersioned } from './versioned.js';

/** Largest message sign, verify and mac take (the keyholder protocol frames are ≤ 1 MiB). */
export const MAX_MESSAGE = 64 * 1024;

export function checkMessage(message: unknown): Uint8Array {
  check(message instanceof Uint8Array, 'the message must be bytes');
  if (message.length > MAX_MESSAGE) throw new KeyholderError('KW_LIMIT_EXCEEDED', `messages are at most ${MAX_MESSAGE} bytes; sign or MAC a digest of larger data`);
  return message;
}

export interface SignParams {
  readonly version: KeyVersion;
  readonly message: Uint8Array;
}

export function sign(p: SignParams): string {
  const key = p.version.signingKey();
  const message = checkMessage(p.message);
  return formatVersioned(p.version.ref.version, ed25519Sign(key, message));
}

/** sign for a version that may be HSM-resident: CKM_EDDSA in the HSM (the same RFC 8032 signature). */
export async function signAny(p: SignParams): Promise<string> {
  if (!p.version.isResident) return sign(p);
  const { token, label } = p.version.hsmKey('ed25519');
  const message = checkMessage(p.message);
  return formatVersioned(p.version.ref.version, await token.signEd25519(label, message));
}
