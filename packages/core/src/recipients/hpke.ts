/**
 * Public-key stanzas `x25519`, `p256` and `xwing`: HPKE base mode (RFC 9180)
 * with HKDF-SHA256 and AES-256-GCM, one fresh encapsulation per stanza.
 *   fields = [key_id (16 bytes, or empty when anonymous), enc, ct]
 *   ct     = HPKE.Seal(pk, info = StanzaContext.info(type), aad = salt, pt = data_key)
 */
import { platform } from '#platform';
import { concat, equalBytes, u16be, utf8, wipe } from '../bytes.js';
import { KeywardError } from '../errors.js';
import { DATA_KEY_LENGTH, KEY_ID_LENGTH, TAG_LENGTH } from '../format/constants.js';
import { HpkeSuite } from '../hpke/hpke.js';
import { ExternalDh, KEMS, type KemPublicKey, type KemSecretKey } from '../hpke/kem.js';
import { decodeKey, encodeKey, keyId } from '../keys/encoding.js';
import type { Identity, Recipient, Stanza, StanzaContext } from './types.js';

export type KemType = keyof typeof KEMS;
export const KEM_TYPES: readonly KemType[] = ['x25519', 'xwing', 'p256'];

export const PUBLIC_HRP: Record<KemType, string> = { x25519: 'kwx25519', xwing: 'kwxwing', p256: 'kwp256' };
export const SECRET_HRP: Record<KemType, string> = { x25519: 'KWSECRETX25519', xwing: 'KWSECRETXWING', p256: 'KWSECRETP256' };

const SUITES: Record<KemType, HpkeSuite> = {
  x25519: new HpkeSuite(KEMS.x25519, 'aes-256-gcm'),
  xwing: new HpkeSuite(KEMS.xwing, 'aes-256-gcm'),
  p256: new HpkeSuite(KEMS.p256, 'aes-256-gcm'),
};

/** DHKEM(X25519, HKDF-SHA256)'s suite_id (RFC 9180 §4.1): "KEM" ‖ I2OSP(0x0020, 2). */
const X25519_KEM_SUITE_ID = concat(utf8.encode('KEM'), u16be(KEMS.x25519.id));

/**
 * The `x25519` stanzas of `recipients` computed with other threads (the
 * platform's `stanzaOffload`: Node, many recipients), started now; null when
 * the platform does not share them out. The same stanzas as
 * `HpkeRecipient.wrap`, each with its own fresh encapsulation.
 */
export function offloadStanzas(recipients: readonly Recipient[], dataKey: Uint8Array, ctx: StanzaContext): { indices: ReadonlySet<number>; stanzas: Promise<Map<number, Stanza>> } | null {
  const offload = platform.stanzaOffload;
  if (!offload) return null;
  const chosen = offloadable(recipients);
  if (!offload.wants(chosen.length)) return null;
  const targets = chosen.map((i) => recipients[i] as HpkeRecipient);
  const suite = SUITES.x25519;
  const info = ctx.info('x25519');
  const key = dataKey.slice(); // its own buffer: a view's whole buffer would be copied to the workers
  const ctLength = key.length + TAG_LENGTH;
  const stanzas = offload.seal({
    kemSuiteId: X25519_KEM_SUITE_ID,
    suiteId: suite.suiteId,
    ksContext: suite.keyScheduleContext(info),
    aad: ctx.salt,
    plaintext: key,
    publicKeys: concat(...targets.map((r) => r.publicKey)),
  }, (j) => targets[j]!.sealStanza(key, ctx)).then(({ encs, cts }) => new Map(chosen.map((i, j): [number, Stanza] => [i, {
    type: 'x25519',
    fields: [ctx.anonymous ? new Uint8Array(0) : targets[j]!.keyId, encs.subarray(32 * j, 32 * j + 32), cts.subarray(ctLength * j, ctLength * (j + 1))],
  }]))).finally(() => wipe(key));
  stanzas.catch(() => undefined); // awaited by the caller, which may fail first
  return { indices: new Set(chosen), stanzas };
}

/** Indices of the recipients whose stanzas other threads can compute. */
function offloadable(recipients: readonly Recipient[]): number[] {
  const chosen: number[] = [];
  recipients.forEach((r, i) => { if (r instanceof HpkeRecipient && r.type === 'x25519') chosen.push(i); });
  return chosen;
}

/** Whether `offloadStanzas` would share these recipients' stanzas out to other threads now. */
export function offloadWanted(recipients: readonly Recipient[]): boolean {
  return recipients.length > 1 && platform.stanzaOffload !== undefined && platform.stanzaOffload.wants(offloadable(recipients).length);
}

/** A public key to seal to. Create with `parseRecipient` or `identity.recipient()`. */
export class HpkeRecipient implements Recipient {
  readonly keyId: Uint8Array;
  readonly wrapSync: ((dataKey: Uint8Array, ctx: StanzaContext) => Stanza) | undefined;
  private constructor(readonly type: KemType, private readonly pk: KemPublicKey) {
    this.keyId = keyId(type, pk.bytes);
    const suite = SUITES[type];
    this.wrapSync = suite.canSealSync
      ? (dataKey, ctx) => {
        const { enc, ct } = suite.sealSync(this.pk, ctx.info(this.type), ctx.salt, dataKey);
        return { type: this.type, fields: [ctx.anonymous ? new Uint8Array(0) : this.keyId, enc, ct] };
      }
      : undefined;
  }

  static async fromPublicKey(type: KemType, publicKey: Uint8Array): Promise<HpkeRecipient> {
    return new HpkeRecipient(type, await KEMS[type].importPublic(publicKey));
  }

