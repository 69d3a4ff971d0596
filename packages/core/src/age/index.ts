/**
 * age v1 (https://age-encryption.org/v1, C2SP age) interoperability: read and
 * write age files with X25519, post-quantum ML-KEM-768 + X25519 and scrypt
 * passphrase recipients, binary or ASCII-armored. Browser-safe: only @noble
 * and @scure primitives and `globalThis.crypto.getRandomValues`.
 *
 * Every failure is a KeywardError; see docs/age.md for the codes.
 */
export type { AgeRecipient, AgeIdentity, AgeKeyKind } from './keys.js';
export { parseAgeRecipient, parseAgeIdentity, parseAgeIdentityFile, generateAgeIdentity } from './keys.js';
export type { AgeSealTarget, AgeSealOptions } from './seal.js';
export { ageSeal } from './seal.js';
export type { AgeOpenOptions } from './open.js';
export { ageOpen, isAgeFile } from './open.js';
