/**
 * Reading a custodian's share file for `keyward unseal` and `keyward hsm
 * verify-recovery`: a plain share file as it is, or one sealed to the
 * custodian at init (armored), opened with their identity. Either way the
 * text of the share file is returned; the commands check and seal it.
 */
import { isArmored } from '@keyward/core';
import { usageError } from './errors.js';
import { readTextFile, type Io, type StdinClaim } from './io.js';
import { loadIdentities } from './keys.js';
import * as server from './server-modules.js';

/**
 * @example
 * const text = await readShareText(flags.share, flags.identity, io, stdin);
 */
export async function readShareText(file: string, identityFiles: readonly string[], io: Io, stdin: StdinClaim): Promise<string> {
  const text = await readTextFile(file, io, stdin, 'the share file');
  if (!isArmored(text.trim())) {
    if (identityFiles.length > 0) usageError('-i is for shares sealed to a custodian; this share file is not sealed');
    return text;
  }
  const ids = await loadIdentities(identityFiles, io, stdin);
  if (ids.keyward.length === 0) usageError('this share is sealed to a custodian: give your identity file with -i');
  const { openCustodianShare } = await server.custodians();
  let last: unknown;
  for (const id of ids.keyward) {
    try {
      return await openCustodianShare(text.trim(), id);
    } catch (e) {
      last = e;
    }
  }
  throw last;
}
