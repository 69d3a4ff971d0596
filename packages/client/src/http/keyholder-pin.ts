/**
 * Pinning the keyholder (issue #8; docs/tee.md §Pinning the keyholder from a
 * client): with `keyholderPin` set, {@link KeywardHttpClient} checks, once,
 * that the keyholder behind the API is the attested build it expects, and
 * then that every data-plane result (datakey, unwrap, decrypt, open,
 * encrypt, sign, verify, mac, rewrap) and every attested release was
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
 *    "keyward/v1 keyholder-result\n" ‖ JSON([op, hex(binding), "ns/key", item | null, input | null, result])
 *    ({@link keyholderResultMessage}; rewrap: one signature per item);
 *    missing `KW_CLIENT_KEYHOLDER_SIGNATURE_MISSING`, wrong
 *    `KW_CLIENT_KEYHOLDER_SIGNATURE_INVALID` (after one fresh attestation, in
 *    case the keyholder restarted with a new key).
 *
 * This module is portable (Node and browsers); the verifiers, which need
 * X.509 (and RSA-OAEP for TPM), are Node-only: `@keyward/client/keyholder-tpm`
 * (TPM 2.0) and `@keyward/client/keyholder-evidence` (Nitro, SEV-SNP, TDX,
 * SGX evidence from the keyholder's helper program: no challenge, the
 * binding in the document's nonce or the report data).
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';

/** The request header asking the keyholder to sign its result. */
export const KEYHOLDER_PROOF_HEADER = 'keyward-keyholder-proof';
/** The response header carrying that signature (base64url, 64 bytes). */
export const KEYHOLDER_SIGNATURE_HEADER = 'keyward-keyholder-signature';
/** The data-plane operations whose results the keyholder signs (all of them; `release` too, {@link KeywardHttpClient.release}). */
export const KEYHOLDER_SIGNED_OPERATIONS: readonly string[] = ['datakey', 'unwrap', 'decrypt', 'open', 'encrypt', 'sign', 'verify', 'mac', 'rewrap'];

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

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** RFC 8785 JSON of the values signed results hold (strings, safe integers, booleans, plain objects). */
function canonicalJson(v: Json): string {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new TypeError('only safe integers are signed');
    return String(v);
  }
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k]!)}`).join(',')}}`;
}
const digest = (v: Json): string => hex(sha256(utf8.encode(canonicalJson(v))));

/**
 * The bytes the keyholder's response key signs for one result:
 * "keyward/v1 keyholder-result\n" ‖ JSON([op, hex(binding), key, item, SHA-256(JCS(input)) | null, SHA-256(JCS(result))]).
 */
export function keyholderResultMessage(op: string, binding: Uint8Array, key: string, item: number | null, input: Json | null, result: Json): Uint8Array {
  return utf8.encode(`keyward/v1 keyholder-result\n${JSON.stringify([op, hex(binding), key, item, input === null ? null : digest(input), digest(result)])}`);
}

const str = (o: Obj, k: string): string => { const v = o[k]; if (typeof v !== 'string') throw new TypeError(k); return v; };
const int = (o: Obj, k: string): number => { const v = o[k]; if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new TypeError(k); return v; };
const bool = (o: Obj, k: string): boolean => { const v = o[k]; if (typeof v !== 'boolean') throw new TypeError(k); return v; };
const ctx = (o: Obj): Json => { const c = o.context ?? {}; if (!isObj(c)) throw new TypeError('context'); return c as Json; };

/**
 * The signed input and result fields of `op` (docs/tee.md §Pinning the keyholder from a client):
 * the input from the request body the client sent (null for ops whose signed request the keyholder
 * verifies itself, and for release), the result from the response body. Throws on a malformed body.
 */
export function keyholderSignedFields(op: string, request: Obj, response: Obj, item: number | null): { input: Json | null; result: Json } {
  switch (op) {
    case 'datakey': return { input: null, result: { key: str(response, 'key'), version: int(response, 'version'), wrapped: str(response, 'wrapped'), sealed: str(response, 'sealed') } };
    case 'unwrap': case 'decrypt': case 'open': return { input: null, result: { key: str(response, 'key'), version: int(response, 'version'), sealed: str(response, 'sealed') } };
    case 'encrypt': return { input: { plaintext: str(request, 'plaintext'), context: ctx(request) }, result: { ciphertext: str(response, 'ciphertext') } };
    case 'sign': return { input: { message: str(request, 'message') }, result: { signature: str(response, 'signature') } };
    case 'verify': return { input: { message: str(request, 'message'), signature: str(request, 'signature') }, result: { valid: bool(response, 'valid') } };
    case 'mac': return {
      input: { message: str(request, 'message'), ...(request.mac !== undefined ? { mac: str(request, 'mac') } : {}) },
      result: response.mac !== undefined ? { mac: str(response, 'mac') } : { valid: bool(response, 'valid') },
    };
    case 'rewrap': {
      const rq = (request.items as unknown[] | undefined)?.[item ?? -1];
      const rs = (response.items as unknown[] | undefined)?.[item ?? -1];
      if (!isObj(rq) || !isObj(rs)) throw new TypeError('items');
      return { input: { version: int(rq, 'version'), wrapped: str(rq, 'wrapped'), context: ctx(rq) }, result: { version: int(rs, 'version'), wrapped: str(rs, 'wrapped') } };
    }
    case 'release': {
      const c = response.context;
      if (!isObj(c) || !Object.values(c).every((v) => typeof v === 'string')) throw new TypeError('context');
      return {
        input: null,
        result: {
          key: str(response, 'key'), version: int(response, 'version'), wrapped: str(response, 'wrapped'), sealed: str(response, 'sealed'), platform: str(response, 'platform'),
          policy_sha256: str(response, 'policy_sha256'), measurements_sha256: str(response, 'measurements_sha256'), context: c as Json,
        },
      };
    }
    default: throw new TypeError(`unsigned operation ${op}`);
  }
}

/**
 * True when `signature` (base64url) is the response key's signature over the result of `op` on `key`
 * ("ns/name") for the request bound by `binding` (its request hash; release: the nonce).
 */
export function verifyKeyholderResult(responseKey: Uint8Array, signature: string, o: { op: string; binding: Uint8Array; key: string; item?: number; request: unknown; response: unknown }): boolean {
  if (!/^[A-Za-z0-9_-]{86}$/.test(signature) || !isObj(o.request) || !isObj(o.response)) return false;
  const sig = base64urlDecode(signature);
  if (sig === null || sig.length !== 64) return false;
  try {
    const { input, result } = keyholderSignedFields(o.op, o.request, o.response, o.item ?? null);
    return ed25519.verify(sig, keyholderResultMessage(o.op, o.binding, o.key, o.item ?? null, input, result), responseKey);
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
