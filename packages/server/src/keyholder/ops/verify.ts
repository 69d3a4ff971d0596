/**
 * `verify`: checks a `kw:v<N>:` Ed25519 signature against the version it
 * names. A malformed signature string is KW_INVALID_ARGUMENT; a well-formed
 * one that does not verify is `false`.
 *
 * @example
 * verify({ version: await load(versionOf(sig)), message, signature: sig }) // true
 */
import { KeyholderError } from '../errors.js';
import type { KeyVersion } from '../keys.js';
import { ed25519Verify } from '../primitives.js';
import { checkMessage } from './sign.js';
import { parseVersioned } from './versioned.js';

export interface VerifyParams {
  readonly version: KeyVersion;
  readonly message: Uint8Array;
  readonly signature: string;
}

export function verify(p: VerifyParams): boolean {
  const key = p.version.verifyingKey();
  const message = checkMessage(p.message);
  const { version, bytes } = parseVersioned(p.signature, 'the signature', 128);
  if (version !== p.version.ref.version) {
    throw new KeyholderError('KW_INVALID_ARGUMENT', `the signature names v${version}, but ${p.version.keyId} v${p.version.ref.version} was given: load the version it names`);
  }
  return ed25519Verify(key, message, bytes);
}
