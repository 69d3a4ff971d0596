import { toBinary } from './armor.js';
import { toHex } from './bytes.js';
import { isAgeFile } from './age/index.js';
import { KeywardError } from './errors.js';
import { SIG_LENGTHS, VERSION } from './format/constants.js';
import { parseHeader } from './format/header.js';
import { CIPHER_CHUNK_SIZE } from './format/payload.js';
import { TAG_LENGTH } from './format/constants.js';

/** The header of an envelope, as JSON-friendly data. Nothing is decrypted or authenticated. */
export interface EnvelopeDescription {
  readonly format: 'keyward';
  readonly version: number;
  readonly aead: string;
  readonly chunkSize: number;
  /** Ordered pairs, as in the header (an object would reorder number-like keys). */
  readonly context: readonly (readonly [string, string])[];
  readonly signature: { readonly alg: string; readonly keyId: string } | null;
  readonly stanzas: readonly { readonly type: string; readonly keyId: string | null; readonly fieldLengths: readonly number[] }[];
  readonly headerLength: number;
  readonly payloadLength: number;
  readonly chunkCount: number;
  readonly plaintextLength: number;
}

const KEY_ID_TYPES = new Set(['x25519', 'xwing', 'p256']);

/**
 * Describes an envelope without opening it.
 *
 * @example
 * console.log(inspect(envelope).context)
 */
export function inspect(envelope: Uint8Array | string): EnvelopeDescription {
  const bin = toBinary(envelope);
  if (isAgeFile(bin)) throw new KeywardError('KW_UNSUPPORTED', 'this is an age file; inspect reads Keyward envelopes');
  const h = parseHeader(bin);
  const sigLen = h.signer ? SIG_LENGTHS[h.signer.alg] : 0;
  const payloadLength = Math.max(0, bin.length - h.length - sigLen);
  const chunkCount = Math.max(1, Math.ceil(payloadLength / CIPHER_CHUNK_SIZE));
  return {
    format: 'keyward',
    version: VERSION,
    aead: h.aead,
    chunkSize: CIPHER_CHUNK_SIZE - TAG_LENGTH,
    context: h.context.map(([k, v]) => [k, v] as const),
    signature: h.signer ? { alg: h.signer.alg, keyId: toHex(h.signer.keyId) } : null,
    stanzas: h.stanzas.map((s) => ({
      type: s.type,
      keyId: KEY_ID_TYPES.has(s.type) && s.fields[0]?.length ? toHex(s.fields[0]) : null,
      fieldLengths: s.fields.map((f) => f.length),
    })),
    headerLength: h.length,
    payloadLength,
    chunkCount,
    plaintextLength: Math.max(0, payloadLength - chunkCount * TAG_LENGTH),
  };
}
