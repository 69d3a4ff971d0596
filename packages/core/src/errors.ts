/**
 * Every failure in Keyward carries one stable string `code`. Callers match on
 * the code, never on the message; the catalogue with explanations lives in
 * `docs/errors.md`, and a test checks that every code here is documented there.
 */

/** The stable error codes, grouped by what went wrong. */
export const ERROR_CODES = {
  // --- caller mistakes (bad arguments, misuse) -----------------------------
  KW_INVALID_ARGUMENT: 'An argument is missing, has the wrong type, or is out of range.',
  KW_NO_RECIPIENTS: 'Sealing needs at least one recipient.',
  KW_SCRYPT_NOT_ALONE: 'A passphrase (scrypt) stanza must be the only stanza of an envelope.',
  KW_INVALID_KEY_STRING: 'A recipient, identity or signer string is malformed or has a bad checksum.',
  KW_UNSUPPORTED: 'The operation or algorithm is not supported here.',
  KW_CONTEXT_INVALID: 'The encryption context given by the caller has an empty or duplicate key, or a string that is not well-formed Unicode.',

  // --- parsing untrusted envelopes -----------------------------------------
  KW_NOT_AN_ENVELOPE: 'The input does not start with a Keyward (or age) envelope header.',
  KW_UNSUPPORTED_VERSION: 'The envelope uses a format version this reader does not know.',
  KW_MALFORMED_HEADER: 'The envelope header is truncated or structurally invalid.',
  KW_LIMIT_EXCEEDED: 'The envelope or the request exceeds a hard limit (header size, stanza count or fields, context pairs or bytes).',
  KW_ARMOR_INVALID: 'The armored text is not canonical or not an envelope.',

  // --- recipients and keys -------------------------------------------------
  KW_NO_IDENTITY_MATCHED: 'None of the given identities can open any stanza of the envelope.',
  KW_STANZA_UNWRAP_FAILED: 'A stanza addressed to one of the identities failed to decrypt (tampered or transplanted).',
  KW_TOO_MANY_TRIALS: 'Opening an anonymous envelope would need more trial decryptions than allowed.',
  KW_SCRYPT_WORK_FACTOR: 'The passphrase work factor is outside the allowed range.',
  KW_WRONG_PASSPHRASE: 'The passphrase does not open the envelope.',
  KW_KMS_UNAVAILABLE: 'The envelope has a kms stanza and no key service client was given.',

  // --- integrity -----------------------------------------------------------
  KW_COMMITMENT_MISMATCH: 'The data key does not match the key commitment in the header (multi-key or transplant attack).',
  KW_HEADER_MAC_MISMATCH: 'The header was modified after sealing.',
  KW_PAYLOAD_AUTH_FAILED: 'A payload chunk failed authentication (modified, reordered or duplicated).',
  KW_TRUNCATED: 'The payload ends before its final chunk.',
  KW_TRAILING_DATA: 'A whole chunk-sized block of data follows the final chunk.',
  KW_COUNTER_OVERFLOW: 'The chunk counter would exceed the format limit.',
  KW_CONTEXT_MISMATCH: 'The encryption context of the envelope differs from the one the opener requires.',
  KW_CHUNK_OUT_OF_RANGE: 'Random access asked for a chunk the envelope does not have.',

  // --- signatures ----------------------------------------------------------
  KW_SIGNATURE_MISSING: 'The envelope is unsigned (or its signature was stripped) and a signature was required.',
  KW_SIGNATURE_INVALID: 'The envelope signature does not verify.',
  KW_SIGNER_UNKNOWN: 'The envelope is signed by a key that is not among the expected signers.',

  // --- age interoperability ------------------------------------------------
  KW_AGE_MALFORMED: 'The age file is not a canonical age v1 file.',
  KW_AGE_HMAC_MISMATCH: 'The age header MAC does not verify.',

  // --- I/O and runtime -----------------------------------------------------
  KW_IO: 'Reading or writing a file or stream failed.',
  KW_INTERNAL: 'An unexpected internal failure; please report it.',
} as const;

/** Union of every stable error code. */
export type KeywardErrorCode = keyof typeof ERROR_CODES;

/**
 * The single error class of Keyward.
 *
 * @example
 * try { await open(envelope, { identities }) }
 * catch (e) { if (isKeywardError(e, 'KW_NO_IDENTITY_MATCHED')) … }
 */
export class KeywardError extends Error {
  readonly code: KeywardErrorCode;

  constructor(code: KeywardErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ERROR_CODES[code], options);
    this.name = 'KeywardError';
    this.code = code;
  }
}

/** True when `e` is a KeywardError, optionally with the given code. */
export function isKeywardError(e: unknown, code?: KeywardErrorCode): e is KeywardError {
  return e instanceof KeywardError && (code === undefined || e.code === code);
}

/** Throws `KW_INVALID_ARGUMENT` unless `cond` holds. */
export function check(cond: unknown, message: string, code: KeywardErrorCode = 'KW_INVALID_ARGUMENT'): asserts cond {
  if (!cond) throw new KeywardError(code, message);
}
