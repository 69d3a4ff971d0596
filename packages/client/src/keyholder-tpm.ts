/**
 * `@keyward/client/keyholder-tpm` (Node only): the {@link KeyholderEvidenceVerifier}
 * for a keyholder attested by a TPM 2.0 (docs/tee.md §Pinning the keyholder
 * from a client). The client checks everything itself, the API only relays:
 * the EK certificate chain to the pinned manufacturer roots, its own
 * MakeCredential challenge for the offered AK (only the TPM holding that EK
 * and that AK can answer it), the quote's signature, PCR digest and
 * extraData (= the binding of the client's nonce and the keyholder's
 * response key), then the pinned measurements.
 *
 * @example
 * import { tpmKeyholderPin } from '@keyward/client/keyholder-tpm';
 * const http = new KeywardHttpClient({ addresses, token, device,
 *   keyholderPin: tpmKeyholderPin({ roots: [ekCaPem], measurements: { 'sha256:PCR16': publishedPcr16 } }) });
 */
import {
  evaluatePolicy, finishAkEnrollment, isAttestError, parseReleasePolicy, startAkEnrollment, verifyTpmQuote, type ReleasePolicy,
} from '@keyward/attest';
import { KeywardClientError } from './http/errors.js';
import { base64urlDecode, base64urlEncode, type KeyholderEvidenceVerifier } from './http/keyholder-pin.js';

export interface TpmKeyholderPinOptions {
  /** PEM certificates of the TPM manufacturers' EK CAs accepted. */
  readonly roots: readonly string[];
  /** Pinned measurements, hex, e.g. `{ 'sha256:PCR16': '<pcr16 printed by build-keyholder>' }`. */
  readonly measurements?: Readonly<Record<string, string>>;
  /** Or a whole release-policy document (platforms, measurements, minimum versions), as the API's `keyholderPolicy`. */
  readonly policy?: unknown;
  readonly now?: () => Date;
}

const MAX_FIELD = 4096;

function bytes(o: Record<string, unknown>, name: string): Uint8Array {
  const v = o[name];
  const b = typeof v === 'string' && v.length <= Math.ceil((MAX_FIELD * 4) / 3) ? base64urlDecode(v) : null;
  if (b === null || b.length === 0) throw new KeywardClientError('KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', `the keyholder's ${name} is not base64url`);
  return b;
}

const attestationFailed = (e: unknown): KeywardClientError => new KeywardClientError(
  'KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED',
  `the keyholder's evidence does not verify${isAttestError(e) ? ` (${e.code})` : ''}: ${e instanceof Error ? e.message.slice(0, 300) : String(e)}`,
  { cause: e },
);

/** Pins a TPM-attested keyholder: its EK to `roots`, its measurements to `measurements` (or `policy`). */
export function tpmKeyholderPin(o: TpmKeyholderPinOptions): KeyholderEvidenceVerifier {
  if (!Array.isArray(o.roots) || o.roots.length === 0) throw new KeywardClientError('KW_INVALID_ARGUMENT', 'tpmKeyholderPin needs at least one EK root (PEM)');
  if ((o.measurements === undefined) === (o.policy === undefined)) throw new KeywardClientError('KW_INVALID_ARGUMENT', 'tpmKeyholderPin needs measurements or policy (one of them)');
  let policy: ReleasePolicy;
  try {
    policy = parseReleasePolicy(o.policy ?? { platforms: ['tpm2'], measurements: o.measurements });
  } catch (e) {
    throw new KeywardClientError('KW_INVALID_ARGUMENT', `tpmKeyholderPin: ${e instanceof Error ? e.message : 'invalid policy'}`, { cause: e });
  }
  const now = o.now ?? (() => new Date());
  return {
    challenge(platform, offer) {
      if (platform !== 'tpm2') throw new KeywardClientError('KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', `the keyholder offers ${platform} evidence; this pin verifies tpm2`);
      const intermediates = Array.isArray(offer.ekIntermediates) ? offer.ekIntermediates.slice(0, 4).map((_, i) => bytes(offer.ekIntermediates as Record<string, unknown>, String(i))) : [];
      let started;
      try {
        started = startAkEnrollment({ ekCertificate: bytes(offer, 'ekCertificate'), ekIntermediates: intermediates, ekPublic: bytes(offer, 'ekPublic'), akPublic: bytes(offer, 'akPublic'), roots: o.roots, now: now() });
      } catch (e) {
        throw e instanceof KeywardClientError ? e : attestationFailed(e);
      }
      const { challenge, pending } = started;
      return {
        challenge: { tpm2ToolsFile: base64urlEncode(challenge.tpm2ToolsFile) },
        verify(evidence, binding) {
          let claims;
          try {
            const ak = finishAkEnrollment(pending, bytes(evidence, 'activatedCredential'));
            const pcrs: Record<string, Record<number, Uint8Array>> = {};
            const banks = evidence.pcrs;
            if (banks === null || typeof banks !== 'object') throw new KeywardClientError('KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', 'the keyholder evidence has no PCR values');
            for (const [bank, values] of Object.entries(banks as Record<string, unknown>)) {
              if (values === null || typeof values !== 'object') continue;
              pcrs[bank] = {};
              for (const [i, h] of Object.entries(values as Record<string, unknown>)) {
                if (typeof h !== 'string' || !/^(?:[0-9a-f]{2}){1,64}$/.test(h) || !/^[0-9]{1,2}$/.test(i)) throw new KeywardClientError('KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED', 'the keyholder evidence has a malformed PCR value');
                pcrs[bank][Number(i)] = Uint8Array.from(h.match(/../g)!, (x) => parseInt(x, 16));
              }
            }
            claims = verifyTpmQuote({ ak, attest: bytes(evidence, 'attest'), signature: bytes(evidence, 'signature'), pcrs, expectedNonce: binding, now: now() });
          } catch (e) {
            throw e instanceof KeywardClientError ? e : attestationFailed(e);
          }
          const decision = evaluatePolicy(policy, claims, now());
          if (!decision.allowed) throw new KeywardClientError('KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH', `the keyholder's measurements are not the pinned ones (${decision.code}): ${decision.reason}`.slice(0, 1024));
          const measurements: Record<string, string> = {};
          for (const [k, v] of Object.entries(claims.measurements)) measurements[k] = Array.from(v, (x) => x.toString(16).padStart(2, '0')).join('');
          return { platform: claims.platform, measurements };
        },
      };
    },
  };
}
