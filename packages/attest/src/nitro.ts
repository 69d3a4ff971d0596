/**
 * AWS Nitro Enclaves attestation documents: COSE_Sign1 (ES384) over a CBOR
 * map produced by the Nitro Secure Module, verified as AWS documents it
 * ("Verifying the root of trust"), with the clock and the root injected.
 */
import type { X509Certificate } from 'node:crypto';
import { abytes, adate, copy, equalBytes, isZero } from './bytes.js';
import type { CborLimits, CborMap } from './cbor.js';
import { decodeCbor } from './cbor.js';
import type { AttestationClaims } from './claims.js';
import { decodeCoseSign1, verifyCoseSign1 } from './cose.js';
import { AttestError, check } from './errors.js';
import { parseCertificate, parseRoots, verifyPath } from './x509.js';

/**
 * Hard limits for Nitro documents. Real documents are about 4.5 KiB; the
 * field limits are those of the AWS Nitro Enclaves specification.
 *
 * @example
 * NITRO_LIMITS.maxDocumentBytes // 16384
 */
export const NITRO_LIMITS = {
  maxDocumentBytes: 16384,
  maxDepth: 4,
  maxItems: 64,
  maxPcrs: 32,
  maxCertificateBytes: 1024,
  maxCabundle: 8,
  maxPublicKeyBytes: 1024,
  maxUserDataBytes: 512,
  maxNonceBytes: 512,
} as const;

const CBOR_LIMITS: CborLimits = { maxBytes: NITRO_LIMITS.maxDocumentBytes, maxDepth: NITRO_LIMITS.maxDepth, maxItems: NITRO_LIMITS.maxItems };
const KNOWN_FIELDS = new Set(['module_id', 'digest', 'timestamp', 'pcrs', 'certificate', 'cabundle', 'public_key', 'user_data', 'nonce']);

/** Options of {@link verifyNitroDocument}. */
export interface NitroVerifyOptions {
  /** The pinned AWS Nitro root(s); cabundle[0] must equal one of them byte for byte. */
  readonly roots: readonly (X509Certificate | string | Uint8Array)[];
  /** The instant at which every certificate must be valid. */
  readonly now: Date;
  /** When given, the document's `nonce` must equal it. */
  readonly expectedNonce?: Uint8Array;
}

/**
 * Verifies an AWS Nitro Enclaves attestation document and returns its claims.
 *
 * Checks, in order: size and strict CBOR/COSE_Sign1 structure; every payload
 * field's type and length; the certificate path leaf → cabundle[n-1] → … →
 * cabundle[0] = a pinned root, each valid at `now`; the ES384 signature with
 * the leaf key; the nonce. PCR0–2 all zero (or absent) marks debug mode.
 *
 * @example
 * const claims = verifyNitroDocument(doc, { roots: [AWS_NITRO_ROOT_G1_PEM], now: new Date(), expectedNonce: nonce });
 * claims.measurements.PCR0 // 48 bytes
 */
export function verifyNitroDocument(document: Uint8Array, options: NitroVerifyOptions): AttestationClaims {
  abytes(document, 'document');
  const now = adate(options.now);
  const roots = parseRoots(options.roots, 'roots');
  const expectedNonce = options.expectedNonce === undefined ? undefined : abytes(options.expectedNonce, 'expectedNonce');
  if (document.length > NITRO_LIMITS.maxDocumentBytes) throw new AttestError('ATTEST_LIMIT_EXCEEDED', `Nitro document is ${document.length} bytes, more than ${NITRO_LIMITS.maxDocumentBytes}`);

  const cose = decodeCoseSign1(document, CBOR_LIMITS);
  const map = decodeCbor(cose.payload, CBOR_LIMITS);
  check(map instanceof Map, 'Nitro payload is not a map');
  const p = parsePayload(map);

  const leaf = parseCertificate(p.certificate, 'Nitro certificate');
  const bundle = p.cabundle.map((c, i) => parseCertificate(c, `Nitro cabundle[${i}]`));
  const key = leaf.publicKey;
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'secp384r1') throw new AttestError('ATTEST_UNSUPPORTED', 'Nitro leaf certificate key is not ECDSA P-384');
  if (leaf.ca) throw new AttestError('ATTEST_CHAIN_INVALID', 'Nitro leaf certificate is a CA certificate');
  // cabundle is [ROOT, INTERM_1, …, INTERM_N]; the path runs leaf → INTERM_N → … → ROOT.
  verifyPath([leaf, ...bundle.reverse()], roots, now, 'in-chain', 'Nitro');
  verifyCoseSign1(cose, key);

  if (expectedNonce !== undefined && (p.nonce === undefined || !equalBytes(p.nonce, expectedNonce))) {
    throw new AttestError('ATTEST_NONCE_MISMATCH', 'Nitro document nonce is not the expected one');
  }

  const measurements: Record<string, Uint8Array> = {};
  for (const [i, v] of [...p.pcrs].sort((a, b) => a[0] - b[0])) measurements[`PCR${i}`] = copy(v);
  // Debug-mode enclaves report PCR0..2 as zeros; a document that lacks one of them cannot show it is not in debug mode.
  const debug = [0, 1, 2].some((i) => {
    const v = p.pcrs.get(i);
    return v === undefined || isZero(v);
  });
  return {
    platform: 'aws-nitro',
    measurements,
    versions: {},
    debug,
    nonce: p.nonce === undefined ? undefined : copy(p.nonce),
    publicKey: p.publicKey === undefined || p.publicKey.length === 0 ? undefined : copy(p.publicKey),
    issuedAt: new Date(p.timestamp),
    verifiedAt: new Date(now.getTime()),
    extra: {
      moduleId: p.moduleId,
      digest: p.digest,
      timestampMs: p.timestamp,
      userData: p.userData === undefined ? undefined : copy(p.userData),
      certificate: copy(p.certificate),
      cabundle: p.cabundle.map(copy),
    },
  };
}

