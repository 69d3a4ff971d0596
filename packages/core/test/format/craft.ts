/**
 * Envelope crafting for the published vectors (scripts/gen-vectors.ts) and the
 * format tests. Everything here is composed from the format's own building
 * blocks — encodeHeader, KeySchedule, ChunkSealer, StanzaContext, Recipient.wrap,
 * signatureMessage — so no cryptography is reimplemented: the crafting only
 * chooses *what* goes into a header (e.g. a stanza list that `seal` would
 * refuse, or a commitment under a different data key than a stanza wraps).
 */
import { platform } from '#platform';
import { concat } from '../../src/bytes.js';
import {
  CHUNK_SIZE, COMMITMENT_LENGTH, DATA_KEY_LENGTH, KEY_ID_LENGTH, MAC_LENGTH, PREAMBLE_LENGTH, SALT_LENGTH, SIG_LENGTHS,
  type PayloadAead, type SignatureAlg,
} from '../../src/format/constants.js';
import { encodeContext, type ContextPairs } from '../../src/format/context.js';
import { encodeHeader, parseHeader, type Stanza } from '../../src/format/header.js';
import { KeySchedule } from '../../src/format/keyschedule.js';
import { CIPHER_CHUNK_SIZE, ChunkSealer } from '../../src/format/payload.js';
import { signatureMessage } from '../../src/format/session.js';
import type { SigningKey } from '../../src/keys/signing.js';
import { StanzaContext } from '../../src/recipients/types.js';

export { CIPHER_CHUNK_SIZE };

/** Fresh random bytes (the platform CSPRNG). */
export const randomBytes = (n: number): Uint8Array => platform.randomBytes(n);

/** A fresh 32-byte data key. */
export const newDataKey = (): Uint8Array => randomBytes(DATA_KEY_LENGTH);

/** The deterministic large-plaintext pattern of the vectors: byte i is `i % 251`. */
export function patternBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = i % 251;
  return out;
}

export const PATTERN_DESCRIPTION = 'i % 251';

export const sha256Hex = (b: Uint8Array): string => Buffer.from(platform.sha256(b)).toString('hex');

/** Canonical chunking: full 64 KiB chunks, then one final chunk (short, or empty only when everything is). */
export function canonicalChunks(plaintext: Uint8Array): [Uint8Array, boolean][] {
  const out: [Uint8Array, boolean][] = [];
  let o = 0;
  while (plaintext.length - o > CHUNK_SIZE) {
    out.push([plaintext.subarray(o, o + CHUNK_SIZE), false]);
    o += CHUNK_SIZE;
  }
  out.push([plaintext.subarray(o), true]);
  return out;
}

export interface CraftOptions {
  /** The data key the header commits to; it also keys the header MAC and the payload. */
  readonly dataKey: Uint8Array;
  readonly salt?: Uint8Array;
  readonly context?: ContextPairs;
  readonly aead?: PayloadAead;
  readonly signer?: SigningKey;
  /** Builds the stanza list, given the stanza context (salt and context) of the header being crafted. */
  stanzas(sctx: StanzaContext): Promise<Stanza[]>;
  readonly plaintext?: Uint8Array;
  /** An explicit chunk plan ([plaintext, last] pairs) instead of canonical chunking. */
  readonly chunks?: readonly (readonly [Uint8Array, boolean])[];
}

/**
 * Builds an envelope exactly as beginSeal + EnvelopeEncoder would, except that
 * the caller chooses the stanzas (and with them which keys they wrap).
 */
export async function craftEnvelope(o: CraftOptions): Promise<Uint8Array> {
  const salt = o.salt ?? randomBytes(SALT_LENGTH);
  const context = o.context ?? [];
  const aead = o.aead ?? 'aes-256-gcm';
  const sctx = new StanzaContext(salt, context, encodeContext(context), false);
  const stanzas = await o.stanzas(sctx);
  const ks = new KeySchedule(o.dataKey, salt);
  const signer = o.signer ? { alg: o.signer.alg, keyId: o.signer.keyId } : null;
  const authenticated = encodeHeader({ aead, salt, context, signer, stanzas, commitment: ks.commitment });
  const mac = ks.headerMac(authenticated);
  const sealer = await ChunkSealer.create(aead, ks.payloadKey(mac));
  ks.dispose();
  const parts: Uint8Array[] = [authenticated, mac];
  for (const [chunk, last] of o.chunks ?? canonicalChunks(o.plaintext ?? new Uint8Array(0))) parts.push(await sealer.seal(chunk, last));
  const body = concat(...parts);
  return o.signer ? concat(body, await signDetached(o.signer, body)) : body;
}

