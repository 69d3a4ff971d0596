/**
 * `datakey`: a fresh 32-byte data key, returned wrapped under an `aes256`
 * version (what the envelope's `kms` stanza stores) and, for the caller,
 * HPKE-sealed to the recipient named in its signed request (caller.ts).
 *
 *   wrapped = wrap(version key, "datakey", { ns, key, version, context }, data key)
 *
 * The plaintext data key is returned only when `releasePlaintext` is set,
 * which the keyholder does only when the signed policy allows it.
 *
 * @example
 * const { wrapped, sealed } = await datakey({ version: v1, context: { table: 'orders' }, requestHash, recipient: 'kwx25519…' });
 */
import { KeyholderError, check } from '../errors.js';
import type { KeyVersion } from '../keys.js';
import { randomBytes, wipe } from '../primitives.js';
import type { Context, VersionRef } from '../schemas.js';
import { checkContext, checkRequestHash, parseCallerRecipient, sealToCaller } from './caller.js';
import { WRAP_OVERHEAD, wrap } from '../wrap.js';
import { wrapUnder } from '../hsm-resident.js';

export const DATA_KEY_LENGTH = 32;
export const DATAKEY_PURPOSE = 'datakey';

/** The AAD object of a wrapped data key. */
export const dataKeyAad = (ref: VersionRef, context: Context) => ({ ns: ref.ns, key: ref.key, version: ref.version, context });

/** A wrapped data key is exactly format ‖ salt ‖ 32 bytes ‖ tag; anything else cannot be one. */
export function checkWrappedDataKey(w: unknown): Uint8Array {
  check(w instanceof Uint8Array, 'the wrapped data key must be bytes');
  if (w.length !== WRAP_OVERHEAD + DATA_KEY_LENGTH) throw new KeyholderError('KW_WRAPPED_KEY_MISMATCH', `a wrapped data key is ${WRAP_OVERHEAD + DATA_KEY_LENGTH} bytes, not ${w.length}`);
  return w;
}

export interface DatakeyParams {
  /** An `aes256` version. */
  readonly version: KeyVersion;
  /** The caller's encryption context (bound into the wrapped blob and the sealed key). */
  readonly context?: Context;
  /** The caller's recipient string (x25519 or xwing); when given, `requestHash` is required. */
  readonly recipient?: string;
  /** SHA-256 of the caller's signed request. */
  readonly requestHash?: Uint8Array;
  /** Also return the plaintext data key (only when policy allows it). */
  readonly releasePlaintext?: boolean;
}

export interface DatakeyResult {
  readonly ref: VersionRef;
  readonly wrapped: Uint8Array;
  /** The data key sealed to the caller (a binary Keyward envelope). */
  readonly sealed?: Uint8Array;
  readonly plaintext?: Uint8Array;
}

export async function datakey(p: DatakeyParams): Promise<DatakeyResult> {
  // Every check before any key exists.
  // An HSM-resident version wraps in the HSM (hsm-resident.ts), with the same AAD.
  const kek = p.version.isResident ? (p.version.hsmKey('aes256'), null) : p.version.secretKey('aes256');
  const context = checkContext(p.context);
  const recipient = p.recipient === undefined ? undefined : await parseCallerRecipient(p.recipient);
  const requestHash = recipient ? checkRequestHash(p.requestHash) : undefined;
  check(p.releasePlaintext === undefined || typeof p.releasePlaintext === 'boolean', 'releasePlaintext must be a boolean');
  const ref = p.version.ref;

  const dataKey = randomBytes(DATA_KEY_LENGTH);
  try {
    const wrapped = await wrapUnder(p.version, DATAKEY_PURPOSE, dataKeyAad(ref, context), dataKey, () => wrap(kek!, DATAKEY_PURPOSE, dataKeyAad(ref, context), dataKey));
    const sealed = recipient && requestHash ? await sealToCaller(dataKey, recipient, requestHash, ref, context) : undefined;
    return {
      ref, wrapped,
      ...(sealed ? { sealed } : {}),
      ...(p.releasePlaintext ? { plaintext: dataKey.slice() } : {}),
    };
  } finally {
    wipe(dataKey);
  }
}
