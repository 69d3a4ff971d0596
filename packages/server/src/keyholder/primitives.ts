/**
 * (This file is the keyholder's one door to node:crypto (OpenSSL), so a PKCS#11
 * or enclave backend replaces one file.)
 *
 * The primitives the keyholder composes: SHA-256, HMAC-SHA256, HKDF-SHA256,
 * AES-256-GCM, Ed25519, randomness and constant-time comparison, and for
 * key import RSA-OAEP-SHA-256 and AES key wrap with padding (RFC 5649), all
 * from node:crypto. Nothing here is a construction of our own; wrap.ts, custody
 * and ops/ build on these. Every function returns plain `Uint8Array`s (never
 * pooled `Buffer`s) and wipes the intermediate buffers it made.
 */
import * as nc from 'node:crypto';

export type { KeyObject } from 'node:crypto';

/** A secret key given either as bytes or as an OpenSSL-held KeyObject. */
export type SecretInput = Uint8Array | nc.KeyObject;

const GCM_TAG = 16;
const GCM_NONCE = 12;
const ED25519_PKCS8_PREFIX = Uint8Array.from(Buffer.from('302e020100300506032b657004220420', 'hex'));
const ED25519_SPKI_PREFIX = Uint8Array.from(Buffer.from('302a300506032b6570032100', 'hex'));

/** Copies a Buffer into a fresh Uint8Array and zeroes the Buffer (it may have held a secret). */
function take(b: Buffer): Uint8Array {
  const out = new Uint8Array(b.length);
  out.set(b);
  b.fill(0);
  return out;
}

/** `n` bytes from the OS CSPRNG, in a fresh Uint8Array. */
export function randomBytes(n: number): Uint8Array {
  return nc.randomFillSync(new Uint8Array(n));
}

export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = nc.createHash('sha256');
  for (const p of parts) h.update(p);
  return take(h.digest());
}

export function hmacSha256(key: SecretInput, ...parts: Uint8Array[]): Uint8Array {
  const h = nc.createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return take(h.digest());
}

/** HKDF-SHA256 (RFC 5869): extract with `salt`, expand with `info` to `length` bytes. */
export function hkdfSha256(ikm: SecretInput, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  return new Uint8Array(nc.hkdfSync('sha256', ikm, salt, info, length));
}

/** AES-256-GCM seal: returns ciphertext ‖ 16-byte tag. */
export function aesGcmSeal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const c = nc.createCipheriv('aes-256-gcm', key, nonce, { authTagLength: GCM_TAG });
  c.setAAD(aad, { plaintextLength: plaintext.length });
  const body = c.update(plaintext);
  const fin = c.final();
  const out = new Uint8Array(body.length + fin.length + GCM_TAG);
  out.set(body, 0);
  out.set(fin, body.length);
  out.set(c.getAuthTag(), body.length + fin.length);
  return out;
}

/** AES-256-GCM open of ciphertext ‖ tag; null when it does not authenticate. Never returns unauthenticated bytes. */
export function aesGcmOpen(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | null {
  if (sealed.length < GCM_TAG || nonce.length !== GCM_NONCE) return null;
  const n = sealed.length - GCM_TAG;
  const d = nc.createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: GCM_TAG });
  d.setAuthTag(sealed.subarray(n));
  d.setAAD(aad, { plaintextLength: n });
  const body = d.update(sealed.subarray(0, n));
  try {
    const fin = d.final();
    const out = new Uint8Array(n);
    out.set(body, 0);
    out.set(fin, body.length);
    return out;
  } catch {
    return null;
  } finally {
    body.fill(0);
  }
}

/** Constant-time equality (lengths are public). */
export function equalCT(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && nc.timingSafeEqual(a, b);
}

/** Overwrites secret bytes once they are no longer needed. */
export function wipe(...bufs: (Uint8Array | null | undefined)[]): void {
  for (const b of bufs) b?.fill(0);
}

/** A secret KeyObject (held by OpenSSL) from raw bytes; the caller wipes its copy. */
export function secretKeyObject(bytes: Uint8Array): nc.KeyObject {
  return nc.createSecretKey(bytes);
}

