/**
 * Bearer tokens: create (admin; creates the principal when new) and revoke.
 * A disabled principal gets no new token (KW_PRINCIPAL_DISABLED). The
 * bootstrap token of `keyward init` may only issue admin tokens to people
 * and revoke its own (bootstrap.ts).
 */
import { z } from 'zod';
import { NsParam, type App } from '../app.js';
import { newId, newToken } from '../auth.js';
import { BOOTSTRAP_PRINCIPAL, checkBootstrapEnrollment } from '../bootstrap.js';
import { ApiError } from '../errors.js';
import { approvalOf, sensitiveGates } from '../sensitive.js';
import { guarded } from './common.js';

const Ident = z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');

export function tokenRoutes(app: App): void {
  const { ctx } = app;
  app.route({
    method: 'POST', url: '/v1/tokens', summary: 'Issue a bearer token for a principal (created when new)', tag: 'tokens', auth: 'admin', status: 201,
    body: z.strictObject({
      principal: Ident, ns: NsParam.optional(), kind: z.enum(['person', 'service']).optional(), roles: z.array(Ident).max(64).optional(),
      admin: z.boolean().optional(), ttl_seconds: z.int().min(60).max(10 * 365 * 86400).optional(),
    }),
    response: z.strictObject({ id: z.string(), token: z.string(), principal: z.string(), admin: z.boolean(), expires_at: z.string() }),
  }, ({ body, req }) => guarded(app, req, { op: 'tokens.create', auditOp: 'tokens.create', ns: null }, async (g) => {
    const { who } = g;
    // An admin token, or roles for the principal, need a step-up bound to this exact request and the quorum's
    // approval when a rule covers them; roles take effect only as a signed governance snapshot (api/sensitive.ts).
    if (who.bootstrap) checkBootstrapEnrollment(body, await ctx.store.getPrincipal(body.principal));
    const gates = await sensitiveGates(app, req, who, g.event, { governance: body.roles !== undefined });
    const event = gates.event;
    const refuseDisabled = (p: { id: string; disabledAt: Date | null } | null) => {
      if (p?.disabledAt) throw new ApiError('KW_PRINCIPAL_DISABLED', `principal ${p.id} is disabled; it gets no new token`);
    };
    const target = await ctx.store.getPrincipal(body.principal);
    if (who.bootstrap) checkBootstrapEnrollment(body, target);
    refuseDisabled(target);
    const { token, hash } = newToken();
    const id = newId('tok_');
    const expiresAt = new Date(Date.now() + (body.ttl_seconds ?? 30 * 86400) * 1000);
    await ctx.audit.record({ ...event, outcome: 'allowed', details: { ...approvalOf(event), token_id: id, for: body.principal, admin: body.admin ?? false } }, async (tx) => {
      const p = await tx.getPrincipal(body.principal);
      if (who.bootstrap) checkBootstrapEnrollment(body, p);
      refuseDisabled(p);
      const ns = body.ns ?? 'default';
      if (!p) {
        if (!(await tx.getNamespace(ns))) await tx.createNamespace({ name: ns, created: new Date() });
        await tx.createPrincipal({ id: body.principal, ns, kind: body.kind ?? 'service', name: body.principal, roles: body.roles ?? [], created: new Date() });
      } else if (body.roles !== undefined) {
        await tx.setPrincipalRoles(body.principal, body.roles);
      }
      await tx.createToken({ id, tokenHash: hash, principal: body.principal, admin: body.admin ?? false, expiresAt, created: new Date() });
      await gates.inTx(tx);
      return { result: undefined };
    });
    await gates.after();
    return { id, token, principal: body.principal, admin: body.admin ?? false, expires_at: expiresAt.toISOString() };
  }));

  app.route({
    method: 'DELETE', url: '/v1/tokens/:id', summary: 'Revoke a token', tag: 'tokens', auth: 'admin',
    params: z.strictObject({ id: Ident }), response: z.strictObject({ id: z.string(), revoked_at: z.string() }),
  }, ({ params, req }) => guarded(app, req, { op: 'tokens.revoke', auditOp: 'tokens.revoke', ns: null }, async ({ who, event }) => {
    const t = await ctx.store.getToken(params.id);
    if (!t) throw new ApiError('KW_NOT_FOUND', `no token ${params.id}`);
    if (who.bootstrap && t.principal !== BOOTSTRAP_PRINCIPAL) throw new ApiError('KW_BOOTSTRAP_ONLY', 'the initial admin token only revokes its own tokens');
    const row = await ctx.audit.record({ ...event, outcome: 'allowed', details: { token_id: params.id } }, async (tx) => ({ result: await tx.revokeToken(params.id, new Date()) }));
    return { id: row.id, revoked_at: row.revokedAt!.toISOString() };
  }));
}
