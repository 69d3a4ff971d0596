/**
 * The primitives Keyward composes, behind one small interface with two
 * implementations: `node.ts` (node:crypto, fastest in Node) and `web.ts`
 * (WebCrypto and audited @noble/* code, for browsers and other runtimes).
 * The package's `#platform` import picks one by export condition, so the
 * format code above this layer is identical everywhere.
 */

/** AEAD algorithms, by the ids the envelope format writes. */
export type AeadAlg = 'aes-256-gcm' | 'chacha20-poly1305' | 'aes-128-gcm';

/** An AEAD bound to one key. Nonce management is the caller's (the format's) job. */
export interface AeadKey {
  seal(nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Promise<Uint8Array>;
  /**
   * Optional: as `seal` without associated data, writing the plaintext.length + 16
   * bytes into `out` at `offset` instead of a new buffer (saves a copy per chunk).
   * Callers fall back to `seal` where a platform lacks it.
   */
  sealInto?(nonce: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): Promise<void>;
  /** Returns null when authentication fails; never throws for a bad tag. */
  open(nonce: Uint8Array, ciphertext: Uint8Array, aad?: Uint8Array): Promise<Uint8Array | null>;
}

/** An opaque private key prepared for repeated Diffie-Hellman. */
export interface DhSecret { readonly __dhSecret: true }
/** An opaque, validated public key prepared for repeated Diffie-Hellman. */
export interface DhPublic { readonly __dhPublic: true }

/**
 * Synchronous forms of a group's operations, where the platform has them
 * (node:crypto). Same results and failures as the async methods.
 */
export interface DhGroupSync {
  generate(): { secret: DhSecret; publicKey: Uint8Array };
  importPublic(publicKey: Uint8Array): DhPublic | null;
  dh(secret: DhSecret, peer: DhPublic): Uint8Array | null;
}

/** A Diffie-Hellman group as HPKE's DHKEM needs it (RFC 9180 §4.1). */
export interface DhGroup {
  readonly name: 'x25519' | 'p256';
  readonly publicKeyLength: number;
  readonly secretKeyLength: number;
  readonly sharedSecretLength: number;
  generate(): Promise<{ secret: DhSecret; publicKey: Uint8Array }>;
  /** Imports a raw private scalar. Throws KW_INVALID_KEY_STRING when invalid. */
  importSecret(secretKey: Uint8Array): Promise<DhSecret>;
  /** Imports and validates a raw public key. Returns null when invalid. */
  importPublic(publicKey: Uint8Array): Promise<DhPublic | null>;
  publicKeyOf(secret: DhSecret): Promise<Uint8Array>;
  /** Returns null when the result is invalid (e.g. the all-zero X25519 output). */
  dh(secret: DhSecret, peer: DhPublic): Promise<Uint8Array | null>;
  /** Present where the platform computes these synchronously (small messages skip the promise steps). */
  readonly sync?: DhGroupSync;
}

/** Incremental hash. */
export interface Hasher {
  update(data: Uint8Array): Hasher;
  digest(): Uint8Array;
}

export interface Ed25519 {
  /** 32-byte seed → 32-byte public key. */
  publicKey(seed: Uint8Array): Promise<Uint8Array>;
  sign(seed: Uint8Array, message: Uint8Array): Promise<Uint8Array>;
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

/** Single-shot HPKE seals of one plaintext to many X25519 recipients (node/fanout.ts documents the fields). */
export interface StanzaOffloadJob {
  readonly kemSuiteId: Uint8Array;
  readonly suiteId: Uint8Array;
  readonly ksContext: Uint8Array;
  readonly aad: Uint8Array;
  readonly plaintext: Uint8Array;
  /** Raw 32-byte public keys, concatenated, already validated. */
  readonly publicKeys: Uint8Array;
}

/**
 * Optional (Node): computes `x25519` stanzas (HPKE base mode, DHKEM(X25519,
 * HKDF-SHA256), HKDF-SHA256, AES-256-GCM) partly on other threads when an
 * envelope has many recipients, a fresh encapsulation each.
 */
export interface StanzaOffload {
  /** Whether to share out `n` stanzas now (false: compute them all on the calling thread). */
  wants(n: number): boolean;
  /**
   * `enc` (32 bytes) and `ct` of every stanza, concatenated in the job's order.
   * Other threads compute some; `local(i)` computes stanza i on this thread.
   * The job's bytes must stay unchanged until the promise settles.
   */
  seal(job: StanzaOffloadJob, local: (i: number) => Promise<{ enc: Uint8Array; ct: Uint8Array }>): Promise<{ encs: Uint8Array; cts: Uint8Array }>;
}

/**
 * One-shot AEAD without a key object, where the platform computes it
 * synchronously (node:crypto): for keys used once (HPKE stanzas, the payload
 * of a one-chunk envelope). Same bytes and failures as {@link AeadKey}.
 */
export interface AeadSync {
  seal(alg: AeadAlg, key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Uint8Array;
  /** As `seal` without associated data, writing plaintext.length + 16 bytes into `out` at `offset`. */
  sealInto(alg: AeadAlg, key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): void;
  /** Returns null when authentication fails; never throws for a bad tag. */
  open(alg: AeadAlg, key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad?: Uint8Array): Uint8Array | null;
}

export interface Platform {
  readonly name: 'node' | 'web';
  randomBytes(length: number): Uint8Array;
  sha256(data: Uint8Array): Uint8Array;
  sha512(): Hasher;
  hmacSha256(key: Uint8Array, ...data: Uint8Array[]): Uint8Array;
  aead(alg: AeadAlg, key: Uint8Array): Promise<AeadKey>;
  /** Absent where AEAD is asynchronous (WebCrypto): callers then take the async path. */
  readonly aeadSync?: AeadSync;
  readonly x25519: DhGroup;
  readonly p256: DhGroup;
  readonly ed25519: Ed25519;
  /** scrypt with r = 8, p = 1, N = 2^logN. */
  scrypt(passphrase: Uint8Array, salt: Uint8Array, logN: number, length: number): Promise<Uint8Array>;
  /** Absent where there are no other threads to use (browsers). */
  readonly stanzaOffload?: StanzaOffload;
}
