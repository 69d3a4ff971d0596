/** Key administration: create, list, show, rotate, version lifecycle, minimum decryption version, public keys. */
import { z } from 'zod';
import { KEY_TYPES } from '../../store/index.js';
import type { StoreTx } from '../../store/index.js';
import { NsParam, type App } from '../app.js';
import { b64u, unb64u } from '../audit-pipe.js';
import { ApiError } from '../errors.js';
import type { Operation } from '../policy.js';
import { guarded, keyView, requireKey, requireVersion, versionView } from './common.js';

const KeyParams = z.strictObject({ ns: NsParam, name: NsParam });
const VersionParams = z.strictObject({ ns: NsParam, name: NsParam, v: z.coerce.number().int().min(1).max(2 ** 31 - 1) });
const VersionAction = VersionParams.extend({ action: z.enum(['disable', 'enable', 'schedule-deletion', 'cancel-deletion', 'destroy']) });
const KeyVersionView = z.strictObject({
  version: z.int(), state: z.enum(['enabled', 'disabled', 'scheduled_for_deletion', 'destroyed']), created: z.string(),
  deletion_at: z.string().nullable(), destroyed_at: z.string().nullable(), public_key: z.string().optional(),
});
const KeyView = z.strictObject({
  ns: z.string(), name: z.string(), type: z.enum(KEY_TYPES), created: z.string(), rotation_period_seconds: z.int().nullable(),
  min_decryption_version: z.int(), latest_version: z.int(), versions: z.array(KeyVersionView).optional(),
});

const ACTION: Record<z.infer<typeof VersionAction>['action'], { op: Operation; audit: string }> = {
  disable: { op: 'keys.disable', audit: 'keys.disable' },
  enable: { op: 'keys.enable', audit: 'keys.enable' },
  'schedule-deletion': { op: 'keys.schedule_deletion', audit: 'keys.schedule_deletion' },
  'cancel-deletion': { op: 'keys.cancel_deletion', audit: 'keys.cancel_deletion' },
  destroy: { op: 'keys.destroy', audit: 'keys.destroy' },
};

async function ensureNamespace(tx: StoreTx, ns: string): Promise<void> {
  if (!(await tx.getNamespace(ns))) await tx.createNamespace({ name: ns, created: new Date() });
}

