/**
 * Attestation settings of a running server (server config `attest`, issue #8;
 * docs/tee.md §Release flow): the trust roots each evidence verifier uses,
 * the release nonce's lifetime, and the clock evidence is verified at.
 *
 * | field | default |
 * |---|---|
 * | `nitroRoots` | `[AWS_NITRO_ROOT_G1_PEM]` (pinned in @keyward/attest) |
 * | `tpmRoots` | none: TPM evidence is refused (KW_ATTEST_NOT_CONFIGURED) until the TPM vendors' EK CAs are configured |
 * | `amdRoots` | `[AMD_ARK_MILAN_PEM, AMD_ARK_GENOA_PEM]` |
 * | `intelRoots` | `[INTEL_SGX_ROOT_CA_PEM]` |
 * | `nonceTtlSeconds` | 60 (1..600): the longest a workload may ask for |
 * | `clock` (programmatic only) | the system clock: the instant certificates and evidence age are checked at (tests) |
 */
import { z } from 'zod';
import { ATTEST_ROOTS_SHAPE, withDefaultRoots } from '../keyholder/ops/release-verify.js';

export const AttestSettingsSchema = z.strictObject({
  ...ATTEST_ROOTS_SHAPE,
  nonceTtlSeconds: z.int().min(1).max(600).optional(),
  clock: z.custom<() => Date>((v) => typeof v === 'function', 'clock must be a function returning a Date').optional(),
});
export type AttestSettingsInput = z.input<typeof AttestSettingsSchema>;

export interface AttestSettings {
  readonly roots: { readonly nitro: readonly string[]; readonly tpm: readonly string[]; readonly amd: readonly string[]; readonly intel: readonly string[] };
  readonly nonceTtlSeconds: number;
  readonly now: () => Date;
}

/** Fills the defaults; throws on a malformed input (the server refuses to start). */
export function attestSettings(input: AttestSettingsInput = {}): AttestSettings {
  const s = AttestSettingsSchema.parse(input);
  const clock = s.clock;
  return {
    roots: withDefaultRoots(s),
    nonceTtlSeconds: s.nonceTtlSeconds ?? 60,
    now: clock ? () => clock() : () => new Date(),
  };
}
