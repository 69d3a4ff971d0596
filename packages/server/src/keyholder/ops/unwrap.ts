/**
 * `unwrap`: opens a wrapped data key for `{ ns, key, version, context }` and
 * releases it only HPKE-sealed to the caller's recipient (caller.ts). A blob
 * from another key, version or context, or a damaged one, is
 * KW_WRAPPED_KEY_MISMATCH and nothing is released.
 *
 * @example
 * const { sealed } = await unwrapDataKey({ version: v1, context, wrapped, requestHash, recipient: 'kwx25519…' });
 * const { plaintext: dataKey } = await open(sealed, { identities: [me], context: releaseContext(requestHash, v1.ref, context) });
 */
import { KeyholderError } from '../errors.js';
import type { KeyVersion } from '../keys.js';
import { wipe } from '../primitives.js';
import type { Context, VersionRef } from '../schemas.js';
import { unwrap } from '../wrap.js';
import { unwrapUnder } from '../hsm-resident.js';
import { checkContext, checkRequestHash, parseCallerRecipient, sealToCaller } from './caller.js';
import { DATAKEY_PURPOSE, DATA_KEY_LENGTH, checkWrappedDataKey, dataKeyAad } from './datakey.js';

export interface UnwrapParams {
  readonly version: KeyVersion;
  readonly context?: Context;
  readonly wrapped: Uint8Array;
  readonly recipient: string;
  readonly requestHash: Uint8Array;
}

export async function unwrapDataKey(p: UnwrapParams): Promise<{ ref: VersionRef; sealed: Uint8Array }> {
  const kek = p.version.isResident ? (p.version.hsmKey('aes256'), null) : p.version.secretKey('aes256');
  const context = checkContext(p.context);
  const wrapped = checkWrappedDataKey(p.wrapped);
  const recipient = await parseCallerRecipient(p.recipient);
  const requestHash = checkRequestHash(p.requestHash);
  const ref = p.version.ref;

  const dataKey = await unwrapUnder(p.version, DATAKEY_PURPOSE, dataKeyAad(ref, context), wrapped, () => unwrap(kek!, DATAKEY_PURPOSE, dataKeyAad(ref, context), wrapped));
  try {
    if (dataKey.length !== DATA_KEY_LENGTH) throw new KeyholderError('KW_WRAPPED_KEY_MISMATCH', 'the blob does not hold a data key');
    return { ref, sealed: await sealToCaller(dataKey, recipient, requestHash, ref, context) };
  } finally {
    wipe(dataKey);
  }
}
