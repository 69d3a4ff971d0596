/**
 * The native age recipient stanzas: wrapping the 16-byte file key for a
 * recipient and unwrapping it with an identity.
 *
 *   -> X25519 base64(ephemeral share)            body = ChaCha20-Poly1305(wrap key, file key)
 *   -> mlkem768x25519 base64(enc)                body = HPKE ciphertext
 *   -> scrypt base64(salt) log2(N)               body = ChaCha20-Poly1305(scrypt key, file key)
 *
 * Unwrap functions return `null` when the stanza is not for the identity and
 * throw KW_AGE_MALFORMED when a stanza of their type breaks the spec's rules
 * (argument count, canonical base64 lengths, body length, low-order shares).
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { scryptAsync } from '@noble/hashes/scrypt.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { Stanza } from './format.js';
import { HpkeSuite } from '../hpke/hpke.js';
import { KEMS } from '../hpke/kem.js';
import type { AgeIdentity, AgeRecipient } from './keys.js';
import { ascii, b64decodeCanonical, b64encode, concat, fail, randomBytes, wipe } from './util.js';

/** The file key size. */
export const FILE_KEY_SIZE = 16;
/** Every native stanza body is the encrypted 16-byte file key plus a 16-byte tag. */
const WRAPPED_KEY_SIZE = 32;
const ZERO_NONCE = new Uint8Array(12);

const X25519_TYPE = 'X25519';
const X25519_INFO = ascii('age-encryption.org/v1/X25519');
const MLKEM_TYPE = 'mlkem768x25519';
const MLKEM_INFO = ascii('age-encryption.org/mlkem768x25519');
export const SCRYPT_TYPE = 'scrypt';
const SCRYPT_SALT_LABEL = ascii('age-encryption.org/v1/scrypt');
const SCRYPT_SALT_SIZE = 16;

/** Default and bounds of the scrypt work factor (log2 N). */
export const DEFAULT_SCRYPT_WORK_FACTOR = 18;
export const DEFAULT_MAX_SCRYPT_WORK_FACTOR = 22;
/** Hard ceiling for any configured limit: 2^30 × 1 KiB of scrypt memory is already 1 TiB. */
export const SCRYPT_WORK_FACTOR_CEILING = 30;

function malformed(type: string, message: string, cause?: unknown): never {
  fail('KW_AGE_MALFORMED', `age ${type} stanza: ${message}`, cause);
}

/** Decrypts a wrapped file key; `null` if the tag does not verify. */
function unwrapKey(wrapKey: Uint8Array, body: Uint8Array): Uint8Array | null {
  try {
    return chacha20poly1305(wrapKey, ZERO_NONCE).decrypt(body);
  } catch {
    return null;
  }
}

/** Checks arity and returns the canonical base64 argument at index 1 with the expected length. */
function checkedArgument(stanza: Stanza, type: string, arity: number, size: number, what: string): Uint8Array {
  if (stanza.args.length !== arity) malformed(type, `expected ${arity - 1} argument(s), got ${stanza.args.length - 1}`);
  const value = b64decodeCanonical(stanza.args[1]!);
  if (value === null || value.length !== size) malformed(type, `${what} is not canonical base64 of ${size} bytes`);
  // Checked before any decryption, to avoid partitioning oracles.
  if (stanza.body.length !== WRAPPED_KEY_SIZE) malformed(type, `body must be ${WRAPPED_KEY_SIZE} bytes`);
  return value;
}

// --- X25519 -----------------------------------------------------------------

function x25519WrapKey(sharedSecret: Uint8Array, share: Uint8Array, recipient: Uint8Array): Uint8Array {
  return hkdf(sha256, sharedSecret, concat(share, recipient), X25519_INFO, 32);
}

function wrapX25519(recipient: Uint8Array, fileKey: Uint8Array): Stanza {
  const ephemeral = randomBytes(32);
  let shared: Uint8Array | undefined;
  let wrapKey: Uint8Array | undefined;
  try {
    const share = x25519.getPublicKey(ephemeral);
    try {
      shared = x25519.getSharedSecret(ephemeral, recipient);
    } catch (e) {
      fail('KW_INVALID_KEY_STRING', 'age X25519 recipient is a low-order point', e);
    }
    wrapKey = x25519WrapKey(shared, share, recipient);
    const body = chacha20poly1305(wrapKey, ZERO_NONCE).encrypt(fileKey);
    return { args: [X25519_TYPE, b64encode(share)], body };
  } finally {
    wipe(ephemeral, shared, wrapKey);
  }
}

function unwrapX25519(identity: AgeIdentity, stanza: Stanza): Uint8Array | null {
  if (stanza.args[0] !== X25519_TYPE) return null;
  const share = checkedArgument(stanza, X25519_TYPE, 2, 32, 'ephemeral share');
  let shared: Uint8Array;
  try {
    shared = x25519.getSharedSecret(identity.secretKey, share);
  } catch (e) {
    // noble rejects low-order points, whose shared secret would be all zeros.
    return malformed(X25519_TYPE, 'ephemeral share is a low-order point', e);
  }
  let wrapKey: Uint8Array | undefined;
  try {
    if (shared.every((b) => b === 0)) malformed(X25519_TYPE, 'shared secret is all zeros');
    const recipient = identity.recipient().publicKey;
    wrapKey = x25519WrapKey(shared, share, recipient);
    return unwrapKey(wrapKey, stanza.body);
  } finally {
    wipe(shared, wrapKey);
  }
}

// --- ML-KEM-768 + X25519 (X-Wing via HPKE) ------------------------------------

