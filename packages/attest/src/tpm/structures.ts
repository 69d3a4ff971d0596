/**
 * TPM 2.0 wire structures (TPM 2.0 Library Part 2), big-endian, parsed from
 * untrusted bytes with every length checked: TPMS_ATTEST (quote),
 * TPMT_SIGNATURE, TPM2B_PUBLIC / TPMT_PUBLIC, and the Name of an object.
 * @internal
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { Reader } from '../bytes.js';
import { AttestError, check } from '../errors.js';

export const TPM_GENERATED_VALUE = 0xff544347;
export const TPM_ST_ATTEST_QUOTE = 0x8018;

export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  AES: 0x0006,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECDAA: 0x001a,
  ECSCHNORR: 0x001c,
  ECC: 0x0023,
  CFB: 0x0043,
} as const;

/** TPM hash algorithm id → node:crypto name and digest size. */
export const TPM_HASHES: ReadonlyMap<number, { name: 'sha1' | 'sha256' | 'sha384' | 'sha512'; size: number }> = new Map([
  [TPM_ALG.SHA1, { name: 'sha1', size: 20 }],
  [TPM_ALG.SHA256, { name: 'sha256', size: 32 }],
  [TPM_ALG.SHA384, { name: 'sha384', size: 48 }],
  [TPM_ALG.SHA512, { name: 'sha512', size: 64 }],
] as const);

/** TPMA_OBJECT bits. */
export const TPMA_OBJECT = {
  fixedTPM: 0x00000002,
  fixedParent: 0x00000010,
  sensitiveDataOrigin: 0x00000020,
  restricted: 0x00010000,
  decrypt: 0x00020000,
  sign: 0x00040000,
} as const;

const ECC_CURVES: ReadonlyMap<number, { jwk: 'P-256' | 'P-384' | 'P-521'; size: number }> = new Map([
  [0x0003, { jwk: 'P-256', size: 32 }],
  [0x0004, { jwk: 'P-384', size: 48 }],
  [0x0005, { jwk: 'P-521', size: 66 }],
] as const);

/** Returns the hash description for `alg`, or throws ATTEST_UNSUPPORTED. */
export function tpmHash(alg: number, what: string): { name: 'sha1' | 'sha256' | 'sha384' | 'sha512'; size: number } {
  const h = TPM_HASHES.get(alg);
  if (h === undefined) throw new AttestError('ATTEST_UNSUPPORTED', `${what}: hash algorithm 0x${alg.toString(16)} is not supported`);
  return h;
}

// --- TPMS_ATTEST -----------------------------------------------------------------

/** One TPMS_PCR_SELECTION: a bank and the PCR indices selected, ascending. */
export interface PcrSelection {
  readonly hashAlg: number;
  readonly pcrs: readonly number[];
}

/** A parsed TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE. */
export interface TpmQuoteInfo {
  readonly qualifiedSigner: Uint8Array;
  readonly extraData: Uint8Array;
  readonly clock: bigint;
  readonly resetCount: number;
  readonly restartCount: number;
  readonly safe: boolean;
  readonly firmwareVersion: bigint;
  readonly pcrSelections: readonly PcrSelection[];
  readonly pcrDigest: Uint8Array;
}

/** Parses a TPMS_ATTEST that must be a quote; ATTEST_MALFORMED on any deviation. */
export function parseQuoteAttest(bytes: Uint8Array): TpmQuoteInfo {
  const r = new Reader(bytes, 'TPMS_ATTEST');
  check(r.u32be('magic') === TPM_GENERATED_VALUE, 'TPMS_ATTEST: magic is not TPM_GENERATED_VALUE');
  const type = r.u16be('type');
  check(type === TPM_ST_ATTEST_QUOTE, `TPMS_ATTEST: type 0x${type.toString(16)} is not TPM_ST_ATTEST_QUOTE`);
  const qualifiedSigner = r.tpm2b('qualifiedSigner', 2 + 64);
  const extraData = r.tpm2b('extraData', 64);
  const clock = r.u64be('clockInfo.clock');
  const resetCount = r.u32be('clockInfo.resetCount');
  const restartCount = r.u32be('clockInfo.restartCount');
  const safe = r.u8('clockInfo.safe');
  check(safe <= 1, 'TPMS_ATTEST: clockInfo.safe is not a boolean');
  const firmwareVersion = r.u64be('firmwareVersion');
  const pcrSelections = parsePcrSelectionList(r);
  const pcrDigest = r.tpm2b('pcrDigest', 64);
  r.end();
  return { qualifiedSigner, extraData, clock, resetCount, restartCount, safe: safe === 1, firmwareVersion, pcrSelections, pcrDigest };
}

