/**
 * Releasing a data key to its caller: always HPKE-sealed (`@keyward/core`
 * `seal()`) to the recipient named in the caller's signed request, with an
 * encryption context that HPKE's `info` binds:
 *
 *   { kw_request: hex(request hash), kw_key: "<ns>/<key>", kw_version: "<n>", ...callerContext }
 *
 * so the envelope opens only with the caller's identity and only for the
 * exact request, key, version and context (core's open checks the context).
 */
import { parseRecipient, seal, type HpkeRecipient } from '@keyward/core';
import { toHex } from '../bytes.js';
import { KeyholderError, check } from '../errors.js';
import { contextSchema, parseArg, type Context, type VersionRef } from '../schemas.js';

/** Recipient types a data key may be sealed to. */
export const CALLER_KEM_TYPES = ['x25519', 'xwing'] as const;
export const REQUEST_HASH_LENGTH = 32;

/** Checks a caller's encryption context (reserved `kw_` keys, limits); returns the checked copy. */
export function checkContext(context: unknown): Context {
  // zod drops an own "__proto__" key silently; a pair the caller sent must never vanish unbound.
  check(!(typeof context === 'object' && context !== null && Object.hasOwn(context, '__proto__')), 'the context key "__proto__" is not allowed');
  return parseArg(contextSchema, context ?? {}, 'encryption context');
}

/** Most parsed caller recipients kept (public keys only; a client sends the same one with every request). */
const RECIPIENT_CACHE_SIZE = 1024;
/** Accepted recipients by their exact string, least recently used first. */
const recipients = new Map<string, HpkeRecipient>();

/** Parses the caller's recipient string; only x25519 and xwing recipients are accepted. */
export async function parseCallerRecipient(text: unknown): Promise<HpkeRecipient> {
  check(typeof text === 'string', 'the recipient must be a Keyward recipient string');
  const known = recipients.get(text);
  if (known !== undefined) {
    recipients.delete(text);
    recipients.set(text, known);
    return known;
  }
  let r: HpkeRecipient;
  try {
    r = await parseRecipient(text);
  } catch (e) {
    throw new KeyholderError('KW_INVALID_ARGUMENT', 'the recipient is not a valid Keyward recipient string', { cause: e });
  }
  check((CALLER_KEM_TYPES as readonly string[]).includes(r.type), `data keys are sealed to ${CALLER_KEM_TYPES.join(' or ')} recipients, not ${r.type}`);
  if (recipients.size >= RECIPIENT_CACHE_SIZE) recipients.delete(recipients.keys().next().value!);
  recipients.set(text, r);
  return r;
}

export function checkRequestHash(h: unknown): Uint8Array {
  check(h instanceof Uint8Array && h.length === REQUEST_HASH_LENGTH, `the request hash must be ${REQUEST_HASH_LENGTH} bytes`);
  return h;
}

/** The context the sealed data key carries; the caller passes the same to `open`. */
export function releaseContext(requestHash: Uint8Array, ref: Pick<VersionRef, 'ns' | 'key' | 'version'>, context: Context): Record<string, string> {
  return { kw_request: toHex(requestHash), kw_key: `${ref.ns}/${ref.key}`, kw_version: String(ref.version), ...context };
}

/** Seals `secret` to the caller. Inputs are already checked. */
export function sealToCaller(secret: Uint8Array, recipient: HpkeRecipient, requestHash: Uint8Array, ref: VersionRef, context: Context): Promise<Uint8Array> {
  return seal(secret, { recipients: [recipient], context: releaseContext(requestHash, ref, context) });
}
