/** Policies: PUT a new version of a namespace's policy document (admin), GET the one in force. */
import { z } from 'zod';
import { NsParam, type App } from '../app.js';
import { ApiError } from '../errors.js';
import { PolicyDocumentSchema } from '../policy.js';
import { approvalOf, sensitiveGates } from '../sensitive.js';
import { guarded } from './common.js';

const Params = z.strictObject({ ns: NsParam, id: z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/) });
const View = z.strictObject({ id: z.string(), ns: z.string(), version: z.int(), document: PolicyDocumentSchema });

export function policyRoutes(app: App): void {
  const { ctx } = app;
  app.route({
    method: 'PUT', url: '/v1/policies/:ns/:id', summary: 'Store a new version of a policy (default deny; grants only)', tag: 'policies', auth: 'admin',
    params: Params, body: PolicyDocumentSchema, response: View,
  }, ({ params, body, req }) => guarded(app, req, { op: 'policies.put', auditOp: 'policies.put', ns: params.ns }, async (g) => {
    // A policy change needs a step-up bound to this exact request, the quorum's approval when a rule covers it,
    // and takes effect only as a governance snapshot the keyholder signs (api/sensitive.ts), all in the change's transaction.
    const gates = await sensitiveGates(app, req, g.who, g.event, { governance: true });
    const event = gates.event;
    const existing = await ctx.store.getPolicy(params.id);
    if (existing && existing.ns !== params.ns) throw new ApiError('KW_STORE_CONFLICT', `policy ${params.id} belongs to namespace ${existing.ns}`);
    const version = (existing?.version ?? 0) + 1;
    const row = await ctx.audit.record({ ...event, outcome: 'allowed', details: { ...approvalOf(event), policy: params.id, version } }, async (tx) => {
      await gates.inTx(tx);
      if (!(await tx.getNamespace(params.ns))) await tx.createNamespace({ name: params.ns, created: new Date() });
      return { result: await tx.putPolicy({ id: params.id, ns: params.ns, version, document: body, created: new Date() }) };
    });
    await gates.after();
    return { id: row.id, ns: row.ns, version: row.version, document: body };
  }));

  app.route({
    method: 'GET', url: '/v1/policies/:ns/:id', summary: 'The policy version in force', tag: 'policies', auth: 'admin', params: Params, response: View,
  }, ({ params, req }) => guarded(app, req, { op: 'policies.read', auditOp: 'policies.read', ns: params.ns }, async ({ event }) => {
    const row = await ctx.store.getPolicy(params.id);
    if (!row || row.ns !== params.ns) throw new ApiError('KW_NOT_FOUND', `no policy ${params.ns}/${params.id}`);
    await ctx.audit.record({ ...event, outcome: 'allowed', details: { policy: params.id } });
    return { id: row.id, ns: row.ns, version: row.version, document: PolicyDocumentSchema.parse(row.document) };
  }));
}
