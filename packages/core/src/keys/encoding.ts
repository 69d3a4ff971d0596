/**
 * Checksummed text forms of keys: Bech32 (BIP 173 checksum, no length limit),
 * as age does. Public strings are lowercase, secret strings uppercase, so a
 * secret is never mistaken for something shareable.
 */
import { bech32 } from '@scure/base';
import { platform } from '#platform';
import { concat, utf8 } from '../bytes.js';
import { KeywardError } from '../errors.js';
import { KEY_ID_LENGTH, LABELS } from '../format/constants.js';

export function encodeKey(hrp: string, data: Uint8Array, secret = false): string {
  const s = bech32.encode(hrp.toLowerCase(), bech32.toWords(data), false);
  return secret ? s.toUpperCase() : s;
}

/** Decodes `text` and checks its human-readable part. Throws KW_INVALID_KEY_STRING. */
export function decodeKey(text: string, hrp: string, length: number): Uint8Array {
  const t = text.trim();
  const expectUpper = hrp === hrp.toUpperCase();
  if (t !== (expectUpper ? t.toUpperCase() : t.toLowerCase())) {
    throw new KeywardError('KW_INVALID_KEY_STRING', `${hrp} keys are written in ${expectUpper ? 'upper' : 'lower'} case`);
  }
  let decoded: { prefix: string; words: number[] };
  try {
    decoded = bech32.decode(t.toLowerCase() as `${string}1${string}`, false);
  } catch {
    // Never echo the decoder's message: it quotes the input, which may be a secret key.
    throw new KeywardError('KW_INVALID_KEY_STRING', 'malformed key string (not valid Bech32: bad character, mixed case or checksum)');
  }
  if (decoded.prefix !== hrp.toLowerCase()) throw new KeywardError('KW_INVALID_KEY_STRING', `expected a "${hrp}" key, got "${decoded.prefix}"`);
  let data: Uint8Array;
  try {
    data = bech32.fromWords(decoded.words);
  } catch {
    throw new KeywardError('KW_INVALID_KEY_STRING', 'key string has invalid padding');
  }
  if (data.length !== length) throw new KeywardError('KW_INVALID_KEY_STRING', `${hrp} key must be ${length} bytes, got ${data.length}`);
  return data;
}

/** The human-readable part of a Bech32 string, or null. */
export function hrpOf(text: string): string | null {
  const t = text.trim();
  const i = t.lastIndexOf('1');
  return i > 0 ? t.slice(0, i).toLowerCase() : null;
}

/** key_id = SHA-256("keyward/v1 key-id" ‖ 0x00 ‖ type ‖ 0x00 ‖ public key)[0..16] */
export function keyId(type: string, publicKey: Uint8Array): Uint8Array {
  return platform.sha256(concat(LABELS.keyId, new Uint8Array([0]), utf8.encode(type), new Uint8Array([0]), publicKey)).subarray(0, KEY_ID_LENGTH);
}
