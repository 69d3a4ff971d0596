/**
 * Armored text form: standard base64 with padding, 64 columns, between
 * begin/end lines; LF line endings; nothing before or after except one final
 * newline. Readers accept only that form, except that the final newline may be
 * missing (JSON fields and copy-paste often drop it).
 */
import { base64 } from '@scure/base';
import { KeywardError } from './errors.js';
import { utf8 } from './bytes.js';

export const ARMOR_BEGIN = '-----BEGIN KEYWARD ENVELOPE-----';
export const ARMOR_END = '-----END KEYWARD ENVELOPE-----';
const COLUMNS = 64;

export function armor(envelope: Uint8Array): string {
  const b = base64.encode(envelope);
  const lines = [ARMOR_BEGIN];
  for (let i = 0; i < b.length; i += COLUMNS) lines.push(b.slice(i, i + COLUMNS));
  lines.push(ARMOR_END, '');
  return lines.join('\n');
}

const ARMOR_BEGIN_BYTES = utf8.encode(ARMOR_BEGIN);

export function isArmored(input: Uint8Array | string): boolean {
  if (typeof input === 'string') return input.startsWith(ARMOR_BEGIN);
  // Byte by byte: every binary open asks, and building a string to compare costs more than the rest of a small open's parsing.
  if (input.length < ARMOR_BEGIN_BYTES.length) return false;
  for (let i = 0; i < ARMOR_BEGIN_BYTES.length; i++) if (input[i] !== ARMOR_BEGIN_BYTES[i]) return false;
  return true;
}

/** Strict decoding; throws KW_ARMOR_INVALID. */
export function dearmor(text: string | Uint8Array): Uint8Array {
  const t = typeof text === 'string' ? text : new TextDecoder().decode(text);
  const bad = (why: string) => new KeywardError('KW_ARMOR_INVALID', `armor: ${why}`);
  if (!t.startsWith(ARMOR_BEGIN + '\n')) throw bad('missing or malformed begin line');
  if (!t.endsWith(ARMOR_END + '\n') && !t.endsWith(ARMOR_END)) throw bad('missing or malformed end line');
  const body = t.slice(ARMOR_BEGIN.length + 1, t.lastIndexOf(ARMOR_END));
  if (!body.endsWith('\n')) throw bad('malformed end line');
  const lines = body.slice(0, -1).split('\n');
  if (lines.length === 0 || lines[0] === '') throw bad('empty body');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const lastLine = i === lines.length - 1;
    if (!/^[A-Za-z0-9+/=]*$/.test(l)) throw bad(`invalid character on line ${i + 2}`);
    if ((!lastLine && l.length !== COLUMNS) || (lastLine && (l.length === 0 || l.length > COLUMNS))) throw bad(`line ${i + 2} has the wrong length`);
  }
  const b64 = lines.join('');
  let out: Uint8Array;
  try {
    out = base64.decode(b64);
  } catch {
    throw bad('invalid base64');
  }
  if (base64.encode(out) !== b64) throw bad('non-canonical base64');
  return out;
}

/** Accepts binary or armored input and returns binary. */
export function toBinary(input: Uint8Array | string): Uint8Array {
  if (typeof input === 'string') return dearmor(input);
  return isArmored(input) ? dearmor(input) : input;
}

export const armorBytes = (envelope: Uint8Array): Uint8Array => utf8.encode(armor(envelope));
