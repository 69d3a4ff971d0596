/**
 * Read-only views an operator (and the web console) needs that no other
 * route gives: the namespaces, the keys past their rotation period, and the
 * audit log's public key. Reads of namespaces and overdue keys are admin
 * reads, audited as `keys.read` like the key listings; the log's verifier
 * key is public (it is printed by `keyward init` and handed to auditors).
 */
import { z } from 'zod';
import { AUDIT_HMAC_KEY } from '../../keyholder/service.js';
import { lifecycleNow, type App } from '../app.js';
import { ApiError } from '../errors.js';
import { guarded } from './common.js';

const Overdue = z.strictObject({
  ns: z.string(), name: z.string(), type: z.string(), latest_version: z.int(), rotation_period_seconds: z.int(),
  latest_created: z.string(), due_since: z.string(),
});

export function inventoryRoutes(app: App): void {
  const { ctx } = app;

  app.route({
    method: 'GET', url: '/v1/namespaces', summary: 'List namespaces', tag: 'keys', auth: 'admin',
    response: z.strictObject({ namespaces: z.array(z.strictObject({ name: z.string(), created: z.string() })) }),
  }, ({ req }) => guarded(app, req, { op: 'keys.read', auditOp: 'keys.read', ns: null }, async ({ event }) => {
    const all = await ctx.store.listNamespaces();
    await ctx.audit.record({ ...event, outcome: 'allowed', details: { ...event.details, what: 'namespaces' } });
    return { namespaces: all.map((n) => ({ name: n.name, created: n.created.toISOString() })) };
  }));

  app.route({
    method: 'GET', url: '/v1/rotation/overdue', summary: 'Keys whose latest version is older than their rotation period (the scheduler rotates them on its next tick)', tag: 'keys', auth: 'admin',
    response: z.strictObject({ keys: z.array(Overdue) }),
  }, ({ req }) => guarded(app, req, { op: 'keys.read', auditOp: 'keys.read', ns: null }, async ({ event }) => {
    const now = lifecycleNow(ctx);
    const due = (await ctx.store.listKeysDueForRotation(now)).filter((k) => k.name !== AUDIT_HMAC_KEY && k.rotationPeriodSeconds !== null);
    const keys: z.infer<typeof Overdue>[] = [];
    for (const k of due) {
      const v = await ctx.store.getKeyVersion(k.ns, k.name, k.latestVersion);
      if (!v) continue;
      const period = k.rotationPeriodSeconds!;
      keys.push({
        ns: k.ns, name: k.name, type: k.type, latest_version: k.latestVersion, rotation_period_seconds: period,
        latest_created: v.created.toISOString(), due_since: new Date(v.created.getTime() + period * 1000).toISOString(),
      });
    }
    await ctx.audit.record({ ...event, outcome: 'allowed', details: { ...event.details, what: 'rotation_overdue', count: keys.length } });
    return { keys };
  }));

  app.route({
    method: 'GET', url: '/v1/audit/verifier-key', summary: "The audit log's origin and public key (C2SP note verifier key); pin it out of band", tag: 'audit', auth: 'none',
    response: z.strictObject({ origin: z.string(), verifier_key: z.string() }),
  }, async () => {
    const st = await ctx.keyholder.call('status', {}, { timeoutMs: 2000 });
    if (!st.initialized || st.audit.origin === null || st.audit.verifierKey === null) throw new ApiError('KW_NOT_INITIALIZED');
    return { origin: st.audit.origin, verifier_key: st.audit.verifierKey };
  });
}
