/**
 * Recovery codes: one-time codes a person stores offline for when every other
 * factor is lost. Each code carries 80 random bits (16 Crockford base32
 * characters, shown as four groups of four), so a fast hash resists guessing
 * as well as a slow one would; what is stored is SHA-256 over a label, a
 * per-set random salt and the normalized code — never the code itself.
 *
 * @example
 * const { codes, stored } = newRecoveryCodes();   // show `codes` once; persist `stored`
 * const i = matchRecoveryCode(stored, input);      // index to mark used, or -1
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'; // Crockford: no I, L, O, U
const CODE_CHARS = 16;
export const RECOVERY_CODE_COUNT = 10;
const LABEL = Buffer.from('keyward/v1 recovery-code\0');

/** What the store keeps: the salt and one hash per code (hex), and which were used. */
export interface StoredRecoveryCodes {
  readonly salt: string;
  readonly hashes: readonly string[];
  readonly used: readonly boolean[];
}

function encodeCode(bytes: Uint8Array): string {
  // 10 bytes = 80 bits = 16 five-bit characters.
  let bits = 0n;
  for (const b of bytes) bits = (bits << 8n) | BigInt(b);
  let s = '';
  for (let i = CODE_CHARS - 1; i >= 0; i--) s += ALPHABET[Number((bits >> BigInt(i * 5)) & 31n)];
  return s.match(/.{4}/g)!.join('-');
}

/** Upper-case, separators removed, and the look-alikes Crockford maps (I, L → 1; O → 0). Null when not a code. */
export function normalizeRecoveryCode(input: string): string | null {
  const s = input.toUpperCase().replace(/[\s-]/g, '').replace(/[IL]/g, '1').replace(/O/g, '0');
  if (s.length !== CODE_CHARS) return null;
  for (const ch of s) if (!ALPHABET.includes(ch)) return null;
  return s;
}

function hashCode(salt: Buffer, normalized: string): Buffer {
  return createHash('sha256').update(LABEL).update(salt).update(normalized, 'ascii').digest();
}

/** A fresh set of codes (shown once) and what to store. */
export function newRecoveryCodes(count = RECOVERY_CODE_COUNT): { codes: string[]; stored: StoredRecoveryCodes } {
  const salt = randomBytes(16);
  const codes: string[] = [];
  while (codes.length < count) {
    const raw = randomBytes(10);
    const code = encodeCode(raw);
    raw.fill(0);
    if (!codes.includes(code)) codes.push(code);
  }
  return {
    codes,
    stored: {
      salt: salt.toString('hex'),
      hashes: codes.map((c) => hashCode(salt, normalizeRecoveryCode(c)!).toString('hex')),
      used: codes.map(() => false),
    },
  };
}

/**
 * The index of the unused code that `input` matches, or -1. Every stored hash
 * is compared (in constant time) whatever matched, so timing does not tell
 * which position a code has or whether an earlier one was close.
 */
export function matchRecoveryCode(stored: StoredRecoveryCodes, input: string): number {
  const normalized = normalizeRecoveryCode(input);
  if (normalized === null) return -1;
  const h = hashCode(Buffer.from(stored.salt, 'hex'), normalized);
  let found = -1;
  stored.hashes.forEach((hex, i) => {
    const equal = timingSafeEqual(h, Buffer.from(hex, 'hex'));
    if (equal && !stored.used[i] && found < 0) found = i;
  });
  return found;
}

/** The stored set with code `index` marked used. */
export function markRecoveryCodeUsed(stored: StoredRecoveryCodes, index: number): StoredRecoveryCodes {
  return { ...stored, used: stored.used.map((u, i) => u || i === index) };
}
