/**
 * Principal management (admin): list and show principals with their tokens
 * and request-signing keys (ids and dates, never token hashes), set roles,
 * disable. Disabling is terminal and, in the same transaction, revokes every
 * token and signing key of the principal, so it can neither authenticate nor
 * sign a data-plane request again. Every change and read is audited.
 * (Signing keys alone: routes/auth.ts, `GET|DELETE /v1/auth/signing-keys`.)
 */
import { z } from 'zod';
import type { PrincipalRow, SigningKeyRow, Store, TokenRow } from '../../store/index.js';
import { NsParam, type App } from '../app.js';
import { ApiError } from '../errors.js';
import { sensitiveGates } from '../sensitive.js';
import { guarded } from './common.js';

const Ident = z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');
const Params = z.strictObject({ id: Ident });

const TokenView = z.strictObject({ id: z.string(), admin: z.boolean(), created: z.string(), expires_at: z.string(), revoked_at: z.string().nullable() });
const SigningKeyView = z.strictObject({ key_id: z.string(), alg: z.string(), created: z.string(), revoked_at: z.string().nullable() });
const PrincipalView = z.strictObject({
  id: z.string(), ns: z.string(), kind: z.enum(['person', 'service']), name: z.string(), roles: z.array(z.string()),
  created: z.string(), disabled_at: z.string().nullable(),
  tokens: z.array(TokenView).optional(), signing_keys: z.array(SigningKeyView).optional(),
});

const iso = (d: Date | null): string | null => d?.toISOString() ?? null;

export function tokenView(t: TokenRow) {
  return { id: t.id, admin: t.admin, created: t.created.toISOString(), expires_at: t.expiresAt.toISOString(), revoked_at: iso(t.revokedAt) };
}

export function signingKeyView(k: SigningKeyRow) {
  return { key_id: k.keyId, alg: k.alg, created: k.created.toISOString(), revoked_at: iso(k.revokedAt) };
}

function principalView(p: PrincipalRow, extra?: { tokens: readonly TokenRow[]; keys: readonly SigningKeyRow[] }) {
  return {
    id: p.id, ns: p.ns, kind: p.kind, name: p.name, roles: [...p.roles], created: p.created.toISOString(), disabled_at: iso(p.disabledAt),
    ...(extra ? { tokens: extra.tokens.map(tokenView), signing_keys: extra.keys.map(signingKeyView) } : {}),
  };
}

async function requirePrincipal(store: Pick<Store, 'getPrincipal'>, id: string): Promise<PrincipalRow> {
  const p = await store.getPrincipal(id);
  if (!p) throw new ApiError('KW_NOT_FOUND', `no principal ${id}`);
  return p;
}

export function principalRoutes(app: App): void {
  const { ctx } = app;

  app.route({
    method: 'GET', url: '/v1/principals', summary: 'List principals (of one namespace with ?ns=, else of all)', tag: 'principals', auth: 'admin',
    query: z.strictObject({ ns: NsParam.optional() }), response: z.strictObject({ principals: z.array(PrincipalView) }),
  }, ({ query, req }) => guarded(app, req, { op: 'principals.read', auditOp: 'principals.read', ns: null }, async ({ event }) => {
    const namespaces = query.ns !== undefined ? [query.ns] : (await ctx.store.listNamespaces()).map((n) => n.name);
    const rows: PrincipalRow[] = [];
    for (const ns of namespaces) rows.push(...(await ctx.store.listPrincipals(ns)));
    await ctx.audit.record({ ...event, outcome: 'allowed', details: { ...event.details, ...(query.ns !== undefined ? { namespace: query.ns } : {}), count: rows.length } });
    return { principals: rows.map((p) => principalView(p)) };
  }));

  app.route({
    method: 'GET', url: '/v1/principals/:id', summary: 'Show a principal with its tokens and request-signing keys (ids and dates only)', tag: 'principals', auth: 'admin',
    params: Params, response: PrincipalView,
  }, ({ params, req }) => guarded(app, req, { op: 'principals.read', auditOp: 'principals.read', ns: null }, async ({ event }) => {
    const p = await requirePrincipal(ctx.store, params.id);
    const [tokens, keys] = [await ctx.store.listTokens(p.id), await ctx.store.listSigningKeys(p.id)];
    await ctx.audit.record({ ...event, outcome: 'allowed', details: { ...event.details, principal_id: p.id } });
    return principalView(p, { tokens, keys });
  }));

  app.route({
    method: 'PUT', url: '/v1/principals/:id/roles', summary: "Replace a principal's roles (policies grant operations to roles)", tag: 'principals', auth: 'admin',
    params: Params, body: z.strictObject({ roles: z.array(Ident).max(64) }), response: PrincipalView,
  }, ({ params, body, req }) => guarded(app, req, { op: 'principals.update', auditOp: 'principals.update', ns: null }, async (g) => {
    // A role change needs a step-up bound to this exact request, the quorum's approval when a rule covers it,
    // and takes effect only as a governance snapshot the keyholder signs (api/sensitive.ts).
    const gates = await sensitiveGates(app, req, g.who, g.event, { governance: true });
    const event = gates.event;
    const p = await requirePrincipal(ctx.store, params.id);
    if (p.disabledAt !== null) throw new ApiError('KW_PRINCIPAL_DISABLED', `principal ${p.id} is disabled`);
    const roles = [...new Set(body.roles)];
    const row = await ctx.audit.record({ ...event, outcome: 'allowed', details: { ...event.details, principal_id: p.id, roles, from: [...p.roles] } }, async (tx) => {
      const cur = await requirePrincipal(tx, p.id);
      if (cur.disabledAt !== null) throw new ApiError('KW_PRINCIPAL_DISABLED', `principal ${p.id} is disabled`);
      const updated = await tx.setPrincipalRoles(p.id, roles);
      await gates.inTx(tx);
      return { result: updated };
    });
    await gates.after();
    return principalView(row);
  }));

  app.route({
    method: 'POST', url: '/v1/principals/:id/disable', summary: 'Disable a principal for good: revokes every token and request-signing key it has', tag: 'principals', auth: 'admin',
    params: Params,
    response: z.strictObject({ id: z.string(), disabled_at: z.string(), tokens_revoked: z.int(), signing_keys_revoked: z.int() }),
  }, ({ params, req }) => guarded(app, req, { op: 'principals.disable', auditOp: 'principals.disable', ns: null }, async ({ event }) => {
    const p = await requirePrincipal(ctx.store, params.id);
    if (p.disabledAt !== null) throw new ApiError('KW_PRINCIPAL_DISABLED', `principal ${p.id} is already disabled (since ${p.disabledAt.toISOString()})`);
    const now = new Date();
    const live = (await ctx.store.listSigningKeys(p.id)).filter((k) => k.revokedAt === null);
    return ctx.audit.record({ ...event, outcome: 'allowed', details: { ...event.details, principal_id: p.id, signing_keys: live.map((k) => k.keyId) } }, async (tx) => {
      const cur = await requirePrincipal(tx, p.id);
      if (cur.disabledAt !== null) throw new ApiError('KW_PRINCIPAL_DISABLED', `principal ${p.id} is already disabled`);
      const row = await tx.disablePrincipal(p.id, now);
      const tokens = await tx.revokePrincipalTokens(p.id, now);
      let keys = 0;
      for (const k of await tx.listSigningKeys(p.id)) {
        if (k.revokedAt !== null) continue;
        await tx.revokeSigningKey(k.keyId, now);
        keys += 1;
      }
      return { result: { id: row.id, disabled_at: now.toISOString(), tokens_revoked: tokens, signing_keys_revoked: keys } };
    });
  }));
}
