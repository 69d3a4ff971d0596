/**
 * KEMs for HPKE: DHKEM(X25519, HKDF-SHA256), DHKEM(P-256, HKDF-SHA256)
 * (RFC 9180 §4.1) and X-Wing (draft-connolly-cfrg-xwing-kem, used in HPKE as
 * draft-ietf-hpke-pq specifies: the KEM's shared secret is HPKE's).
 */
import { ml_kem768_x25519 } from '@noble/post-quantum/hybrid.js';
import { platform } from '#platform';
import { concat, toHex, u16be } from '../bytes.js';
import { KeywardError } from '../errors.js';
import type { DhGroup, DhPublic, DhSecret } from '../platform/types.js';
import { labeledExpandParts, labeledExtract } from './kdf.js';

/** A recipient public key prepared for encapsulation (parsed and validated once). */
export interface KemPublicKey { readonly kem: Kem; readonly bytes: Uint8Array; readonly handle: unknown }
/** A private key prepared for decapsulation. */
export interface KemSecretKey { readonly kem: Kem; readonly publicKey: Uint8Array; readonly handle: unknown }

export interface Kem {
  readonly id: number;
  readonly name: 'x25519' | 'p256' | 'xwing';
  readonly encLength: number;
  readonly publicKeyLength: number;
  readonly secretKeyLength: number;
  importPublic(pk: Uint8Array): Promise<KemPublicKey>;
  importSecret(sk: Uint8Array): Promise<KemSecretKey>;
  /** Fresh random secret key bytes in this KEM's serialized form. */
  generateSecret(): Uint8Array;
  /** `ephemeralSecret` exists only for known-answer tests. */
  encap(pk: KemPublicKey, ephemeralSecret?: Uint8Array): Promise<{ shared: Uint8Array; enc: Uint8Array }>;
  /** Returns null when `enc` is invalid for this KEM. */
  decap(enc: Uint8Array, sk: KemSecretKey): Promise<Uint8Array | null>;
  /** Synchronous `encap` (fresh ephemeral only), where the platform allows it. */
  readonly encapSync?: (pk: KemPublicKey) => { shared: Uint8Array; enc: Uint8Array };
  /**
   * Synchronous `decap` for keys `canDecapSync` accepts (not a key held
   * outside the library), where the platform allows it.
   */
  readonly decapSync?: (enc: Uint8Array, sk: KemSecretKey) => Uint8Array | null;
  canDecapSync(sk: KemSecretKey): boolean;
}

/**
 * A private key held outside this library (a non-extractable WebCrypto key,
 * a token): only its Diffie-Hellman with a peer's raw public key is asked
 * for. `dh` returns the raw shared secret, or null when the peer key or the
 * result is invalid. Used as a {@link KemSecretKey} handle by `dhkem` KEMs.
 */
export class ExternalDh {
  constructor(readonly dh: (peerPublicKey: Uint8Array) => Promise<Uint8Array | null>) {}
}

const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

