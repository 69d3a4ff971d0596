/**
 * The request hash that a step-up factor or a quorum approval signs: SHA-256
 * over the RFC 8785 canonical JSON of exactly what the operation will do —
 * method, path, namespace, key, version, body — and when the permission ends.
 *
 *   request_hash = SHA-256(JCS({ "v": "keyward/v1 request", "method", "path",
 *                                "namespace", "key", "version", "body", "expiresAt" }))
 *
 * `method` is upper-case; `key` and `version` are null when the operation has
 * none; `body` is the parsed JSON body (null when there is none); `expiresAt`
 * is whole seconds since the Unix epoch. For WebAuthn the hash itself is the
 * challenge; a TOTP code is accepted only inside a step-up record that names
 * it. A factor verified for one hash proves nothing about any other request.
 *
 * @example
 * const hash = requestHash({ method: 'POST', path: '/v1/keys/billing/orders/versions/3/destroy',
 *   namespace: 'billing', key: 'orders', version: 3, body: null, expiresAt: 1_800_000_000 });
 */
import { createHash } from 'node:crypto';
import { canonicalJsonBytes, type JsonValue } from '../audit/canonical-json.js';
import { MfaError } from './errors.js';

/** The domain-separation label, inside the hashed object. */
export const REQUEST_HASH_LABEL = 'keyward/v1 request';

/** What a sensitive request will do, as the step-up and the approvers see it. */
export interface SensitiveRequest {
  readonly method: string;
  readonly path: string;
  readonly namespace: string;
  readonly key: string | null;
  readonly version: number | null;
  readonly body: JsonValue;
  /** Seconds since the Unix epoch after which the request cannot execute. */
  readonly expiresAt: number;
}

/** The exact object whose canonical JSON is hashed (what approvers are shown). */
export function canonicalRequest(r: SensitiveRequest): JsonValue {
  if (!/^[A-Za-z]+$/.test(r.method)) throw new MfaError('KW_MFA_INVALID', 'request method must be letters only');
  if (!r.path.startsWith('/')) throw new MfaError('KW_MFA_INVALID', 'request path must be absolute');
  if (!Number.isSafeInteger(r.expiresAt) || r.expiresAt <= 0) throw new MfaError('KW_MFA_INVALID', 'expiresAt must be a positive whole number of seconds');
  if (r.version !== null && (!Number.isSafeInteger(r.version) || r.version < 1)) throw new MfaError('KW_MFA_INVALID', 'version must be a positive integer or null');
  return {
    v: REQUEST_HASH_LABEL,
    method: r.method.toUpperCase(),
    path: r.path,
    namespace: r.namespace,
    key: r.key,
    version: r.version,
    body: r.body,
    expiresAt: r.expiresAt,
  };
}

/** SHA-256 of the canonical request (32 bytes). */
export function requestHash(r: SensitiveRequest): Uint8Array {
  return new Uint8Array(createHash('sha256').update(canonicalJsonBytes(canonicalRequest(r))).digest());
}

/** The request hash as the base64url string used as a WebAuthn challenge and as the request id. */
export function requestId(r: SensitiveRequest): string {
  return Buffer.from(requestHash(r)).toString('base64url');
}
