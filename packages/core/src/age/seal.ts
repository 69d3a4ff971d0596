/** Writing age v1 files. */
import { armorEncode } from './armor.js';
import { encodeHeader, type Stanza } from './format.js';
import type { AgeRecipient } from './keys.js';
import {
  DEFAULT_MAX_SCRYPT_WORK_FACTOR,
  DEFAULT_SCRYPT_WORK_FACTOR,
  FILE_KEY_SIZE,
  wrapForRecipient,
  wrapScrypt,
} from './recipients.js';
import { encryptPayload } from './stream.js';
import { SCRYPT } from '../format/constants.js';
import { concat, fail, keywardErrorsOnly, randomBytes, wipe } from './util.js';

/** Who can open a sealed file: public-key recipients, or (alone) one passphrase. */
export type AgeSealTarget = { recipients: AgeRecipient[] } | { passphrase: string; workFactor?: number };

/** Options of {@link ageSeal}. */
export type AgeSealOptions = { armor?: boolean };

function checkRecipient(r: unknown, i: number): AgeRecipient {
  const rec = r as Partial<AgeRecipient> | null;
  if (
    rec === null ||
    typeof rec !== 'object' ||
    (rec.kind !== 'x25519' && rec.kind !== 'mlkem768x25519') ||
    !(rec.publicKey instanceof Uint8Array) ||
    rec.publicKey.length !== (rec.kind === 'x25519' ? 32 : 1216)
  ) {
    fail('KW_INVALID_ARGUMENT', `recipients[${i}] is not an age recipient (use parseAgeRecipient)`);
  }
  return rec as AgeRecipient;
}

/**
 * Encrypts `plaintext` as an age v1 file.
 *
 * Post-quantum (`mlkem768x25519`) and classic (`x25519`) recipients cannot be
 * mixed, as age refuses to weaken a post-quantum file; a passphrase can only
 * be used alone (KW_SCRYPT_NOT_ALONE).
 */
export function ageSeal(plaintext: Uint8Array, to: AgeSealTarget, opts: AgeSealOptions = {}): Promise<Uint8Array> {
  return keywardErrorsOnly(() => seal(plaintext, to, opts));
}

async function seal(plaintext: Uint8Array, to: AgeSealTarget, opts: AgeSealOptions): Promise<Uint8Array> {
  if (!(plaintext instanceof Uint8Array)) fail('KW_INVALID_ARGUMENT', 'plaintext must be a Uint8Array');
  if (to === null || typeof to !== 'object') fail('KW_INVALID_ARGUMENT', 'ageSeal needs { recipients } or { passphrase }');
  if (opts === null || typeof opts !== 'object') fail('KW_INVALID_ARGUMENT', 'options must be an object');
  if (opts.armor !== undefined && typeof opts.armor !== 'boolean') fail('KW_INVALID_ARGUMENT', 'armor must be a boolean');
  const hasPassphrase = 'passphrase' in to && to.passphrase !== undefined;
  const hasRecipients = 'recipients' in to && to.recipients !== undefined;
  if (hasPassphrase && hasRecipients) {
    fail('KW_SCRYPT_NOT_ALONE', 'an age passphrase (scrypt) stanza must be the only stanza: give recipients or a passphrase, not both');
  }

  const fileKey = randomBytes(FILE_KEY_SIZE);
  try {
    let stanzas: Stanza[];
    if (hasPassphrase) {
      const { passphrase, workFactor = DEFAULT_SCRYPT_WORK_FACTOR } = to as { passphrase: unknown; workFactor?: unknown };
      if (typeof passphrase !== 'string' || passphrase.length === 0) fail('KW_INVALID_ARGUMENT', 'passphrase must be a non-empty string');
      if (typeof workFactor !== 'number' || !Number.isInteger(workFactor) || workFactor < SCRYPT.minLogN || workFactor > DEFAULT_MAX_SCRYPT_WORK_FACTOR) {
        fail('KW_SCRYPT_WORK_FACTOR', `scrypt work factor must be an integer from ${SCRYPT.minLogN} to ${DEFAULT_MAX_SCRYPT_WORK_FACTOR}`);
      }
      stanzas = [await wrapScrypt(passphrase, workFactor, fileKey)];
    } else if (hasRecipients) {
      const list: unknown = (to as { recipients: unknown }).recipients;
      if (!Array.isArray(list)) fail('KW_INVALID_ARGUMENT', 'recipients must be an array');
      if (list.length === 0) fail('KW_NO_RECIPIENTS', 'ageSeal needs at least one recipient');
      const recipients = list.map(checkRecipient);
      if (new Set(recipients.map((r) => r.kind)).size > 1) {
        fail('KW_INVALID_ARGUMENT', 'post-quantum (age1pq1…) and X25519 (age1…) recipients cannot be mixed in one age file');
      }
      stanzas = await Promise.all(recipients.map((r) => wrapForRecipient(r, fileKey)));
    } else {
      return fail('KW_INVALID_ARGUMENT', 'ageSeal needs { recipients } or { passphrase }');
    }
    const file = concat(encodeHeader(stanzas, fileKey), encryptPayload(fileKey, plaintext));
    return opts.armor === true ? armorEncode(file) : file;
  } finally {
    wipe(fileKey);
  }
}
