/**
 * Keyholder-signed responses (issue #8; docs/tee.md §Pinning the keyholder
 * from a client): a client that pins the keyholder's measurements checks, in
 * every data-plane response, that the attested keyholder produced it — not
 * the API process in front of it.
 *
 * A keyholder run apart (`--listen`, attested channel) makes an Ed25519
 * **response key** when it starts (memory only, never stored). Its public
 * half is bound to the keyholder's evidence through the `keyholder-attestation`
 * op: the client's fresh 32-byte nonce and the key are hashed into the TPM
 * quote's extraData, and the client makes its own MakeCredential challenge, so
 * it checks the EK chain, the AK activation, the quote and the PCRs itself
 * (@keyward/client/keyholder-tpm). The API only relays.
 *
 * Opt-in per request: a data-plane request (datakey, unwrap, decrypt, open)
 * that carries the header `Keyward-Keyholder-Proof: 1` (relayed with the
 * signed fields) gets `proof` in its result — an Ed25519 signature by the
 * response key over
 *
 *   "keyward/v1 keyholder-response\n" ‖ JSON([op, hex(requestHash), "ns/key", version, sealed, wrapped | null])
 *
 * where requestHash = SHA-256(Signature-Input ‖ LF ‖ Signature) of the
 * request the keyholder verified (`requestHashOf`). The API returns it as
 * `Keyward-Keyholder-Signature`. Requests without the header pay nothing.
 */
import { createHash, generateKeyPairSync, sign as edSign, type KeyObject } from 'node:crypto';
import type { ChannelEvidenceProvider } from './attested-channel.js';
import { KeyholderProtocolError, OPS, errorResponse } from './protocol.js';
import { requestHashOf } from './service.js';

/** The request header that asks for a keyholder signature (lower case, as relayed). */
export const KEYHOLDER_PROOF_REQUEST_HEADER = 'keyward-keyholder-proof';
/** The response header that carries it. */
export const KEYHOLDER_SIGNATURE_HEADER = 'keyward-keyholder-signature';
const LABEL_RESPONSE = 'keyward/v1 keyholder-response\n';
const LABEL_KEY_BINDING = 'keyward/v1 keyholder-response-key\n';
/** The data-plane ops whose results are signed on request. */
export const SIGNED_RESPONSE_OPS = ['datakey', 'unwrap', 'decrypt', 'open'] as const;
type SignedOp = (typeof SIGNED_RESPONSE_OPS)[number];

/** The bytes the response key signs (the client builds the same from its request and the response body). */
export function responseMessage(op: string, requestHash: Uint8Array, key: string, version: number, sealed: string, wrapped: string | null): Buffer {
  return Buffer.from(LABEL_RESPONSE + JSON.stringify([op, Buffer.from(requestHash).toString('hex'), key, version, sealed, wrapped]), 'utf8');
}

/** The value the keyholder's evidence carries for a client's nonce and its response key (TPM quote extraData). */
export function responseKeyBinding(nonce: Uint8Array, responseKey: Uint8Array): Buffer {
  return createHash('sha256').update(LABEL_KEY_BINDING).update(nonce).update(responseKey).digest();
}

type Handle = (message: unknown) => Promise<unknown>;
interface Req { id?: unknown; op?: unknown; params?: unknown }

function wantsProof(headers: unknown): boolean {
  if (headers === null || typeof headers !== 'object') return false;
  const v = (headers as Record<string, unknown>)[KEYHOLDER_PROOF_REQUEST_HEADER];
  return v === '1' || (Array.isArray(v) && v.length === 1 && v[0] === '1');
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
      const op = m.op as SignedOp;
      if (!SIGNED_RESPONSE_OPS.includes(op)) return handle(message);
      const request = (m.params as { request?: { headers?: unknown } } | undefined)?.request;
      if (!wantsProof(request?.headers)) return handle(message);
      const response = await handle(message) as { ok?: boolean; result?: Record<string, unknown> };
      if (response.ok !== true || !response.result) return response;
      // The op succeeded, so the keyholder verified exactly these signature fields.
      const r = response.result as { ref: { ns: string; key: string; version: number }; sealed: string; wrapped?: string };
      const hash = requestHashOf((request as { headers: Record<string, string | string[]> }).headers);
      const msg = responseMessage(op, hash, `${r.ref.ns}/${r.ref.key}`, r.ref.version, r.sealed, r.wrapped ?? null);
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