/** An Ed25519 private KeyObject from its 32-byte seed (RFC 8032 secret key). */
export function ed25519PrivateKey(seed: Uint8Array): nc.KeyObject {
  const der = new Uint8Array(ED25519_PKCS8_PREFIX.length + seed.length);
  der.set(ED25519_PKCS8_PREFIX, 0);
  der.set(seed, ED25519_PKCS8_PREFIX.length);
  try {
    return nc.createPrivateKey({ key: Buffer.from(der.buffer, der.byteOffset, der.byteLength), format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

/** The 32-byte public key of an Ed25519 private KeyObject. */
export function ed25519PublicBytes(privateKey: nc.KeyObject): Uint8Array {
  const spki = nc.createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return Uint8Array.from(spki.subarray(ED25519_SPKI_PREFIX.length));
}

/** An Ed25519 public KeyObject from its 32 raw bytes. */
export function ed25519PublicKey(raw: Uint8Array): nc.KeyObject {
  const der = new Uint8Array(ED25519_SPKI_PREFIX.length + raw.length);
  der.set(ED25519_SPKI_PREFIX, 0);
  der.set(raw, ED25519_SPKI_PREFIX.length);
  return nc.createPublicKey({ key: Buffer.from(der.buffer), format: 'der', type: 'spki' });
}

export function ed25519Sign(privateKey: nc.KeyObject, message: Uint8Array): Uint8Array {
  return Uint8Array.from(nc.sign(null, message, privateKey));
}

export function ed25519Verify(publicKey: nc.KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  try {
    return nc.verify(null, message, publicKey, signature);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// Bring-your-own-key import (docs/key-service-crypto.md §8): RSA-OAEP(SHA-256)
// and AES key wrap with padding (RFC 5649), both from OpenSSL.

/** RFC 5649 §3 alternative initial value (the 32-bit constant; OpenSSL appends the length). */
const KWP_AIV = Buffer.from('a65959a6', 'hex');
const KWP_CIPHERS: Readonly<Record<number, string>> = { 16: 'id-aes128-wrap-pad', 24: 'id-aes192-wrap-pad', 32: 'id-aes256-wrap-pad' };

function kwpCipher(kek: Uint8Array): string {
  const name = KWP_CIPHERS[kek.length];
  if (!name) throw new RangeError('an AES key wrap key is 16, 24 or 32 bytes');
  return name;
}

/** AES key wrap with padding (RFC 5649) of `plaintext` (1 byte or more) under `kek` (AES-128/192/256). */
export function aesKwpWrap(kek: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const c = nc.createCipheriv(kwpCipher(kek), kek, KWP_AIV);
  const body = c.update(plaintext);
  const fin = c.final();
  const out = new Uint8Array(body.length + fin.length);
  out.set(body, 0);
  out.set(fin, body.length);
  return out;
}

/** RFC 5649 unwrap; null when the integrity check (AIV, length, padding) fails. Never returns unchecked bytes. */
export function aesKwpUnwrap(kek: Uint8Array, wrapped: Uint8Array): Uint8Array | null {
  if (wrapped.length < 16 || wrapped.length % 8 !== 0) return null;
  let body: Buffer | undefined;
  try {
    const d = nc.createDecipheriv(kwpCipher(kek), kek, KWP_AIV);
    body = d.update(wrapped);
    const fin = d.final();
    const out = new Uint8Array(body.length + fin.length);
    out.set(body, 0);
    out.set(fin, body.length);
    fin.fill(0);
    return out;
  } catch {
    return null;
  } finally {
    body?.fill(0);
  }
}

/**
 * A fresh RSA key pair (public exponent 65537) for one import; the private
 * half never leaves the keyholder. Generated on libuv's thread pool: RSA-3072
 * takes about a second, which must not stall the keyholder's other requests.
 */
export function rsaGenerateKeyPair(bits: 3072 | 4096): Promise<{ privateKey: nc.KeyObject; publicKey: nc.KeyObject }> {
  return new Promise((resolve, reject) => {
    nc.generateKeyPair('rsa', { modulusLength: bits, publicExponent: 0x10001 }, (err, publicKey, privateKey) => {
      if (err) reject(err);
      else resolve({ privateKey, publicKey });
    });
  });
}

/** The DER SubjectPublicKeyInfo of a public key (what the client encrypts to). */
export function publicKeySpki(publicKey: nc.KeyObject): Uint8Array {
  return Uint8Array.from(publicKey.export({ format: 'der', type: 'spki' }));
}

/** RSA-OAEP with SHA-256 and MGF1-SHA-256, empty label (RFC 8017 §7.1). */
export function rsaOaepSha256Encrypt(publicKey: nc.KeyObject, plaintext: Uint8Array): Uint8Array {
  return Uint8Array.from(nc.publicEncrypt({ key: publicKey, padding: nc.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, plaintext));
}

/** RSA-OAEP-SHA-256 decryption; null on any failure (one outcome, so no padding oracle is exposed). */
export function rsaOaepSha256Decrypt(privateKey: nc.KeyObject, ciphertext: Uint8Array): Uint8Array | null {
  try {
    return take(nc.privateDecrypt({ key: privateKey, padding: nc.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, ciphertext));
  } catch {
    return null;
  }
}

/** The modulus length in bytes of an RSA key. */
export function rsaModulusBytes(key: nc.KeyObject): number {
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (key.asymmetricKeyType !== 'rsa' || bits === undefined) throw new TypeError('not an RSA key');
  return Math.ceil(bits / 8);
}

/** An RSA public key from its DER SubjectPublicKeyInfo; null when it is not one of at least `minBits`. */
export function rsaPublicKeyFromSpki(der: Uint8Array, minBits: number): nc.KeyObject | null {
  try {
    const k = nc.createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
    return k.asymmetricKeyType === 'rsa' && (k.asymmetricKeyDetails?.modulusLength ?? 0) >= minBits ? k : null;
  } catch {
    return null;
  }
}