function parsePcrSelectionList(r: Reader): PcrSelection[] {
  const count = r.u32be('pcrSelect.count');
  check(count >= 1 && count <= 16, `TPMS_ATTEST: ${count} PCR selections (1..16 accepted)`);
  const out: PcrSelection[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < count; i++) {
    const hashAlg = r.u16be('pcrSelect.hash');
    check(!seen.has(hashAlg), 'TPMS_ATTEST: the same PCR bank is selected twice');
    seen.add(hashAlg);
    const size = r.u8('pcrSelect.sizeofSelect');
    check(size >= 3 && size <= 4, `TPMS_ATTEST: sizeofSelect ${size} (3 or 4 accepted)`);
    const mask = r.bytes(size, 'pcrSelect.pcrSelect');
    const pcrs: number[] = [];
    for (let byte = 0; byte < size; byte++) for (let bit = 0; bit < 8; bit++) if ((mask[byte]! >> bit) & 1) pcrs.push(byte * 8 + bit);
    out.push({ hashAlg, pcrs });
  }
  return out;
}

// --- TPMT_SIGNATURE --------------------------------------------------------------

/** A parsed TPMT_SIGNATURE. `signature` is PKCS#1/PSS bytes, or r‖s for ECDSA. */
export interface TpmSignature {
  readonly sigAlg: number;
  readonly hashAlg: number;
  readonly signature: Uint8Array;
  /** ECDSA only: r and s as received. */
  readonly ecc?: { r: Uint8Array; s: Uint8Array };
}

/** Parses a TPMT_SIGNATURE of scheme RSASSA, RSAPSS or ECDSA. */
export function parseSignature(bytes: Uint8Array): TpmSignature {
  const r = new Reader(bytes, 'TPMT_SIGNATURE');
  const sigAlg = r.u16be('sigAlg');
  if (sigAlg === TPM_ALG.RSASSA || sigAlg === TPM_ALG.RSAPSS) {
    const hashAlg = r.u16be('hash');
    const signature = r.tpm2b('sig', 512);
    r.end();
    return { sigAlg, hashAlg, signature };
  }
  if (sigAlg === TPM_ALG.ECDSA) {
    const hashAlg = r.u16be('hash');
    const sr = r.tpm2b('signatureR', 66);
    const ss = r.tpm2b('signatureS', 66);
    r.end();
    return { sigAlg, hashAlg, signature: new Uint8Array(0), ecc: { r: sr, s: ss } };
  }
  throw new AttestError('ATTEST_UNSUPPORTED', `TPMT_SIGNATURE: scheme 0x${sigAlg.toString(16)} is not RSASSA, RSAPSS or ECDSA`);
}

// --- TPM2B_PUBLIC ----------------------------------------------------------------

/** A parsed TPMT_PUBLIC with its key as a node:crypto KeyObject. */
export interface TpmPublic {
  /** The TPMT_PUBLIC bytes (without the TPM2B size), as hashed into the Name. */
  readonly publicArea: Uint8Array;
  readonly type: number;
  readonly nameAlg: number;
  readonly attributes: number;
  readonly authPolicy: Uint8Array;
  /** TPMT_SYM_DEF_OBJECT: algorithm, key bits and mode (NULL → algorithm 0x10, 0, 0). */
  readonly symmetric: { alg: number; keyBits: number; mode: number };
  /** Signing or encryption scheme and its hash (NULL → 0x10, 0). */
  readonly scheme: { alg: number; hashAlg: number };
  readonly rsa?: { keyBits: number; exponent: number; modulus: Uint8Array };
  readonly ecc?: { curve: number; size: number; x: Uint8Array; y: Uint8Array };
  readonly key: KeyObject;
}

