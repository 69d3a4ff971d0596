/**
 * C2SP signed-note (https://c2sp.org/signed-note, v1.0.0): a UTF-8 text ending
 * in a newline, a blank line, then one or more signature lines
 *
 *     — <key name> base64(key ID (4 bytes, big-endian) ‖ signature)
 *
 * (U+2014 EM DASH, space). Key names are non-empty and contain no Unicode space
 * and no "+". Verifier keys are `<name>+<hex key ID>+base64(type ‖ public key)`
 * and signer keys `PRIVATE+KEY+<name>+<hex key ID>+base64(type ‖ seed)`, with
 * key ID = SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4]. Type 0x01 is Ed25519
 * over the note text (this module); type 0x04 is the tlog-cosignature/v1
 * timestamped Ed25519 signature (cosignature.ts).
 *
 * Verification follows the spec: signatures whose (name, key ID) match no
 * known key are ignored; a known key's signature that fails rejects the whole
 * note; at least one known signature must verify.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { base64 } from '@scure/base';
import { abytes, concat, isList, readU32, toHex, u32be, utf8 } from './bytes.js';
import { TlogError, check } from './errors.js';

/**
 * Signature type byte of plain Ed25519 note signatures.
 *
 * @example
 * parseVerifierKey(vkey).type === SIGNATURE_TYPE_ED25519
 */
export const SIGNATURE_TYPE_ED25519 = 0x01;

/** The signature line prefix: U+2014 EM DASH and a space. */
const SIG_PREFIX = '\u2014 ';

/**
 * Verifies signatures of one key. `signature` is the line's payload after the
 * 4-byte key ID; `text` is the UTF-8 note text. Return false (never throw) for a
 * signature that does not verify.
 */
export interface NoteVerifier {
  readonly name: string;
  /** The key ID as an unsigned 32-bit integer. */
  readonly keyId: number;
  verify(text: Uint8Array, signature: Uint8Array): boolean;
}

/** Signs note texts with one key; returns the payload that follows the key ID. */
export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  sign(text: Uint8Array): Uint8Array;
}

/** One signature line, decoded. `signature` excludes the 4-byte key ID. */
export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  readonly signature: Uint8Array;
}

