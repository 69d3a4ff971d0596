/**
 * TPM 2.0 quote verification: TPMS_ATTEST signed by an enrolled attestation
 * key, the PCR digest recomputed from supplied PCR values, the nonce.
 */
import { constants, createHash, verify } from 'node:crypto';
import { abytes, adate, copy, equalBytes, toHex } from '../bytes.js';
import { concat } from '../cbor.js';
import type { AttestationClaims } from '../claims.js';
import { AttestError, check } from '../errors.js';
import { EnrolledAk } from './enroll.js';
import { leftPad, parseQuoteAttest, parseSignature, TPM_ALG, TPM_HASHES, tpmHash, type TpmPublic, type TpmSignature } from './structures.js';

/** PCR values by bank name (`sha1`, `sha256`, `sha384`, `sha512`) and index. */
export type PcrValues = Readonly<Record<string, Readonly<Record<number, Uint8Array>>>>;

/** Inputs of {@link verifyTpmQuote}. */
export interface TpmQuoteInput {
  /** The attestation key, enrolled against the EK by credential activation. */
  readonly ak: EnrolledAk;
  /** The TPMS_ATTEST bytes the TPM signed (`tpm2_quote -m`). */
  readonly attest: Uint8Array;
  /** The TPMT_SIGNATURE (`tpm2_quote -s`, tss format). */
  readonly signature: Uint8Array;
  /** The PCR values the attester reports; every quoted PCR must be present. */
  readonly pcrs: PcrValues;
  /** The nonce the verifier issued; the quote's extraData must equal it. */
  readonly expectedNonce: Uint8Array;
  /** The verification instant (recorded as `verifiedAt`). */
  readonly now: Date;
}

/** Largest TPMS_ATTEST accepted. */
const MAX_ATTEST_BYTES = 1024;
/** Signature hashes accepted for quotes. */
const QUOTE_HASHES = new Set<number>([TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512]);

/**
 * Verifies a TPM 2.0 quote and returns its claims: measurements
 * `<bank>:PCR<n>` for every quoted PCR, `tpm.firmware` version, the nonce.
 *
 * Checks, in order: the AK was enrolled; TPMS_ATTEST structure (magic
 * TPM_GENERATED_VALUE, type ATTEST_QUOTE, lengths); the signature
 * (RSASSA, RSAPSS or ECDSA with SHA-256/384/512) with the AK; the digest of
 * the supplied values of the quoted PCRs equals pcrDigest; extraData equals
 * the nonce.
 *
 * @example
 * const claims = verifyTpmQuote({ ak, attest, signature, pcrs: { sha256: { 0: pcr0, 7: pcr7 } }, expectedNonce: nonce, now: new Date() });
 * claims.measurements['sha256:PCR7']
 */