/** Parses a TPM2B_PUBLIC (size-prefixed) and builds its public key. */
export function parsePublic(bytes: Uint8Array, what: string): TpmPublic {
  const outer = new Reader(bytes, what);
  const publicArea = outer.tpm2b('publicArea');
  outer.end();
  const r = new Reader(publicArea, what);
  const type = r.u16be('type');
  const nameAlg = r.u16be('nameAlg');
  tpmHash(nameAlg, what);
  const attributes = r.u32be('objectAttributes');
  const authPolicy = r.tpm2b('authPolicy', 64);
  const symAlg = r.u16be('symmetric.algorithm');
  const symmetric = symAlg === TPM_ALG.NULL ? { alg: symAlg, keyBits: 0, mode: 0 } : { alg: symAlg, keyBits: r.u16be('symmetric.keyBits'), mode: r.u16be('symmetric.mode') };
  const schemeAlg = r.u16be('scheme');
  let scheme = { alg: schemeAlg, hashAlg: 0 };
  if (schemeAlg !== TPM_ALG.NULL) {
    scheme = { alg: schemeAlg, hashAlg: r.u16be('scheme.hashAlg') };
    if (schemeAlg === TPM_ALG.ECDAA) r.u16be('scheme.count');
  }
  if (type === TPM_ALG.RSA) {
    const keyBits = r.u16be('rsa.keyBits');
    const exponent = r.u32be('rsa.exponent');
    const modulus = r.tpm2b('unique.rsa', 512);
    r.end();
    check(keyBits >= 2048 && keyBits <= 4096 && modulus.length * 8 === keyBits, `${what}: RSA modulus of ${modulus.length * 8} bits for keyBits ${keyBits} (2048..4096 accepted)`);
    const e = exponent === 0 ? 65537 : exponent;
    const key = importKey({ kty: 'RSA', n: b64u(modulus), e: b64u(beBytes(e)) }, what);
    return { publicArea, type, nameAlg, attributes, authPolicy, symmetric, scheme, rsa: { keyBits, exponent: e, modulus }, key };
  }
  if (type === TPM_ALG.ECC) {
    const curve = r.u16be('ecc.curveID');
    const kdf = r.u16be('ecc.kdf.scheme');
    if (kdf !== TPM_ALG.NULL) r.u16be('ecc.kdf.hashAlg');
    const x = r.tpm2b('unique.ecc.x', 66);
    const y = r.tpm2b('unique.ecc.y', 66);
    r.end();
    const c = ECC_CURVES.get(curve);
    if (c === undefined) throw new AttestError('ATTEST_UNSUPPORTED', `${what}: ECC curve 0x${curve.toString(16)} is not supported`);
    check(x.length <= c.size && y.length <= c.size, `${what}: ECC point coordinates too long for the curve`);
    const key = importKey({ kty: 'EC', crv: c.jwk, x: b64u(leftPad(x, c.size)), y: b64u(leftPad(y, c.size)) }, what);
    return { publicArea, type, nameAlg, attributes, authPolicy, symmetric, scheme, ecc: { curve, size: c.size, x, y }, key };
  }
  throw new AttestError('ATTEST_UNSUPPORTED', `${what}: key type 0x${type.toString(16)} is not RSA or ECC`);
}

/** The Name of an object: nameAlg ‖ H_nameAlg(TPMT_PUBLIC). */
export function tpmName(pub: TpmPublic): Uint8Array {
  const h = tpmHash(pub.nameAlg, 'name');
  const digest = createHash(h.name).update(pub.publicArea).digest();
  const out = new Uint8Array(2 + digest.length);
  out[0] = pub.nameAlg >> 8;
  out[1] = pub.nameAlg & 0xff;
  out.set(digest, 2);
  return out;
}

function importKey(jwk: Record<string, string>, what: string): KeyObject {
  try {
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch (e) {
    throw new AttestError('ATTEST_MALFORMED', `${what}: the public key is not valid`, { cause: e });
  }
}

/** Left-pads `b` with zeros to `n` bytes. */
export function leftPad(b: Uint8Array, n: number): Uint8Array {
  if (b.length >= n) return b;
  const out = new Uint8Array(n);
  out.set(b, n - b.length);
  return out;
}

function beBytes(n: number): Uint8Array {
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return Uint8Array.from(out);
}

function b64u(b: Uint8Array): string {
  return Buffer.from(b).toString('base64url');
}