// age's suite: X-Wing (0x647a), HKDF-SHA256, ChaCha20-Poly1305; the shared HPKE code in ../hpke.
const MLKEM_SUITE = new HpkeSuite(KEMS.xwing, 'chacha20-poly1305');
const EMPTY = new Uint8Array(0);

async function wrapMlkem(recipient: Uint8Array, fileKey: Uint8Array): Promise<Stanza> {
  let sealed: { enc: Uint8Array; ct: Uint8Array };
  try {
    sealed = await MLKEM_SUITE.seal(await KEMS.xwing.importPublic(recipient), MLKEM_INFO, EMPTY, fileKey);
  } catch (e) {
    fail('KW_INVALID_KEY_STRING', 'age post-quantum recipient is not a valid public key', e);
  }
  return { args: [MLKEM_TYPE, b64encode(sealed.enc)], body: sealed.ct };
}

async function unwrapMlkem(identity: AgeIdentity, stanza: Stanza): Promise<Uint8Array | null> {
  if (stanza.args[0] !== MLKEM_TYPE) return null;
  const enc = checkedArgument(stanza, MLKEM_TYPE, 2, KEMS.xwing.encLength, 'encapsulated key');
  const ctx = await MLKEM_SUITE.setupBaseR(enc, await KEMS.xwing.importSecret(identity.secretKey), MLKEM_INFO);
  // ML-KEM rejects implicitly (→ tag failure → null); a failed decapsulation means the X25519 part is invalid.
  if (!ctx) return malformed(MLKEM_TYPE, 'X25519 part of the encapsulated key is a low-order point');
  const fileKey = await ctx.open(EMPTY, stanza.body);
  ctx.dispose();
  return fileKey;
}

// --- scrypt -------------------------------------------------------------------

async function scryptKey(passphrase: string, salt: Uint8Array, workFactor: number): Promise<Uint8Array> {
  const N = 2 ** workFactor;
  const password = new TextEncoder().encode(passphrase);
  try {
    return await scryptAsync(password, concat(SCRYPT_SALT_LABEL, salt), {
      N,
      r: 8,
      p: 1,
      dkLen: 32,
      // scrypt needs 128·r·(N + p) bytes; the work factor limit is the memory limit.
      maxmem: 1024 * (N + 2),
    });
  } catch (e) {
    // In practice: the platform cannot allocate the 2^workFactor KiB scrypt needs.
    const why = e instanceof Error ? e.message : String(e);
    return fail('KW_SCRYPT_WORK_FACTOR', `scrypt with work factor ${workFactor} cannot run here (${why})`, e);
  } finally {
    wipe(password);
  }
}

/** Wraps the file key with a passphrase. */
export async function wrapScrypt(passphrase: string, workFactor: number, fileKey: Uint8Array): Promise<Stanza> {
  const salt = randomBytes(SCRYPT_SALT_SIZE);
  const key = await scryptKey(passphrase, salt, workFactor);
  try {
    const body = chacha20poly1305(key, ZERO_NONCE).encrypt(fileKey);
    return { args: [SCRYPT_TYPE, b64encode(salt), String(workFactor)], body };
  } finally {
    wipe(key);
  }
}

const WORK_FACTOR = /^[1-9][0-9]*$/;

/**
 * Unwraps an scrypt stanza with a passphrase.
 * @returns the file key, `null` if the stanza is not an scrypt stanza.
 * @throws KW_AGE_MALFORMED, KW_SCRYPT_WORK_FACTOR (above `maxWorkFactor`), KW_WRONG_PASSPHRASE.
 */
export async function unwrapScrypt(passphrase: string, stanza: Stanza, maxWorkFactor: number): Promise<Uint8Array | null> {
  if (stanza.args[0] !== SCRYPT_TYPE) return null;
  if (stanza.args.length !== 3) malformed(SCRYPT_TYPE, `expected 2 arguments, got ${stanza.args.length - 1}`);
  const salt = checkedArgument({ args: stanza.args.slice(0, 2), body: stanza.body }, SCRYPT_TYPE, 2, SCRYPT_SALT_SIZE, 'salt');
  const wf = stanza.args[2]!;
  if (!WORK_FACTOR.test(wf)) malformed(SCRYPT_TYPE, 'work factor is not a decimal number without leading zeros');
  const workFactor = wf.length > 2 ? Infinity : Number(wf);
  if (workFactor > maxWorkFactor) {
    fail('KW_SCRYPT_WORK_FACTOR', `age scrypt work factor ${wf.slice(0, 20)} is above the limit of ${maxWorkFactor}`);
  }
  const key = await scryptKey(passphrase, salt, workFactor);
  try {
    const fileKey = unwrapKey(key, stanza.body);
    if (fileKey === null) fail('KW_WRONG_PASSPHRASE', 'the passphrase does not open this age file');
    return fileKey;
  } finally {
    wipe(key);
  }
}

// --- dispatch -----------------------------------------------------------------

/** Builds the stanza for one public-key recipient. */
export async function wrapForRecipient(recipient: AgeRecipient, fileKey: Uint8Array): Promise<Stanza> {
  return recipient.kind === 'x25519' ? wrapX25519(recipient.publicKey, fileKey) : wrapMlkem(recipient.publicKey, fileKey);
}

/** Tries one identity on one stanza: the file key, or `null` if the stanza is not for it. */
export async function unwrapWithIdentity(identity: AgeIdentity, stanza: Stanza): Promise<Uint8Array | null> {
  const fileKey = identity.kind === 'x25519' ? unwrapX25519(identity, stanza) : await unwrapMlkem(identity, stanza);
  if (fileKey !== null && fileKey.length !== FILE_KEY_SIZE) {
    wipe(fileKey);
    malformed(stanza.args[0] ?? '', 'wrapped file key is not 16 bytes');
  }
  return fileKey;
}