  static async parse(text: string, type: KemType): Promise<HpkeRecipient> {
    return HpkeRecipient.fromPublicKey(type, decodeKey(text, PUBLIC_HRP[type], KEMS[type].publicKeyLength));
  }

  get publicKey(): Uint8Array { return this.pk.bytes; }

  /** The recipient string, e.g. `kwx255191…`. */
  toString(): string { return encodeKey(PUBLIC_HRP[this.type], this.pk.bytes); }

  async wrap(dataKey: Uint8Array, ctx: StanzaContext): Promise<Stanza> {
    const { enc, ct } = await this.sealStanza(dataKey, ctx);
    return { type: this.type, fields: [ctx.anonymous ? new Uint8Array(0) : this.keyId, enc, ct] };
  }

  /** The stanza's `enc` and `ct`: HPKE single-shot seal of the data key, a fresh encapsulation. */
  sealStanza(dataKey: Uint8Array, ctx: StanzaContext): Promise<{ enc: Uint8Array; ct: Uint8Array }> {
    return SUITES[this.type].seal(this.pk, ctx.info(this.type), ctx.salt, dataKey);
  }
}

/** A secret key that opens `x25519` / `p256` / `xwing` stanzas. */
export class HpkeIdentity implements Identity {
  readonly keyId: Uint8Array;
  readonly unwrapSync: ((stanza: Stanza, ctx: StanzaContext) => Uint8Array | null) | undefined;
  private constructor(readonly type: KemType, private readonly secret: Uint8Array | null, private readonly sk: KemSecretKey) {
    this.keyId = keyId(type, sk.publicKey);
    // The private key was imported once (sk.handle: a KeyObject in Node) and serves every open.
    const suite = SUITES[type];
    this.unwrapSync = suite.canOpenSync(sk)
      ? (stanza, ctx) => {
        const f = this.stanzaFields(stanza);
        return f && suite.openSync(this.sk, f.enc, ctx.info(this.type), ctx.salt, f.ct);
      }
      : undefined;
  }

  static async fromSecretKey(type: KemType, secret: Uint8Array): Promise<HpkeIdentity> {
    return new HpkeIdentity(type, secret.slice(), await KEMS[type].importSecret(secret));
  }

  /**
   * An identity whose private key stays outside this library — e.g. a
   * non-extractable WebCrypto X25519 key — given its raw public key and a
   * function computing the raw Diffie-Hellman output with a peer's raw public
   * key (null or a throw: not ours). DH KEMs only (`x25519`, `p256`). Its
   * `toString()` refuses: there is no secret to write.
   *
   * @example
   * const pair = await crypto.subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']);
   * const pub = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
   * const id = HpkeIdentity.fromDh('x25519', pub, async (peer) => new Uint8Array(await crypto.subtle.deriveBits(
   *   { name: 'X25519', public: await crypto.subtle.importKey('raw', peer, { name: 'X25519' }, true, []) }, pair.privateKey, 256)));
   */
  static fromDh(type: 'x25519' | 'p256', publicKey: Uint8Array, dh: (peerPublicKey: Uint8Array) => Promise<Uint8Array | null>): Promise<HpkeIdentity> {
    const kem = KEMS[type];
    if (!(publicKey instanceof Uint8Array) || publicKey.length !== kem.publicKeyLength) {
      throw new KeywardError('KW_INVALID_KEY_STRING', `${type} public key must be ${kem.publicKeyLength} bytes`);
    }
    if (typeof dh !== 'function') throw new KeywardError('KW_INVALID_ARGUMENT', 'dh must be a function');
    return Promise.resolve(new HpkeIdentity(type, null, { kem, publicKey: publicKey.slice(), handle: new ExternalDh(dh) }));
  }

  static async generate(type: KemType = 'x25519'): Promise<HpkeIdentity> {
    const secret = KEMS[type].generateSecret();
    const id = await HpkeIdentity.fromSecretKey(type, secret);
    wipe(secret);
    return id;
  }

  static async parse(text: string, type: KemType): Promise<HpkeIdentity> {
    const secret = decodeKey(text, SECRET_HRP[type], KEMS[type].secretKeyLength);
    try {
      return await HpkeIdentity.fromSecretKey(type, secret);
    } finally {
      wipe(secret);
    }
  }

  get publicKey(): Uint8Array { return this.sk.publicKey; }

  recipient(): Promise<HpkeRecipient> { return HpkeRecipient.fromPublicKey(this.type, this.sk.publicKey); }

  /** The secret identity string. Handle like a password. */
  toString(): string {
    if (this.secret === null) throw new KeywardError('KW_UNSUPPORTED', 'this identity\'s private key is held outside the library (fromDh): it has no secret string');
    return encodeKey(SECRET_HRP[this.type], this.secret, true);
  }

  /** The stanza's `enc` and `ct`, or null when it names another key; throws KW_MALFORMED_HEADER. */
  private stanzaFields(stanza: Stanza): { enc: Uint8Array; ct: Uint8Array } | null {
    const kem = KEMS[this.type];
    const [id, enc, ct] = stanza.fields;
    if (stanza.fields.length !== 3 || !id || !enc || !ct || (id.length !== 0 && id.length !== KEY_ID_LENGTH) ||
        enc.length !== kem.encLength || ct.length !== DATA_KEY_LENGTH + TAG_LENGTH) {
      throw new KeywardError('KW_MALFORMED_HEADER', `malformed ${this.type} stanza`);
    }
    if (id.length && !equalBytes(id, this.keyId)) return null;
    return { enc, ct };
  }

  async unwrap(stanza: Stanza, ctx: StanzaContext): Promise<Uint8Array | null> {
    const f = this.stanzaFields(stanza);
    return f && SUITES[this.type].open(this.sk, f.enc, ctx.info(this.type), ctx.salt, f.ct);
  }
}
