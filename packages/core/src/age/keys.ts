/**
 * age key strings (Bech32, BIP 173 without the 90-character limit):
 *
 *   x25519          recipient  age1…                 (32-byte X25519 public key)
 *                   identity   AGE-SECRET-KEY-1…     (32-byte X25519 secret key)
 *   mlkem768x25519  recipient  age1pq1…              (1216-byte X-Wing public key)
 *                   identity   AGE-SECRET-KEY-PQ-1…  (32-byte X-Wing seed)
 *
 * Recipients are lowercase and identities uppercase, as age writes them.
 */
import { x25519 } from '@noble/curves/ed25519.js';
import { bech32 } from '@scure/base';
import { ml_kem768_x25519 } from '@noble/post-quantum/hybrid.js';

const XWING_PUBLIC_KEY_SIZE = 1216;
const XWING_SEED_SIZE = 32;
import { fail, keywardErrorsOnlySync, randomBytes, wipe } from './util.js';

/** The native age recipient types this module implements. */
export type AgeKeyKind = 'x25519' | 'mlkem768x25519';

/** A public age recipient (what files are sealed to). */
export type AgeRecipient = { kind: AgeKeyKind; publicKey: Uint8Array; text: string };

/** A secret age identity (what opens files); `recipient()` derives its public side. */
export type AgeIdentity = { kind: AgeKeyKind; secretKey: Uint8Array; text: string; recipient(): AgeRecipient };

const HRP = {
  x25519: { recipient: 'age', identity: 'AGE-SECRET-KEY-' },
  mlkem768x25519: { recipient: 'age1pq', identity: 'AGE-SECRET-KEY-PQ-' },
} as const;

const X25519_KEY_SIZE = 32;

function invalid(message: string): never {
  fail('KW_INVALID_KEY_STRING', message);
}

/** Decodes Bech32 with no length limit; returns the (case-preserved) HRP and data. */
function decodeBech32(s: string, what: string): { hrp: string; data: Uint8Array } {
  if (typeof s !== 'string') invalid(`${what} must be a string`);
  let decoded: { prefix: string; words: number[] };
  try {
    decoded = bech32.decode(s as `${string}1${string}`, false);
  } catch {
    // Never echo the decoder's message: it quotes the input, which may be a secret key.
    return invalid(`${what} is not valid Bech32 (bad character, mixed case or checksum)`);
  }
  let data: Uint8Array;
  try {
    data = bech32.fromWords(decoded.words);
  } catch {
    return invalid(`${what} has invalid Bech32 data padding`);
  }
  // scure lowercases the prefix; recover the case as written.
  return { hrp: s.slice(0, decoded.prefix.length), data };
}

function encodeBech32(hrp: string, data: Uint8Array, upper: boolean): string {
  const s = bech32.encode(hrp.toLowerCase(), bech32.toWords(data), false);
  return upper ? s.toUpperCase() : s;
}

/** A dummy clamped scalar used only to test whether a point has low order. */
const PROBE_SCALAR = new Uint8Array(32).fill(0x42);

function isLowOrderX25519(point: Uint8Array): boolean {
  try {
    const r = x25519.getSharedSecret(PROBE_SCALAR, point);
    return r.every((b) => b === 0);
  } catch {
    return true;
  }
}

function makeRecipient(kind: AgeKeyKind, publicKey: Uint8Array): AgeRecipient {
  return { kind, publicKey, text: encodeBech32(HRP[kind].recipient, publicKey, false) };
}

function makeIdentity(kind: AgeKeyKind, secretKey: Uint8Array): AgeIdentity {
  let cached: AgeRecipient | undefined;
  return {
    kind,
    secretKey,
    text: encodeBech32(HRP[kind].identity, secretKey, true),
    recipient(): AgeRecipient {
      if (cached === undefined) {
        const pk = kind === 'x25519' ? x25519.getPublicKey(secretKey) : ml_kem768_x25519.getPublicKey(secretKey);
        cached = makeRecipient(kind, pk);
      }
      return { ...cached, publicKey: cached.publicKey.slice() };
    },
  };
}

