/**
 * HPKE base mode (RFC 9180 §5.1), single-shot and with a context for the
 * known-answer tests. Composed from the platform's HKDF/AEAD and the KEMs in
 * kem.ts; no primitive is implemented here.
 */
import { concat, equalBytes, u16be, utf8 } from '../bytes.js';
import { KeywardError } from '../errors.js';
import type { AeadAlg, AeadKey } from '../platform/types.js';
import { platform } from '#platform';
import { labeledExpand, labeledExtract } from './kdf.js';
import type { Kem, KemPublicKey, KemSecretKey } from './kem.js';

export const AEAD_IDS: Record<AeadAlg, number> = { 'aes-128-gcm': 1, 'aes-256-gcm': 2, 'chacha20-poly1305': 3 };
const KEY_LEN: Record<AeadAlg, number> = { 'aes-128-gcm': 16, 'aes-256-gcm': 32, 'chacha20-poly1305': 32 };
const KDF_HKDF_SHA256 = 1;
const NONCE_LEN = 12;
const EMPTY = new Uint8Array(0);
const MODE_BASE = new Uint8Array([0]);

/** One HPKE ciphersuite: a KEM, HKDF-SHA256 and an AEAD. */
export class HpkeSuite {
  readonly suiteId: Uint8Array;
  private readonly pskIdHash: Uint8Array;
  private lastInfo: Uint8Array | null = null;
  private lastKsContext: Uint8Array = EMPTY;

  constructor(readonly kem: Kem, readonly aead: AeadAlg) {
    this.suiteId = concat(utf8.encode('HPKE'), u16be(kem.id), u16be(KDF_HKDF_SHA256), u16be(AEAD_IDS[aead]));
    this.pskIdHash = labeledExtract(this.suiteId, EMPTY, 'psk_id_hash', EMPTY);
  }

  /**
   * key_schedule_context = mode ‖ psk_id_hash ‖ info_hash: constant for a given
   * info (psk_id_hash is constant in base mode). Sealing to many recipients, and
   * opening many envelopes with one context, repeat one info; its hash is kept.
   * Compared by content (info is public), on a private copy: a caller may refill the same buffer.
   */
  keyScheduleContext(info: Uint8Array): Uint8Array {
    const last = this.lastInfo;
    if (last !== null && equalBytes(last, info)) return this.lastKsContext;
    const ctx = concat(MODE_BASE, this.pskIdHash, labeledExtract(this.suiteId, EMPTY, 'info_hash', info));
    this.lastInfo = info.slice();
    this.lastKsContext = ctx;
    return ctx;
  }

  /** KeySchedule for mode_base: the AEAD key (as a platform AEAD), base_nonce and the secret. */
  private async schedule(shared: Uint8Array, info: Uint8Array): Promise<{ aead: AeadKey; baseNonce: Uint8Array; secret: Uint8Array; ctx: Uint8Array }> {
    const ctx = this.keyScheduleContext(info);
    const secret = labeledExtract(this.suiteId, shared, 'secret', EMPTY);
    const key = labeledExpand(this.suiteId, secret, 'key', ctx, KEY_LEN[this.aead]);
    const baseNonce = labeledExpand(this.suiteId, secret, 'base_nonce', ctx, NONCE_LEN);
    const aead = await platform.aead(this.aead, key);
    key.fill(0);
    return { aead, baseNonce, secret, ctx };
  }

  /** KeySchedule for mode_base. */
  async keySchedule(shared: Uint8Array, info: Uint8Array): Promise<HpkeContext> {
    const { aead, baseNonce, secret, ctx } = await this.schedule(shared, info);
    return new HpkeContext(this.suiteId, aead, baseNonce, secret, ctx);
  }

  async setupBaseS(pk: KemPublicKey, info: Uint8Array, ephemeralSecret?: Uint8Array): Promise<{ enc: Uint8Array; ctx: HpkeContext }> {
    const { shared, enc } = await this.kem.encap(pk, ephemeralSecret);
    const ctx = await this.keySchedule(shared, info);
    shared.fill(0);
    return { enc, ctx };
  }

  /** Returns null when `enc` is invalid. */
  async setupBaseR(enc: Uint8Array, sk: KemSecretKey, info: Uint8Array): Promise<HpkeContext | null> {
    const shared = await this.kem.decap(enc, sk);
    if (!shared) return null;
    const ctx = await this.keySchedule(shared, info);
    shared.fill(0);
    return ctx;
  }

  /** The AEAD key and base_nonce of mode_base, for single-shot use (`secret` is wiped at once). */
  private keyAndNonce(shared: Uint8Array, info: Uint8Array): { key: Uint8Array; baseNonce: Uint8Array } {
    const ctx = this.keyScheduleContext(info);
    const secret = labeledExtract(this.suiteId, shared, 'secret', EMPTY);
    const key = labeledExpand(this.suiteId, secret, 'key', ctx, KEY_LEN[this.aead]);
    const baseNonce = labeledExpand(this.suiteId, secret, 'base_nonce', ctx, NONCE_LEN);
    secret.fill(0);
    return { key, baseNonce };
  }