/** A note split into its text (with final newline) and its signature lines. */
export interface Note {
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

/** A note whose signatures were checked against a set of known keys. */
export interface OpenedNote {
  readonly text: string;
  /** Verified signatures, one per known key (repeats dropped), in note order. */
  readonly verified: readonly NoteSignature[];
  /** Signatures from keys not in the set (identical repeats dropped), in note order. */
  readonly unverified: readonly NoteSignature[];
}

/**
 * Hard limits applied when parsing. The spec asks verifiers to accept at least
 * 16 signatures and reminds that post-quantum signature lines reach ~7 kB.
 */
export interface NoteLimits {
  /** Maximum size of the whole note in UTF-8 bytes (default 1 MiB). */
  readonly maxBytes?: number;
  /** Maximum number of lines of the whole note, signatures included (default 10,000). */
  readonly maxLines?: number;
  /** Maximum number of signature lines (default 100; at least 16). */
  readonly maxSignatures?: number;
}

/**
 * The default {@link NoteLimits}.
 *
 * @example
 * parseNote(note, { ...DEFAULT_NOTE_LIMITS, maxBytes: 64 * 1024 });
 */
export const DEFAULT_NOTE_LIMITS: Readonly<Required<NoteLimits>> = Object.freeze({
  maxBytes: 1 << 20,
  maxLines: 10_000,
  maxSignatures: 100,
});

function limitsOf(l: NoteLimits | undefined): Required<NoteLimits> {
  const out = { ...DEFAULT_NOTE_LIMITS, ...l };
  for (const k of ['maxBytes', 'maxLines', 'maxSignatures'] as const) {
    check(Number.isSafeInteger(out[k]) && out[k] > 0, `limits.${k} must be a positive integer`);
  }
  check(out.maxSignatures >= 16, 'limits.maxSignatures must be at least 16 (signed-note requires accepting 16 signatures)');
  return out;
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
// eslint-disable-next-line no-control-regex -- the spec forbids these control characters
const FORBIDDEN_CONTROL = /[\u0000-\u0009\u000b-\u001f]/;
const WHITE_SPACE = /\p{White_Space}/u;

/**
 * True when `name` is a valid key name: non-empty, well-formed, no Unicode
 * white space, no "+", no control characters.
 *
 * @example
 * isValidKeyName('example.com/log') // true
 * isValidKeyName('a b') // false
 */
export function isValidKeyName(name: string): boolean {
  return (
    typeof name === 'string' &&
    name.length > 0 &&
    name.isWellFormed() &&
    !WHITE_SPACE.test(name) &&
    !name.includes('+') &&
    !FORBIDDEN_CONTROL.test(name)
  );
}

function malformed(message: string): TlogError {
  return new TlogError('TLOG_MALFORMED_NOTE', message);
}

/** Decodes `input` to a string, enforcing UTF-8 validity and the byte limit. */
function decodeNote(input: string | Uint8Array, limits: Required<NoteLimits>): string {
  if (typeof input === 'string') {
    if (!input.isWellFormed()) throw malformed('note is not well-formed Unicode (lone surrogate)');
    // A UTF-16 code unit encodes to at most 3 UTF-8 bytes; encode only when it matters.
    if (input.length * 3 > limits.maxBytes && utf8(input).length > limits.maxBytes) {
      throw new TlogError('TLOG_LIMIT_EXCEEDED', `note is larger than ${limits.maxBytes} bytes`);
    }
    return input;
  }
  abytes(input, 'note');
  if (input.length > limits.maxBytes) throw new TlogError('TLOG_LIMIT_EXCEEDED', `note is larger than ${limits.maxBytes} bytes`);
  try {
    return decoder.decode(input);
  } catch (e) {
    throw new TlogError('TLOG_MALFORMED_NOTE', 'note is not valid UTF-8', { cause: e });
  }
}

function countNewlines(s: string): number {
  let n = 0;
  for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * Splits a signed note into its text and signature lines without verifying
 * anything. Throws `TLOG_MALFORMED_NOTE` or `TLOG_LIMIT_EXCEEDED`. The text MUST
 * be ignored until a trusted signature is verified: use {@link openNote}.
 *
 * @example
 * const { text, signatures } = parseNote(noteText);
 * signatures.map((s) => `${s.name} ${s.keyId.toString(16)}`);
 */
export function parseNote(input: string | Uint8Array, limits?: NoteLimits): Note {
  const lim = limitsOf(limits);
  const s = decodeNote(input, lim);
  if (countNewlines(s) > lim.maxLines) throw new TlogError('TLOG_LIMIT_EXCEEDED', `note has more than ${lim.maxLines} lines`);
  if (FORBIDDEN_CONTROL.test(s)) throw malformed('note contains an ASCII control character other than newline');
  const split = s.lastIndexOf('\n\n');
  if (split < 0) throw malformed('note has no blank line before its signatures');
  const text = s.slice(0, split + 1);
  const block = s.slice(split + 2);
  if (block.length === 0 || !block.endsWith('\n')) throw malformed('note must end with signature lines, each ending in a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > lim.maxSignatures) throw new TlogError('TLOG_LIMIT_EXCEEDED', `note has more than ${lim.maxSignatures} signatures`);
  const signatures = lines.map((line, i) => parseSignatureLine(line, i));
  return { text, signatures };
}

function parseSignatureLine(line: string, i: number): NoteSignature {
  if (!line.startsWith(SIG_PREFIX)) throw malformed(`signature line ${i + 1} does not start with an em dash and a space`);
  const rest = line.slice(SIG_PREFIX.length);
  const sp = rest.indexOf(' ');
  if (sp < 0) throw malformed(`signature line ${i + 1} has no space between key name and signature`);
  const name = rest.slice(0, sp);
  if (!isValidKeyName(name)) throw malformed(`signature line ${i + 1} has an invalid key name`);
  let raw: Uint8Array;
  try {
    raw = base64.decode(rest.slice(sp + 1));
  } catch (e) {
    throw new TlogError('TLOG_MALFORMED_NOTE', `signature line ${i + 1} is not canonical padded base64`, { cause: e });
  }
  if (raw.length < 5) throw malformed(`signature line ${i + 1} is shorter than a key ID and a signature`);
  return { name, keyId: readU32(raw), signature: raw.slice(4) };
}

function checkText(text: string): void {
  check(typeof text === 'string' && text.length > 0 && text.endsWith('\n'), 'note text must be a non-empty string ending in a newline', 'TLOG_MALFORMED_NOTE');
  check(text.isWellFormed(), 'note text is not well-formed Unicode', 'TLOG_MALFORMED_NOTE');
  check(!FORBIDDEN_CONTROL.test(text), 'note text contains an ASCII control character other than newline', 'TLOG_MALFORMED_NOTE');
}

function formatLine(sig: NoteSignature): string {
  check(isValidKeyName(sig.name), `invalid key name ${JSON.stringify(sig.name)}`);
  checkKeyId(sig.keyId);
  abytes(sig.signature, 'signature');
  check(sig.signature.length > 0, 'signature must not be empty');
  return `${SIG_PREFIX}${sig.name} ${base64.encode(concat(u32be(sig.keyId), sig.signature))}\n`;
}

function checkKeyId(keyId: unknown): void {
  check(typeof keyId === 'number' && Number.isInteger(keyId) && keyId >= 0 && keyId <= 0xffffffff, 'keyId must be a uint32');
}

/**
 * Serializes a note: text, blank line, one line per signature. The result is
 * re-parsed (with `limits`, default {@link DEFAULT_NOTE_LIMITS}) so that what
 * is written can be read back.
 *
 * @example
 * formatNote({ text: 'hello\n', signatures: [{ name: 'k', keyId: 1, signature }] });
 */
export function formatNote(note: Note, limits?: NoteLimits): string {
  checkText(note.text);
  check(isList(note.signatures) && note.signatures.length > 0, 'a note needs at least one signature', 'TLOG_MALFORMED_NOTE');
  const out = note.text + '\n' + note.signatures.map(formatLine).join('');
  parseNote(out, limits);
  return out;
}

function checkSigner(s: NoteSigner): void {
  check(typeof s === 'object' && s !== null && typeof s.sign === 'function', 'signer must be a NoteSigner');
  check(isValidKeyName(s.name), `invalid signer name ${JSON.stringify(s.name)}`);
  checkKeyId(s.keyId);
}

function signLines(text: string, signers: readonly NoteSigner[]): NoteSignature[] {
  check(isList(signers) && signers.length > 0, 'at least one signer is required');
  const msg = utf8(text);
  return signers.map((s) => {
    checkSigner(s);
    return { name: s.name, keyId: s.keyId, signature: s.sign(msg) };
  });
}

/**
 * Signs `text` (non-empty, ending in a newline) with each signer and returns
 * the signed note.
 *
 * @example
 * const note = signNote('hello\n', [newSigner(skey)]);
 */
export function signNote(text: string, signers: readonly NoteSigner[]): string {
  checkText(text);
  return formatNote({ text, signatures: signLines(text, signers) });
}

/**
 * Adds signatures to an existing signed note (for example a witness
 * cosignature), keeping its other signature lines; an existing line with the
 * same key name and ID as a new signer is replaced. Nothing is verified: open
 * the note first.
 *
 * @example
 * const cosigned = addSignatures(checkpointNote, [witnessCosigner]);
 */
export function addSignatures(note: string | Uint8Array, signers: readonly NoteSigner[], limits?: NoteLimits): string {
  const parsed = parseNote(note, limits);
  const fresh = signLines(parsed.text, signers);
  const keep = parsed.signatures.filter((s) => !fresh.some((f) => f.name === s.name && f.keyId === s.keyId));
  return formatNote({ text: parsed.text, signatures: [...keep, ...fresh] }, limits);
}

const keyOf = (name: string, keyId: number): string => `${name}\u0000${keyId}`;

function indexVerifiers(verifiers: readonly NoteVerifier[]): Map<string, NoteVerifier> {
  check(isList(verifiers), 'verifiers must be an array of NoteVerifier');
  const map = new Map<string, NoteVerifier>();
  for (const v of verifiers) {
    check(typeof v === 'object' && v !== null && typeof v.verify === 'function', 'verifier must be a NoteVerifier');
    check(isValidKeyName(v.name), `invalid verifier name ${JSON.stringify(v.name)}`);
    checkKeyId(v.keyId);
    const k = keyOf(v.name, v.keyId);
    check(!map.has(k), `two verifiers share the name and key ID ${v.name}+${v.keyId.toString(16).padStart(8, '0')}`);
    map.set(k, v);
  }
  return map;
}

/**
 * Checks a parsed note's signatures against known keys without requiring any
 * to be present. Throws `TLOG_BAD_SIGNATURE` when a known key's signature fails.
 * @internal
 */
export function checkSignatures(note: Note, verifiers: readonly NoteVerifier[]): OpenedNote {
  const known = indexVerifiers(verifiers);
  const msg = utf8(note.text);
  const verified: NoteSignature[] = [];
  const unverified: NoteSignature[] = [];
  const seen = new Set<string>();
  const seenUnknown = new Set<string>();
  for (const sig of note.signatures) {
    const k = keyOf(sig.name, sig.keyId);
    const v = known.get(k);
    if (v === undefined) {
      const line = `${k}\u0000${toHex(sig.signature)}`;
      if (!seenUnknown.has(line)) {
        seenUnknown.add(line);
        unverified.push(sig);
      }
      continue;
    }
    let ok = false;
    try {
      ok = v.verify(msg, sig.signature) === true;
    } catch {
      ok = false;
    }
    if (!ok) throw new TlogError('TLOG_BAD_SIGNATURE', `signature by ${sig.name}+${sig.keyId.toString(16).padStart(8, '0')} does not verify`);
    if (!seen.has(k)) {
      seen.add(k);
      verified.push(sig);
    }
  }
  return { text: note.text, verified, unverified };
}

/**
 * Parses a signed note and verifies it against the known keys: signatures from
 * unknown keys are ignored (returned as `unverified`), every signature from a
 * known key must verify (`TLOG_BAD_SIGNATURE`), and at least one must be present
 * (`TLOG_NO_VERIFIED_SIGNATURE`). Only then may `text` be trusted.
 *
 * @example
 * const { text } = openNote(noteText, [newVerifier('example.com/foo+530d903a+Aeky…')]);
 */
export function openNote(input: string | Uint8Array, verifiers: readonly NoteVerifier[], limits?: NoteLimits): OpenedNote {
  const opened = checkSignatures(parseNote(input, limits), verifiers);
  if (opened.verified.length === 0) throw new TlogError('TLOG_NO_VERIFIED_SIGNATURE', 'the note is not signed by any of the given keys');
  return opened;
}

// --- keys ------------------------------------------------------------------

/**
 * The recommended key ID: SHA-256(name ‖ 0x0A ‖ type ‖ publicKey)[:4] as a
 * big-endian uint32.
 *
 * @example
 * keyId('example.com/foo', 0x01, publicKey).toString(16) // '530d903a'
 */
export function keyId(name: string, type: number, publicKey: Uint8Array): number {
  check(isValidKeyName(name), `invalid key name ${JSON.stringify(name)}`);
  check(Number.isInteger(type) && type >= 0 && type <= 0xff, 'type must be a byte');
  abytes(publicKey, 'publicKey');
  return readU32(sha256(concat(utf8(name), new Uint8Array([0x0a, type]), publicKey)));
}

/** A decoded verifier key string. */
export interface VerifierKey {
  readonly name: string;
  readonly keyId: number;
  /** Signature type byte (0x01 Ed25519 note signature, 0x04 cosignature/v1, …). */
  readonly type: number;
  readonly publicKey: Uint8Array;
}

/** A decoded signer key string (the secret is a 32-byte Ed25519 seed). */
export interface SignerKey {
  readonly name: string;
  readonly keyId: number;
  readonly type: number;
  readonly seed: Uint8Array;
  /** The Ed25519 public key derived from the seed. */
  readonly publicKey: Uint8Array;
}

function badKey(message: string): TlogError {
  return new TlogError('TLOG_MALFORMED_KEY', message);
}

/** Splits at the first `+`; the remainder may itself contain `+` (base64). */
function chop(s: string): [string, string] {
  const i = s.indexOf('+');
  return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + 1)];
}

function decodeKeyParts(name: string, hex: string, b64: string, what: string): { keyId: number; type: number; key: Uint8Array } {
  if (!isValidKeyName(name)) throw badKey(`${what}: invalid key name`);
  if (!/^[0-9a-fA-F]{8}$/.test(hex)) throw badKey(`${what}: key ID must be 8 hex digits`);
  let raw: Uint8Array;
  try {
    raw = base64.decode(b64);
  } catch (e) {
    throw new TlogError('TLOG_MALFORMED_KEY', `${what}: key is not canonical padded base64`, { cause: e });
  }
  if (raw.length < 2) throw badKey(`${what}: key is empty`);
  return { keyId: parseInt(hex, 16), type: raw[0]!, key: raw.slice(1) };
}

const ED25519_TYPES: readonly number[] = [SIGNATURE_TYPE_ED25519, 0x04];

/**
 * Decodes a verifier key string `<name>+<hex key ID>+base64(type ‖ public key)`
 * for the Ed25519-based types 0x01 (note signature) and 0x04 (cosignature/v1),
 * and checks that the key ID is the one the name, type and key give.
 *
 * @example
 * parseVerifierKey('example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k').type // 1
 */
export function parseVerifierKey(vkey: string): VerifierKey {
  check(typeof vkey === 'string', 'verifier key must be a string');
  const [name, rest] = chop(vkey);
  const [hex, b64] = chop(rest);
  const { keyId: id, type, key } = decodeKeyParts(name, hex, b64, 'verifier key');
  if (!ED25519_TYPES.includes(type)) throw badKey(`verifier key: unsupported signature type 0x${type.toString(16).padStart(2, '0')}`);
  if (key.length !== 32) throw badKey('verifier key: an Ed25519 public key is 32 bytes');
  if (keyId(name, type, key) !== id) throw badKey('verifier key: key ID does not match the name and key');
  return { name, keyId: id, type, publicKey: key };
}

/**
 * Encodes a verifier key string for an Ed25519 public key and a type (0x01 or 0x04).
 *
 * @example
 * formatVerifierKey('example.com/log', 0x01, publicKey) // 'example.com/log+1a2b3c4d+A…'
 */
export function formatVerifierKey(name: string, type: number, publicKey: Uint8Array): string {
  check(ED25519_TYPES.includes(type), 'type must be 0x01 or 0x04');
  abytes(publicKey, 'publicKey', 32);
  const id = keyId(name, type, publicKey);
  return `${name}+${id.toString(16).padStart(8, '0')}+${base64.encode(concat(new Uint8Array([type]), publicKey))}`;
}

/**
 * Decodes a signer key string `PRIVATE+KEY+<name>+<hex key ID>+base64(type ‖ seed)`
 * (type 0x01 or 0x04, 32-byte Ed25519 seed) and checks the key ID against the
 * derived public key.
 *
 * @example
 * parseSignerKey(skey).publicKey
 */
export function parseSignerKey(skey: string): SignerKey {
  check(typeof skey === 'string', 'signer key must be a string');
  const [p1, r1] = chop(skey);
  const [p2, r2] = chop(r1);
  if (p1 !== 'PRIVATE' || p2 !== 'KEY') throw badKey('signer key must start with PRIVATE+KEY+');
  const [name, r3] = chop(r2);
  const [hex, b64] = chop(r3);
  const { keyId: id, type, key } = decodeKeyParts(name, hex, b64, 'signer key');
  if (!ED25519_TYPES.includes(type)) throw badKey(`signer key: unsupported signature type 0x${type.toString(16).padStart(2, '0')}`);
  if (key.length !== 32) throw badKey('signer key: an Ed25519 seed is 32 bytes');
  const publicKey = ed25519.getPublicKey(key);
  if (keyId(name, type, publicKey) !== id) throw badKey('signer key: key ID does not match the name and derived public key');
  return { name, keyId: id, type, seed: key, publicKey };
}

/** Ed25519 (RFC 8032, strict encodings) that never throws. @internal */
export function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  try {
    return ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

/**
 * A type-0x01 Ed25519 note verifier for a name and 32-byte public key.
 *
 * @example
 * const v = ed25519Verifier('example.com/log', publicKey);
 */
export function ed25519Verifier(name: string, publicKey: Uint8Array): NoteVerifier {
  abytes(publicKey, 'publicKey', 32);
  const pk = publicKey.slice();
  return Object.freeze({
    name,
    keyId: keyId(name, SIGNATURE_TYPE_ED25519, pk),
    verify: (text: Uint8Array, sig: Uint8Array) => ed25519Verify(pk, text, sig),
  });
}

/**
 * A verifier from a type-0x01 verifier key string. (Cosignature keys, type
 * 0x04, go to `newCosignatureVerifier`.)
 *
 * @example
 * const v = newVerifier('sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8');
 */
export function newVerifier(vkey: string): NoteVerifier {
  const k = parseVerifierKey(vkey);
  if (k.type !== SIGNATURE_TYPE_ED25519) throw badKey('newVerifier takes an Ed25519 (type 0x01) key; use newCosignatureVerifier for 0x04');
  return ed25519Verifier(k.name, k.publicKey);
}

/**
 * A type-0x01 Ed25519 note signer for a name and 32-byte seed.
 *
 * @example
 * const s = ed25519Signer('example.com/log', seed);
 */
export function ed25519Signer(name: string, seed: Uint8Array): NoteSigner {
  abytes(seed, 'seed', 32);
  const sk = seed.slice();
  return Object.freeze({
    name,
    keyId: keyId(name, SIGNATURE_TYPE_ED25519, ed25519.getPublicKey(sk)),
    sign: (text: Uint8Array) => ed25519.sign(text, sk),
  });
}

/**
 * A signer from a type-0x01 signer key string.
 *
 * @example
 * const note = signNote('hello\n', [newSigner('PRIVATE+KEY+PeterNeumann+c74f20a3+AYEK…')]);
 */
export function newSigner(skey: string): NoteSigner {
  const k = parseSignerKey(skey);
  if (k.type !== SIGNATURE_TYPE_ED25519) throw badKey('newSigner takes an Ed25519 (type 0x01) key; use newCosigner for 0x04');
  return ed25519Signer(k.name, k.seed);
}

/**
 * Generates a type-0x01 Ed25519 key pair for `name` (random seed from
 * `crypto.getRandomValues`, or the given 32-byte seed) as key strings.
 *
 * @example
 * const { signerKey, verifierKey } = generateSignerKey('example.com/log');
 */
export function generateSignerKey(name: string, seed?: Uint8Array): { signerKey: string; verifierKey: string } {
  check(isValidKeyName(name), `invalid key name ${JSON.stringify(name)}`);
  const sk = seed === undefined ? ed25519.utils.randomSecretKey() : seed.slice();
  abytes(sk, 'seed', 32);
  const pk = ed25519.getPublicKey(sk);
  const id = keyId(name, SIGNATURE_TYPE_ED25519, pk);
  const hex = id.toString(16).padStart(8, '0');
  return {
    signerKey: `PRIVATE+KEY+${name}+${hex}+${base64.encode(concat(new Uint8Array([SIGNATURE_TYPE_ED25519]), sk))}`,
    verifierKey: formatVerifierKey(name, SIGNATURE_TYPE_ED25519, pk),
  };
}
