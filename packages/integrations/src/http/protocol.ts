/**
 * Sealed HTTP bodies between services, in the spirit of Oblivious HTTP
 * (RFC 9458): the request body is sealed to the receiving service's HPKE
 * recipient, and the response body is sealed to a fresh key that only the
 * client and that service know, so a TLS-terminating proxy in between sees
 * ciphertext both ways.
 *
 * ## Construction
 *
 * 1. The client makes a fresh X25519 identity `E` for this request only.
 * 2. Request plaintext: a sealed frame (frame.ts) `{ id, ts, meta: { ct, rk }, body }`
 *    where `rk` is E's recipient string. Sealed with `core.seal` to the
 *    service's recipient, context
 *    `integration=http-request/v1, audience, method, path` (+ app pairs).
 * 3. The service opens it, checks the replay window and id, and seals the
 *    response frame `{ id', ts', meta: { ct, re: id }, body }` to `rk`, context
 *    `integration=http-response/v1, audience, request=<id>`.
 * 4. The client opens it with E (then drops E), requires `re` = its id.
 *
 * Why it is sound: `rk` travels only inside the sealed request, so only the
 * service that could open the request (and the client) knows the public key
 * the response is sealed to; an on-path party can neither read the response
 * nor make one the client accepts (it cannot seal to a key it never saw), and
 * E is used once, so a response cannot be replayed into another exchange —
 * the request id in the response context makes that explicit. This plays the
 * role of OHTTP's response key derived from the HPKE exporter (RFC 9458
 * §4.4): both are secrets only the two ends hold, fresh per request. Ours
 * costs one X25519 key generation and one HPKE seal per response, and keeps
 * every byte in the one envelope format (inspectable, versioned).
 *
 * Unlike OHTTP, the method, path, status and the application's headers stay
 * visible (the proxy routes on them); only bodies are sealed. Neither side is
 * authenticated to the other by the envelope alone (anyone can seal to the
 * service's public key); pass `signer` / `verify` for that, or rely on the
 * application's own authentication inside the sealed body.
 *
 * Bodyless methods (GET, HEAD) carry the sealed request frame base64url in
 * the `keyward-request` header instead of a body.
 */
import { ENVELOPE_CONTENT_TYPE } from '../messaging/contract.js';
import type { Pairs } from '../sealing.js';
import { bindContext } from '../sealing.js';
import type { ContextInput } from '@keyward/core';

export { ENVELOPE_CONTENT_TYPE };
export const REQUEST_HEADER = 'keyward-request';
export const HTTP_REQUEST_PURPOSE = 'http-request/v1';
export const HTTP_RESPONSE_PURPOSE = 'http-response/v1';
export const BODYLESS_METHODS: readonly string[] = ['GET', 'HEAD'];

export function requestContext(audience: string, method: string, path: string, extra: ContextInput | undefined): Pairs {
  return bindContext([['integration', HTTP_REQUEST_PURPOSE], ['audience', audience], ['method', method.toUpperCase()], ['path', path]], extra);
}

export function responseContext(audience: string, requestId: string, extra: ContextInput | undefined): Pairs {
  return bindContext([['integration', HTTP_RESPONSE_PURPOSE], ['audience', audience], ['request', requestId]], extra);
}
