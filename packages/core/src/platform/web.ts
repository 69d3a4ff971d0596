/**
 * Platform adapter for browsers and any runtime with WebCrypto: AES-GCM from
 * WebCrypto (hardware AES), everything else from the audited @noble/* code.
 */
import { gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519 as nobleEd, x25519 as nobleX } from '@noble/curves/ed25519.js';
import { p256 as nobleP256 } from '@noble/curves/nist.js';
import { hmac } from '@noble/hashes/hmac.js';
import { scryptAsync } from '@noble/hashes/scrypt.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { KeywardError } from '../errors.js';
import type { AeadAlg, AeadKey, DhGroup, DhPublic, DhSecret, Ed25519, Hasher, Platform } from './types.js';

const subtle: SubtleCrypto | undefined = globalThis.crypto?.subtle;

function checkNonce(nonce: Uint8Array): void {
  if (nonce.length !== 12) throw new KeywardError('KW_INVALID_ARGUMENT', 'AEAD nonces are 12 bytes');
}

async function aead(alg: AeadAlg, key: Uint8Array): Promise<AeadKey> {
  const expected = alg === 'aes-128-gcm' ? 16 : 32;
  if (key.length !== expected) throw new KeywardError('KW_INVALID_ARGUMENT', `${alg} key must be ${expected} bytes`);
  if (alg === 'chacha20-poly1305' || !subtle) {
    const k = key.slice();
    const make = (n: Uint8Array, aad?: Uint8Array) => alg === 'chacha20-poly1305' ? chacha20poly1305(k, n, aad) : gcm(k, n, aad);
    return {
      seal: (nonce, pt, aad) => { checkNonce(nonce); return Promise.resolve(make(nonce, aad).encrypt(pt)); },
      open(nonce, ct, aad) {
        if (nonce.length !== 12) return Promise.resolve(null);
        try { return Promise.resolve(make(nonce, aad).decrypt(ct)); } catch { return Promise.resolve(null); }
      },
    };
  }
  const ck = await subtle.importKey('raw', key as BufferSource, 'AES-GCM', false, ['encrypt', 'decrypt']);
  const params = (iv: Uint8Array, aad?: Uint8Array): AesGcmParams =>
    aad && aad.length ? { name: 'AES-GCM', iv: iv as BufferSource, additionalData: aad as BufferSource, tagLength: 128 } : { name: 'AES-GCM', iv: iv as BufferSource, tagLength: 128 };
  return {
    async seal(nonce, pt, aad) { checkNonce(nonce); return new Uint8Array(await subtle.encrypt(params(nonce, aad), ck, pt as BufferSource)); },
    async open(nonce, ct, aad) {
      if (nonce.length !== 12) return null;
      try { return new Uint8Array(await subtle.decrypt(params(nonce, aad), ck, ct as BufferSource)); } catch { return null; }
    },
  };
}

type RawSecret = DhSecret & { sk: Uint8Array; pub: Uint8Array };
type RawPublic = DhPublic & { pub: Uint8Array };
const isZero = (b: Uint8Array) => b.reduce((a, x) => a | x, 0) === 0;

const x25519: DhGroup = {
  name: 'x25519', publicKeyLength: 32, secretKeyLength: 32, sharedSecretLength: 32,
  generate() {
    const sk = nobleX.utils.randomSecretKey();
    const pub = nobleX.getPublicKey(sk);
    return Promise.resolve({ secret: { sk, pub } as unknown as RawSecret, publicKey: pub });
  },
  importSecret(sk) {
    if (sk.length !== 32) throw new KeywardError('KW_INVALID_KEY_STRING', 'X25519 secret key must be 32 bytes');
    return Promise.resolve({ sk: sk.slice(), pub: nobleX.getPublicKey(sk) } as unknown as RawSecret);
  },
  importPublic: (pk) => Promise.resolve(pk.length === 32 ? ({ pub: pk.slice() } as unknown as RawPublic) : null),
  publicKeyOf: (s) => Promise.resolve((s as RawSecret).pub),
  dh(s, p) {
    try {
      const out = nobleX.getSharedSecret((s as RawSecret).sk, (p as RawPublic).pub);
      return Promise.resolve(isZero(out) ? null : out);
    } catch {
      return Promise.resolve(null);
    }
  },
};

const p256: DhGroup = {
  name: 'p256', publicKeyLength: 65, secretKeyLength: 32, sharedSecretLength: 32,
  generate() {
    const sk = nobleP256.utils.randomSecretKey();
    const pub = nobleP256.getPublicKey(sk, false);
    return Promise.resolve({ secret: { sk, pub } as unknown as RawSecret, publicKey: pub });
  },
  importSecret(sk) {
    let pub: Uint8Array;
    try { pub = nobleP256.getPublicKey(sk, false); } catch { throw new KeywardError('KW_INVALID_KEY_STRING', 'P-256 secret key out of range'); }
    return Promise.resolve({ sk: sk.slice(), pub } as unknown as RawSecret);
  },
  importPublic(pk) {
    if (pk.length !== 65 || pk[0] !== 4) return Promise.resolve(null);
    try {
      nobleP256.Point.fromBytes(pk).assertValidity();
      return Promise.resolve({ pub: pk.slice() } as unknown as RawPublic);
    } catch {
      return Promise.resolve(null);
    }
  },
  publicKeyOf: (s) => Promise.resolve((s as RawSecret).pub),
  dh(s, p) {
    try {
      // The shared point in compressed form; its x coordinate (after the prefix byte) is the DH output (RFC 9180 §4.1).
      return Promise.resolve(nobleP256.getSharedSecret((s as RawSecret).sk, (p as RawPublic).pub, true).slice(1));
    } catch {
      return Promise.resolve(null);
    }
  },
};

const ed25519: Ed25519 = {
  publicKey: (seed) => {
    if (seed.length !== 32) throw new KeywardError('KW_INVALID_KEY_STRING', 'Ed25519 seed must be 32 bytes');
    return Promise.resolve(nobleEd.getPublicKey(seed));
  },
  sign: (seed, msg) => Promise.resolve(nobleEd.sign(msg, seed)),
  verify(pk, msg, sig) {
    try { return Promise.resolve(nobleEd.verify(sig, msg, pk, { zip215: false })); } catch { return Promise.resolve(false); }
  },
};

class NobleHasher implements Hasher {
  private readonly h = sha512.create();
  update(data: Uint8Array): Hasher { this.h.update(data); return this; }
  digest(): Uint8Array { return this.h.digest(); }
}

export const platform: Platform = {
  name: 'web',
  randomBytes(n) {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 65536) globalThis.crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
    return out;
  },
  sha256: (d) => sha256(d),
  sha512: () => new NobleHasher(),
  hmacSha256(key, ...data) {
    const h = hmac.create(sha256, key);
    for (const d of data) h.update(d);
    return h.digest();
  },
  aead,
  x25519,
  p256,
  ed25519,
  async scrypt(pass, salt, logN, length) {
    try {
      // scrypt needs 128 · r · N bytes; allow exactly that much (plus slack), up to the format's hard maximum.
      return await scryptAsync(pass, salt, { N: 2 ** logN, r: 8, p: 1, dkLen: length, maxmem: 1024 * 2 ** logN + 2 ** 20 });
    } catch (e) {
      throw new KeywardError('KW_SCRYPT_WORK_FACTOR', `scrypt with work factor 2^${logN} failed here (memory?)`, { cause: e });
    }
  },
};
