/**
 * C2SP tlog-cosignature (https://c2sp.org/tlog-cosignature), Ed25519
 * `cosignature/v1` only: a witness's note signature of type 0x04 on a
 * checkpoint. Key ID = SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[:4]; the line
 * payload after the key ID is u64be(timestamp) ‖ Ed25519 signature (72 bytes);
 * the signed message is
 *
 *     cosignature/v1\n
 *     time <timestamp, decimal>\n
 *     <checkpoint note text, through its final newline>
 *
 * Cosigners and cosignature verifiers plug into the generic note API
 * (`signNote`, `addSignatures`, `openNote`) as ordinary signers and verifiers.
 * (The ML-DSA-44 `subtree/v1` type 0x06 is not implemented.)
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { abytes, concat, isList, readU64, toHex, u64be, utf8 } from './bytes.js';
import { TlogError, check } from './errors.js';
import {
  checkSignatures,
  ed25519Verify,
  formatVerifierKey,
  keyId,
  parseNote,
  parseSignerKey,
  parseVerifierKey,
  type NoteLimits,
  type NoteSigner,
  type NoteVerifier,
} from './note.js';

/**
 * Signature type byte of Ed25519 cosignature/v1 keys.
 *
 * @example
 * keyId('witness.example/w1', SIGNATURE_TYPE_COSIGNATURE_V1, publicKey)
 */
export const SIGNATURE_TYPE_COSIGNATURE_V1 = 0x04;

const MAX_TIMESTAMP = Number.MAX_SAFE_INTEGER; // the spec allows up to 2^63 - 1; numbers stop at 2^53 - 1

function checkTimestamp(t: unknown): asserts t is number {
  check(typeof t === 'number' && Number.isSafeInteger(t) && t >= 0, 'timestamp must be a non-negative integer (POSIX seconds)');
}

/**
 * The message a cosignature/v1 signs: the two header lines, then the whole
 * checkpoint note text (through its final newline, without signature lines).
 *
 * @example
 * new TextDecoder().decode(cosignatureMessage('example.com/log\n1\nAAAA…=\n', 1679315147))
 * // 'cosignature/v1\ntime 1679315147\nexample.com/log\n1\nAAAA…=\n'
 */
export function cosignatureMessage(text: string | Uint8Array, timestamp: number): Uint8Array {
  checkTimestamp(timestamp);
  const body = typeof text === 'string' ? utf8(text) : text;
  abytes(body, 'text');
  return concat(utf8(`cosignature/v1\ntime ${timestamp}\n`), body);
}

/** A decoded cosignature/v1 line payload. */
export interface CosignaturePayload {
  /** POSIX seconds at which the witness cosigned. */
  readonly timestamp: number;
  /** The 64-byte Ed25519 signature. */
  readonly signature: Uint8Array;
}

/**
 * Splits a cosignature/v1 payload (the 72 bytes after the key ID) into its
 * timestamp and signature. Throws `TLOG_MALFORMED_NOTE` for another length or a
 * timestamp above 2^53 - 1.
 *
 * @example
 * parseCosignature(parseNote(note).signatures[1].signature).timestamp // 1679315147
 */
export function parseCosignature(payload: Uint8Array): CosignaturePayload {
  abytes(payload, 'payload');
  if (payload.length !== 72) throw new TlogError('TLOG_MALFORMED_NOTE', `a cosignature/v1 payload is 72 bytes, got ${payload.length}`);
  const t = readU64(payload, 0);
  if (t > BigInt(MAX_TIMESTAMP)) throw new TlogError('TLOG_MALFORMED_NOTE', 'cosignature timestamp is out of range');
  return { timestamp: Number(t), signature: payload.slice(8) };
}

/** A note verifier for one witness's cosignature/v1 signatures. */
export interface CosignatureVerifier extends NoteVerifier {
  readonly cosignature: 'v1';
  readonly publicKey: Uint8Array;
}

/**
 * A cosignature/v1 verifier for a witness name and 32-byte Ed25519 public key.
 *
 * @example
 * const w = cosignatureVerifier('witness.example.com/w1', publicKey);
 */
export function cosignatureVerifier(name: string, publicKey: Uint8Array): CosignatureVerifier {
  abytes(publicKey, 'publicKey', 32);
  const pk = publicKey.slice();
  return Object.freeze({
    name,
    keyId: keyId(name, SIGNATURE_TYPE_COSIGNATURE_V1, pk),
    cosignature: 'v1' as const,
    get publicKey() {
      return pk.slice();
    },
    verify(text: Uint8Array, payload: Uint8Array): boolean {
      if (payload.length !== 72) return false;
      const t = readU64(payload, 0);
      if (t > BigInt(MAX_TIMESTAMP)) return false;
      return ed25519Verify(pk, cosignatureMessage(text, Number(t)), payload.subarray(8));
    },
  });
}

/**
 * A cosignature/v1 verifier from a type-0x04 verifier key string.
 *
 * @example
 * const w = newCosignatureVerifier('Wit1+9b3fb2d5+BFhZSmQj9+SoL+p/nN0Hh76xXmF7QcHfytUrI1XfSClk');
 */
