/** Reading age v1 files (binary or armored). */
import { armorDecode, looksArmored } from './armor.js';
import { VERSION_LINE, parseHeader, verifyHeaderMac } from './format.js';
import type { AgeIdentity } from './keys.js';
import {
  DEFAULT_MAX_SCRYPT_WORK_FACTOR,
  SCRYPT_TYPE,
  SCRYPT_WORK_FACTOR_CEILING,
  unwrapScrypt,
  unwrapWithIdentity,
} from './recipients.js';
import { decryptPayload, type ChunkSink } from './stream.js';
import { ascii, concat, fail, keywardErrorsOnly, latin1, wipe } from './util.js';

/** Options of {@link ageOpen}. */
export type AgeOpenOptions = { identities?: AgeIdentity[]; passphrase?: string; maxWorkFactor?: number };

const BINARY_MAGIC = ascii(VERSION_LINE + '\n');
const VERSION_PREFIX = 'age-encryption.org/';

/** True for a binary age v1 file or an armored one (leading whitespace allowed). */
export function isAgeFile(bytes: Uint8Array): boolean {
  if (!(bytes instanceof Uint8Array)) return false;
  if (bytes.length >= BINARY_MAGIC.length && BINARY_MAGIC.every((b, i) => bytes[i] === b)) return true;
  return looksArmored(bytes);
}

/** Binary form of an input that may be armored. */
function toBinary(file: Uint8Array): Uint8Array {
  if (latin1(file, 0, Math.min(file.length, VERSION_PREFIX.length)) === VERSION_PREFIX) return file;
  // Armor, or anything mentioning a PEM boundary near the start (possibly broken armor, which
  // then fails with KW_ARMOR_INVALID rather than as a malformed binary file).
  if (looksArmored(file) || latin1(file, 0, Math.min(file.length, 1024)).includes('-----')) return armorDecode(file);
  return fail('KW_AGE_MALFORMED', 'not an age file (neither binary age v1 nor armored)');
}

function checkOptions(opts: AgeOpenOptions): { identities: AgeIdentity[]; passphrase: string | undefined; maxWorkFactor: number } {
  if (opts === null || typeof opts !== 'object') fail('KW_INVALID_ARGUMENT', 'ageOpen needs { identities } and/or { passphrase }');
  const identities = opts.identities ?? [];
  if (!Array.isArray(identities)) fail('KW_INVALID_ARGUMENT', 'identities must be an array');
  identities.forEach((id: Partial<AgeIdentity> | null, i) => {
    if (
      id === null ||
      typeof id !== 'object' ||
      (id.kind !== 'x25519' && id.kind !== 'mlkem768x25519') ||
      !(id.secretKey instanceof Uint8Array) ||
      id.secretKey.length !== 32 ||
      typeof id.recipient !== 'function'
    ) {
      fail('KW_INVALID_ARGUMENT', `identities[${i}] is not an age identity (use parseAgeIdentity)`);
    }
  });
  const { passphrase } = opts;
  if (passphrase !== undefined && typeof passphrase !== 'string') fail('KW_INVALID_ARGUMENT', 'passphrase must be a string');
  if (identities.length === 0 && passphrase === undefined) {
    fail('KW_INVALID_ARGUMENT', 'ageOpen needs at least one identity or a passphrase');
  }
  const maxWorkFactor = opts.maxWorkFactor ?? DEFAULT_MAX_SCRYPT_WORK_FACTOR;
  if (!Number.isInteger(maxWorkFactor) || maxWorkFactor < 1 || maxWorkFactor > SCRYPT_WORK_FACTOR_CEILING) {
    fail('KW_INVALID_ARGUMENT', `maxWorkFactor must be an integer from 1 to ${SCRYPT_WORK_FACTOR_CEILING}`);
  }
  return { identities, passphrase, maxWorkFactor };
}

/**
 * Opens an age file, passing each authenticated plaintext chunk to `sink`.
 * The checks run in the order the age test kit expects: armor, header syntax,
 * scrypt-alone rule, stanza unwrapping, header MAC, then the payload.
 */
export function openAgeTo(file: Uint8Array, opts: AgeOpenOptions, sink: ChunkSink): Promise<void> {
  return keywardErrorsOnly(() => open(file, opts, sink));
}

async function open(file: Uint8Array, opts: AgeOpenOptions, sink: ChunkSink): Promise<void> {
  if (!(file instanceof Uint8Array)) fail('KW_INVALID_ARGUMENT', 'file must be a Uint8Array');
  const { identities, passphrase, maxWorkFactor } = checkOptions(opts);
  const binary = toBinary(file);
  const header = parseHeader(binary);
  const { stanzas } = header;
  const hasScrypt = stanzas.some((s) => s.args[0] === SCRYPT_TYPE);
  if (hasScrypt && stanzas.length > 1) {
    fail('KW_SCRYPT_NOT_ALONE', 'age file has an scrypt (passphrase) stanza together with other stanzas');
  }

  let fileKey: Uint8Array | null = null;
  try {
    for (const identity of identities) {
      for (const stanza of stanzas) {
        fileKey = await unwrapWithIdentity(identity, stanza);
        if (fileKey !== null) break;
      }
      if (fileKey !== null) break;
    }
    if (fileKey === null && passphrase !== undefined && hasScrypt) {
      fileKey = await unwrapScrypt(passphrase, stanzas[0]!, maxWorkFactor);
    }
    if (fileKey === null) {
      fail(
        'KW_NO_IDENTITY_MATCHED',
        hasScrypt ? 'this age file is passphrase-encrypted; give the passphrase' : 'none of the identities opens any stanza of this age file',
      );
    }
    if (!verifyHeaderMac(fileKey, header)) fail('KW_AGE_HMAC_MISMATCH', 'age header MAC does not verify');
    decryptPayload(fileKey, binary.subarray(header.payloadOffset), sink);
  } finally {
    wipe(fileKey);
  }
}

/** Opens an age file (binary or armored) and returns its plaintext. */
export async function ageOpen(file: Uint8Array, opts: AgeOpenOptions): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  try {
    await openAgeTo(file, opts, (c) => chunks.push(c));
  } catch (e) {
    // Never leave released-but-unreturned plaintext of a failed file around.
    wipe(...chunks);
    throw e;
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = concat(...chunks);
  wipe(...chunks);
  return out;
}