export function verifyTpmQuote(input: TpmQuoteInput): AttestationClaims {
  const now = adate(input.now);
  if (!EnrolledAk.isEnrolled(input.ak)) throw new AttestError('ATTEST_AK_NOT_ENROLLED', 'the AK was not enrolled by credential activation (use startAkEnrollment / finishAkEnrollment)');
  const attest = abytes(input.attest, 'attest');
  const sigBytes = abytes(input.signature, 'signature');
  const expectedNonce = abytes(input.expectedNonce, 'expectedNonce');
  check(typeof input.pcrs === 'object' && input.pcrs !== null, 'pcrs must be an object of banks', 'ATTEST_INVALID_ARGUMENT');
  if (attest.length > MAX_ATTEST_BYTES) throw new AttestError('ATTEST_LIMIT_EXCEEDED', `TPMS_ATTEST is ${attest.length} bytes, more than ${MAX_ATTEST_BYTES}`);

  const info = parseQuoteAttest(attest);
  const sig = parseSignature(sigBytes);
  verifySignature(input.ak.publicKey, sig, attest);

  // pcrDigest = H_sig(PCR values of each selection, banks in order, indices ascending)
  const sigHash = tpmHash(sig.hashAlg, 'quote signature');
  const measurements: Record<string, Uint8Array> = {};
  const parts: Uint8Array[] = [];
  for (const sel of info.pcrSelections) {
    const bank = TPM_HASHES.get(sel.hashAlg);
    if (bank === undefined) throw new AttestError('ATTEST_UNSUPPORTED', `quote selects PCR bank 0x${sel.hashAlg.toString(16)}`);
    const values = input.pcrs[bank.name];
    for (const i of sel.pcrs) {
      const v = values?.[i];
      if (!(v instanceof Uint8Array) || v.length !== bank.size) throw new AttestError('ATTEST_PCR_MISMATCH', `no ${bank.size}-byte value supplied for quoted PCR ${bank.name}:${i}`);
      parts.push(v);
      measurements[`${bank.name}:PCR${i}`] = copy(v);
    }
  }
  const digest = createHash(sigHash.name).update(concat(...parts)).digest();
  if (!equalBytes(digest, info.pcrDigest)) throw new AttestError('ATTEST_PCR_MISMATCH', 'the supplied PCR values do not hash to the quoted pcrDigest');
  if (!equalBytes(info.extraData, expectedNonce)) throw new AttestError('ATTEST_NONCE_MISMATCH', 'the quote extraData is not the expected nonce');

  return {
    platform: 'tpm2',
    measurements,
    versions: { 'tpm.firmware': info.firmwareVersion },
    debug: false,
    nonce: copy(info.extraData),
    publicKey: undefined,
    issuedAt: undefined,
    verifiedAt: new Date(now.getTime()),
    extra: {
      clock: info.clock,
      resetCount: info.resetCount,
      restartCount: info.restartCount,
      safe: info.safe,
      qualifiedSigner: toHex(info.qualifiedSigner),
      akName: toHex(input.ak.akName),
      ekCertificateFingerprint256: input.ak.ekCertificate.fingerprint256,
    },
  };
}

function verifySignature(ak: TpmPublic, sig: TpmSignature, data: Uint8Array): void {
  if (!QUOTE_HASHES.has(sig.hashAlg)) throw new AttestError('ATTEST_UNSUPPORTED', `quote signature hash 0x${sig.hashAlg.toString(16)} is not SHA-256/384/512`);
  const h = tpmHash(sig.hashAlg, 'quote signature');
  // A restricted AK fixes its scheme; the signature must use it.
  if (ak.scheme.alg !== TPM_ALG.NULL && (ak.scheme.alg !== sig.sigAlg || ak.scheme.hashAlg !== sig.hashAlg)) {
    throw new AttestError('ATTEST_BAD_SIGNATURE', 'the quote signature scheme is not the AK scheme');
  }
  let ok: boolean;
  try {
    if (sig.sigAlg === TPM_ALG.ECDSA) {
      if (ak.ecc === undefined || sig.ecc === undefined) throw new AttestError('ATTEST_BAD_SIGNATURE', 'an ECDSA signature needs an ECC AK');
      const size = ak.ecc.size;
      check(sig.ecc.r.length <= size && sig.ecc.s.length <= size, 'ECDSA signature component longer than the curve');
      ok = verify(h.name, data, { key: ak.key, dsaEncoding: 'ieee-p1363' }, concat(leftPad(sig.ecc.r, size), leftPad(sig.ecc.s, size)));
    } else {
      if (ak.rsa === undefined) throw new AttestError('ATTEST_BAD_SIGNATURE', 'an RSA signature needs an RSA AK');
      const padding = sig.sigAlg === TPM_ALG.RSAPSS ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING;
      ok = verify(h.name, data, { key: ak.key, padding, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, sig.signature);
    }
  } catch (e) {
    if (e instanceof AttestError) throw e;
    throw new AttestError('ATTEST_BAD_SIGNATURE', 'the quote signature could not be checked', { cause: e });
  }
  if (!ok) throw new AttestError('ATTEST_BAD_SIGNATURE', 'the quote signature does not verify with the AK');
}
