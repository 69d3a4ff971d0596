/**
 * Sender signing keys: Ed25519, and the hybrid Ed25519 + ML-DSA-65 whose
 * signature verifies only when both halves verify.
 */
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { platform } from '#platform';
import { concat, wipe } from '../bytes.js';
import { KeywardError } from '../errors.js';
import { SIG_LENGTHS, type SignatureAlg } from '../format/constants.js';
import { decodeKey, encodeKey, keyId } from './encoding.js';

export type { SignatureAlg };
export const SIGNATURE_ALGS: readonly SignatureAlg[] = ['ed25519', 'ed25519-mldsa65'];

export const SIGNER_PUBLIC_HRP: Record<SignatureAlg, string> = { ed25519: 'kwed25519', 'ed25519-mldsa65': 'kwed25519mldsa65' };
export const SIGNER_SECRET_HRP: Record<SignatureAlg, string> = { ed25519: 'KWSECRETED25519', 'ed25519-mldsa65': 'KWSECRETED25519MLDSA65' };

const SEED_LENGTH: Record<SignatureAlg, number> = { ed25519: 32, 'ed25519-mldsa65': 64 };
const PUBLIC_LENGTH: Record<SignatureAlg, number> = { ed25519: 32, 'ed25519-mldsa65': 32 + 1952 };
const ED_SIG = 64;

/** A public key that verifies envelope signatures. */
export class VerifyingKey {
  readonly keyId: Uint8Array;
  constructor(readonly alg: SignatureAlg, readonly publicKey: Uint8Array) {
    if (publicKey.length !== PUBLIC_LENGTH[alg]) throw new KeywardError('KW_INVALID_KEY_STRING', `${alg} public key must be ${PUBLIC_LENGTH[alg]} bytes`);
    this.keyId = keyId(alg, publicKey);
  }

  static parse(text: string): VerifyingKey {
    const t = text.trim().toLowerCase();
    // Longest prefix first: one HRP is a prefix of the other.
    const alg: SignatureAlg = t.startsWith(SIGNER_PUBLIC_HRP['ed25519-mldsa65'] + '1') ? 'ed25519-mldsa65' : 'ed25519';
    return new VerifyingKey(alg, decodeKey(text, SIGNER_PUBLIC_HRP[alg], PUBLIC_LENGTH[alg]));
  }

  toString(): string { return encodeKey(SIGNER_PUBLIC_HRP[this.alg], this.publicKey); }

  async verify(message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    if (signature.length !== SIG_LENGTHS[this.alg]) return false;
    const edOk = await platform.ed25519.verify(this.publicKey.subarray(0, 32), message, signature.subarray(0, ED_SIG));
    if (this.alg === 'ed25519') return edOk;
    let pqOk = false;
    try {
      pqOk = ml_dsa65.verify(signature.subarray(ED_SIG), message, this.publicKey.subarray(32));
    } catch {
      pqOk = false;
    }
    return edOk && pqOk; // both halves must hold
  }
}

/** A secret key that signs envelopes. */
export class SigningKey {
  readonly verifyingKey: VerifyingKey;
  private constructor(readonly alg: SignatureAlg, private readonly seed: Uint8Array, publicKey: Uint8Array, private readonly mldsaSecret?: Uint8Array) {
    this.verifyingKey = new VerifyingKey(alg, publicKey);
  }

  static async fromSeed(alg: SignatureAlg, seed: Uint8Array): Promise<SigningKey> {
    if (seed.length !== SEED_LENGTH[alg]) throw new KeywardError('KW_INVALID_KEY_STRING', `${alg} seed must be ${SEED_LENGTH[alg]} bytes`);
    const s = seed.slice();
    const edPub = await platform.ed25519.publicKey(s.subarray(0, 32));
    if (alg === 'ed25519') return new SigningKey(alg, s, edPub);
    const { publicKey, secretKey } = ml_dsa65.keygen(s.subarray(32, 64));
    return new SigningKey(alg, s, concat(edPub, publicKey), secretKey);
  }

  static async generate(alg: SignatureAlg = 'ed25519'): Promise<SigningKey> {
    const seed = platform.randomBytes(SEED_LENGTH[alg]);
    try { return await SigningKey.fromSeed(alg, seed); } finally { wipe(seed); }
  }

  static async parse(text: string): Promise<SigningKey> {
    const t = text.trim().toUpperCase();
    const alg: SignatureAlg = t.startsWith(SIGNER_SECRET_HRP['ed25519-mldsa65'] + '1') ? 'ed25519-mldsa65' : 'ed25519';
    const seed = decodeKey(text, SIGNER_SECRET_HRP[alg], SEED_LENGTH[alg]);
    try { return await SigningKey.fromSeed(alg, seed); } finally { wipe(seed); }
  }

  get keyId(): Uint8Array { return this.verifyingKey.keyId; }

  /** The secret key string. Handle like a password. */
  toString(): string { return encodeKey(SIGNER_SECRET_HRP[this.alg], this.seed, true); }

  async sign(message: Uint8Array): Promise<Uint8Array> {
    const ed = await platform.ed25519.sign(this.seed.subarray(0, 32), message);
    if (this.alg === 'ed25519') return ed;
    return concat(ed, ml_dsa65.sign(message, this.mldsaSecret!));
  }
}
