/**
 * Parsing and generating key strings of every type, and identity files
 * (one key per line, `#` comments), as the CLI and applications use them.
 */
import { KeywardError } from './errors.js';
import { hrpOf } from './keys/encoding.js';
import { SigningKey, SIGNER_SECRET_HRP, VerifyingKey, SIGNER_PUBLIC_HRP } from './keys/signing.js';
import { HpkeIdentity, HpkeRecipient, KEM_TYPES, PUBLIC_HRP, SECRET_HRP, type KemType } from './recipients/hpke.js';

/** Generates a new identity (secret key) of the given KEM type. */
export function generateIdentity(type: KemType = 'x25519'): Promise<HpkeIdentity> {
  return HpkeIdentity.generate(type);
}

/** Parses a recipient string (`kwx25519…`, `kwxwing…`, `kwp256…`). Throws KW_INVALID_KEY_STRING. */
export function parseRecipient(text: string): Promise<HpkeRecipient> {
  const hrp = hrpOf(text);
  const type = KEM_TYPES.find((t) => PUBLIC_HRP[t] === hrp);
  if (!type) throw new KeywardError('KW_INVALID_KEY_STRING', `not a Keyward recipient: "${truncate(text)}"`);
  return HpkeRecipient.parse(text, type);
}

/** Parses a secret identity string (`KWSECRETX25519…`, …). */
export function parseIdentity(text: string): Promise<HpkeIdentity> {
  const hrp = hrpOf(text)?.toUpperCase();
  const type = KEM_TYPES.find((t) => SECRET_HRP[t] === hrp);
  if (!type) throw new KeywardError('KW_INVALID_KEY_STRING', 'not a Keyward identity string');
  return HpkeIdentity.parse(text, type);
}

/** Parses a signer's public key (`kwed25519…`, `kwed25519mldsa651…`). */
export function parseVerifyingKey(text: string): VerifyingKey {
  const hrp = hrpOf(text);
  if (!Object.values(SIGNER_PUBLIC_HRP).includes(hrp ?? '')) throw new KeywardError('KW_INVALID_KEY_STRING', `not a Keyward signer public key: "${truncate(text)}"`);
  return VerifyingKey.parse(text);
}

/** Parses a signing (secret) key string. */
export function parseSigningKey(text: string): Promise<SigningKey> {
  const hrp = hrpOf(text)?.toUpperCase();
  if (!Object.values(SIGNER_SECRET_HRP).includes(hrp ?? '')) throw new KeywardError('KW_INVALID_KEY_STRING', 'not a Keyward signing key string');
  return SigningKey.parse(text);
}

/** The meaningful lines of a key file: trimmed, without blank lines and `#` comments. */
export function keyFileLines(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

/** Parses an identity file: each non-comment line is one identity. */
export async function parseIdentityFile(text: string): Promise<HpkeIdentity[]> {
  const lines = keyFileLines(text);
  if (lines.length === 0) throw new KeywardError('KW_INVALID_KEY_STRING', 'the identity file holds no identity');
  return Promise.all(lines.map(parseIdentity));
}

/** What kind of key a string is, from its prefix alone. */
export function classifyKeyString(text: string): 'recipient' | 'identity' | 'verifying-key' | 'signing-key' | 'age-recipient' | 'age-identity' | 'unknown' {
  const t = text.trim();
  if (/^age1/.test(t)) return 'age-recipient';
  if (/^AGE-SECRET-KEY-/.test(t)) return 'age-identity';
  const hrp = hrpOf(t);
  if (!hrp) return 'unknown';
  if (KEM_TYPES.some((k) => PUBLIC_HRP[k] === hrp && t === t.toLowerCase())) return 'recipient';
  if (KEM_TYPES.some((k) => SECRET_HRP[k].toLowerCase() === hrp && t === t.toUpperCase())) return 'identity';
  if (Object.values(SIGNER_PUBLIC_HRP).includes(hrp) && t === t.toLowerCase()) return 'verifying-key';
  if (Object.values(SIGNER_SECRET_HRP).some((h) => h.toLowerCase() === hrp) && t === t.toUpperCase()) return 'signing-key';
  return 'unknown';
}

const truncate = (s: string) => (s.length > 24 ? s.slice(0, 24) + '…' : s);
