/**
 * The one error class of `@keyward/integrations`, with a stable `code` from
 * {@link INTEGRATION_ERROR_CODES}. Match on `code`, never on the message.
 * Failures of the seal library or the key service client are wrapped: the
 * integration code says what it means here (`KW_INT_CONTEXT_MISMATCH`: sealed
 * for another subject, row or route), and `cause` keeps the original error
 * (`causeCode` its code). Messages never contain plaintext or key bytes.
 */
import { isKeywardError } from '@keyward/core';
import { isKeywardClientError } from '@keyward/client';

/** Every code an integration reports, with a one-line explanation (docs/errors.md lists them). */
export const INTEGRATION_ERROR_CODES = {
  KW_INT_INVALID_ARGUMENT: 'An argument of an integration call is missing, malformed or out of range; nothing was sealed, sent or written.',
  KW_INT_NOT_SEALED: 'A message, column value or HTTP body that must be sealed is not a Keyward envelope (or not one of this integration\'s containers).',
  KW_INT_MALFORMED_FRAME: 'The envelope opened, but its plaintext is not a valid sealed frame or column value (wrong version, length or fields).',
  KW_INT_CONTEXT_MISMATCH: 'The envelope was sealed for another destination: another subject, stream, exchange or routing key, table, column or row, audience, method or path.',
  KW_INT_OPEN_FAILED: 'The envelope does not open with the given identities or key service (not addressed to them, tampered, or refused); `causeCode` has the seal library\'s or key service\'s code.',
  KW_INT_REPLAY: 'A message or request with this id was already accepted inside the replay window.',
  KW_INT_STALE: 'The sealed timestamp is older than the replay window allows.',
  KW_INT_FUTURE: 'The sealed timestamp is further in the future than the allowed clock skew.',
  KW_INT_REPLAY_GUARD_FULL: 'The replay guard holds its maximum number of ids; new messages are refused (fail closed) until old ones leave the window.',
  KW_INT_KEY_SERVICE_FAILED: 'A key service call (datakey, unwrap, mac, rewrap) failed; `causeCode` has the service\'s or client\'s code.',
  KW_INT_TRANSPORT_FAILED: 'The broker, database or HTTP peer failed (connection, publish, query); nothing is known to have been written.',
  KW_INT_RESPONSE_NOT_SEALED: 'The HTTP response to a sealed request is not sealed (a 2xx/3xx plaintext response, or a proxy\'s own answer).',
  KW_INT_RESPONSE_MISMATCH: 'The sealed HTTP response does not answer this request (another request id).',
  KW_INT_UNSUPPORTED: 'The operation is not supported for this value (e.g. a stream body, or rewrap of a value with no kms stanza).',
  KW_INT_AGE_PROTOCOL: 'The age client and the age-plugin-keyward plugin disagree on the plugin protocol (malformed or unexpected IPC stanza, unknown state machine).',
  KW_INT_CREDENTIALS: 'The credentials named by a keyward age identity or the environment (login profile, token file) are missing, unreadable or incomplete.',
} as const;

export type IntegrationErrorCode = keyof typeof INTEGRATION_ERROR_CODES;

export interface IntegrationErrorOptions {
  readonly cause?: unknown;
}

/**
 * @example
 * try { await consumer.open(msg) }
 * catch (e) { if (isIntegrationError(e, 'KW_INT_REPLAY')) metrics.replays.inc(); else throw e; }
 */
export class IntegrationError extends Error {
  readonly code: IntegrationErrorCode;
  /** The code of the wrapped seal-library or key-service error, when there is one. */
  readonly causeCode: string | undefined;

  constructor(code: IntegrationErrorCode, message?: string, options: IntegrationErrorOptions = {}) {
    super(message ?? INTEGRATION_ERROR_CODES[code], options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'IntegrationError';
    this.code = code;
    const c = options.cause;
    this.causeCode = isKeywardError(c) || isKeywardClientError(c) ? c.code : c instanceof IntegrationError ? c.code : undefined;
  }
}

export function isIntegrationError(e: unknown, code?: IntegrationErrorCode): e is IntegrationError {
  return e instanceof IntegrationError && (code === undefined || e.code === code);
}

export const invalid = (message: string): IntegrationError => new IntegrationError('KW_INT_INVALID_ARGUMENT', message);

/** Core codes that mean "the envelope opened but was sealed for somewhere else". */
const CONTEXT_CODES = new Set(['KW_CONTEXT_MISMATCH']);
/** Core codes that mean "this is not an envelope at all". */
const NOT_ENVELOPE_CODES = new Set(['KW_NOT_AN_ENVELOPE', 'KW_ARMOR_INVALID']);

/**
 * Maps a failure of `open` (core or the key service client under it) to an
 * integration error. An IntegrationError passes unchanged.
 */
export function openFailure(e: unknown, what: string): IntegrationError {
  if (e instanceof IntegrationError) return e;
  if (isKeywardError(e)) {
    if (CONTEXT_CODES.has(e.code)) return new IntegrationError('KW_INT_CONTEXT_MISMATCH', `${what} was sealed for another destination`, { cause: e });
    if (NOT_ENVELOPE_CODES.has(e.code)) return new IntegrationError('KW_INT_NOT_SEALED', `${what} is not a Keyward envelope`, { cause: e });
    return new IntegrationError('KW_INT_OPEN_FAILED', `${what} does not open (${e.code})`, { cause: e });
  }
  if (isKeywardClientError(e)) return new IntegrationError('KW_INT_KEY_SERVICE_FAILED', `${what}: the key service call failed (${e.code})`, { cause: e });
  return new IntegrationError('KW_INT_OPEN_FAILED', `${what} does not open`, { cause: e });
}

/** Maps a failure of `seal` to an integration error (core argument errors → invalid argument). */
export function sealFailure(e: unknown, what: string): IntegrationError {
  if (e instanceof IntegrationError) return e;
  if (isKeywardClientError(e)) return new IntegrationError('KW_INT_KEY_SERVICE_FAILED', `${what}: the key service call failed (${e.code})`, { cause: e });
  if (isKeywardError(e)) return new IntegrationError('KW_INT_INVALID_ARGUMENT', `${what}: sealing refused (${e.code})`, { cause: e });
  return new IntegrationError('KW_INT_INVALID_ARGUMENT', `${what}: sealing failed`, { cause: e });
}