export function keyRoutes(app: App): void {
  const { ctx } = app;

  app.route({
    method: 'POST', url: '/v1/keys/:ns/:name', summary: 'Create a key (version 1)', tag: 'keys', auth: 'admin', status: 201,
    params: KeyParams, body: z.strictObject({ type: z.enum(KEY_TYPES), rotation_period_seconds: z.int().min(3600).max(10 * 365 * 86400).optional() }), response: KeyView,
  }, ({ params, body, req }) => guarded(app, req, { op: 'keys.create', auditOp: 'keys.create', ns: params.ns, key: params.name, version: 1 }, async ({ event }) => {
    if (await ctx.store.getKey(params.ns, params.name)) throw new ApiError('KW_KEY_EXISTS', `key ${params.ns}/${params.name} exists`);
    return ctx.audit.record({ ...event, outcome: 'allowed' }, async (tx, ev) => {
      if (await tx.getKey(params.ns, params.name)) throw new ApiError('KW_KEY_EXISTS', `key ${params.ns}/${params.name} exists`);
      await ensureNamespace(tx, params.ns);
      const g = await ctx.keyholder.call('generate-version', { event: ev.b64, ref: { ns: params.ns, key: params.name, version: 1, type: body.type } });
      const { key, version } = await tx.createKey({
        ns: params.ns, name: params.name, type: body.type, created: new Date(), rotationPeriodSeconds: body.rotation_period_seconds ?? null,
        firstVersion: { wrapped: unb64u(g.wrapped), publicKey: g.publicKey ? unb64u(g.publicKey) : null },
      });
      return { result: keyView(key, [version]), leaf: g.leaf };
    });
  }));

  app.route({
    method: 'GET', url: '/v1/keys/:ns', summary: 'List the keys of a namespace', tag: 'keys', auth: 'admin',
    params: z.strictObject({ ns: NsParam }), response: z.strictObject({ keys: z.array(KeyView) }),
  }, ({ params, req }) => guarded(app, req, { op: 'keys.read', auditOp: 'keys.read', ns: params.ns }, async ({ event }) => {
    const keys = await ctx.store.listKeys(params.ns);
    await ctx.audit.record({ ...event, outcome: 'allowed' });
    return { keys: keys.map((k) => keyView(k)) };
  }));

  app.route({
    method: 'GET', url: '/v1/keys/:ns/:name', summary: 'Show a key and its versions', tag: 'keys', auth: 'admin', params: KeyParams, response: KeyView,
  }, ({ params, req }) => guarded(app, req, { op: 'keys.read', auditOp: 'keys.read', ns: params.ns, key: params.name }, async ({ event }) => {
    const k = await requireKey(ctx.store, params.ns, params.name);
    const versions = await ctx.store.listKeyVersions(params.ns, params.name);
    await ctx.audit.record({ ...event, outcome: 'allowed' });
    return keyView(k, versions);
  }));

  app.route({
    method: 'POST', url: '/v1/keys/:ns/:name/rotate', summary: 'Add a new key version', tag: 'keys', auth: 'admin', params: KeyParams, response: KeyView,
  }, async ({ params, req }) => {
    const k0 = await ctx.store.getKey(params.ns, params.name);
    const next = (k0?.latestVersion ?? 0) + 1;
    return guarded(app, req, { op: 'keys.rotate', auditOp: 'keys.rotate', ns: params.ns, key: params.name, version: next }, async ({ event }) => {
      const k = await requireKey(ctx.store, params.ns, params.name);
      if (k.latestVersion + 1 !== next) throw new ApiError('KW_STORE_CONFLICT', 'the key was rotated concurrently; retry');
      return ctx.audit.record({ ...event, outcome: 'allowed' }, async (tx, ev) => {
        const g = await ctx.keyholder.call('generate-version', { event: ev.b64, ref: { ns: params.ns, key: params.name, version: next, type: k.type } });
        await tx.rotateKey({ ns: params.ns, key: params.name, version: next, wrapped: unb64u(g.wrapped), publicKey: g.publicKey ? unb64u(g.publicKey) : null, created: new Date() });
        const key = (await tx.getKey(params.ns, params.name))!;
        return { result: keyView(key, await tx.listKeyVersions(params.ns, params.name)), leaf: g.leaf };
      });
    });
  });

  app.route({
    method: 'POST', url: '/v1/keys/:ns/:name/versions/:v/:action', summary: 'disable | enable | schedule-deletion {days: 7..30} | cancel-deletion | destroy a version', tag: 'keys', auth: 'admin',
    params: VersionAction, body: z.strictObject({ days: z.int().min(7).max(30).optional() }), response: KeyVersionView,
  }, ({ params, body, req }) => {
    const a = ACTION[params.action];
    return guarded(app, req, { op: a.op, auditOp: a.audit, ns: params.ns, key: params.name, version: params.v }, async ({ event }) => {
      const current = await requireVersion(ctx.store, params.ns, params.name, params.v);
      if (params.action !== 'schedule-deletion' && body.days !== undefined) throw new ApiError('KW_INVALID_ARGUMENT', 'only schedule-deletion takes days');
      if (params.action === 'schedule-deletion' && body.days === undefined) throw new ApiError('KW_INVALID_ARGUMENT', 'schedule-deletion needs { days: 7..30 }');
      const ref = { ns: params.ns, key: params.name, version: params.v };
      const result = await ctx.audit.record({ ...event, outcome: 'allowed', details: { from: current.state } }, async (tx) => {
        switch (params.action) {
          case 'disable': return { result: await tx.setKeyVersionState(ref, { state: 'disabled' }) };
          case 'enable': return { result: await tx.setKeyVersionState(ref, { state: 'enabled' }) };
          case 'schedule-deletion': return { result: await tx.setKeyVersionState(ref, { state: 'scheduled_for_deletion', deletionAt: new Date(Date.now() + body.days! * 86_400_000) }) };
          case 'cancel-deletion': return { result: await tx.setKeyVersionState(ref, { state: 'disabled' }) };
          case 'destroy': return { result: await tx.destroyKeyVersion(ref, new Date()) };
        }
      });
      if (params.action === 'destroy') await ctx.store.checkpoint().catch(() => undefined);
      return versionView(result);
    });
  });

  app.route({
    method: 'POST', url: '/v1/keys/:ns/:name/min-decryption-version', summary: 'Set the minimum version that may still decrypt', tag: 'keys', auth: 'admin',
    params: KeyParams, body: z.strictObject({ version: z.int().min(1) }), response: KeyView,
  }, ({ params, body, req }) => guarded(app, req, { op: 'keys.update', auditOp: 'keys.update', ns: params.ns, key: params.name, version: body.version }, async ({ event }) => {
    await requireKey(ctx.store, params.ns, params.name);
    return ctx.audit.record({ ...event, outcome: 'allowed' }, async (tx) => ({ result: keyView(await tx.updateKey(params.ns, params.name, { minDecryptionVersion: body.version })) }));
  }));

  app.route({
    method: 'GET', url: '/v1/keys/:ns/:name/versions/:v/public', summary: 'The public key of an asymmetric version', tag: 'keys', auth: 'admin',
    params: VersionParams, response: z.strictObject({ key: z.string(), version: z.int(), type: z.string(), public_key: z.string() }),
  }, ({ params, req }) => guarded(app, req, { op: 'keys.read', auditOp: 'keys.read', ns: params.ns, key: params.name, version: params.v }, async ({ event }) => {
    const k = await requireKey(ctx.store, params.ns, params.name);
    const v = await requireVersion(ctx.store, params.ns, params.name, params.v);
    if (!v.publicKey) throw new ApiError('KW_KEY_TYPE_MISMATCH', `${k.type} keys have no public key`);
    await ctx.audit.record({ ...event, outcome: 'allowed' });
    return { key: `${k.ns}/${k.name}`, version: v.version, type: k.type, public_key: b64u(v.publicKey) };
  }));
}
