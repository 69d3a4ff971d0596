/**
 * `@keyward/client/keyholder-evidence` (Node only: the @keyward/attest
 * verifiers use node:crypto X.509): the {@link KeyholderEvidenceVerifier} for
 * a keyholder that attests with platform evidence from a helper program
 * (`keyward keyholder serve --evidence command`) — inside an AWS Nitro
 * Enclave, an AMD SEV-SNP or an Intel TDX / SGX guest (docs/tee.md §Pinning
 * the keyholder from a client). The client checks everything itself, the API
 * only relays:
 *
 * - the evidence's certificate chain to **its** pinned vendor roots, at its
 *   clock (`verifyCommandEvidence` of @keyward/attest: the Nitro document,
 *   the SNP report with its VCEK and ASK, the DCAP quote with its PCK chain);
 * - that the evidence carries the binding of the client's fresh nonce and
 *   the keyholder's response key exactly as the keyholder's helper is asked
 *   to put it (Nitro `nonce` = binding; SNP / TDX / SGX report data =
 *   binding ‖ 32 zero bytes) — so it was made now, for this response key;
 * - then the pinned policy of that platform: every pinned measurement
 *   present and equal (a missing one fails), debug mode refused unless
 *   `allowDebug`, minimum versions, evidence age.
 *
 * Evidence that does not verify: `KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED`
 * (the `ATTEST_*` code in the message); a policy refusal (measurement, debug,
 * version, age): `KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH`.
 *
 * @example
 * import { evidenceKeyholderPin } from '@keyward/client/keyholder-evidence';
 * const http = new KeywardHttpClient({ addresses, token, device,
 *   keyholderPin: evidenceKeyholderPin({ platforms: { 'aws-nitro': { measurements: { PCR0: eifPcr0, PCR1: eifPcr1, PCR2: eifPcr2 } } } }) });
 */
import {
  AMD_ARK_GENOA_PEM, AMD_ARK_MILAN_PEM, AWS_NITRO_ROOT_G1_PEM, COMMAND_EVIDENCE_PLATFORMS, INTEL_SGX_ROOT_CA_PEM,
  evaluatePolicy, isAttestError, parseReleasePolicy, verifyCommandEvidence, type CommandEvidencePlatform, type ReleasePolicy,
} from '@keyward/attest';
import { KeywardClientError } from './http/errors.js';
import { base64urlDecode, type KeyholderAttestation, type KeyholderEvidenceVerifier } from './http/keyholder-pin.js';

export type { CommandEvidencePlatform };

/**
 * What a keyholder on one platform must show: a release policy without
 * `platforms` (docs/tee.md §Release policies). `measurements` is required and
 * non-empty — Nitro `PCR0`/`PCR1`/`PCR2`…, SNP `MEASUREMENT` (`HOST_DATA`, …),
 * TDX `MRTD`/`RTMR0`…, SGX `MRENCLAVE`/`MRSIGNER`; lower-case hex, a list
 * admits several builds (rolling upgrades).
 */
export interface KeyholderPlatformPin {
  readonly measurements: Readonly<Record<string, string | readonly string[]>>;
  /** Accept debug-mode evidence (Nitro PCR0–2 zero, SNP policy DEBUG, TDX/SGX DEBUG attribute). Default false. */
  readonly allowDebug?: boolean;
  /** Minimum security versions, e.g. `{ 'snp.tcb.snp': 8 }`, `{ 'tdx.module.majorSvn': 1 }`. */
  readonly minVersions?: Readonly<Record<string, number | bigint | string>>;
  /** Refuse evidence dated (Nitro: its timestamp) more than this before `now`. */
  readonly maxAgeSeconds?: number;
}

/** Trust roots (PEM), as the server's `attest` settings and the keyholder's `--attest-config` name them. */
export interface KeyholderEvidenceRoots {
  /** AWS Nitro root(s); default `[AWS_NITRO_ROOT_G1_PEM]` (pinned in @keyward/attest). */
  readonly nitroRoots?: readonly string[];
  /** AMD ARK(s) for SEV-SNP; default `[AMD_ARK_MILAN_PEM, AMD_ARK_GENOA_PEM]`. */
  readonly amdRoots?: readonly string[];
  /** Intel SGX root CA(s) for TDX and SGX; default `[INTEL_SGX_ROOT_CA_PEM]`. */
  readonly intelRoots?: readonly string[];
}

export interface EvidenceKeyholderPinOptions {
  /** The platforms the keyholder may attest from, each with what it must show; any other is refused. */
  readonly platforms: Readonly<Partial<Record<CommandEvidencePlatform, KeyholderPlatformPin>>>;
  /** The vendor roots accepted; each kind defaults to the vendor's root pinned in @keyward/attest. */
  readonly roots?: KeyholderEvidenceRoots;
  /** The clock certificates and evidence age are checked at; default the system clock. */
  readonly now?: () => Date;
}

/** Largest evidence accepted (base64url characters), as the API's verifier. */
const MAX_EVIDENCE_CHARS = 100_000;
const MAX_ROOTS = 16;
const MAX_ROOT_CHARS = 64 * 1024;

