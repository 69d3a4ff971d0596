/**
 * The nonce of a signed data-plane request, as the audit pipe records it in
 * the store's shared replay cache (store/nonces.ts) with the request's event:
 * the keyholder's own cache refuses a replay to the same node, the shared
 * table a replay to any other node of the deployment.
 *
 * Only parsed here, never trusted: the keyholder (or the API, for ops it
 * verifies itself) checks the signature over these parameters. A row for a
 * request whose signature then fails only spends that nonce.
 */
import type { RequestNonce } from './audit-pipe.js';

/** How long a signed request is accepted after its `created` (keyholder/service.ts HttpSigRequestVerifier defaults: age 300 s, skew 30 s). */
export const NONCE_WINDOW_MS = 330_000;

/**
 * The (keyid, nonce, expiry) of the `kw` signature in a Signature-Input field,
 * or null when it has none (the request is refused by the verifier anyway).
 * A `created` in the future counts from now + skew, so a forged far-future
 * time cannot pin a row.
 */
export function requestNonceOf(header: string | string[] | undefined, now = Date.now()): RequestNonce | null {
  const text = Array.isArray(header) ? header.join(', ') : header;
  if (typeof text !== 'string') return null;
  const m = /(?:^|[,\s])kw=\([^)]*\)([^,]*)/.exec(text);
  if (!m) return null;
  const params = m[1]!;
  const keyId = /;keyid="([^"\\]{1,255})"/.exec(params)?.[1];
  const nonce = /;nonce="([^"\\]{1,255})"/.exec(params)?.[1];
  const created = /;created=([0-9]{1,15})(?:;|$)/.exec(params)?.[1];
  if (keyId === undefined || nonce === undefined || created === undefined) return null;
  const createdMs = Math.min(Number(created) * 1000, now + 30_000);
  return { keyId, nonce, expiresAt: new Date(Math.max(createdMs, 0) + NONCE_WINDOW_MS) };
}
