/**
 * Binding a TPM attestation key (AK) to the TPM's endorsement key (EK):
 *
 * 1. {@link startAkEnrollment} checks the EK certificate chain to a configured
 *    manufacturer root at the injected instant, that the certificate's key is
 *    the EK public area given, and that the AK is a restricted, fixed,
 *    TPM-generated signing key; then runs MakeCredential, sealing a random
 *    secret to the EK for the AK's Name.
 * 2. The attester runs TPM2_ActivateCredential (e.g. `tpm2_activatecredential`)
 *    and returns the secret.
 * 3. {@link finishAkEnrollment} compares it in constant time and returns an
 *    {@link EnrolledAk}, the only form of AK that {@link verifyTpmQuote} accepts.
 */
import { createHash, randomBytes, type X509Certificate } from 'node:crypto';
import { abytes, adate, copy, equalBytes, toHex } from '../bytes.js';
import { AttestError, check } from '../errors.js';
import { parseCertificate, parseRoots, verifyPath } from '../x509.js';
import { makeCredential, toTpm2ToolsCredentialFile } from './credential.js';
import { parsePublic, TPMA_OBJECT, tpmName, type TpmPublic } from './structures.js';

/** Inputs of {@link startAkEnrollment}. */
export interface AkEnrollmentRequest {
  /** The EK certificate (DER or PEM), as read from the TPM's NV index. */
  readonly ekCertificate: Uint8Array | string;
  /** Intermediate CA certificates, the EK certificate's issuer first. */
  readonly ekIntermediates?: readonly (Uint8Array | string)[];
  /** The TPM manufacturer roots the EK certificate must chain to. */
  readonly roots: readonly (X509Certificate | string | Uint8Array)[];
  /** The EK's TPM2B_PUBLIC (its key must be the certificate's). */
  readonly ekPublic: Uint8Array;
  /** The AK's TPM2B_PUBLIC. */
  readonly akPublic: Uint8Array;
  /** The instant at which the EK chain must be valid. */
  readonly now: Date;
}

/** What the attester needs to activate the credential. */
export interface AkChallenge {
  /** TPM2B_ID_OBJECT for TPM2_ActivateCredential. */
  readonly credentialBlob: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET for TPM2_ActivateCredential. */
  readonly encryptedSecret: Uint8Array;
  /** The same two, in the file format of `tpm2_activatecredential -i`. */
  readonly tpm2ToolsFile: Uint8Array;
}

/** The verifier's state between challenge and answer. Keep it server-side. */
export interface PendingAkEnrollment {
  readonly akPublic: Uint8Array;
  readonly akName: Uint8Array;
  readonly ekCertificate: X509Certificate;
  /** SHA-256 of the secret sealed in the challenge (the secret itself is not kept). */
  readonly secretDigest: Uint8Array;
}

const enrolled = new WeakSet<EnrolledAk>();

/**
 * An attestation key proven to live in the TPM whose EK certificate chains to
 * a configured root. Only {@link finishAkEnrollment} creates one.
 *
 * @example
 * const ak = finishAkEnrollment(pending, secretFromAttester);
 * verifyTpmQuote({ ak, attest, signature, pcrs, expectedNonce, now });
 */
export class EnrolledAk {
  readonly akName: Uint8Array;
  /** The AK public area (parsed). */
  readonly publicKey: TpmPublic;
  readonly ekCertificate: X509Certificate;

  private constructor(akPublic: Uint8Array, akName: Uint8Array, ekCertificate: X509Certificate) {
    this.publicKey = parsePublic(akPublic, 'AK TPM2B_PUBLIC');
    this.akName = akName;
    this.ekCertificate = ekCertificate;
  }

  /** @internal */
  static create(p: PendingAkEnrollment): EnrolledAk {
    const ak = new EnrolledAk(copy(p.akPublic), copy(p.akName), p.ekCertificate);
    enrolled.add(ak);
    return ak;
  }

  /** True for an object created by {@link finishAkEnrollment}. */
  static isEnrolled(v: unknown): v is EnrolledAk {
    return v instanceof EnrolledAk && enrolled.has(v);
  }
}

/**
 * Checks the EK certificate and the AK, and seals a fresh secret to the EK for
 * the AK (MakeCredential). Returns the challenge for the attester and the
 * pending state to keep.
 *
 * @example
 * const { challenge, pending } = startAkEnrollment({ ekCertificate, roots: [manufacturerRoot], ekPublic, akPublic, now: new Date() });
 * // send challenge.credentialBlob / challenge.encryptedSecret; receive the secret back
 */
export function startAkEnrollment(req: AkEnrollmentRequest): { challenge: AkChallenge; pending: PendingAkEnrollment } {
  const now = adate(req.now);
  const roots = parseRoots(req.roots, 'roots');
  const ekCertInput = req.ekCertificate;
  check(typeof ekCertInput === 'string' || ekCertInput instanceof Uint8Array, 'ekCertificate must be PEM or DER', 'ATTEST_INVALID_ARGUMENT');
  const ekCert = parseCertificate(ekCertInput, 'EK certificate');
  const intermediates = (req.ekIntermediates ?? []).map((c, i) => parseCertificate(c, `EK intermediate ${i}`));
  verifyPath([ekCert, ...intermediates], roots, now, 'in-chain-or-issued', 'EK certificate');

  const ek = parsePublic(abytes(req.ekPublic, 'ekPublic'), 'EK TPM2B_PUBLIC');
  if (!ek.key.equals(ekCert.publicKey)) throw new AttestError('ATTEST_KEY_BINDING', 'the EK public area is not the key of the EK certificate');

  const akPublic = abytes(req.akPublic, 'akPublic');
  const ak = parsePublic(akPublic, 'AK TPM2B_PUBLIC');
  checkAkAttributes(ak);
  const akName = tpmName(ak);

  const secret = randomBytes(32);
  const made = makeCredential(ek, akName, secret);
  const pending: PendingAkEnrollment = {
    akPublic: copy(akPublic),
    akName,
    ekCertificate: ekCert,
    secretDigest: createHash('sha256').update(secret).digest(),
  };
  secret.fill(0);
  return { challenge: { ...made, tpm2ToolsFile: toTpm2ToolsCredentialFile(made) }, pending };
}

/**
 * Compares the attester's activated secret with the one sealed in the
 * challenge; returns the enrolled AK, or throws ATTEST_ACTIVATION_FAILED.
 *
 * @example
 * const ak = finishAkEnrollment(pending, activated);
 */
export function finishAkEnrollment(pending: PendingAkEnrollment, activatedSecret: Uint8Array): EnrolledAk {
  abytes(activatedSecret, 'activatedSecret');
  const digest = createHash('sha256').update(activatedSecret).digest();
  if (!equalBytes(digest, pending.secretDigest)) throw new AttestError('ATTEST_ACTIVATION_FAILED', `credential activation failed for AK ${toHex(pending.akName)}`);
  return EnrolledAk.create(pending);
}

/** An AK must be restricted, signing-only, fixedTPM/fixedParent and TPM-generated. */
function checkAkAttributes(ak: TpmPublic): void {
  const a = ak.attributes;
  const required = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.restricted | TPMA_OBJECT.sign;
  if ((a & required) !== required || (a & TPMA_OBJECT.decrypt) !== 0) {
    throw new AttestError('ATTEST_AK_ATTRIBUTES', `the AK attributes 0x${a.toString(16)} are not those of a restricted, fixed, TPM-generated signing key`);
  }
}
