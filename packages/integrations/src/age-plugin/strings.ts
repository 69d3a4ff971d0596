/**
 * The plugin's key strings (docs/integrations.md §age plugin):
 *
 * - Recipient `age1keyward1…` (Bech32, HRP `age1keyward`): which key of the
 *   key service wraps the file key, and optionally which service it lives on.
 *   Public: no secret, no token, no key bytes.
 *
 *       0x01 | u8 n | key reference "ns/name" (n bytes) | u8 m | address hint (m bytes, 0 = none)
 *
 * - Identity `AGE-PLUGIN-KEYWARD-1…` (Bech32, HRP `AGE-PLUGIN-KEYWARD-`,
 *   uppercase): where this device's credentials are — the login profile
 *   directory (`keyward login`: device signing key and HPKE identity) and the
 *   file holding the bearer token. It holds paths, never the secrets: they are
 *   read when the plugin runs, so a revoked token or a rotated device key takes
 *   effect at once, and the identity string can sit in an ordinary age
 *   identity file.
 *
 *       0x01 | u16 n | profile directory (absolute) | u16 m | token file (absolute; 0 = $KEYWARD_TOKEN_FILE / $KEYWARD_TOKEN)
 */
import { parseKeyRef } from '@keyward/client';
import { invalid } from '../errors.js';
import { bech32Decode, bech32Encode } from './bech32.js';

export const PLUGIN_NAME = 'keyward';
export const RECIPIENT_HRP = 'age1keyward';
export const IDENTITY_HRP = 'AGE-PLUGIN-KEYWARD-';
const FORMAT_V1 = 0x01;
const MAX_ADDRESS = 255;
const MAX_PATH = 4096;

export interface KeywardAgeRecipient {
  /** `"ns/name"` of an `aes256` key of the key service. */
  readonly keyRef: string;
  /** The key service's base URL, when the recipient names one (a hint, checked against the profile; never trusted with credentials on its own). */
  readonly address?: string;
}

export interface KeywardAgeIdentity {
  /** The login profile directory (absolute). */
  readonly profile: string;
  /** The bearer token file (absolute), or undefined: `$KEYWARD_TOKEN_FILE`, then `$KEYWARD_TOKEN`. */
  readonly tokenFile?: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

function checkAddress(a: string): string {
  let u: URL;
  try {
    u = new URL(a);
  } catch {
    throw invalid(`address hint ${JSON.stringify(a)} is not an absolute URL`);
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.username || u.password || u.search || u.hash) {
    throw invalid(`address hint ${JSON.stringify(a)} must be a plain http(s) base URL`);
  }
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
}

/** The canonical form of a service address, for comparing a hint with a profile's addresses. */
export function normalizeAddress(a: string): string | null {
  try {
    return checkAddress(a);
  } catch {
    return null;
  }
}

function checkPath(p: string, what: string): string {
  if (typeof p !== 'string' || !p.startsWith('/') || p.includes('\0') || enc.encode(p).length > MAX_PATH) {
    throw invalid(`${what} must be an absolute path (age runs plugins in a temporary directory)`);
  }
  return p;
}

export function encodeRecipient(r: KeywardAgeRecipient): string {
  if (!parseKeyRef(r.keyRef)) throw invalid(`key reference ${JSON.stringify(r.keyRef)} is not "ns/name"`);
  const ref = enc.encode(r.keyRef);
  const addr = enc.encode(r.address === undefined ? '' : checkAddress(r.address));
  if (addr.length > MAX_ADDRESS) throw invalid(`address hint is longer than ${MAX_ADDRESS} bytes`);
  return bech32Encode(RECIPIENT_HRP, Uint8Array.from([FORMAT_V1, ref.length, ...ref, addr.length, ...addr]));
}

export function parseRecipient(s: string): KeywardAgeRecipient {
  const what = 'the keyward recipient';
  if (typeof s !== 'string' || s !== s.toLowerCase()) throw invalid(`${what} must be lowercase Bech32`);
  const { hrp, data } = bech32Decode(s, what);
  if (hrp !== RECIPIENT_HRP) throw invalid(`${what} must start with ${RECIPIENT_HRP}1`);
  const bad = () => invalid(`${what} does not hold a format-1 key reference`);
  if (data[0] !== FORMAT_V1 || data.length < 2) throw bad();
  const n = data[1]!;
  if (data.length < 3 + n) throw bad();
  const m = data[2 + n]!;
  if (data.length !== 3 + n + m) throw bad();
  let keyRef: string;
  let address: string;
  try {
    keyRef = dec.decode(data.subarray(2, 2 + n));
    address = dec.decode(data.subarray(3 + n));
  } catch {
    throw bad();
  }
  if (!parseKeyRef(keyRef)) throw bad();
  if (m === 0) return { keyRef };
  if (checkAddress(address) !== address) throw invalid(`${what} holds a non-canonical address hint`);
  return { keyRef, address };
}

export function encodeIdentity(i: KeywardAgeIdentity): string {
  const p = enc.encode(checkPath(i.profile, 'the profile directory'));
  const t = enc.encode(i.tokenFile === undefined ? '' : checkPath(i.tokenFile, 'the token file'));
  const u16 = (n: number) => [n >> 8, n & 0xff];
  return bech32Encode(IDENTITY_HRP, Uint8Array.from([FORMAT_V1, ...u16(p.length), ...p, ...u16(t.length), ...t])).toUpperCase();
}

export function parseIdentity(s: string): KeywardAgeIdentity {
  const what = 'the keyward identity';
  if (typeof s !== 'string' || s !== s.toUpperCase()) throw invalid(`${what} must be uppercase Bech32`);
  const { hrp, data } = bech32Decode(s, what);
  if (hrp !== IDENTITY_HRP.toLowerCase()) throw invalid(`${what} must start with ${IDENTITY_HRP}1`);
  const bad = () => invalid(`${what} does not hold format-1 credential paths`);
  if (data[0] !== FORMAT_V1 || data.length < 5) throw bad();
  const n = (data[1]! << 8) | data[2]!;
  if (data.length < 5 + n) throw bad();
  const m = (data[3 + n]! << 8) | data[4 + n]!;
  if (data.length !== 5 + n + m) throw bad();
  let profile: string;
  let tokenFile: string;
  try {
    profile = dec.decode(data.subarray(3, 3 + n));
    tokenFile = dec.decode(data.subarray(5 + n));
  } catch {
    throw bad();
  }
  checkPath(profile, 'the profile directory');
  if (m === 0) return { profile };
  return { profile, tokenFile: checkPath(tokenFile, 'the token file') };
}
