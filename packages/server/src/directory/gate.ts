/**
 * Item 5 of issue #6: the key service accepts request-signing keys and
 * sealing (`unwrap`, `datakey`, `decrypt`, `open`) recipients only as
 * directory devices of the principal.
 *
 * - A principal bound to a directory identity (its enrollment token named the
 *   principal): the request-signing key must be the request key of a current
 *   device of that identity, and the recipient one of its devices' HPKE keys —
 *   otherwise `KW_DIR_NOT_A_DEVICE`. Its own `POST /v1/auth/signing-keys` is
 *   refused the same way: the directory registers and revokes its keys.
 * - A principal without an identity: as before, unless the server sets
 *   `directory.requireDevices`, which refuses it (`KW_DIR_NOT_A_DEVICE`) until
 *   it is bound to an identity with devices.
 * - No directory configured: nothing changes.
 */
import { parseRecipient } from '@keyward/core';
import { base64urlnopad } from '@scure/base';
import type { ApiContext } from '../api/app.js';
import { ApiError } from '../api/errors.js';

interface PublishedDevice { request: { keyId: string }; hpke: { key: string } }

/**
 * Throws `KW_DIR_NOT_A_DEVICE` unless `keyId` (and `recipient`, when given) belong to a current
 * device of the principal's directory identity (see the module comment for unbound principals).
 *
 * @example
 * await requireDirectoryDevice(ctx, who.id, device.keyId, body.recipient);
 */
export async function requireDirectoryDevice(ctx: Pick<ApiContext, 'directory' | 'store'>, principal: string, keyId: string | null, recipient?: string): Promise<void> {
  if (!ctx.directory) return;
  const row = await ctx.store.getDirEntityByPrincipal(principal);
  if (row === null) {
    if (ctx.directory.requireDevices) throw new ApiError('KW_DIR_NOT_A_DEVICE', `principal ${principal} has no directory identity, and this server accepts directory devices only (directory.requireDevices)`);
    return;
  }
  const devices = (Array.isArray(row.state.devices) ? row.state.devices : []) as unknown as PublishedDevice[];
  if (keyId !== null && !devices.some((d) => d.request.keyId === keyId)) {
    throw new ApiError('KW_DIR_NOT_A_DEVICE', `the request-signing key is not a current directory device of ${row.name}`);
  }
  if (recipient !== undefined) {
    let key: string;
    try {
      key = base64urlnopad.encode((await parseRecipient(recipient)).publicKey);
    } catch {
      throw new ApiError('KW_DIR_NOT_A_DEVICE', `the recipient is not a device key of ${row.name}`);
    }
    if (!devices.some((d) => d.hpke.key === key)) throw new ApiError('KW_DIR_NOT_A_DEVICE', `the recipient is not a current directory device of ${row.name}`);
  }
}
