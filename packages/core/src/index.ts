/**
 * @keyward/core — the Keyward envelope format: seal data for recipients,
 * open it, stream it, sign it. Pure: runs unchanged in Node and browsers.
 * The format is specified in docs/format.md.
 */
export { ERROR_CODES, KeywardError, isKeywardError, type KeywardErrorCode } from './errors.js';
export { seal, open, type OpenResult } from './seal.js';
export { createSealStream, createOpenStream, type OpenStream } from './stream.js';
export { EnvelopeReader, type RandomAccessSource, type ChunkRead } from './random-access.js';
export { inspect, type EnvelopeDescription } from './inspect.js';
export { armor, dearmor, isArmored, toBinary, ARMOR_BEGIN, ARMOR_END } from './armor.js';
export type { SealOptions, OpenOptions, EnvelopeInfo } from './format/session.js';
export type { ContextInput, ContextPairs } from './format/context.js';
export { LIMITS, SCRYPT, CHUNK_SIZE, type PayloadAead, type SignatureAlg } from './format/constants.js';
export { EnvelopeEncoder, EnvelopeDecoder } from './format/codec.js';
export { hasMagic } from './format/header.js';
export type { Recipient, Identity, Stanza } from './recipients/types.js';
export { StanzaContext } from './recipients/types.js';
export { HpkeRecipient, HpkeIdentity, type KemType } from './recipients/hpke.js';
export { PassphraseRecipient, PassphraseIdentity } from './recipients/scrypt.js';
export { KmsRecipient, KmsIdentity, type KmsClient } from './recipients/kms.js';
export { SigningKey, VerifyingKey } from './keys/signing.js';
export {
  generateIdentity, parseRecipient, parseIdentity, parseIdentityFile, parseVerifyingKey, parseSigningKey,
  keyFileLines, classifyKeyString,
} from './identities.js';
export * as age from './age/index.js';
