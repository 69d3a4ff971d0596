/**
 * The HSM fragments of the keyholder state file (docs/hsm.md), kept apart
 * so custody.ts and state.ts can both use them without importing the HSM
 * code itself:
 *
 *   custody.hsm = { module, tokenLabel, keyLabel, wrapMechanism,
 *                   wrappedMasterKey: b64u(RFC 5649 wrap of mk under the HSM key keyLabel) }
 *   custody.recoveryCheck = hex(HMAC-SHA256(recovery key, "keyward/v1 recovery-check"))
 *   audit.hsmKeyLabel     = label of the Ed25519 checkpoint key pair in the HSM
 *
 * Public values only: never the PIN, and nothing here opens anything without
 * the HSM.
 */
import { z } from 'zod';
import { fromBase64url } from './bytes.js';

/** RFC 5649 output for a 32-byte key: 32 + 8 bytes. */
export const WRAPPED_MASTER_KEY_LENGTH = 40;
/** PKCS#11 labels Keyward writes: printable ASCII, no spaces at the ends. */
export const hsmLabelSchema = z.string().min(1).max(128).regex(/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/, 'an HSM label is 1–128 printable ASCII characters');

export const hsmCustodySchema = z.strictObject({
  /** Path of the PKCS#11 module, as given at init. */
  module: z.string().min(1).max(4096),
  /** Token label (a PKCS#11 token label is at most 32 bytes). */
  tokenLabel: z.string().min(1).max(32),
  /** Label of the non-extractable AES-256 key that wraps the master key. */
  keyLabel: hsmLabelSchema,
  /** pad = CKM_AES_KEY_WRAP_PAD (0x210A), kwp = CKM_AES_KEY_WRAP_KWP (0x210B). */
  wrapMechanism: z.enum(['pad', 'kwp']),
  wrappedMasterKey: z.string().max(64).refine((s) => fromBase64url(s)?.length === WRAPPED_MASTER_KEY_LENGTH, `must be canonical base64url of ${WRAPPED_MASTER_KEY_LENGTH} bytes`),
});
export type HsmCustody = z.infer<typeof hsmCustodySchema>;