/**
 * Parses an `age1…` (X25519) or `age1pq1…` (ML-KEM-768 + X25519) recipient.
 * @throws KW_INVALID_KEY_STRING for anything else, including plugin and tag recipients.
 */
export function parseAgeRecipient(s: string): AgeRecipient {
  return keywardErrorsOnlySync(() => parseRecipient(s));
}

function parseRecipient(s: string): AgeRecipient {
  const { hrp, data } = decodeBech32(s, 'age recipient');
  if (hrp === HRP.x25519.recipient) {
    if (data.length !== X25519_KEY_SIZE) invalid('age X25519 recipient must encode 32 bytes');
    if (isLowOrderX25519(data)) invalid('age X25519 recipient is a low-order point');
    return makeRecipient('x25519', data);
  }
  if (hrp === HRP.mlkem768x25519.recipient) {
    if (data.length !== XWING_PUBLIC_KEY_SIZE) invalid('age post-quantum recipient must encode 1216 bytes');
    // A trial encapsulation runs the ML-KEM encapsulation-key check and the X25519 point check.
    try {
      wipe(ml_kem768_x25519.encapsulate(data).sharedSecret);
    } catch {
      invalid('age post-quantum recipient is not a valid ML-KEM-768 + X25519 public key');
    }
    return makeRecipient('mlkem768x25519', data);
  }
  if (hrp.toLowerCase() !== hrp) invalid('age recipients are written in lowercase');
  if (hrp.startsWith('age1')) invalid(`unsupported age recipient type "${hrp}" (plugins and tag recipients are not supported)`);
  return invalid('not an age recipient (expected age1… or age1pq1…)');
}

/**
 * Parses an `AGE-SECRET-KEY-1…` or `AGE-SECRET-KEY-PQ-1…` identity.
 * @throws KW_INVALID_KEY_STRING for anything else, including plugin identities.
 */
export function parseAgeIdentity(s: string): AgeIdentity {
  return keywardErrorsOnlySync(() => parseIdentity(s));
}

function parseIdentity(s: string): AgeIdentity {
  const { hrp, data } = decodeBech32(s, 'age identity');
  for (const kind of ['x25519', 'mlkem768x25519'] as const) {
    if (hrp !== HRP[kind].identity) continue;
    const size = kind === 'x25519' ? X25519_KEY_SIZE : XWING_SEED_SIZE;
    if (data.length !== size) invalid(`age identity must encode ${size} bytes`);
    const id = makeIdentity(kind, data);
    try {
      id.recipient();
    } catch {
      invalid('age identity does not yield a valid public key');
    }
    return id;
  }
  if (hrp.toUpperCase() !== hrp) invalid('age identities are written in uppercase');
  if (hrp.startsWith('AGE-PLUGIN-')) invalid('age plugin identities are not supported');
  return invalid('not an age identity (expected AGE-SECRET-KEY-1… or AGE-SECRET-KEY-PQ-1…)');
}

/**
 * Parses an age identity file: one identity per line, `#` comments and blank
 * lines ignored, LF or CRLF line endings.
 * @throws KW_INVALID_KEY_STRING naming the offending line; KW_INVALID_ARGUMENT if there is no identity.
 */
export function parseAgeIdentityFile(text: string): AgeIdentity[] {
  if (typeof text !== 'string') fail('KW_INVALID_ARGUMENT', 'identity file contents must be a string');
  const out: AgeIdentity[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    try {
      out.push(parseIdentity(line));
    } catch (e) {
      fail('KW_INVALID_KEY_STRING', `identity file line ${i + 1}: ${e instanceof Error ? e.message : 'invalid'}`, e);
    }
  }
  if (out.length === 0) fail('KW_INVALID_ARGUMENT', 'identity file contains no identity');
  return out;
}

/** Generates a fresh identity from the platform CSPRNG. */
export function generateAgeIdentity(kind: AgeKeyKind = 'x25519'): AgeIdentity {
  if (kind !== 'x25519' && kind !== 'mlkem768x25519') fail('KW_INVALID_ARGUMENT', `unknown age identity kind "${String(kind)}"`);
  return keywardErrorsOnlySync(() => makeIdentity(kind, randomBytes(32)));
}
