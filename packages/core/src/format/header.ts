/**
 * The envelope header: encoding and strict parsing (docs/format.md §Header).
 *
 *   magic "KWRD" ‖ version u8 = 1 ‖ header_len u32 ‖ body[header_len] ‖ header_mac[32]
 *   body = aead u8 ‖ chunk_log2 u8 ‖ reserved u8 = 0 ‖ salt[32] ‖ context
 *          ‖ sig_alg u8 [‖ signer_key_id[16]] ‖ stanza_count u16 ‖ stanza* ‖ commitment[32]
 *   stanza = type_len u8 ‖ type ‖ field_count u8 ‖ (field_len u16 ‖ field)*
 */
import { concat, u16be, u32be, utf8 } from '../bytes.js';
import { KeywardError } from '../errors.js';
import {
  AEAD_CODES, AEAD_IDS, CHUNK_LOG2, COMMITMENT_LENGTH, KEY_ID_LENGTH, LIMITS, MAC_LENGTH, MAGIC,
  PREAMBLE_LENGTH, SALT_LENGTH, SIG_CODES, SIG_IDS, VERSION,
  type PayloadAead, type SignatureAlg,
} from './constants.js';
import { decodeContextStrings, encodeContext, type ContextPairs } from './context.js';
import { Reader } from './reader.js';

/** One recipient's wrapped copy of the data key. Unknown types are carried and skipped. */
export interface Stanza {
  readonly type: string;
  readonly fields: readonly Uint8Array[];
}

export interface HeaderFields {
  readonly aead: PayloadAead;
  readonly salt: Uint8Array;
  readonly context: ContextPairs;
  readonly signer: { readonly alg: SignatureAlg; readonly keyId: Uint8Array } | null;
  readonly stanzas: readonly Stanza[];
  readonly commitment: Uint8Array;
}

export interface ParsedHeader extends HeaderFields {
  /** The exact encoded context, as HPKE `info` binds it. */
  readonly contextBytes: Uint8Array;
  /** magic … commitment: the bytes the header MAC covers. */
  readonly authenticated: Uint8Array;
  readonly mac: Uint8Array;
  /** Offset of the first payload byte in the envelope. */
  readonly length: number;
}

const TYPE_RE = /^[a-z0-9][a-z0-9._-]{0,31}$/;

export function checkStanzaType(type: string): void {
  if (!TYPE_RE.test(type)) throw new KeywardError('KW_INVALID_ARGUMENT', `invalid stanza type "${type}"`);
}

/** Encodes the authenticated part of the header (everything before the MAC). */
export function encodeHeader(h: HeaderFields): Uint8Array {
  if (h.stanzas.length > LIMITS.maxStanzas) throw new KeywardError('KW_LIMIT_EXCEEDED', `more than ${LIMITS.maxStanzas} stanzas`);
  const parts: Uint8Array[] = [
    new Uint8Array([AEAD_IDS[h.aead], CHUNK_LOG2, 0]),
    h.salt,
    encodeContext(h.context),
    h.signer ? concat(new Uint8Array([SIG_IDS[h.signer.alg]]), h.signer.keyId) : new Uint8Array([0]),
    u16be(h.stanzas.length),
  ];
  for (const s of h.stanzas) {
    checkStanzaType(s.type);
    if (s.fields.length > LIMITS.maxStanzaFields) throw new KeywardError('KW_LIMIT_EXCEEDED', 'too many stanza fields');
    parts.push(new Uint8Array([s.type.length]), utf8.encode(s.type), new Uint8Array([s.fields.length]));
    for (const f of s.fields) {
      if (f.length > 0xffff) throw new KeywardError('KW_LIMIT_EXCEEDED', 'stanza field longer than 65535 bytes');
      parts.push(u16be(f.length), f);
    }
  }
  parts.push(h.commitment);
  const body = concat(...parts);
  if (body.length > LIMITS.maxHeaderLength) throw new KeywardError('KW_LIMIT_EXCEEDED', `header longer than ${LIMITS.maxHeaderLength} bytes`);
  return concat(MAGIC, new Uint8Array([VERSION]), u32be(body.length), body);
}

/** True when `bytes` starts like a binary Keyward envelope. */
export function hasMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && MAGIC.every((b, i) => bytes[i] === b);
}

