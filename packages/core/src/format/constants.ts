/**
 * Constants of envelope format v1 (docs/format.md). Changing any value here
 * changes the format: the published vectors in test/vectors/ pin them.
 */
import { utf8 } from '../bytes.js';
import type { AeadAlg } from '../platform/types.js';

export const MAGIC = utf8.encode('KWRD');
export const VERSION = 1;
/** magic(4) ‖ version(1) ‖ header_len(4) */
export const PREAMBLE_LENGTH = 9;

export const CHUNK_LOG2 = 16;
export const CHUNK_SIZE = 1 << CHUNK_LOG2;
export const TAG_LENGTH = 16;
export const SALT_LENGTH = 32;
export const DATA_KEY_LENGTH = 32;
export const COMMITMENT_LENGTH = 32;
export const MAC_LENGTH = 32;
export const KEY_ID_LENGTH = 16;
export const NONCE_LENGTH = 12;

/** Hard limits (docs/format.md §Limits): KW_LIMIT_EXCEEDED, except the chunk count (KW_COUNTER_OVERFLOW) and anonymous trials (KW_TOO_MANY_TRIALS). */
export const LIMITS = {
  /** Bytes of the header body (everything header_len counts). */
  maxHeaderLength: 4 * 1024 * 1024,
  maxStanzas: 4096,
  maxStanzaFields: 8,
  maxContextPairs: 64,
  /** Total UTF-8 bytes of context keys and values. */
  maxContextBytes: 16 * 1024,
  /** Chunk counter space: 2^32 chunks of 64 KiB = 256 TiB. */
  maxChunks: 2 ** 32,
  /** Default bound on trial decryptions of anonymous stanzas per open. */
  defaultMaxAnonymousTrials: 64,
} as const;

/** Passphrase (scrypt) work factor, log2(N). */
export const SCRYPT = {
  defaultLogN: 18,
  /** Neither sealing nor opening accepts a work factor below this. */
  minLogN: 10,
  /** Opening refuses more than this unless the opener raises it (at most hardMaxLogN). */
  defaultMaxLogN: 22,
  hardMaxLogN: 30,
  saltLength: 16,
} as const;

export const AEAD_CODES: Record<number, AeadAlg> = { 1: 'aes-256-gcm', 2: 'chacha20-poly1305' };
export const AEAD_IDS = { 'aes-256-gcm': 1, 'chacha20-poly1305': 2 } as const;
export type PayloadAead = keyof typeof AEAD_IDS;

export type SignatureAlg = 'ed25519' | 'ed25519-mldsa65';
export const SIG_CODES: Record<number, SignatureAlg> = { 1: 'ed25519', 2: 'ed25519-mldsa65' };
export const SIG_IDS: Record<SignatureAlg, number> = { ed25519: 1, 'ed25519-mldsa65': 2 };
export const SIG_LENGTHS: Record<SignatureAlg, number> = { ed25519: 64, 'ed25519-mldsa65': 64 + 3309 };

/** Domain-separation labels; each derivation has its own. */
export const LABELS = {
  commitment: utf8.encode('keyward/v1 commitment'),
  headerMac: utf8.encode('keyward/v1 header-mac'),
  payload: utf8.encode('keyward/v1 payload'),
  stanza: utf8.encode('keyward/v1 stanza'),
  scrypt: utf8.encode('keyward/v1 scrypt'),
  keyId: utf8.encode('keyward/v1 key-id'),
  signature: utf8.encode('keyward/v1 signature'),
} as const;