function dhkem(id: number, group: DhGroup): Kem {
  const suiteId = concat(new TextEncoder().encode('KEM'), u16be(id));
  const empty = new Uint8Array(0);
  // ExtractAndExpand(dh, kem_context = enc ‖ pkR), the two parts fed to the HMAC without concatenating them.
  const extractAndExpand = (dh: Uint8Array, enc: Uint8Array, pkR: Uint8Array) => {
    const prk = labeledExtract(suiteId, empty, 'eae_prk', dh);
    const shared = labeledExpandParts(suiteId, prk, 'shared_secret', [enc, pkR], 32);
    prk.fill(0);
    return shared;
  };
  const sync = group.sync;
  const kem: Kem = {
    id,
    name: group.name,
    encLength: group.publicKeyLength,
    publicKeyLength: group.publicKeyLength,
    secretKeyLength: group.secretKeyLength,
    async importPublic(pk) {
      const handle = await group.importPublic(pk);
      if (!handle) throw new KeywardError('KW_INVALID_KEY_STRING', `invalid ${group.name} public key`);
      return { kem, bytes: pk, handle };
    },
    async importSecret(sk) {
      const handle = await group.importSecret(sk);
      return { kem, publicKey: await group.publicKeyOf(handle), handle };
    },
    generateSecret() {
      if (group.name === 'x25519') return platform.randomBytes(32);
      for (;;) {
        // Rejection sampling as RFC 9180 DeriveKeyPair does for P-256 (0 < sk < n): almost always one round.
        const sk = platform.randomBytes(32);
        const x = BigInt('0x' + toHex(sk));
        if (x !== 0n && x < P256_ORDER) return sk;
      }
    },
    async encap(pk, ephemeralSecret) {
      const eph = ephemeralSecret
        ? { secret: await group.importSecret(ephemeralSecret), publicKey: new Uint8Array(0) }
        : await group.generate();
      const enc = ephemeralSecret ? await group.publicKeyOf(eph.secret) : eph.publicKey;
      const dh = await group.dh(eph.secret, pk.handle as DhPublic);
      if (!dh) throw new KeywardError('KW_INVALID_KEY_STRING', `invalid ${group.name} recipient key (DH output rejected)`);
      const shared = extractAndExpand(dh, enc, pk.bytes);
      dh.fill(0);
      return { shared, enc };
    },
    async decap(enc, sk) {
      if (enc.length !== group.publicKeyLength) return null;
      const pkE = await group.importPublic(enc);
      if (!pkE) return null;
      let dh: Uint8Array | null;
      if (sk.handle instanceof ExternalDh) {
        dh = await sk.handle.dh(enc.slice()).catch(() => null);
        if (dh && (dh.length !== group.sharedSecretLength || dh.every((x) => x === 0))) dh = null;
      } else {
        dh = await group.dh(sk.handle as DhSecret, pkE);
      }
      if (!dh) return null;
      const shared = extractAndExpand(dh, enc, sk.publicKey);
      dh.fill(0);
      return shared;
    },
    encapSync: sync && ((pk) => {
      const eph = sync.generate();
      const dh = sync.dh(eph.secret, pk.handle as DhPublic);
      if (!dh) throw new KeywardError('KW_INVALID_KEY_STRING', `invalid ${group.name} recipient key (DH output rejected)`);
      const shared = extractAndExpand(dh, eph.publicKey, pk.bytes);
      dh.fill(0);
      return { shared, enc: eph.publicKey };
    }),
    decapSync: sync && ((enc, sk) => {
      if (enc.length !== group.publicKeyLength || sk.handle instanceof ExternalDh) return null;
      const pkE = sync.importPublic(enc);
      if (!pkE) return null;
      const dh = sync.dh(sk.handle as DhSecret, pkE);
      if (!dh) return null;
      const shared = extractAndExpand(dh, enc, sk.publicKey);
      dh.fill(0);
      return shared;
    }),
    canDecapSync: (sk) => sync !== undefined && !(sk.handle instanceof ExternalDh),
  };
  return kem;
}

const xwing: Kem = {
  id: 0x647a,
  name: 'xwing',
  encLength: 1120,
  publicKeyLength: 1216,
  secretKeyLength: 32,
  importPublic(pk) {
    if (pk.length !== 1216) throw new KeywardError('KW_INVALID_KEY_STRING', 'X-Wing public key must be 1216 bytes');
    return Promise.resolve({ kem: xwing, bytes: pk, handle: pk });
  },
  importSecret(sk) {
    if (sk.length !== 32) throw new KeywardError('KW_INVALID_KEY_STRING', 'X-Wing secret key must be a 32-byte seed');
    return Promise.resolve({ kem: xwing, publicKey: ml_kem768_x25519.getPublicKey(sk), handle: sk.slice() });
  },
  generateSecret: () => platform.randomBytes(32),
  encap(pk, ephemeralSecret) {
    try {
      const { cipherText, sharedSecret } = ml_kem768_x25519.encapsulate(pk.bytes, ephemeralSecret);
      return Promise.resolve({ shared: sharedSecret, enc: cipherText });
    } catch (e) {
      throw new KeywardError('KW_INVALID_KEY_STRING', 'invalid X-Wing recipient key', { cause: e });
    }
  },
  decap(enc, sk) {
    return Promise.resolve(xwing.decapSync!(enc, sk));
  },
  // @noble/post-quantum is synchronous everywhere.
  encapSync(pk) {
    try {
      const { cipherText, sharedSecret } = ml_kem768_x25519.encapsulate(pk.bytes);
      return { shared: sharedSecret, enc: cipherText };
    } catch (e) {
      throw new KeywardError('KW_INVALID_KEY_STRING', 'invalid X-Wing recipient key', { cause: e });
    }
  },
  decapSync(enc, sk) {
    if (enc.length !== 1120) return null;
    try {
      return ml_kem768_x25519.decapsulate(enc, sk.handle as Uint8Array);
    } catch {
      return null;
    }
  },
  canDecapSync: () => true,
};

export const KEMS = {
  x25519: dhkem(0x0020, platform.x25519),
  p256: dhkem(0x0010, platform.p256),
  xwing,
} as const;
