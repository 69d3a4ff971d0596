/**
 * Device signing keys: a principal registers its Ed25519 request-signing
 * key, lists and revokes its own; an administrator lists and revokes any
 * principal's (a lost device). A revoked key signs nothing again: the API
 * refuses it before the keyholder is asked. (Disabling a principal revokes
 * all of them: routes/principals.ts.)
 */
import { z } from 'zod';
import type { App } from '../app.js';
import { b64uString } from '../app.js';
import { newId, type Principal } from '../auth.js';
import { ApiError } from '../errors.js';
import { decide, type Operation } from '../policy.js';
import { signingKeyView } from './principals.js';

const Ident = z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');
const SigningKeyView = z.strictObject({ key_id: z.string(), principal: z.string(), alg: z.string(), created: z.string(), revoked_at: z.string().nullable() });

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
    if (ctx.directory && ((await ctx.store.getDirEntityByPrincipal(who.id)) !== null || ctx.directory.requireDevices)) {
      // Issue #6: keys of directory devices are registered by the directory (directory/gate.ts).
      await ctx.audit.recordFailure({ ...base, outcome: 'denied', code: 'KW_DIR_NOT_A_DEVICE' });
      throw new ApiError('KW_DIR_NOT_A_DEVICE', 'request-signing keys of this principal are its directory devices\' keys: enroll or approve a device instead');
    }
    const keyId = newId('dk_');
    await ctx.audit.record({ ...base, outcome: 'allowed', details: { key_id: keyId } }, async (tx) => {
      await tx.addSigningKey({ keyId, principal: who.id, alg: 'ed25519', publicKey: pk, created: new Date() });
      return { result: undefined };
    });
    return { key_id: keyId };
  });

  /** The caller acting on `target`'s keys: itself always; another principal only with admin rights (audited refusal). */
  async function actingOn(who: Principal, target: string | undefined, op: Operation): Promise<{ who: Principal; principal: string }> {
    const principal = target ?? who.id;
    if (principal !== who.id && !decide(who, op, '*', {}, []).allowed) {
      await ctx.audit.recordFailure({ ns: who.ns, principal: who.id, auth: 'token', op, outcome: 'denied', code: 'KW_FORBIDDEN', details: { principal_id: principal } });
      throw new ApiError('KW_FORBIDDEN', `only an administrator acts on another principal's signing keys (${op})`);
    }
    return { who, principal };
  }

  app.route({
    method: 'GET', url: '/v1/auth/signing-keys', summary: "List request-signing keys: the caller's own, or (admin) another principal's with ?principal=", tag: 'auth', auth: 'token',
    query: z.strictObject({ principal: Ident.optional() }), response: z.strictObject({ signing_keys: z.array(SigningKeyView) }),
  }, async ({ query, req }) => {
    const { who, principal } = await actingOn(await app.principal(req), query.principal, 'signing_keys.read');
    const base = { ns: who.ns, principal: who.id, auth: 'token' as const, op: 'signing_keys.read', details: { principal_id: principal } };
    if (!(await ctx.store.getPrincipal(principal))) {
      await ctx.audit.recordFailure({ ...base, outcome: 'error', code: 'KW_NOT_FOUND' });
      throw new ApiError('KW_NOT_FOUND', `no principal ${principal}`);
    }
    const keys = await ctx.store.listSigningKeys(principal);
    await ctx.audit.record({ ...base, outcome: 'allowed' });
    return { signing_keys: keys.map((k) => ({ ...signingKeyView(k), principal: k.principal })) };
  });

  app.route({
    method: 'DELETE', url: '/v1/auth/signing-keys/:key_id', summary: "Revoke a request-signing key (the caller's own; an administrator's for anyone)", tag: 'auth', auth: 'token',
    params: z.strictObject({ key_id: Ident }), response: SigningKeyView,
  }, async ({ params, req }) => {
    const who = await app.principal(req);
    const found = await ctx.store.getSigningKey(params.key_id);
    // Another principal's key is "not found" to a non-admin (no oracle); an admin acts on anyone's.
    const { principal } = await actingOn(who, found?.principal ?? who.id, 'signing_keys.revoke').catch((e: unknown) => {
      throw e instanceof ApiError && e.code === 'KW_FORBIDDEN' ? new ApiError('KW_NOT_FOUND', `no signing key ${params.key_id}`) : e;
    });
    const base = { ns: who.ns, principal: who.id, auth: 'token' as const, op: 'signing_keys.revoke', details: { key_id: params.key_id, principal_id: principal } };
    if (!found) {
      await ctx.audit.recordFailure({ ...base, outcome: 'error', code: 'KW_NOT_FOUND' });
      throw new ApiError('KW_NOT_FOUND', `no signing key ${params.key_id}`);
    }
    const row = await ctx.audit.record({ ...base, outcome: 'allowed', details: { ...base.details, ...(found.revokedAt ? { already_revoked: true } : {}) } }, async (tx) => ({ result: await tx.revokeSigningKey(found.keyId, new Date()) }));
    return { ...signingKeyView(row), principal: row.principal };
  });
}
