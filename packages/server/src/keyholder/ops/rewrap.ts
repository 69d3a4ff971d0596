/**
 * `rewrap`: moves a wrapped data key from one version of a key to another
 * (after rotation) inside the keyholder; the data key never leaves it and the
 * data it protects is never decrypted. Both versions must be `aes256`
 * versions of the same key: moving a blob to another key would move it under
 * another policy.
 *
 * @example
 * const { wrapped: moved } = rewrapDataKey({ from: v1, to: v2, context, wrapped });
 */
import { check } from '../errors.js';
import type { KeyVersion } from '../keys.js';
import { wipe } from '../primitives.js';
import type { Context, VersionRef } from '../schemas.js';
import { unwrap, wrap } from '../wrap.js';
import { checkContext } from './caller.js';
import { unwrapUnder, wrapUnder } from '../hsm-resident.js';
import { DATAKEY_PURPOSE, checkWrappedDataKey, dataKeyAad } from './datakey.js';

export interface RewrapParams {
  readonly from: KeyVersion;
  readonly to: KeyVersion;
  readonly context?: Context;
  readonly wrapped: Uint8Array;
}

export function rewrapDataKey(p: RewrapParams): { ref: VersionRef; wrapped: Uint8Array } {
  const fromKek = p.from.secretKey('aes256');
  const toKek = p.to.secretKey('aes256');
  check(p.from.ref.ns === p.to.ref.ns && p.from.ref.key === p.to.ref.key, `rewrap moves blobs between versions of one key, not from ${p.from.keyId} to ${p.to.keyId}`);
  const context = checkContext(p.context);
  const wrapped = checkWrappedDataKey(p.wrapped);

  const dataKey = unwrap(fromKek, DATAKEY_PURPOSE, dataKeyAad(p.from.ref, context), wrapped);
  try {
    return { ref: p.to.ref, wrapped: wrap(toKek, DATAKEY_PURPOSE, dataKeyAad(p.to.ref, context), dataKey) };
  } finally {
    wipe(dataKey);
  }
}

/**
 * rewrapDataKey for versions that may be HSM-resident (hsm-resident.ts): the
 * data key is opened by the HSM (or in software) and wrapped again by the HSM
 * (or in software), with the same AAD binding; it never leaves the keyholder.
 */
export async function rewrapDataKeyAny(p: RewrapParams): Promise<{ ref: VersionRef; wrapped: Uint8Array }> {
  if (!p.from.isResident && !p.to.isResident) return rewrapDataKey(p);
  const fromKek = p.from.isResident ? (p.from.hsmKey('aes256'), null) : p.from.secretKey('aes256');
  const toKek = p.to.isResident ? (p.to.hsmKey('aes256'), null) : p.to.secretKey('aes256');
  check(p.from.ref.ns === p.to.ref.ns && p.from.ref.key === p.to.ref.key, `rewrap moves blobs between versions of one key, not from ${p.from.keyId} to ${p.to.keyId}`);
  const context = checkContext(p.context);
  const wrapped = checkWrappedDataKey(p.wrapped);
  const fromAad = dataKeyAad(p.from.ref, context);
  const toAad = dataKeyAad(p.to.ref, context);
  const dataKey = await unwrapUnder(p.from, DATAKEY_PURPOSE, fromAad, wrapped, () => unwrap(fromKek!, DATAKEY_PURPOSE, fromAad, wrapped));
  try {
    return { ref: p.to.ref, wrapped: await wrapUnder(p.to, DATAKEY_PURPOSE, toAad, dataKey, () => wrap(toKek!, DATAKEY_PURPOSE, toAad, dataKey)) };
  } finally {
    wipe(dataKey);
  }
}
