/**
 * Content-Digest (RFC 9530 §2): a dictionary of hash algorithm → byte
 * sequence, computed over the message content as sent (no canonicalization).
 */
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { base64 } from '@scure/base';
import { equalBytes } from './bytes.js';
import { HttpSigError } from './errors.js';
import { parseDictionary } from './structured.js';

/**
 * The Content-Digest field value for `body`: `sha-256=:<base64>:`.
 *
 * @example
 * contentDigest(new TextEncoder().encode('{"hello": "world"}\n'))
 * // 'sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:'
 */
export function contentDigest(body: Uint8Array): string {
  if (!(body instanceof Uint8Array)) throw new TypeError('body must be a Uint8Array');
  return `sha-256=:${base64.encode(sha256(body))}:`;
}

/** Algorithms whose members are checked when present; any other member is ignored (RFC 9530 §2). */
const CHECKED: ReadonlyMap<string, (b: Uint8Array) => Uint8Array> = new Map<string, (b: Uint8Array) => Uint8Array>([
  ['sha-256', (b) => sha256(b)],
  ['sha-512', (b) => sha512(b)],
]);

/**
 * Checks a Content-Digest field value against `body`. The field must parse
 * strictly, every member must be a byte sequence, a `sha-256` member must be
 * present, and every `sha-256` / `sha-512` member must match. Members for
 * other algorithms are ignored.
 *
 * @throws HttpSigError `HTTPSIG_MALFORMED` (unparsable field) or
 *   `HTTPSIG_DIGEST_MISMATCH` (no sha-256 member, or a digest differs).
 * @example
 * verifyContentDigest(req.headers['content-digest'], bodyBytes) // returns, or throws
 */
export function verifyContentDigest(header: string, body: Uint8Array): void {
  if (typeof header !== 'string') throw new HttpSigError('HTTPSIG_MALFORMED', 'Content-Digest is not a string');
  if (!(body instanceof Uint8Array)) throw new TypeError('body must be a Uint8Array');
  const dict = parseDictionary(header);
  let sawSha256 = false;
  for (const [alg, member] of dict) {
    if (member.kind !== 'item' || !(member.value instanceof Uint8Array) || member.params.length > 0) {
      throw new HttpSigError('HTTPSIG_MALFORMED', `Content-Digest member '${alg}' is not a plain byte sequence`);
    }
    const hash = CHECKED.get(alg);
    if (hash === undefined) continue;
    if (alg === 'sha-256') sawSha256 = true;
    if (!equalBytes(hash(body), member.value)) {
      throw new HttpSigError('HTTPSIG_DIGEST_MISMATCH', `Content-Digest ${alg} does not match the body`);
    }
  }
  if (!sawSha256) throw new HttpSigError('HTTPSIG_DIGEST_MISMATCH', 'Content-Digest has no sha-256 member');
}
