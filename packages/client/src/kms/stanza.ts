/**
 * The `kms` stanza as the key service fills it (docs/key-service-design.md
 * §The kms stanza filled):
 *
 *   fields = [ "ns/name" (UTF-8), version (u32 big-endian), wrapped ]
 *
 * `wrapped` is the blob `datakey` returned; it is opaque here (the keyholder
 * binds it to the key, version and encryption context).
 */
import type { Stanza } from '@keyward/core';
import { NAME_PATTERN } from '../http/client.js';

export const KMS_STANZA_TYPE = 'kms';
/** Key versions are 1 … 2^31 − 1. */
export const MAX_KEY_VERSION = 2 ** 31 - 1;
/** Largest wrapped blob accepted (a wrapped data key is 81 bytes today). */
export const MAX_WRAPPED_BYTES = 4096;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export interface KeyRef {
  readonly ns: string;
  readonly name: string;
}

/** Splits `"ns/name"`; null unless both halves are valid names. */
export function parseKeyRef(ref: unknown): KeyRef | null {
  if (typeof ref !== 'string') return null;
  const i = ref.indexOf('/');
  if (i < 0) return null;
  const ns = ref.slice(0, i);
  const name = ref.slice(i + 1);
  return NAME_PATTERN.test(ns) && NAME_PATTERN.test(name) ? { ns, name } : null;
}

export function isKeyVersion(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 && v <= MAX_KEY_VERSION;
}

export function encodeKmsStanza(keyRef: string, version: number, wrapped: Uint8Array): Stanza {
  const v = new Uint8Array(4);
  new DataView(v.buffer).setUint32(0, version, false);
  return { type: KMS_STANZA_TYPE, fields: [utf8.encode(keyRef), v, wrapped.slice()] };
}

export interface ParsedKmsStanza extends KeyRef {
  readonly keyRef: string;
  readonly version: number;
  readonly wrapped: Uint8Array;
}

/**
 * Parses a `kms` stanza strictly: exactly three fields, a valid UTF-8 key
 * reference, a 4-byte version in range, a non-empty blob of at most
 * {@link MAX_WRAPPED_BYTES}. Anything else is null (not a stanza this
 * service can have written).
 */
export function decodeKmsStanza(stanza: Stanza): ParsedKmsStanza | null {
  if (stanza.type !== KMS_STANZA_TYPE || stanza.fields.length !== 3) return null;
  const [refBytes, versionBytes, wrapped] = stanza.fields as [Uint8Array, Uint8Array, Uint8Array];
  let keyRef: string;
  try {
    keyRef = utf8Strict.decode(refBytes);
  } catch {
    return null;
  }
  const ref = parseKeyRef(keyRef);
  if (!ref || versionBytes.length !== 4 || wrapped.length === 0 || wrapped.length > MAX_WRAPPED_BYTES) return null;
  const version = new DataView(versionBytes.buffer, versionBytes.byteOffset, 4).getUint32(0, false);
  if (!isKeyVersion(version)) return null;
  return { ...ref, keyRef, version, wrapped };
}
