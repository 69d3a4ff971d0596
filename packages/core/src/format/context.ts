/**
 * Encryption context: ordered key/value pairs, visible in the header and
 * authenticated. It must never hold secrets (anyone can read it).
 */
import { concat, u16be, utf8, utf8Strict } from '../bytes.js';
import { KeywardError } from '../errors.js';
import { LIMITS } from './constants.js';

export type ContextPairs = readonly (readonly [string, string])[];
/** What callers pass: a record (insertion order kept) or ordered pairs. */
export type ContextInput = Readonly<Record<string, string>> | ContextPairs;

export function normalizeContext(input: ContextInput | undefined): [string, string][] {
  if (input === undefined) return [];
  const pairs: [string, string][] = Array.isArray(input)
    ? (input as ContextPairs).map(([k, v]) => [k, v])
    : Object.entries(input as Record<string, string>);
  validateContext(pairs);
  return pairs;
}

function validateContext(pairs: readonly (readonly [string, string])[]): void {
  if (pairs.length > LIMITS.maxContextPairs) throw new KeywardError('KW_LIMIT_EXCEEDED', `encryption context has more than ${LIMITS.maxContextPairs} pairs`);
  const seen = new Set<string>();
  let bytes = 0;
  for (const [k, v] of pairs) {
    if (typeof k !== 'string' || typeof v !== 'string') throw new KeywardError('KW_CONTEXT_INVALID', 'context keys and values must be strings');
    if (k.length === 0) throw new KeywardError('KW_CONTEXT_INVALID', 'context keys must not be empty');
    if (seen.has(k)) throw new KeywardError('KW_CONTEXT_INVALID', `duplicate context key "${k}"`);
    if (!k.isWellFormed() || !v.isWellFormed()) throw new KeywardError('KW_CONTEXT_INVALID', 'context strings must be well-formed Unicode');
    seen.add(k);
    bytes += utf8.encode(k).length + utf8.encode(v).length;
  }
  if (bytes > LIMITS.maxContextBytes) throw new KeywardError('KW_LIMIT_EXCEEDED', `encryption context exceeds ${LIMITS.maxContextBytes} bytes`);
}

/** count(u16) ‖ for each pair: len(u16) ‖ key ‖ len(u16) ‖ value. */
export function encodeContext(pairs: ContextPairs): Uint8Array {
  const parts: Uint8Array[] = [u16be(pairs.length)];
  for (const [k, v] of pairs) {
    const kb = utf8.encode(k), vb = utf8.encode(v);
    parts.push(u16be(kb.length), kb, u16be(vb.length), vb);
  }
  return concat(...parts);
}

/** Parses the pairs out of an already length-checked region; throws KW_MALFORMED_HEADER. */
export function decodeContextStrings(raw: readonly [Uint8Array, Uint8Array][]): [string, string][] {
  let pairs: [string, string][];
  try {
    pairs = raw.map(([k, v]) => [utf8Strict.decode(k), utf8Strict.decode(v)]);
  } catch {
    throw new KeywardError('KW_MALFORMED_HEADER', 'encryption context is not valid UTF-8');
  }
  try {
    validateContext(pairs);
  } catch (e) {
    if (e instanceof KeywardError && e.code === 'KW_LIMIT_EXCEEDED') throw e;
    throw new KeywardError('KW_MALFORMED_HEADER', `invalid encryption context: ${(e as Error).message}`);
  }
  return pairs;
}

/**
 * True when the envelope's context holds exactly the expected pairs (order
 * does not matter for the comparison; it is fixed in the header).
 */
export function contextMatches(actual: ContextPairs, expected: ContextPairs): boolean {
  if (actual.length !== expected.length) return false;
  const m = new Map(actual.map(([k, v]) => [k, v]));
  return expected.every(([k, v]) => m.get(k) === v);
}