/** Throws KW_NOT_AN_ENVELOPE unless the available bytes (even fewer than 4) start like the magic. */
export function checkMagicPrefix(bytes: Uint8Array): void {
  for (let i = 0; i < Math.min(bytes.length, MAGIC.length); i++) {
    if (bytes[i] !== MAGIC[i]) throw new KeywardError('KW_NOT_AN_ENVELOPE', 'not a Keyward envelope (bad magic)');
  }
}

/**
 * How many bytes the whole header (including its MAC) occupies, from the
 * preamble alone; lets streaming readers know how much to buffer.
 */
export function headerLengthFromPreamble(pre: Uint8Array): number {
  checkMagicPrefix(pre);
  if (pre.length < PREAMBLE_LENGTH) throw new KeywardError('KW_MALFORMED_HEADER', 'envelope is shorter than its preamble');
  if (pre[4] !== VERSION) throw new KeywardError('KW_UNSUPPORTED_VERSION', `unsupported envelope version ${pre[4]}`);
  const n = new Reader(pre.subarray(5, 9)).u32();
  if (n > LIMITS.maxHeaderLength) throw new KeywardError('KW_LIMIT_EXCEEDED', `header length ${n} exceeds ${LIMITS.maxHeaderLength}`);
  return PREAMBLE_LENGTH + n + MAC_LENGTH;
}

/** Parses and structurally validates a header. Nothing here is authenticated yet. */
export function parseHeader(envelope: Uint8Array): ParsedHeader {
  const total = headerLengthFromPreamble(envelope);
  if (envelope.length < total) throw new KeywardError('KW_MALFORMED_HEADER', 'envelope is shorter than its header');
  const body = envelope.subarray(PREAMBLE_LENGTH, total - MAC_LENGTH);
  const r = new Reader(body);
  const aeadCode = r.u8();
  const aead = AEAD_CODES[aeadCode] as PayloadAead | undefined;
  if (!aead) throw new KeywardError('KW_UNSUPPORTED', `unknown payload AEAD id ${aeadCode}`);
  if (r.u8() !== CHUNK_LOG2) throw new KeywardError('KW_MALFORMED_HEADER', 'v1 envelopes use 64 KiB chunks');
  if (r.u8() !== 0) throw new KeywardError('KW_MALFORMED_HEADER', 'reserved header byte is not zero');
  const salt = r.bytes(SALT_LENGTH);

  const ctxStart = r.offset;
  const nPairs = r.u16();
  if (nPairs > LIMITS.maxContextPairs) throw new KeywardError('KW_LIMIT_EXCEEDED', 'too many context pairs');
  const rawPairs: [Uint8Array, Uint8Array][] = [];
  for (let i = 0; i < nPairs; i++) rawPairs.push([r.bytes(r.u16()), r.bytes(r.u16())]);
  const contextBytes = body.subarray(ctxStart, r.offset);
  const context = decodeContextStrings(rawPairs);

  const sigCode = r.u8();
  let signer: ParsedHeader['signer'] = null;
  if (sigCode !== 0) {
    const alg = SIG_CODES[sigCode];
    if (!alg) throw new KeywardError('KW_UNSUPPORTED', `unknown signature algorithm id ${sigCode}`);
    signer = { alg, keyId: r.bytes(KEY_ID_LENGTH) };
  }

  const nStanzas = r.u16();
  if (nStanzas > LIMITS.maxStanzas) throw new KeywardError('KW_LIMIT_EXCEEDED', `more than ${LIMITS.maxStanzas} stanzas`);
  if (nStanzas === 0) throw new KeywardError('KW_MALFORMED_HEADER', 'envelope has no stanzas');
  const stanzas: Stanza[] = [];
  for (let i = 0; i < nStanzas; i++) {
    const type = String.fromCharCode(...r.bytes(r.u8()));
    if (!TYPE_RE.test(type)) throw new KeywardError('KW_MALFORMED_HEADER', 'invalid stanza type');
    const nFields = r.u8();
    if (nFields > LIMITS.maxStanzaFields) throw new KeywardError('KW_LIMIT_EXCEEDED', 'too many stanza fields');
    const fields: Uint8Array[] = [];
    for (let j = 0; j < nFields; j++) fields.push(r.bytes(r.u16()));
    stanzas.push({ type, fields });
  }
  const commitment = r.bytes(COMMITMENT_LENGTH);
  r.end();
  return {
    aead, salt, context, contextBytes, signer, stanzas, commitment,
    authenticated: envelope.subarray(0, total - MAC_LENGTH),
    mac: envelope.subarray(total - MAC_LENGTH, total),
    length: total,
  };
}
