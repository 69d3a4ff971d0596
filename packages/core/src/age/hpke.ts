/**
 * Minimal HPKE (RFC 9180) base mode, single-shot, for the one suite age uses:
 *
 *   KEM  MLKEM768-X25519 (X-Wing, id 0x647a; draft-ietf-hpke-pq)
 *   KDF  HKDF-SHA256     (id 0x0001)
 *   AEAD ChaCha20Poly1305 (id 0x0003)
 *
 * Only the first message of a context is ever sealed/opened (sequence number
 * 0), so the AEAD nonce is the base nonce itself.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { ml_kem768_x25519 } from '@noble/post-quantum/hybrid.js';
import { ascii, concat, randomBytes, wipe } from './util.js';

/** X-Wing sizes. */
export const XWING_SEED_SIZE = 32;
export const XWING_PUBLIC_KEY_SIZE = 1216;
export const XWING_ENC_SIZE = 1120;
/** Randomness consumed by one X-Wing encapsulation (ML-KEM coins + X25519 ephemeral). */
const XWING_ENCAP_RANDOM_SIZE = 64;

const KEM_ID = 0x647a;
const KDF_ID = 0x0001;
const AEAD_ID = 0x0003;
const NK = 32;
const NN = 12;
const MODE_BASE = 0x00;

const SUITE_ID = concat(
  ascii('HPKE'),
  new Uint8Array([KEM_ID >> 8, KEM_ID & 0xff, KDF_ID >> 8, KDF_ID & 0xff, AEAD_ID >> 8, AEAD_ID & 0xff]),
);
const HPKE_V1 = ascii('HPKE-v1');
const EMPTY = new Uint8Array(0);

function labeledExtract(salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  return extract(sha256, concat(HPKE_V1, SUITE_ID, ascii(label), ikm), salt);
}

function labeledExpand(prk: Uint8Array, label: string, info: Uint8Array, length: number): Uint8Array {
  const labeledInfo = concat(new Uint8Array([length >> 8, length & 0xff]), HPKE_V1, SUITE_ID, ascii(label), info);
  return expand(sha256, prk, labeledInfo, length);
}

/** KeySchedule for mode_base with empty PSK and PSK id. */
function keySchedule(sharedSecret: Uint8Array, info: Uint8Array): { key: Uint8Array; nonce: Uint8Array } {
  const pskIdHash = labeledExtract(EMPTY, 'psk_id_hash', EMPTY);
  const infoHash = labeledExtract(EMPTY, 'info_hash', info);
  const context = concat(new Uint8Array([MODE_BASE]), pskIdHash, infoHash);
  const secret = labeledExtract(sharedSecret, 'secret', EMPTY);
  try {
    return { key: labeledExpand(secret, 'key', context, NK), nonce: labeledExpand(secret, 'base_nonce', context, NN) };
  } finally {
    wipe(secret);
  }
}

/** The X-Wing public key of a 32-byte seed (the age identity). */
export function xwingPublicKey(seed: Uint8Array): Uint8Array {
  return ml_kem768_x25519.getPublicKey(seed);
}

/** X-Wing encapsulation with explicit CSPRNG randomness; throws on an invalid public key. */
export function xwingEncapsulate(publicKey: Uint8Array): { sharedSecret: Uint8Array; enc: Uint8Array } {
  const rand = randomBytes(XWING_ENCAP_RANDOM_SIZE);
  try {
    const { sharedSecret, cipherText } = ml_kem768_x25519.encapsulate(publicKey, rand);
    return { sharedSecret, enc: cipherText };
  } finally {
    wipe(rand);
  }
}

/** SealBase(pkR, info, aad = "", pt) → (enc, ct). */
export function sealBase(publicKey: Uint8Array, info: Uint8Array, plaintext: Uint8Array): { enc: Uint8Array; ct: Uint8Array } {
  const { sharedSecret, enc } = xwingEncapsulate(publicKey);
  const { key, nonce } = keySchedule(sharedSecret, info);
  try {
    return { enc, ct: chacha20poly1305(key, nonce).encrypt(plaintext) };
  } finally {
    wipe(sharedSecret, key, nonce);
  }
}

/**
 * OpenBase(enc, skR, info, aad = "", ct). Returns `null` when the AEAD tag does
 * not verify (wrong recipient, or a corrupted ciphertext: ML-KEM rejects
 * implicitly). Throws whatever the KEM throws for an invalid `enc`, notably a
 * low-order X25519 share (all-zero shared secret).
 */
export function openBase(enc: Uint8Array, seed: Uint8Array, info: Uint8Array, ciphertext: Uint8Array): Uint8Array | null {
  const sharedSecret = ml_kem768_x25519.decapsulate(enc, seed);
  const { key, nonce } = keySchedule(sharedSecret, info);
  try {
    return chacha20poly1305(key, nonce).decrypt(ciphertext);
  } catch {
    return null;
  } finally {
    wipe(sharedSecret, key, nonce);
  }
}
