/** The OpenAPI 3.1 document, built from the route table's zod schemas (`z.toJSONSchema`). */
import { SIGNED_RESPONSE_OPS } from '../keyholder/response-signing.js';
import { z } from 'zod';
import type { AnyRouteDef } from './app.js';
import { ERROR_REGISTRY } from './errors.js';

const json = (s: z.ZodType, io: 'input' | 'output') => z.toJSONSchema(s, { target: 'draft-2020-12', io, unrepresentable: 'any' });

const KEYHOLDER_SIGNATURE_RESPONSE_HEADER = 'Keyward-Keyholder-Signature';

export function buildOpenApi(routes: readonly AnyRouteDef[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const errorSchema = { type: 'object', required: ['error'], properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string', enum: Object.keys(ERROR_REGISTRY) }, message: { type: 'string' }, reason: { type: 'string', description: 'a stable sub-code, e.g. the ATTEST_* code behind KW_ATTEST_POLICY_DENIED' } } } } };
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z_]+)/g, '{$1}');
    const parameters: unknown[] = [];
    for (const [where, schema] of [['path', r.params], ['query', r.query]] as const) {
      if (!schema) continue;
      const js = json(schema, 'input') as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, s] of Object.entries(js.properties ?? {})) {
        parameters.push({ name, in: where, required: where === 'path' || (js.required ?? []).includes(name), schema: s });
      }
    }
    // Issue #8 (docs/tee.md §Pinning the keyholder from a client): results a keyholder run apart signs on request.
    const keyholderSigned = (SIGNED_RESPONSE_OPS as readonly string[]).some((o) => r.url === `/v1/data/:ns/:name/${o}`) || r.url === '/v1/attest/:ns/:name/release';
    if (keyholderSigned) {
      parameters.push({ name: 'Keyward-Keyholder-Proof', in: 'header', required: false, schema: { type: 'string', enum: ['1'] }, description: 'Ask the keyholder (run apart, attested) to sign this result; the signature comes back in Keyward-Keyholder-Signature' });
    }
    const op: Record<string, unknown> = {
      summary: r.summary,
      tags: [r.tag],
      operationId: `${r.method.toLowerCase()}${path.replace(/[^A-Za-z0-9]+/g, '_')}`,
      ...(parameters.length ? { parameters } : {}),
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: json(r.body, 'input') } } } } : {}),
      ...(r.auth === 'none' ? { security: [] } : r.auth === 'signed' ? { security: [{ bearer: [], httpSignature: [] }] } : { security: [{ bearer: [] }] }),
      responses: {
        [String(r.status ?? 200)]: {
          description: 'success', content: { 'application/json': { schema: r.response ? json(r.response, 'output') : {} } },
          ...(keyholderSigned ? { headers: { [KEYHOLDER_SIGNATURE_RESPONSE_HEADER]: { description: "With Keyward-Keyholder-Proof: 1 and a keyholder run apart: base64url Ed25519 signature by the keyholder's attested response key (GET/POST /v1/sys/keyholder/attestation) over \"keyward/v1 keyholder-result\\n\" ‖ JSON([op, hex(requestHash, or the release nonce), \"ns/key\", item | null, input digest | null, result digest]) (docs/tee.md); rewrap: one per item, comma-separated", schema: { type: 'string' } } } } : {}),
        },
        default: { description: 'error', content: { 'application/json': { schema: errorSchema } } },
      },
    };
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Keyward key service', version },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer' },
        httpSignature: { type: 'apiKey', in: 'header', name: 'Signature', description: 'RFC 9421, label kw, Ed25519 device key' },
      },
    },
    paths,
  };
}
