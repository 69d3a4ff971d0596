/**
 * Keyholder-signed results through the API (issue #8; docs/tee.md §Pinning
 * the keyholder from a client). A caller asks with `Keyward-Keyholder-Proof: 1`;
 * the routes pass the request on to the keyholder (for datakey, unwrap,
 * decrypt and open inside the relayed signature fields; for the other ops as
 * `proof: { requestHash, item? }`, for release `proof: {}`), and return the
 * keyholder's signature as `Keyward-Keyholder-Signature` — one per rewrap
 * item, comma-separated. The API never makes or alters a signature: it only
 * relays what the keyholder's result carries.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { KEYHOLDER_PROOF_REQUEST_HEADER, KEYHOLDER_SIGNATURE_HEADER } from '../keyholder/response-signing.js';
import { requestHashOf } from '../keyholder/service.js';

const proofs = new WeakMap<FastifyRequest, string>();
const hooked = new WeakSet<FastifyInstance>();

/** True when the caller asked for a keyholder-signed result. */
export function wantsKeyholderProof(req: FastifyRequest): boolean {
  return req.headers[KEYHOLDER_PROOF_REQUEST_HEADER] === '1';
}

/** The caller's request hash (hex) over its RFC 9421 signature fields; null for an unsigned (bearer-only) request. */
export function requestHashHex(headers: Readonly<Record<string, string | string[] | undefined>>): string | null {
  const fields: Record<string, string | string[]> = {};
  for (const name of ['signature-input', 'signature']) {
    const v = headers[name];
    if (v !== undefined) fields[name] = v;
  }
  try {
    return Buffer.from(requestHashOf(fields)).toString('hex');
  } catch {
    return null;
  }
}

/**
 * The `proof` param of a keyholder op for this request (empty when not asked):
 * the caller's request hash (null for release, which its nonce binds), and the rewrap item.
 */
export function proofParamOf(req: FastifyRequest, requestHash: string | null, item?: number): { proof?: { requestHash?: string; item?: number } } {
  if (!wantsKeyholderProof(req)) return {};
  return { proof: { ...(requestHash !== null ? { requestHash } : {}), ...(item !== undefined ? { item } : {}) } };
}

/** Returns `r`, keeping its `proof` (the keyholder's signature) to send as the response header. */
export function withKeyholderProof<R extends { proof?: string | undefined }>(req: FastifyRequest, r: R): R {
  if (r.proof) proofs.set(req, r.proof);
  return r;
}

/** Rewrap: the items' signatures, in order — sent only when every item carries one. */
export function setKeyholderProofs(req: FastifyRequest, list: readonly (string | undefined)[]): void {
  if (list.length > 0 && list.every((p) => typeof p === 'string' && p.length > 0)) proofs.set(req, list.join(', '));
}

/** Registers (once per Fastify instance) the hook that puts a kept signature on a 200 response. */
export function keyholderProofHook(fastify: FastifyInstance): void {
  if (hooked.has(fastify)) return;
  hooked.add(fastify);
  fastify.addHook('onSend', (req, reply, payload, done) => {
    const proof = proofs.get(req);
    if (proof !== undefined && reply.statusCode === 200) void reply.header(KEYHOLDER_SIGNATURE_HEADER, proof);
    done(null, payload);
  });
}
