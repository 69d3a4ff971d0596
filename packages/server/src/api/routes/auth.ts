/** Device signing keys: a principal registers its Ed25519 request-signing key. */
import { z } from 'zod';
import type { App } from '../app.js';
import { b64uString } from '../app.js';
import { newId } from '../auth.js';
import { ApiError } from '../errors.js';

export function authRoutes(app: App): void {
  const { ctx } = app;
  app.route({
    method: 'POST', url: '/v1/auth/signing-keys', summary: "Register a device's request-signing public key (bearer token of the principal)", tag: 'auth', auth: 'token', status: 201,
    body: z.strictObject({ alg: z.literal('ed25519'), public_key: b64uString(32) }), response: z.strictObject({ key_id: z.string() }),
  }, async ({ body, req }) => {
    const who = await app.principal(req);
    const pk = Uint8Array.from(Buffer.from(body.public_key, 'base64url'));
    const base = { ns: who.ns, principal: who.id, auth: 'token' as const, op: 'signing_keys.add' };
    if (pk.length !== 32 || Buffer.from(pk).toString('base64url') !== body.public_key) {
      await ctx.audit.recordFailure({ ...base, outcome: 'error', code: 'KW_INVALID_ARGUMENT' });
      throw new ApiError('KW_INVALID_ARGUMENT', 'public_key must be 32 bytes of canonical base64url');
    }
    const keyId = newId('dk_');
    await ctx.audit.record({ ...base, outcome: 'allowed', details: { key_id: keyId } }, async (tx) => {
      await tx.addSigningKey({ keyId, principal: who.id, alg: 'ed25519', publicKey: pk, created: new Date() });
      return { result: undefined };
    });
    return { key_id: keyId };
  });
}
