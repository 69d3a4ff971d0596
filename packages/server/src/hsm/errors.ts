/**
 * The HSM module's stable error codes. PKCS#11 return values (CKR_*) are
 * mapped to these; the CKR name is kept in the message for operators, never
 * the PIN or any key bytes.
 */

export const HSM_ERRORS = {
  KW_HSM_MODULE_MISSING: 'The PKCS#11 module could not be loaded (wrong path, missing library or dependencies).',
  KW_HSM_TOKEN_MISSING: 'No token with the configured label is present in any slot.',
  KW_HSM_PIN_INCORRECT: 'The HSM refused the PIN (incorrect, expired or locked).',
  KW_HSM_KEY_MISSING: 'The HSM holds no key with this label and type.',
  KW_HSM_KEY_EXISTS: 'The HSM already holds a key with this label; refusing to create a second one.',
  KW_HSM_MECHANISM_UNSUPPORTED: 'The HSM does not support a mechanism Keyward needs for this operation.',
  KW_HSM_UNAVAILABLE: 'The HSM is unavailable (token removed, device or library error); retry when it is back.',
  KW_HSM_INTEGRITY: 'The HSM refused the input: a wrapped blob or ciphertext does not authenticate under this key.',
  KW_HSM_FAILED: 'The HSM refused the operation for another reason (see the CKR code in the message).',
  KW_HSM_RESIDENT_KEYS: 'HSM-resident keys exist: they live only in this token and no Keyward operation can move them (keyward hsm rewrap refuses).',
  KW_HSM_SERVICE_RUNNING: 'The key service is running on this data directory: stop it (every node) before keyward hsm rewrap.',
} as const;

export type HsmErrorCode = keyof typeof HSM_ERRORS;

/**
 * The single error class of the HSM module.
 *
 * @example
 * catch (e) { if (isHsmError(e, 'KW_HSM_UNAVAILABLE')) report('sealed: HSM unreachable') }
 */
export class HsmError extends Error {
  readonly code: HsmErrorCode;
  /** The PKCS#11 return value name, when the HSM produced one (e.g. CKR_PIN_INCORRECT). */
  readonly ckr: string | null;
  constructor(code: HsmErrorCode, message?: string, options?: { cause?: unknown; ckr?: string | null }) {
    super(message ?? HSM_ERRORS[code], options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HsmError';
    this.code = code;
    this.ckr = options?.ckr ?? null;
  }
}

export function isHsmError(e: unknown, code?: HsmErrorCode): e is HsmError {
  return e instanceof HsmError && (code === undefined || e.code === code);
}

/** CKR names that mean the connection to the token is gone and a reconnect may help. */
export const RECONNECT_CKR = new Set([
  'CKR_SESSION_HANDLE_INVALID', 'CKR_SESSION_CLOSED', 'CKR_DEVICE_REMOVED', 'CKR_TOKEN_NOT_PRESENT',
  'CKR_DEVICE_ERROR', 'CKR_CRYPTOKI_NOT_INITIALIZED', 'CKR_USER_NOT_LOGGED_IN', 'CKR_TOKEN_NOT_RECOGNIZED',
]);

/** Maps a PKCS#11 failure to a typed error. */
export function fromPkcs11(e: unknown, what: string): HsmError {
  if (e instanceof HsmError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const ckr = /CKR_[A-Z_]+/.exec(msg)?.[0] ?? null;
  const code: HsmErrorCode =
    ckr === 'CKR_PIN_INCORRECT' || ckr === 'CKR_PIN_LOCKED' || ckr === 'CKR_PIN_EXPIRED' || ckr === 'CKR_PIN_INVALID' || ckr === 'CKR_PIN_LEN_RANGE' ? 'KW_HSM_PIN_INCORRECT'
      : ckr === 'CKR_MECHANISM_INVALID' || ckr === 'CKR_MECHANISM_PARAM_INVALID' || ckr === 'CKR_KEY_FUNCTION_NOT_PERMITTED' ? 'KW_HSM_MECHANISM_UNSUPPORTED'
        : ckr === 'CKR_ENCRYPTED_DATA_INVALID' || ckr === 'CKR_WRAPPED_KEY_INVALID' || ckr === 'CKR_WRAPPED_KEY_LEN_RANGE' || ckr === 'CKR_ENCRYPTED_DATA_LEN_RANGE' || ckr === 'CKR_SIGNATURE_INVALID' ? 'KW_HSM_INTEGRITY'
          : ckr !== null && RECONNECT_CKR.has(ckr) ? 'KW_HSM_UNAVAILABLE'
            : 'KW_HSM_FAILED';
  return new HsmError(code, `${what}: ${ckr ?? 'PKCS#11 failure'}`, { cause: e, ckr });
}