/** The signature a signer appends to `headerAndPayload` (everything before the signature). */
export async function signDetached(signer: SigningKey, headerAndPayload: Uint8Array): Promise<Uint8Array> {
  return signer.sign(signatureMessage(platform.sha512().update(headerAndPayload).digest()));
}

export interface EnvelopeParts {
  readonly header: Uint8Array;
  readonly chunks: Uint8Array[];
  readonly signature: Uint8Array;
}

/** Splits a well-formed envelope into header (with MAC), ciphertext chunks and signature. */
export function splitEnvelope(envelope: Uint8Array): EnvelopeParts {
  const h = parseHeader(envelope);
  const sigLen = h.signer ? SIG_LENGTHS[h.signer.alg] : 0;
  const payload = envelope.subarray(h.length, envelope.length - sigLen);
  const chunks: Uint8Array[] = [];
  for (let o = 0; o < payload.length; o += CIPHER_CHUNK_SIZE) chunks.push(payload.subarray(o, Math.min(payload.length, o + CIPHER_CHUNK_SIZE)));
  return { header: envelope.subarray(0, h.length), chunks, signature: envelope.subarray(envelope.length - sigLen) };
}

/** Byte offsets of the header fields of a well-formed envelope. */
export function headerOffsets(envelope: Uint8Array) {
  const h = parseHeader(envelope);
  const context = PREAMBLE_LENGTH + 3 + SALT_LENGTH;
  const sigAlg = context + h.contextBytes.length;
  const stanzaCount = sigAlg + 1 + (h.signer ? KEY_ID_LENGTH : 0);
  return {
    version: 4, headerLen: 5, aead: PREAMBLE_LENGTH, chunkLog2: PREAMBLE_LENGTH + 1, reserved: PREAMBLE_LENGTH + 2,
    salt: PREAMBLE_LENGTH + 3, context, sigAlg, signerKeyId: sigAlg + 1, stanzaCount, firstStanza: stanzaCount + 2,
    commitment: h.length - MAC_LENGTH - COMMITMENT_LENGTH, mac: h.length - MAC_LENGTH, payload: h.length,
  };
}

/** A deep, mutable copy of a header's fields. */
export interface MutableHeader {
  aead: PayloadAead;
  salt: Uint8Array;
  context: [string, string][];
  signer: { alg: SignatureAlg; keyId: Uint8Array } | null;
  stanzas: { type: string; fields: Uint8Array[] }[];
  commitment: Uint8Array;
}

/**
 * Re-encodes the header of `envelope` after `mutate` changed its fields, and
 * keeps everything after the header (payload and signature). The header MAC
 * is the original one unless `mac` is given: this is what an attacker without
 * the data key can do.
 */
export function reencodeHeader(envelope: Uint8Array, mutate: (h: MutableHeader) => void, mac?: Uint8Array): Uint8Array {
  const p = parseHeader(envelope);
  const h: MutableHeader = {
    aead: p.aead,
    salt: p.salt.slice(),
    context: p.context.map(([k, v]) => [k, v]),
    signer: p.signer ? { alg: p.signer.alg, keyId: p.signer.keyId.slice() } : null,
    stanzas: p.stanzas.map((s) => ({ type: s.type, fields: s.fields.map((f) => f.slice()) })),
    commitment: p.commitment.slice(),
  };
  mutate(h);
  return concat(encodeHeader(h), mac ?? p.mac, envelope.subarray(p.length));
}

/** A copy of `bytes` with bit `bit` flipped. */
export function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = bytes.slice();
  out[bit >>> 3]! ^= 1 << (bit & 7);
  return out;
}

/** A copy of `bytes` with `values` written at `offset`. */
export function patch(bytes: Uint8Array, offset: number, values: ArrayLike<number>): Uint8Array {
  const out = bytes.slice();
  out.set(values, offset);
  return out;
}

/** A small seeded PRNG (mulberry32) for reproducible split points. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 32-bit seed from a string (FNV-1a). */
export function seedOf(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Cuts `bytes` into pieces of random sizes (1 … maxPiece), reproducibly from `rand`. */
export function randomPieces(bytes: Uint8Array, rand: () => number, maxPiece = 40_000): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let o = 0; o < bytes.length;) {
    const n = 1 + Math.floor(rand() * (rand() < 0.3 ? 64 : maxPiece));
    out.push(bytes.subarray(o, Math.min(bytes.length, o + n)));
    o += n;
  }
  return out;
}
