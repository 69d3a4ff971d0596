/**
 * Keyholder-signed responses (issue #8; docs/tee.md §Pinning the keyholder
 * from a client): a client that pins the keyholder's measurements checks, in
 * every data-plane response and in attested releases, that the attested
 * keyholder produced it — not the API process in front of it.
 *
 * A keyholder run apart (`--listen`, attested channel) makes an Ed25519
 * **response key** when it starts (memory only, never stored). Its public
 * half is bound to the keyholder's evidence through the `keyholder-attestation`
 * op: the client's fresh 32-byte nonce and the key are hashed into the
 * evidence (TPM quote extraData, Nitro nonce, report data), so the client
 * checks the evidence itself (@keyward/client/keyholder-tpm). The API only relays.
 *
 * Opt-in per request. Every data-plane op (datakey, unwrap, decrypt, open,
 * encrypt, sign, verify, mac, rewrap — one signature per item) and the
 * attested release can be signed; the client asks with the header
 * `Keyward-Keyholder-Proof: 1`. For the ops whose signed request the
 * keyholder verifies itself (datakey, unwrap, decrypt, open) the header is
 * relayed with the signature fields; for the others the API adds
 * `proof: { requestHash, item? }` to the op (release: `proof: {}`). The
 * result then carries `proof`, an Ed25519 signature by the response key over
 *
 *   "keyward/v1 keyholder-result\n" ‖ JSON([op, hex(binding), "ns/key", item | null, input | null, result])
 *
 *   binding = SHA-256(Signature-Input ‖ LF ‖ Signature) of the caller's request (`requestHashOf`); release: the attest nonce
 *   input   = hex(SHA-256(RFC 8785 JSON of the op's input fields, {@link RESULT_SHAPES})) for ops whose
 *             signed request the keyholder does not verify itself; null for datakey/unwrap/decrypt/open/release
 *   result  = hex(SHA-256(RFC 8785 JSON of the result fields the API returns))
 *
 * The client rebuilds the same bytes from its own request and the body it
 * received. The API returns the signature as `Keyward-Keyholder-Signature`
 * (rewrap: one per item, comma-separated). Requests that do not ask pay nothing.
 */
import { createHash, generateKeyPairSync, sign as edSign, type KeyObject } from 'node:crypto';
import type { ChannelEvidenceProvider } from './attested-channel.js';
import { canonicalJson } from './canonical-json.js';
import { releaseSealContext, type ReleasePlatform } from './ops/release.js';
import { KeyholderProtocolError, OPS, errorResponse } from './protocol.js';
import { requestHashOf } from './service.js';

/** The request header that asks for a keyholder signature (lower case, as relayed). */
export const KEYHOLDER_PROOF_REQUEST_HEADER = 'keyward-keyholder-proof';
/** The response header that carries it. */
export const KEYHOLDER_SIGNATURE_HEADER = 'keyward-keyholder-signature';
const LABEL_RESULT = 'keyward/v1 keyholder-result\n';
const LABEL_KEY_BINDING = 'keyward/v1 keyholder-response-key\n';
/** The data-plane ops whose results are signed on request (all of them). */
export const SIGNED_RESPONSE_OPS = ['datakey', 'unwrap', 'decrypt', 'open', 'encrypt', 'sign', 'verify', 'mac', 'rewrap'] as const;
/** Those whose signed request the keyholder verifies itself (the request hash names their input). */
const VERIFIED_REQUEST_OPS = ['datakey', 'unwrap', 'decrypt', 'open'];

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };
const sha256hex = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

/**
 * The bytes the response key signs (the client builds the same from its
 * request and the response body): `op` the API's operation name, `binding`
 * the request hash (release: the attest nonce), `key` "ns/name", `item` the
 * rewrap item index, `input` / `result` the fields named in docs/tee.md.
 */
export function resultMessage(op: string, binding: Uint8Array, key: string, item: number | null, input: Record<string, Json> | null, result: Record<string, Json>): Buffer {
  const tuple = [op, Buffer.from(binding).toString('hex'), key, item, input === null ? null : sha256hex(canonicalJson(input)), sha256hex(canonicalJson(result))];
  return Buffer.from(LABEL_RESULT + JSON.stringify(tuple), 'utf8');
}

/** The value the keyholder's evidence carries for a client's nonce and its response key (TPM quote extraData). */
export function responseKeyBinding(nonce: Uint8Array, responseKey: Uint8Array): Buffer {
  return createHash('sha256').update(LABEL_KEY_BINDING).update(nonce).update(responseKey).digest();
}

interface Ref { ns: string; key: string; version: number }
type P = Record<string, unknown>;

