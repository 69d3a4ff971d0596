/**
 * `open` (open for recipient): the keyholder opens a Keyward envelope that
 * was sealed to the public key of one of its `x25519` or `xwing` versions
 * (`keyward seal -r <the version's kwx25519…/kwxwing… recipient>`), and
 * releases the envelope's data key only HPKE-sealed to the caller, exactly as
 * `unwrap` does for `kms` stanzas (caller.ts):
 *
 *   header  = the envelope's header (magic … header MAC), nothing more
 *   dk      = core's unlockHeader with the version's HpkeIdentity: finds the
 *             stanza, HPKE-opens it (info binds the type and the context),
 *             checks the key commitment and the header MAC
 *   sealed  = seal(dk, [caller recipient], { kw_request, kw_key, kw_version, ...envelope context })
 *
 * Nothing here re-implements the format: the header is parsed, the stanza
 * opened and the header authenticated by `@keyward/core` (`inspect`,
 * `EnvelopeDecoder`, `HpkeIdentity`). Only the header is accepted, so the
 * keyholder never decrypts payload. Failures keep core's codes
 * (KW_MALFORMED_HEADER, KW_NO_IDENTITY_MATCHED, KW_STANZA_UNWRAP_FAILED,
 * KW_COMMITMENT_MISMATCH, KW_HEADER_MAC_MISMATCH, …) and release nothing.
 *
 * @example
 * const header = envelope.subarray(0, inspect(envelope).headerLength);
 * const { sealed, context } = await openForRecipient({ version: v1, header, recipient: 'kwx25519…', requestHash });
 */
import { EnvelopeDecoder, KeywardError, inspect, type Identity } from '@keyward/core';
import { check } from '../errors.js';
import type { KeyVersion } from '../keys.js';
import { wipe } from '../primitives.js';
import type { Context, VersionRef } from '../schemas.js';
import { checkContext, checkRequestHash, parseCallerRecipient, sealToCaller } from './caller.js';

/** Largest header `open` accepts (a few dozen stanzas, X-Wing ones included). */
export const MAX_OPEN_HEADER_BYTES = 32 * 1024;
const DATA_KEY_LENGTH = 32;

export interface OpenParams {
  /** An `x25519` or `xwing` version. */
  readonly version: KeyVersion;
  /** The envelope header (binary), exactly. */
  readonly header: Uint8Array;
  readonly recipient: string;
  readonly requestHash: Uint8Array;
}

/** The envelope's context pairs (public, unauthenticated until opened) as a record; KW_INVALID_ARGUMENT past the caller-context rules. */
export function headerContext(header: Uint8Array): Context {
  check(header instanceof Uint8Array, 'the header must be bytes');
  check(header.length <= MAX_OPEN_HEADER_BYTES, `the header is longer than ${MAX_OPEN_HEADER_BYTES} bytes`, 'KW_LIMIT_EXCEEDED');
  const d = inspect(header);
  if (d.headerLength !== header.length) throw new KeywardError('KW_INVALID_ARGUMENT', 'send the envelope header only (inspect(envelope).headerLength bytes), not its payload');
  return checkContext(Object.fromEntries(d.context));
}

/** Opens the header with the version's identity and seals the data key to the caller. */
export async function openForRecipient(p: OpenParams): Promise<{ ref: VersionRef; sealed: Uint8Array; context: Context }> {
  const identity = p.version.hpkeIdentity();
  const context = headerContext(p.header);
  const recipient = await parseCallerRecipient(p.recipient);
  const requestHash = checkRequestHash(p.requestHash);
  const ref = p.version.ref;

  // Core wipes the key it is handed once the header is checked; keep a copy of the one that opened.
  const got: { key: Uint8Array | null } = { key: null };
  const capture: Identity = {
    type: identity.type,
    keyId: identity.keyId,
    unwrap: async (stanza, ctx) => {
      const dk = await identity.unwrap(stanza, ctx);
      if (dk) {
        wipe(got.key);
        got.key = dk.slice();
      }
      return dk;
    },
  };
  const decoder = new EnvelopeDecoder({ identities: [capture], anyContext: true });
  try {
    await decoder.push(p.header);
    // Only a header whose commitment and MAC checked yields info; then the captured key is the header's.
    const dk = got.key;
    if (!decoder.info || !dk || dk.length !== DATA_KEY_LENGTH) throw new KeywardError('KW_MALFORMED_HEADER', 'the header did not authenticate');
    return { ref, context, sealed: await sealToCaller(dk, recipient, requestHash, ref, context) };
  } finally {
    wipe(got.key);
    // Ends the decoder: with no payload it fails, and a failing decoder wipes its payload key.
    await decoder.finish().catch(() => undefined);
  }
}
