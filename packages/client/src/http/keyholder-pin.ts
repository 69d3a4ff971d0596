/**
 * Pinning the keyholder (issue #8; docs/tee.md §Pinning the keyholder from a
 * client): with `keyholderPin` set, {@link KeywardHttpClient} checks, once,
 * that the keyholder behind the API is the attested build it expects, and
 * then that every data-plane result (datakey, unwrap, decrypt, open) was
 * produced by that keyholder — not made up by the API process relaying it.
 *
 * 1. `GET /v1/sys/keyholder/attestation` → the keyholder's evidence offer
 *    (TPM: EK certificate, EK and AK public areas) and its Ed25519 response key.
 * 2. The pin's verifier makes a challenge for the offer (TPM: MakeCredential
 *    for the AK, to the EK); `POST` it with a fresh 32-byte nonce → evidence
 *    binding SHA-256("keyward/v1 keyholder-response-key\n" ‖ nonce ‖ responseKey).
 * 3. The verifier checks the evidence (roots, activation, quote, binding) and
 *    the pinned measurements: `KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED` /
 *    `KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH`.
 * 4. Every data-plane request then carries `Keyward-Keyholder-Proof: 1`, and
 *    its response must carry `Keyward-Keyholder-Signature`: the response
 *    key's Ed25519 signature over
 *    "keyward/v1 keyholder-response\n" ‖ JSON([op, hex(requestHash), key, version, sealed, wrapped | null]);
 *    missing `KW_CLIENT_KEYHOLDER_SIGNATURE_MISSING`, wrong
 *    `KW_CLIENT_KEYHOLDER_SIGNATURE_INVALID` (after one fresh attestation, in
 *    case the keyholder restarted with a new key).
 *
 * This module is portable (Node and browsers); the TPM verifier, which needs
 * X.509 and RSA-OAEP, is Node-only: `@keyward/client/keyholder-tpm`.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';

/** The request header asking the keyholder to sign its result. */
export const KEYHOLDER_PROOF_HEADER = 'keyward-keyholder-proof';
/** The response header carrying that signature (base64url, 64 bytes). */
export const KEYHOLDER_SIGNATURE_HEADER = 'keyward-keyholder-signature';
/** The data-plane operations whose results the keyholder signs. */
export const KEYHOLDER_SIGNED_OPERATIONS: readonly string[] = ['datakey', 'unwrap', 'decrypt', 'open'];

/**
 * Checks a keyholder's evidence against what the caller pins (trust roots,
 * measurements). `verify` throws a KeywardClientError
 * (`KW_CLIENT_KEYHOLDER_ATTESTATION_FAILED` or
 * `KW_CLIENT_KEYHOLDER_MEASUREMENT_MISMATCH`) or returns the verified claims summary.
 */
export interface KeyholderEvidenceVerifier {
  challenge(platform: string, offer: Record<string, unknown>): {
    readonly challenge: Record<string, unknown>;
    verify(evidence: Record<string, unknown>, binding: Uint8Array): Promise<KeyholderAttestation> | KeyholderAttestation;
  };
}

/** What the client verified about the keyholder. */
export interface KeyholderAttestation {
  readonly platform: string;
  /** Verified measurements, hex (e.g. `sha256:PCR16`). */
  readonly measurements: Readonly<Record<string, string>>;
}

const utf8 = new TextEncoder();
const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/** SHA-256("keyward/v1 keyholder-response-key\n" ‖ nonce ‖ responseKey): what the evidence must carry. */
export function keyholderResponseKeyBinding(nonce: Uint8Array, responseKey: Uint8Array): Uint8Array {
  return sha256.create().update(utf8.encode('keyward/v1 keyholder-response-key\n')).update(nonce).update(responseKey).digest();
}

/** The bytes the keyholder's response key signs for one result. */
export function keyholderResponseMessage(op: string, requestHash: Uint8Array, key: string, version: number, sealed: string, wrapped: string | null): Uint8Array {
  return utf8.encode(`keyward/v1 keyholder-response\n${JSON.stringify([op, hex(requestHash), key, version, sealed, wrapped])}`);
}

/** True when `signature` (base64url) is the response key's signature over the result in `body`. */
export function verifyKeyholderResponse(responseKey: Uint8Array, signature: string, op: string, requestHash: Uint8Array, body: unknown): boolean {
  if (!/^[A-Za-z0-9_-]{86}$/.test(signature) || body === null || typeof body !== 'object') return false;
  const b = body as { key?: unknown; version?: unknown; sealed?: unknown; wrapped?: unknown };
  if (typeof b.key !== 'string' || typeof b.version !== 'number' || typeof b.sealed !== 'string' || (b.wrapped !== undefined && typeof b.wrapped !== 'string')) return false;
  const sig = base64urlDecode(signature);
  if (sig === null || sig.length !== 64) return false;
  try {
    return ed25519.verify(sig, keyholderResponseMessage(op, requestHash, b.key, b.version, b.sealed, b.wrapped ?? null), responseKey);
  } catch {
    return false;
  }
}

/** Canonical unpadded base64url → bytes, or null. */
export function base64urlDecode(s: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) return null;
  const std = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
  const bin = atob(std);
  const out = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return base64urlEncode(out) === s ? out : null;
}

export function base64urlEncode(b: Uint8Array): string {
  let bin = '';
  for (const x of b) bin += String.fromCharCode(x);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