/** Input and result fields of each op, from the op's wire params and the keyholder's result (the API returns exactly these). */
export const RESULT_SHAPES: Record<string, (p: P, r: P) => { input: Record<string, Json> | null; result: Record<string, Json> }> = {
  datakey: (_p, r) => ({ input: null, result: { key: keyOf(r.ref as Ref), version: (r.ref as Ref).version, wrapped: r.wrapped as string, sealed: r.sealed as string } }),
  unwrap: (_p, r) => ({ input: null, result: { key: keyOf(r.ref as Ref), version: (r.ref as Ref).version, sealed: r.sealed as string } }),
  decrypt: (_p, r) => ({ input: null, result: { key: keyOf(r.ref as Ref), version: (r.ref as Ref).version, sealed: r.sealed as string } }),
  open: (_p, r) => ({ input: null, result: { key: keyOf(r.ref as Ref), version: (r.ref as Ref).version, sealed: r.sealed as string } }),
  encrypt: (p, r) => ({ input: { plaintext: p.plaintext as string, context: (p.context ?? {}) as Json }, result: { ciphertext: r.ciphertext as string } }),
  sign: (p, r) => ({ input: { message: p.message as string }, result: { signature: r.signature as string } }),
  verify: (p, r) => ({ input: { message: p.message as string, signature: p.signature as string }, result: { valid: r.valid as boolean } }),
  mac: (p, r) => {
    const result: Record<string, Json> = {};
    if (r.mac !== undefined) result.mac = r.mac as string;
    else result.valid = r.valid as boolean;
    return { input: { message: p.message as string, ...(p.mac !== undefined ? { mac: p.mac as string } : {}) }, result };
  },
  rewrap: (p, r) => ({
    input: { version: (p.from as Ref).version, wrapped: p.wrapped as string, context: (p.context ?? {}) as Json },
    result: { version: (r.ref as Ref).version, wrapped: r.wrapped as string },
  }),
  release: (p, r) => {
    const ref = r.ref as Ref;
    const nonce = Uint8Array.from(Buffer.from(p.nonce as string, 'base64url'));
    const context = releaseSealContext({ nonce, ref, platform: p.platform as ReleasePlatform, policyHash: p.policyHash as string, measurementsHash: r.measurementsHash as string }, (p.context ?? {}) as Record<string, string>);
    return {
      input: null,
      result: {
        key: keyOf(ref), version: ref.version, wrapped: r.wrapped as string, sealed: r.sealed as string, platform: p.platform as string,
        policy_sha256: p.policyHash as string, measurements_sha256: r.measurementsHash as string, context,
      },
    };
  },
};
const keyOf = (ref: Ref): string => `${ref.ns}/${ref.key}`;

type Handle = (message: unknown) => Promise<unknown>;
interface Req { id?: unknown; op?: unknown; params?: unknown }

function wantsProof(headers: unknown): boolean {
  if (headers === null || typeof headers !== 'object') return false;
  const v = (headers as Record<string, unknown>)[KEYHOLDER_PROOF_REQUEST_HEADER];
  return v === '1' || (Array.isArray(v) && v.length === 1 && v[0] === '1');
}

/** What an op asks to be signed over: the binding and the rewrap item; null when it does not ask. */
function proofRequestOf(op: string, params: P): { binding: Uint8Array; item: number | null } | null {
  if (VERIFIED_REQUEST_OPS.includes(op)) {
    const headers = (params.request as { headers?: unknown } | undefined)?.headers;
    // The op succeeded only if the keyholder verified exactly these signature fields.
    return wantsProof(headers) ? { binding: requestHashOf(headers as Record<string, string | string[]>), item: null } : null;
  }
  const proof = params.proof as { requestHash?: unknown; item?: unknown } | undefined;
  if (proof === undefined || proof === null || typeof proof !== 'object') return null;
  if (op === 'attest-release') return { binding: Uint8Array.from(Buffer.from(params.nonce as string, 'base64url')), item: null };
  if (typeof proof.requestHash !== 'string') return null;
  return { binding: Uint8Array.from(Buffer.from(proof.requestHash, 'hex')), item: typeof proof.item === 'number' ? proof.item : null };
}

/**
 * The keyholder process's side: answers `keyholder-attestation` with its
 * evidence provider and signs the results of requests that ask for it.
 */
export class ResponseSigner {
  readonly #key: KeyObject;
  readonly publicKey: Buffer;

  constructor(private readonly provider: ChannelEvidenceProvider) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    this.#key = privateKey;
    this.publicKey = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  }

  /** Wraps the service's `handle`: only `keyholder-attestation` and opted-in data ops are touched. */
  wrap(handle: Handle): Handle {
    return async (message) => {
      const m = (message ?? {}) as Req;
      if (m.op === 'keyholder-attestation') return this.#attestation(m);
      const op = m.op === 'attest-release' ? 'release' : m.op;
      if (typeof op !== 'string' || !(op === 'release' || (SIGNED_RESPONSE_OPS as readonly string[]).includes(op))) return handle(message);
      const params = (m.params ?? {}) as P;
      let asked;
      try {
        asked = proofRequestOf(m.op as string, params);
      } catch {
        asked = null;
      }
      if (asked === null) return handle(message);
      const response = await handle(message) as { ok?: boolean; result?: P };
      if (response.ok !== true || !response.result) return response;
      const r = response.result;
      const ref = r.ref as Ref;
      const { input, result } = RESULT_SHAPES[op]!(params, r);
      const msg = resultMessage(op, asked.binding, keyOf(ref), asked.item, input, result);
      return { ...response, result: { ...r, proof: edSign(null, msg, this.#key).toString('base64url') } };
    };
  }

  async #attestation(m: Req): Promise<unknown> {
    const id = (typeof m.id === 'number' || typeof m.id === 'string') ? m.id : null;
    const parsed = OPS['keyholder-attestation'].params.safeParse(m.params ?? {});
    if (!parsed.success) return errorResponse(id, new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'invalid keyholder-attestation params'));
    const p = parsed.data;
    const base = { platform: this.provider.platform, responseKey: this.publicKey.toString('base64url') };
    try {
      if (p.nonce === undefined || p.challenge === undefined) return { id, ok: true, result: { ...base, offer: await this.provider.offer() } };
      const evidence = await this.provider.prove(p.challenge, responseKeyBinding(p.nonce, this.publicKey));
      return { id, ok: true, result: { ...base, evidence } };
    } catch (e) {
      return errorResponse(id, e instanceof KeyholderProtocolError ? e : new KeyholderProtocolError('KW_KEYHOLDER_UNAVAILABLE', 'the keyholder could not produce its evidence'));
    }
  }
}
