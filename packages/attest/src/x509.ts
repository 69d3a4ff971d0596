/**
 * Certificate-path checks shared by every verifier, on node:crypto's
 * X509Certificate (OpenSSL underneath).
 *
 * A path is accepted when, from the leaf up, each certificate names the next
 * as issuer (`checkIssued`: issuer name, and key identifiers where both carry
 * them) and its signature verifies with the next one's key, every issuer is a
 * CA, the top is one of the configured roots (compared byte for byte), and
 * every certificate of the path, root included, is valid at the injected
 * instant. We deliberately do not apply the strict RFC 5280 profile (OpenSSL's
 * `-x509_strict`): real AWS Nitro chains lack key identifiers and would fail
 * it (see docs/tee.md).
 */
import { X509Certificate } from 'node:crypto';
import { equalBytes } from './bytes.js';
import { AttestError } from './errors.js';

/** The longest path accepted, root included. @internal */
export const MAX_PATH_LENGTH = 8;

/**
 * Parses a DER or PEM certificate; ATTEST_MALFORMED (or `code`) when it is not one.
 * @internal
 */
export function parseCertificate(input: Uint8Array | string, what: string, code: 'ATTEST_MALFORMED' | 'ATTEST_INVALID_ARGUMENT' = 'ATTEST_MALFORMED'): X509Certificate {
  try {
    return new X509Certificate(typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength));
  } catch (e) {
    throw new AttestError(code, `${what} is not an X.509 certificate`, { cause: e });
  }
}

/**
 * Parses trust roots given as X509Certificate, PEM or DER; at least one.
 * @internal
 */
export function parseRoots(roots: unknown, what: string): X509Certificate[] {
  if (!Array.isArray(roots) || roots.length === 0) throw new AttestError('ATTEST_INVALID_ARGUMENT', `${what}: at least one trust root is required`);
  return roots.map((r: unknown, i) => {
    if (r instanceof X509Certificate) return r;
    if (typeof r === 'string' || r instanceof Uint8Array) return parseCertificate(r, `${what}[${i}]`, 'ATTEST_INVALID_ARGUMENT');
    throw new AttestError('ATTEST_INVALID_ARGUMENT', `${what}[${i}] must be a certificate (X509Certificate, PEM or DER)`);
  });
}

/** notBefore / notAfter as Dates. @internal */
export function validity(cert: X509Certificate): { notBefore: Date; notAfter: Date } {
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) throw new AttestError('ATTEST_MALFORMED', `certificate ${cert.subject} has an unreadable validity period`);
  return { notBefore, notAfter };
}

/** How the top of the path must relate to the roots. @internal */
export type RootMode =
  /** the last certificate of `chain` must itself be a configured root (Nitro: cabundle[0]) */
  | 'in-chain'
  /** the last certificate is a root, or is issued by one (which is then appended) */
  | 'in-chain-or-issued';

/**
 * Verifies `chain` (leaf first, each followed by its issuer) to one of `roots`
 * at `now`. Returns the full path, root last.
 * @internal
 */
export function verifyPath(chain: readonly X509Certificate[], roots: readonly X509Certificate[], now: Date, mode: RootMode, what: string): X509Certificate[] {
  if (chain.length === 0) throw new AttestError('ATTEST_CHAIN_INVALID', `${what}: empty certificate chain`);
  const isRoot = (c: X509Certificate): boolean => roots.some((r) => equalBytes(r.raw, c.raw));
  const path = [...chain];
  const top = path[path.length - 1]!;
  if (!isRoot(top)) {
    const issuer = mode === 'in-chain-or-issued' ? roots.find((r) => issues(r, top)) : undefined;
    if (issuer === undefined) throw new AttestError('ATTEST_UNTRUSTED_ROOT', `${what}: the chain does not end at a configured root (top: ${oneLine(top.subject)})`);
    path.push(issuer);
  }
  if (path.length > MAX_PATH_LENGTH) throw new AttestError('ATTEST_LIMIT_EXCEEDED', `${what}: path of ${path.length} certificates, more than ${MAX_PATH_LENGTH}`);
  for (let i = 0; i + 1 < path.length; i++) {
    const child = path[i]!;
    const parent = path[i + 1]!;
    if (!parent.ca) throw new AttestError('ATTEST_CHAIN_INVALID', `${what}: issuer ${oneLine(parent.subject)} is not a CA certificate`);
    if (!issues(parent, child)) throw new AttestError('ATTEST_CHAIN_INVALID', `${what}: ${oneLine(child.subject)} is not issued by ${oneLine(parent.subject)}`);
  }
  for (const c of path) {
    const { notBefore, notAfter } = validity(c);
    if (now.getTime() < notBefore.getTime()) throw new AttestError('ATTEST_CERT_NOT_YET_VALID', `${what}: ${oneLine(c.subject)} is valid only from ${notBefore.toISOString()}`);
    if (now.getTime() > notAfter.getTime()) throw new AttestError('ATTEST_CERT_EXPIRED', `${what}: ${oneLine(c.subject)} expired at ${notAfter.toISOString()}`);
  }
  return path;
}

/** True when `parent` names and signs `child`. */
function issues(parent: X509Certificate, child: X509Certificate): boolean {
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch {
    return false;
  }
}

function oneLine(dn: string): string {
  return dn.split('\n').join(', ');
}
