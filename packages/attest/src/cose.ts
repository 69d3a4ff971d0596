/**
 * COSE_Sign1 (RFC 9052 §4.2) with ES384 only: the envelope of an AWS Nitro
 * attestation document. Decoding is strict (see cbor.ts); the signature is
 * verified over the Sig_structure built from the bytes as received.
 */
import { verify, type KeyObject } from 'node:crypto';
import { concat, decodeCbor, encodeBytes, encodeHead, encodeText, type CborLimits } from './cbor.js';
import { AttestError, check } from './errors.js';

/** COSE algorithm identifier of ES384 (ECDSA P-384 with SHA-384). @internal */
export const COSE_ALG_ES384 = -35;
/** CBOR tag of COSE_Sign1. @internal */
const COSE_SIGN1_TAG = 0xd2;

/** A decoded, not yet verified COSE_Sign1. @internal */
export interface CoseSign1 {
  readonly protectedBytes: Uint8Array;
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
}

/**
 * Decodes a COSE_Sign1 (optionally with its tag 18) whose protected header is
 * exactly `{1: -35}` and whose unprotected header is empty.
 * @internal
 */
export function decodeCoseSign1(input: Uint8Array, limits: CborLimits): CoseSign1 {
  const body = input.length > 0 && input[0] === COSE_SIGN1_TAG ? input.subarray(1) : input;
  const v = decodeCbor(body, limits);
  check(Array.isArray(v) && v.length === 4, 'COSE_Sign1: not an array of 4');
  const [prot, unprot, payload, signature] = v as [unknown, unknown, unknown, unknown];
  check(prot instanceof Uint8Array, 'COSE_Sign1: protected header is not a byte string');
  check(unprot instanceof Map, 'COSE_Sign1: unprotected header is not a map');
  check(unprot.size === 0, 'COSE_Sign1: unprotected header must be empty');
  check(payload instanceof Uint8Array, 'COSE_Sign1: payload is not a byte string (detached payloads are not accepted)');
  check(signature instanceof Uint8Array, 'COSE_Sign1: signature is not a byte string');

  const headers = decodeCbor(prot, limits);
  check(headers instanceof Map, 'COSE_Sign1: protected header is not a map');
  const alg = headers.get(1);
  check(alg !== undefined, 'COSE_Sign1: protected header has no alg');
  if (alg !== COSE_ALG_ES384) throw new AttestError('ATTEST_UNSUPPORTED', `COSE_Sign1: alg ${typeof alg === 'number' || typeof alg === 'string' ? alg : typeof alg} is not ES384 (-35)`);
  check(headers.size === 1, 'COSE_Sign1: protected header has fields other than alg');
  check(signature.length === 96, `COSE_Sign1: ES384 signature is ${signature.length} bytes, not 96`);
  return { protectedBytes: prot, payload, signature };
}

/**
 * Verifies the ES384 signature of `msg` with `key` (P-384), or throws
 * ATTEST_BAD_SIGNATURE.
 * @internal
 */
export function verifyCoseSign1(msg: CoseSign1, key: KeyObject): void {
  // Sig_structure = ["Signature1", body_protected, external_aad = h'', payload]
  const tbs = concat(encodeHead(4, 4), encodeText('Signature1'), encodeBytes(msg.protectedBytes), encodeBytes(new Uint8Array(0)), encodeBytes(msg.payload));
  let ok = false;
  try {
    ok = verify('sha384', tbs, { key, dsaEncoding: 'ieee-p1363' }, msg.signature);
  } catch (e) {
    throw new AttestError('ATTEST_BAD_SIGNATURE', 'COSE_Sign1: the signature could not be checked', { cause: e });
  }
  if (!ok) throw new AttestError('ATTEST_BAD_SIGNATURE', 'COSE_Sign1: the ES384 signature does not verify with the leaf certificate key');
}
