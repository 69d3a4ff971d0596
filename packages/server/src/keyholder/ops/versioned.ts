/**
 * The text form of values that name their key version, as Vault's
 * `vault:v3:…`: `kw:v<N>:<base64url>`. Used for `encrypt` ciphertexts,
 * signatures and MACs, so rotation is visible and the right version is loaded.
 */
import { fromBase64url, toBase64url } from '../bytes.js';
import { KeyholderError, check } from '../errors.js';

const FORM = /^kw:v([1-9][0-9]{0,9}):([A-Za-z0-9_-]*)$/;

export function formatVersioned(version: number, bytes: Uint8Array): string {
  return `kw:v${version}:${toBase64url(bytes)}`;
}

/** Parses `kw:v<N>:<base64url>` strictly; KW_INVALID_ARGUMENT (or KW_LIMIT_EXCEEDED past `maxLength` characters). */
export function parseVersioned(text: unknown, what: string, maxLength: number): { version: number; bytes: Uint8Array } {
  check(typeof text === 'string', `${what} must be a string`);
  check(text.length <= maxLength, `${what} is longer than ${maxLength} characters`, 'KW_LIMIT_EXCEEDED');
  const m = FORM.exec(text);
  if (!m) throw new KeyholderError('KW_INVALID_ARGUMENT', `${what} is not of the form kw:v<N>:<base64url>`);
  const version = Number(m[1]);
  const bytes = fromBase64url(m[2]!);
  check(Number.isSafeInteger(version) && version <= 2 ** 31 - 1, `${what} names an impossible version`);
  if (!bytes) throw new KeyholderError('KW_INVALID_ARGUMENT', `${what} is not canonical base64url`);
  return { version, bytes };
}

/** The version a `kw:v<N>:` value names, so the caller can load that version first. */
export function versionOf(text: unknown): number {
  return parseVersioned(text, 'the value', 1 << 20).version;
}
