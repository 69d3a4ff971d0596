/**
 * age ASCII armor: strict PEM (RFC 7468 §3, "stricttextualmsg") with the label
 * "AGE ENCRYPTED FILE" and padded, canonical base64 in 64-column lines.
 *
 * Accepted leniencies, as the age spec allows: whitespace (space, tab, CR, LF)
 * before the BEGIN line and after the END line, and either LF or CRLF line
 * endings (used consistently). Everything else is KW_ARMOR_INVALID: headers,
 * blank lines, short or long lines, whitespace inside lines, missing or
 * non-canonical padding, checksums, a different label, data around the block.
 */
import { base64 } from '@scure/base';
import { ascii, fail, latin1 } from './util.js';

const BEGIN = '-----BEGIN AGE ENCRYPTED FILE-----';
const END = '-----END AGE ENCRYPTED FILE-----';
const COLUMNS = 64;
const LINE_CHARS = /^[A-Za-z0-9+/=]+$/;
const OUTSIDE_WHITESPACE = new Set([0x20, 0x09, 0x0d, 0x0a]);

function invalid(message: string): never {
  fail('KW_ARMOR_INVALID', `age armor: ${message}`);
}

/** True when `bytes`, after optional leading whitespace, starts with the armor BEGIN line. */
export function looksArmored(bytes: Uint8Array): boolean {
  let i = 0;
  while (i < bytes.length && OUTSIDE_WHITESPACE.has(bytes[i]!)) i++;
  return latin1(bytes, i, Math.min(bytes.length, i + BEGIN.length)) === BEGIN;
}

/** Wraps a binary age file in armor (LF line endings, trailing LF). */
export function armorEncode(file: Uint8Array): Uint8Array {
  const b64 = base64.encode(file);
  let s = BEGIN + '\n';
  for (let i = 0; i < b64.length; i += COLUMNS) s += b64.slice(i, i + COLUMNS) + '\n';
  return ascii(s + END + '\n');
}

/** Strictly decodes an armored age file to its binary form. */
export function armorDecode(input: Uint8Array): Uint8Array {
  let start = 0;
  let end = input.length;
  while (start < end && OUTSIDE_WHITESPACE.has(input[start]!)) start++;
  while (end > start && OUTSIDE_WHITESPACE.has(input[end - 1]!)) end--;
  for (let i = start; i < end; i++) {
    if (input[i]! > 0x7e) invalid('non-ASCII byte');
  }
  const text = latin1(input, start, end);
  const rawLines = text.split('\n');
  if (rawLines.length < 2) invalid('missing BEGIN or END line');

  // Every line but the last (the END line, whose EOL was trimmed) ends with the same EOL.
  const crlf = rawLines[0]!.endsWith('\r');
  const lines = rawLines.map((l, i) => {
    if (i === rawLines.length - 1) return l;
    if (l.endsWith('\r') !== crlf) invalid('mixed LF and CRLF line endings');
    return crlf ? l.slice(0, -1) : l;
  });

  if (lines[0] !== BEGIN) invalid('missing or malformed "-----BEGIN AGE ENCRYPTED FILE-----" line');
  if (lines[lines.length - 1] !== END) invalid('missing or malformed "-----END AGE ENCRYPTED FILE-----" line');

  const body = lines.slice(1, -1);
  for (let i = 0; i < body.length; i++) {
    const line = body[i]!;
    if (!LINE_CHARS.test(line)) invalid(`line ${i + 2} is empty or has a non-base64 character`);
    if (i < body.length - 1 ? line.length !== COLUMNS : line.length > COLUMNS) {
      invalid(`line ${i + 2} is not ${i < body.length - 1 ? 'exactly' : 'at most'} 64 columns`);
    }
  }
  const b64 = body.join('');
  if (b64.length % 4 !== 0) invalid('base64 length is not a multiple of 4 (missing padding)');
  const pad = b64.indexOf('=');
  if (pad >= 0 && pad < b64.length - 2) invalid('misplaced base64 padding');
  let out: Uint8Array;
  try {
    out = base64.decode(b64);
  } catch {
    return invalid('invalid base64');
  }
  if (base64.encode(out) !== b64) invalid('base64 is not canonical');
  return out;
}
