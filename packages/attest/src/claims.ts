/**
 * The one normalized claim set every verifier produces. The release policy
 * (`policy.ts`) reads only this, so a policy is written once for every TEE.
 */

/**
 * The TEE families this package verifies.
 *
 * @example
 * const p: Platform = 'aws-nitro';
 */
export const PLATFORMS = ['aws-nitro', 'tpm2', 'amd-sev-snp', 'intel-sgx', 'intel-tdx'] as const;

/** One of {@link PLATFORMS}. */
export type Platform = (typeof PLATFORMS)[number];

/**
 * What a verifier vouches for after every check passed.
 *
 * - `measurements`: named digests (Nitro `PCR0`…, TPM `sha256:PCR7`,
 *   SNP `MEASUREMENT`, SGX `MRENCLAVE`, TDX `MRTD`, …; docs/tee.md lists them).
 * - `versions`: named security versions for minimum-version policies
 *   (SNP `snp.tcb.snp`, SGX `sgx.isvsvn`, TPM `tpm.firmware`, …).
 * - `debug`: the TEE runs in a mode where the host can read or alter it.
 * - `nonce`: the freshness value the evidence carries (Nitro `nonce`, TPM
 *   `extraData`, SNP/SGX/TDX the 64-byte report data).
 * - `publicKey`: the workload key the evidence binds (Nitro `public_key`),
 *   when the format has such a field.
 * - `issuedAt`: the evidence's own timestamp, when the format has one;
 *   `verifiedAt`: the injected instant at which it was verified.
 * - `extra`: the remaining raw fields, for logging and callers that need them.
 */
export interface AttestationClaims {
  readonly platform: Platform;
  readonly measurements: Readonly<Record<string, Uint8Array>>;
  readonly versions: Readonly<Record<string, bigint>>;
  readonly debug: boolean;
  readonly nonce: Uint8Array | undefined;
  readonly publicKey: Uint8Array | undefined;
  readonly issuedAt: Date | undefined;
  readonly verifiedAt: Date;
  readonly extra: Readonly<Record<string, unknown>>;
}
