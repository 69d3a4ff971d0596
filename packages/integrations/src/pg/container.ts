/**
 * The stored form of a sealed column value (PostgreSQL `bytea`):
 *
 * ```
 * offset  size  field
 * 0       4     magic     "KWC" 0x01
 * 4       1     flags     bit 0: a rewrapped key follows; other bits 0
 * [5      4     version   u32 big-endian: key version of the rewrapped blob
 *  9      2     len       u16 big-endian, 1 … 4096
 *  11     len   wrapped   the blob the key service's rewrap returned]
 * …       …     envelope  a Keyward envelope, byte for byte as sealed
 * ```
 *
 * Why the rewrapped key sits beside the envelope instead of replacing its
 * `kms` stanza: see docs/integrations.md §Rotation. In short, the header MAC
 * covers the stanzas and the payload key is derived from the header MAC, so
 * changing a stanza in place needs the data key and re-encrypts the payload;
 * the override needs neither, and the envelope's key commitment checks that
 * the rewrapped blob yields the very data key the header was sealed with.
 */
import { IntegrationError } from '../errors.js';

export const CONTAINER_MAGIC = Uint8Array.of(0x4b, 0x57, 0x43, 0x01);
const FLAG_OVERRIDE = 0x01;
const MAX_WRAPPED = 4096;

export interface KeyOverride {
  readonly version: number;
  readonly wrapped: Uint8Array;
}

export interface Container {
  readonly override: KeyOverride | null;
  /** A view into the stored bytes. */
  readonly envelope: Uint8Array;
}

const notSealed = (why: string) => new IntegrationError('KW_INT_NOT_SEALED', `sealed column value: ${why}`);

export function encodeContainer(envelope: Uint8Array, override: KeyOverride | null = null): Buffer {
  if (!override) return Buffer.concat([CONTAINER_MAGIC, Uint8Array.of(0), envelope]);
  if (!Number.isSafeInteger(override.version) || override.version < 1 || override.version > 2 ** 31 - 1) throw new IntegrationError('KW_INT_INVALID_ARGUMENT', 'override version out of range');
  if (override.wrapped.length < 1 || override.wrapped.length > MAX_WRAPPED) throw new IntegrationError('KW_INT_INVALID_ARGUMENT', 'override blob length out of range');
  const head = Buffer.alloc(11);
  head.set(CONTAINER_MAGIC, 0);
  head[4] = FLAG_OVERRIDE;
  head.writeUInt32BE(override.version, 5);
  head.writeUInt16BE(override.wrapped.length, 9);
  return Buffer.concat([head, override.wrapped, envelope]);
}

export function decodeContainer(stored: Uint8Array): Container {
  if (!(stored instanceof Uint8Array)) throw notSealed('not bytes');
  if (stored.length < 5 || !CONTAINER_MAGIC.every((b, i) => stored[i] === b)) throw notSealed('no container magic');
  const flags = stored[4]!;
  if ((flags & ~FLAG_OVERRIDE) !== 0) throw notSealed(`unknown flags ${flags}`);
  if (!(flags & FLAG_OVERRIDE)) return { override: null, envelope: stored.subarray(5) };
  if (stored.length < 11) throw notSealed('truncated override');
  const b = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
  const version = b.readUInt32BE(5);
  const len = b.readUInt16BE(9);
  if (version < 1 || version > 2 ** 31 - 1 || len < 1 || len > MAX_WRAPPED || 11 + len > stored.length) throw notSealed('malformed override');
  return { override: { version, wrapped: stored.subarray(11, 11 + len) }, envelope: stored.subarray(11 + len) };
}