export function newCosignatureVerifier(vkey: string): CosignatureVerifier {
  const k = parseVerifierKey(vkey);
  if (k.type !== SIGNATURE_TYPE_COSIGNATURE_V1) {
    throw new TlogError('TLOG_MALFORMED_KEY', 'a cosignature/v1 verifier key has type 0x04');
  }
  return cosignatureVerifier(k.name, k.publicKey);
}

/**
 * The type-0x04 verifier key string of a witness.
 *
 * @example
 * cosignatureVerifierKey('Wit1', publicKey) // 'Wit1+9b3fb2d5+BFhZ…'
 */
export function cosignatureVerifierKey(name: string, publicKey: Uint8Array): string {
  return formatVerifierKey(name, SIGNATURE_TYPE_COSIGNATURE_V1, publicKey);
}

/** Options of a cosigner. */
export interface CosignerOptions {
  /** The clock, in POSIX seconds (default: `Math.floor(Date.now() / 1000)`). */
  readonly now?: () => number;
}

/**
 * A cosignature/v1 signer for a witness name and 32-byte Ed25519 seed. Each
 * signature is stamped with `options.now()`.
 *
 * @example
 * const cosigned = addSignatures(checkpointNote, [cosigner('witness.example/w1', seed)]);
 */
export function cosigner(name: string, seed: Uint8Array, options: CosignerOptions = {}): NoteSigner {
  abytes(seed, 'seed', 32);
  const sk = seed.slice();
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  check(typeof now === 'function', 'options.now must be a function');
  return Object.freeze({
    name,
    keyId: keyId(name, SIGNATURE_TYPE_COSIGNATURE_V1, ed25519.getPublicKey(sk)),
    sign(text: Uint8Array): Uint8Array {
      const t = now();
      checkTimestamp(t);
      return concat(u64be(t), ed25519.sign(cosignatureMessage(text, t), sk));
    },
  });
}

/**
 * A cosigner from a signer key string `PRIVATE+KEY+name+id+base64(type ‖ seed)`
 * of type 0x04, or of type 0x01 (the same Ed25519 seed; the key ID is then
 * recomputed for type 0x04, as transparency-dev's witness does).
 *
 * @example
 * const w = newCosigner('PRIVATE+KEY+Wit1+55ee4561+AeadRiG7XM4XiieCHzD8lxysXMwcViy5nYsoXURWGrlE');
 */
export function newCosigner(skey: string, options: CosignerOptions = {}): NoteSigner {
  const k = parseSignerKey(skey);
  return cosigner(k.name, k.seed, options);
}

/** One verified cosignature. */
export interface Cosignature extends CosignaturePayload {
  readonly name: string;
  readonly keyId: number;
}

/** Options of {@link requireCosignatures}. */
export interface CosignaturePolicyOptions {
  /** Cosignatures stamped later than this (POSIX seconds) do not count (clock skew, or a forged future). */
  readonly maxTimestamp?: number;
  readonly limits?: NoteLimits;
}

/**
 * Requires that at least `k` distinct witnesses of `witnesses` cosigned the
 * note. Lines from other keys (the log's own signature included) are ignored; a
 * line from one of the witnesses that fails to verify rejects the note
 * (`TLOG_BAD_SIGNATURE`); too few valid cosignatures throw
 * `TLOG_NOT_ENOUGH_COSIGNATURES`. Witnesses must have distinct public keys (the
 * v1 message does not commit to the witness name, so one key under two names
 * would count twice). This does not check the log's signature: use
 * `openCheckpoint` for that.
 *
 * @example
 * const cp = openCheckpoint(note, [logVerifier], { origin }).checkpoint;
 * requireCosignatures(note, witnesses, 2);
 */
export function requireCosignatures(
  note: string | Uint8Array,
  witnesses: readonly CosignatureVerifier[],
  k: number,
  options: CosignaturePolicyOptions = {},
): { readonly text: string; readonly cosignatures: Cosignature[] } {
  check(isList(witnesses) && witnesses.length > 0, 'witnesses must be a non-empty array of CosignatureVerifier');
  const keys = new Set<string>();
  for (const w of witnesses) {
    check(typeof w === 'object' && w !== null && w.cosignature === 'v1', 'every witness must be a cosignature/v1 verifier');
    abytes(w.publicKey, 'witness publicKey', 32);
    const hex = toHex(w.publicKey);
    check(!keys.has(hex), `two witnesses share one public key (${w.name})`);
    keys.add(hex);
  }
  check(Number.isSafeInteger(k) && k >= 1 && k <= witnesses.length, `k must be an integer from 1 to ${witnesses.length}`);
  const { maxTimestamp } = options;
  if (maxTimestamp !== undefined) checkTimestamp(maxTimestamp);
  const opened = checkSignatures(parseNote(note, options.limits), witnesses);
  const cosignatures = opened.verified
    .map((s) => ({ name: s.name, keyId: s.keyId, ...parseCosignature(s.signature) }))
    .filter((c) => maxTimestamp === undefined || c.timestamp <= maxTimestamp);
  if (cosignatures.length < k) {
    throw new TlogError('TLOG_NOT_ENOUGH_COSIGNATURES', `${cosignatures.length} valid cosignature(s) from the given witnesses, ${k} required`);
  }
  return { text: opened.text, cosignatures };
}
