/**
 * Passphrase stanza `scrypt`. It must be the envelope's only stanza (checked
 * when sealing and when opening), as in age: a passphrase-only envelope then
 * proves it was made by someone who knows the passphrase, which users assume.
 *   fields = [salt (16), log2(N) (1 byte), ct]
 *   kek    = scrypt(passphrase, "keyward/v1 scrypt" ‖ salt, N, r = 8, p = 1, 32)
 *   ct     = AES-256-GCM(kek, nonce = 0^12, aad = StanzaContext.info("scrypt") ‖ header salt, data_key)
 */
import { platform } from '#platform';
import { concat, utf8, wipe } from '../bytes.js';
import { KeywardError } from '../errors.js';
import { DATA_KEY_LENGTH, LABELS, NONCE_LENGTH, SCRYPT, TAG_LENGTH } from '../format/constants.js';
import type { Identity, Recipient, Stanza, StanzaContext } from './types.js';

const ZERO_NONCE = new Uint8Array(NONCE_LENGTH);

function checkWorkFactor(logN: number, max: number): void {
  if (!Number.isInteger(logN) || logN < SCRYPT.minLogN || logN > max) {
    throw new KeywardError('KW_SCRYPT_WORK_FACTOR', `scrypt work factor 2^${logN} is outside [2^${SCRYPT.minLogN}, 2^${max}]`);
  }
}

const toBytes = (p: string | Uint8Array) => (typeof p === 'string' ? utf8.encode(p.normalize('NFC')) : p.slice());

async function kek(passphrase: Uint8Array, salt: Uint8Array, logN: number) {
  const key = await platform.scrypt(passphrase, concat(LABELS.scrypt, salt), logN, 32);
  const aead = await platform.aead('aes-256-gcm', key);
  wipe(key);
  return aead;
}

export class PassphraseRecipient implements Recipient {
  readonly type = 'scrypt';
  private readonly passphrase: Uint8Array;
  constructor(passphrase: string | Uint8Array, private readonly logN: number = SCRYPT.defaultLogN) {
    this.passphrase = toBytes(passphrase);
    if (this.passphrase.length === 0) throw new KeywardError('KW_INVALID_ARGUMENT', 'passphrase must not be empty');
    checkWorkFactor(logN, SCRYPT.hardMaxLogN);
  }

  async wrap(dataKey: Uint8Array, ctx: StanzaContext): Promise<Stanza> {
    const salt = platform.randomBytes(SCRYPT.saltLength);
    const aead = await kek(this.passphrase, salt, this.logN);
    const ct = await aead.seal(ZERO_NONCE, dataKey, concat(ctx.info(this.type), ctx.salt));
    return { type: this.type, fields: [salt, new Uint8Array([this.logN]), ct] };
  }
}

export class PassphraseIdentity implements Identity {
  readonly type = 'scrypt';
  private readonly passphrase: Uint8Array;
  constructor(passphrase: string | Uint8Array, private readonly maxLogN: number = SCRYPT.defaultMaxLogN) {
    this.passphrase = toBytes(passphrase);
    if (!Number.isInteger(maxLogN) || maxLogN < SCRYPT.minLogN || maxLogN > SCRYPT.hardMaxLogN) {
      throw new KeywardError('KW_INVALID_ARGUMENT', `maxWorkFactor must be within [${SCRYPT.minLogN}, ${SCRYPT.hardMaxLogN}]`);
    }
  }

  async unwrap(stanza: Stanza, ctx: StanzaContext): Promise<Uint8Array | null> {
    const [salt, n, ct] = stanza.fields;
    if (stanza.fields.length !== 3 || salt?.length !== SCRYPT.saltLength || n?.length !== 1 || ct?.length !== DATA_KEY_LENGTH + TAG_LENGTH) {
      throw new KeywardError('KW_MALFORMED_HEADER', 'malformed scrypt stanza');
    }
    checkWorkFactor(n[0]!, this.maxLogN);
    const aead = await kek(this.passphrase, salt, n[0]!);
    return aead.open(ZERO_NONCE, ct, concat(ctx.info(this.type), ctx.salt));
  }
}
