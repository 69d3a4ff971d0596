/**
 * The verifier's half of TPM 2.0 credential activation (TPM 2.0 Library
 * Part 1 §24, "Credential Protection"; Part 3 TPM2_MakeCredential), composed
 * from node:crypto primitives: HMAC for KDFa (SP 800-108 counter mode), RSA-OAEP
 * for the seed, AES-CFB for the credential, HMAC for its integrity.
 *
 * Only the TPM holding the EK's private key can recover the seed, and it
 * releases the credential only to an object whose Name is the one bound here
 * (the AK), so a returned credential proves the AK lives in that TPM.
 * @internal
 */
import { constants, createCipheriv, createHmac, publicEncrypt, randomBytes } from 'node:crypto';
import { concat } from '../cbor.js';
import { AttestError, check } from '../errors.js';
import { TPM_ALG, TPMA_OBJECT, tpmHash, type TpmPublic } from './structures.js';

/**
 * KDFa (Part 1 §11.4.10.2): SP 800-108 KDF in counter mode with HMAC-`hash`:
 * K(i) = HMAC(key, [i]₃₂ ‖ label ‖ 0x00 ‖ contextU ‖ contextV ‖ [bits]₃₂).
 */
export function kdfa(hash: 'sha1' | 'sha256' | 'sha384' | 'sha512', key: Uint8Array, label: string, contextU: Uint8Array, contextV: Uint8Array, bits: number): Uint8Array {
  check(bits > 0 && bits % 8 === 0, 'KDFa: bits must be a positive multiple of 8', 'ATTEST_INVALID_ARGUMENT');
  const labelBytes = concat(new TextEncoder().encode(label), Uint8Array.of(0));
  const bitsBytes = u32(bits);
  const out: Uint8Array[] = [];
  let have = 0;
  for (let i = 1; have < bits / 8; i++) {
    const block = createHmac(hash, key).update(u32(i)).update(labelBytes).update(contextU).update(contextV).update(bitsBytes).digest();
    out.push(block);
    have += block.length;
  }
  return concat(...out).subarray(0, bits / 8);
}

/** The output of MakeCredential. */
export interface MadeCredential {
  /** TPM2B_ID_OBJECT: size ‖ TPM2B_DIGEST(integrity HMAC) ‖ AES-CFB(TPM2B_DIGEST(credential)). */
  readonly credentialBlob: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET: size ‖ RSA-OAEP(EK, label "IDENTITY\0", seed). */
  readonly encryptedSecret: Uint8Array;
}

/**
 * TPM2_MakeCredential computed off-TPM for an RSA endorsement key.
 * `seed` is for tests only; by default it is random.
 */
export function makeCredential(ek: TpmPublic, objectName: Uint8Array, credential: Uint8Array, seed?: Uint8Array): MadeCredential {
  if (ek.rsa === undefined) throw new AttestError('ATTEST_UNSUPPORTED', 'MakeCredential: only RSA endorsement keys are supported');
  const required = TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt | TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent;
  check((ek.attributes & required) === required && (ek.attributes & TPMA_OBJECT.sign) === 0, 'MakeCredential: the EK is not a restricted, fixed decryption key', 'ATTEST_KEY_BINDING');
  if (ek.symmetric.alg !== TPM_ALG.AES || ek.symmetric.mode !== TPM_ALG.CFB || (ek.symmetric.keyBits !== 128 && ek.symmetric.keyBits !== 256)) {
    throw new AttestError('ATTEST_UNSUPPORTED', 'MakeCredential: the EK symmetric definition is not AES-128/256-CFB');
  }
  const h = tpmHash(ek.nameAlg, 'EK nameAlg');
  check(credential.length > 0 && credential.length <= h.size, `MakeCredential: credential must be 1..${h.size} bytes`, 'ATTEST_INVALID_ARGUMENT');
  const s = seed ?? randomBytes(h.size);
  check(s.length === h.size, 'MakeCredential: seed must be the EK nameAlg digest size', 'ATTEST_INVALID_ARGUMENT');

  const encSeed = publicEncrypt({ key: ek.key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: h.name, oaepLabel: Buffer.from('IDENTITY\0', 'latin1') }, s);
  const symKey = kdfa(h.name, s, 'STORAGE', objectName, new Uint8Array(0), ek.symmetric.keyBits);
  const cipher = createCipheriv(`aes-${ek.symmetric.keyBits}-cfb`, symKey, new Uint8Array(16));
  const encIdentity = concat(cipher.update(concat(u16(credential.length), credential)), cipher.final());
  const hmacKey = kdfa(h.name, s, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), h.size * 8);
  const integrity = createHmac(h.name, hmacKey).update(encIdentity).update(objectName).digest();
  const idObject = concat(u16(integrity.length), integrity, encIdentity);
  return { credentialBlob: concat(u16(idObject.length), idObject), encryptedSecret: concat(u16(encSeed.length), encSeed) };
}

/**
 * The file `tpm2_makecredential -o` writes and `tpm2_activatecredential -i`
 * reads: magic 0xBADCC0DE, version 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET.
 */
export function toTpm2ToolsCredentialFile(c: MadeCredential): Uint8Array {
  return concat(u32(0xbadcc0de), u32(1), c.credentialBlob, c.encryptedSecret);
}

function u16(n: number): Uint8Array {
  return Uint8Array.of(n >> 8, n & 0xff);
}
function u32(n: number): Uint8Array {
  return Uint8Array.of((n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
}