  /** Whether `sealSync` works here (a platform with synchronous DH and AEAD, or a KEM in JS). */
  get canSealSync(): boolean {
    return this.kem.encapSync !== undefined && platform.aeadSync !== undefined;
  }

  /** Whether `openSync` works with this key (not one held outside the library). */
  canOpenSync(sk: KemSecretKey): boolean {
    return this.kem.decapSync !== undefined && this.kem.canDecapSync(sk) && platform.aeadSync !== undefined;
  }

  /** `seal`, computed synchronously (no promise steps: small messages); only where `canSealSync`. */
  sealSync(pk: KemPublicKey, info: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): { enc: Uint8Array; ct: Uint8Array } {
    const { shared, enc } = this.kem.encapSync!(pk);
    const { key, baseNonce } = this.keyAndNonce(shared, info);
    shared.fill(0);
    try {
      return { enc, ct: platform.aeadSync!.seal(this.aead, key, baseNonce, plaintext, aad) };
    } finally {
      key.fill(0);
      baseNonce.fill(0);
    }
  }

  /** `open`, computed synchronously; only where `canOpenSync(sk)`. */
  openSync(sk: KemSecretKey, enc: Uint8Array, info: Uint8Array, aad: Uint8Array, ct: Uint8Array): Uint8Array | null {
    const shared = this.kem.decapSync!(enc, sk);
    if (!shared) return null;
    const { key, baseNonce } = this.keyAndNonce(shared, info);
    shared.fill(0);
    try {
      return platform.aeadSync!.open(this.aead, key, baseNonce, ct, aad);
    } finally {
      key.fill(0);
      baseNonce.fill(0);
    }
  }

  /** Single-shot seal with a fresh encapsulation (sequence number 0: the nonce is base_nonce). */
  async seal(pk: KemPublicKey, info: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Promise<{ enc: Uint8Array; ct: Uint8Array }> {
    const { shared, enc } = await this.kem.encap(pk);
    const { aead, baseNonce, secret } = await this.schedule(shared, info);
    shared.fill(0);
    secret.fill(0);
    const ct = await aead.seal(baseNonce, plaintext, aad);
    baseNonce.fill(0);
    return { enc, ct };
  }

  /** Single-shot open; null when the encapsulation or the ciphertext does not authenticate. */
  async open(sk: KemSecretKey, enc: Uint8Array, info: Uint8Array, aad: Uint8Array, ct: Uint8Array): Promise<Uint8Array | null> {
    const shared = await this.kem.decap(enc, sk);
    if (!shared) return null;
    const { aead, baseNonce, secret } = await this.schedule(shared, info);
    shared.fill(0);
    secret.fill(0);
    const pt = await aead.open(baseNonce, ct, aad);
    baseNonce.fill(0);
    return pt;
  }
}

/** An HPKE encryption context: sequence-numbered AEAD and the secret exporter. */
export class HpkeContext {
  private seq = 0;
  constructor(
    private readonly suiteId: Uint8Array,
    private readonly aead: Awaited<ReturnType<typeof platform.aead>>,
    private readonly baseNonce: Uint8Array,
    private readonly secret: Uint8Array,
    private readonly ksContext: Uint8Array,
  ) {}

  private nextNonce(): Uint8Array {
    if (this.seq >= 2 ** 32) throw new KeywardError('KW_COUNTER_OVERFLOW', 'HPKE sequence number overflow');
    const n = this.baseNonce.slice();
    let s = this.seq++;
    for (let i = NONCE_LEN - 1; s > 0; i--, s = Math.floor(s / 256)) n[i]! ^= s & 0xff;
    return n;
  }

  seal(aad: Uint8Array, pt: Uint8Array): Promise<Uint8Array> { return this.aead.seal(this.nextNonce(), pt, aad); }

  async open(aad: Uint8Array, ct: Uint8Array): Promise<Uint8Array | null> {
    const n = this.nextNonce();
    const pt = await this.aead.open(n, ct, aad);
    if (!pt) this.seq--; // RFC 9180 §5.2: a failed open does not advance the sequence.
    return pt;
  }

  export(exporterContext: Uint8Array, length: number): Uint8Array {
    const exporterSecret = labeledExpand(this.suiteId, this.secret, 'exp', this.ksContext, 32);
    const out = labeledExpand(this.suiteId, exporterSecret, 'sec', exporterContext, length);
    exporterSecret.fill(0);
    return out;
  }

  dispose(): void { this.secret.fill(0); this.baseNonce.fill(0); }
}