const invalid = (m: string, cause?: unknown): KeywardClientError => new KeywardClientError('KW_INVALID_ARGUMENT', `evidenceKeyholderPin: ${m}`, cause === undefined ? undefined : { cause });
const attestationFailed = (e: unknown): KeywardClientError => new KeywardClientError(
  'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED',
  `the keyholder's evidence does not verify${isAttestError(e) ? ` (${e.code})` : ''}: ${e instanceof Error ? e.message.slice(0, 300) : String(e)}`,
  { cause: e },
);
const failed = (m: string): KeywardClientError => new KeywardClientError('KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', m);

function rootsOf(given: readonly string[] | undefined, defaults: readonly string[], name: string): readonly string[] {
  if (given === undefined) return defaults;
  const list: unknown = given;
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_ROOTS) throw invalid(`roots.${name} must list 1..${MAX_ROOTS} PEM certificates`);
  const out: string[] = [];
  for (const r of list as unknown[]) {
    if (typeof r !== 'string' || r.length > MAX_ROOT_CHARS || !r.includes('-----BEGIN CERTIFICATE-----')) throw invalid(`roots.${name} must hold PEM certificates`);
    out.push(r);
  }
  return out;
}

/**
 * Pins a keyholder attested by a Nitro Enclave, an SEV-SNP or a TDX / SGX
 * guest: its evidence to `roots` (vendor defaults), its measurements to
 * `platforms[platform]`.
 *
 * @example
 * evidenceKeyholderPin({
 *   platforms: { 'amd-sev-snp': { measurements: { MEASUREMENT: launchDigest }, minVersions: { 'snp.tcb.snp': 8 } } },
 *   roots: { amdRoots: [AMD_ARK_GENOA_PEM] },
 * });
 */
export function evidenceKeyholderPin(o: EvidenceKeyholderPinOptions): KeyholderEvidenceVerifier {
  if (o === null || typeof o !== 'object' || o.platforms === null || typeof o.platforms !== 'object') throw invalid('needs platforms: { <platform>: { measurements } }');
  const policies = new Map<string, ReleasePolicy>();
  for (const [platform, pin] of Object.entries(o.platforms)) {
    if (pin === undefined) continue;
    if (!(COMMAND_EVIDENCE_PLATFORMS as readonly string[]).includes(platform)) throw invalid(`${platform.slice(0, 32)} is not one of ${COMMAND_EVIDENCE_PLATFORMS.join(', ')} (a TPM keyholder: @keyward/client/keyholder-tpm)`);
    if (pin === null || typeof pin !== 'object' || pin.measurements === null || typeof pin.measurements !== 'object' || Object.keys(pin.measurements).length === 0) {
      throw invalid(`platforms.${platform}.measurements must name at least one measurement (a pin without one pins nothing)`);
    }
    try {
      policies.set(platform, parseReleasePolicy({ ...pin, platforms: [platform] }));
    } catch (e) {
      throw invalid(`platforms.${platform}: ${e instanceof Error ? e.message : 'invalid policy'}`, e);
    }
  }
  if (policies.size === 0) throw invalid('needs at least one platform to pin');
  const r = o.roots ?? {};
  if (r === null || typeof r !== 'object') throw invalid('roots must be an object');
  const roots = {
    nitro: rootsOf(r.nitroRoots, [AWS_NITRO_ROOT_G1_PEM], 'nitroRoots'),
    amd: rootsOf(r.amdRoots, [AMD_ARK_MILAN_PEM, AMD_ARK_GENOA_PEM], 'amdRoots'),
    intel: rootsOf(r.intelRoots, [INTEL_SGX_ROOT_CA_PEM], 'intelRoots'),
  };
  if (o.now !== undefined && typeof o.now !== 'function') throw invalid('now must be a function returning a Date');
  const now = o.now ?? (() => new Date());

  return {
    challenge(platform, offer) {
      const policy = policies.get(platform);
      if (policy === undefined) throw failed(`the keyholder offers ${String(platform).slice(0, 32)} evidence; this pin accepts ${[...policies.keys()].join(', ')}`);
      // These formats carry their own certificate chain: nothing is offered and no challenge is made (the binding is their freshness).
      if (offer === null || typeof offer !== 'object' || Object.keys(offer).length !== 0) throw failed(`a ${platform} keyholder offers nothing before its evidence; this offer is not empty`);
      return {
        challenge: {},
        verify(evidence, binding): KeyholderAttestation {
          const text = evidence?.evidence;
          const bytes = typeof text === 'string' && text.length <= MAX_EVIDENCE_CHARS ? base64urlDecode(text) : null;
          if (bytes === null || bytes.length === 0) throw failed('the keyholder evidence is not base64url');
          const at = now();
          let claims;
          try {
            claims = verifyCommandEvidence(platform, bytes, { roots, now: at, binding });
          } catch (e) {
            throw attestationFailed(e);
          }
          const decision = evaluatePolicy(policy, claims, at);
          if (!decision.allowed) throw new KeywardClientError('KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH', `the keyholder's evidence does not satisfy the pinned ${platform} policy (${decision.code}): ${decision.reason}`.slice(0, 1024));
          const measurements: Record<string, string> = {};
          for (const [k, v] of Object.entries(claims.measurements)) measurements[k] = Array.from(v, (x) => x.toString(16).padStart(2, '0')).join('');
          return { platform: claims.platform, measurements };
        },
      };
    },
  };
}