interface NitroPayload {
  moduleId: string;
  digest: string;
  timestamp: number;
  pcrs: Map<number, Uint8Array>;
  certificate: Uint8Array;
  cabundle: Uint8Array[];
  publicKey: Uint8Array | undefined;
  userData: Uint8Array | undefined;
  nonce: Uint8Array | undefined;
}

function parsePayload(map: CborMap): NitroPayload {
  for (const k of map.keys()) check(typeof k === 'string' && KNOWN_FIELDS.has(k), `Nitro payload has an unknown field ${JSON.stringify(k)}`);
  const moduleId = map.get('module_id');
  check(typeof moduleId === 'string' && moduleId.length > 0, 'Nitro module_id must be a non-empty text string');
  const digest = map.get('digest');
  check(typeof digest === 'string', 'Nitro digest must be a text string');
  if (digest !== 'SHA384') throw new AttestError('ATTEST_UNSUPPORTED', `Nitro digest ${digest} is not SHA384`);
  const timestamp = map.get('timestamp');
  check(typeof timestamp === 'number' && Number.isInteger(timestamp) && timestamp > 0, 'Nitro timestamp must be a positive integer (ms since the epoch)');

  const rawPcrs = map.get('pcrs');
  check(rawPcrs instanceof Map, 'Nitro pcrs must be a map');
  check(rawPcrs.size >= 1 && rawPcrs.size <= NITRO_LIMITS.maxPcrs, `Nitro pcrs must have 1..${NITRO_LIMITS.maxPcrs} entries`);
  const pcrs = new Map<number, Uint8Array>();
  for (const [k, v] of rawPcrs) {
    check(typeof k === 'number' && Number.isInteger(k) && k >= 0 && k < NITRO_LIMITS.maxPcrs, `Nitro PCR index ${String(k)} out of range`);
    check(v instanceof Uint8Array && v.length === 48, `Nitro PCR${k} must be 48 bytes (SHA-384)`);
    pcrs.set(k, v);
  }

  const certificate = bstr(map.get('certificate'), 'certificate', 1, NITRO_LIMITS.maxCertificateBytes);
  const rawBundle = map.get('cabundle');
  check(Array.isArray(rawBundle) && rawBundle.length >= 1 && rawBundle.length <= NITRO_LIMITS.maxCabundle, `Nitro cabundle must be an array of 1..${NITRO_LIMITS.maxCabundle} certificates`);
  const cabundle = rawBundle.map((c, i) => bstr(c, `cabundle[${i}]`, 1, NITRO_LIMITS.maxCertificateBytes));
  return {
    moduleId,
    digest,
    timestamp,
    pcrs,
    certificate,
    cabundle,
    publicKey: optionalBstr(map.get('public_key'), 'public_key', NITRO_LIMITS.maxPublicKeyBytes),
    userData: optionalBstr(map.get('user_data'), 'user_data', NITRO_LIMITS.maxUserDataBytes),
    nonce: optionalBstr(map.get('nonce'), 'nonce', NITRO_LIMITS.maxNonceBytes),
  };
}

function bstr(v: unknown, name: string, min: number, max: number): Uint8Array {
  check(v instanceof Uint8Array, `Nitro ${name} must be a byte string`);
  check(v.length >= min && v.length <= max, `Nitro ${name} is ${v.length} bytes, not ${min}..${max}`);
  return v;
}

function optionalBstr(v: unknown, name: string, max: number): Uint8Array | undefined {
  if (v === undefined || v === null) return undefined;
  return bstr(v, name, 0, max);
}
