/**
 * Key administration: create, list, show, rotate, version lifecycle, minimum
 * decryption version, public keys.
 *
 * `<ns>/audit-hmac` is the namespace's audit redaction key (audit-pipe.ts):
 * the service creates it on first use, admins may rotate it (later events use
 * the new version), and nothing else is done to it here. Destroying a version
 * writes a `keys.destroy` event carrying a receipt signed by the keyholder
 * (audit/receipt.ts), in the same transaction as the erasure.
 */
import { createHash } from 'node:crypto';
import { parseVerifierKey } from '@keyward/tlog';
import { z } from 'zod';
import type { AuditEvent } from '../../audit/event.js';
import { destroyReceipt, verifyReceipt } from '../../audit/receipt.js';
import { AUDIT_HMAC_KEY } from '../../keyholder/service.js';
import { KEY_TYPES } from '../../store/index.js';
import type { KeyRow, KeyVersionRow, StoreTx } from '../../store/index.js';
import { NsParam, type App } from '../app.js';
import { b64u, unb64u } from '../audit-pipe.js';
import { ApiError } from '../errors.js';
import type { Operation } from '../policy.js';
import { guarded, keyView, requireKey, requireVersion, versionView, type Guarded } from './common.js';

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

const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const fromHex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));

function reserved(name: string, what: string): void {
  if (name === AUDIT_HMAC_KEY) throw new ApiError('KW_INVALID_ARGUMENT', `${AUDIT_HMAC_KEY} is the namespace's audit redaction key: the service creates it, and it can only be rotated (${what} refused)`);
}

export function keyRoutes(app: App): void {
  const { ctx } = app;

  /**
   * Destroys a version scheduled for deletion: the keyholder checks the blob
   * is that version's and signs a receipt over its hash and the time; the
   * receipt is checked against the keyholder's published key, then the
   * `keys.destroy` event carrying it and the erasure commit together (only if
   * the stored blob is still the one receipted).
   */
  async function destroyWithReceipt({ who, event }: Guarded, k: KeyRow, v: KeyVersionRow & { wrapped: Uint8Array }): Promise<KeyVersionRow> {
    const time = new Date();
    const stored = { ns: k.ns, key: k.name, version: v.version, type: k.type, wrapped: b64u(v.wrapped), ...(v.publicKey ? { publicKey: b64u(v.publicKey) } : {}) };
    const signed = await ctx.keyholder.call('destroy-receipt', { version: stored, time: time.toISOString() });
    const input = await destroyReceipt(
      { ns: k.ns, key: k.name, version: v.version, wrapped: v.wrapped, publicKey: v.publicKey, time, principal: who.id, auth: 'token', request: event.request ?? null },
      { publicKey: fromHex(signed.signer), sign: () => fromHex(signed.signature) },
    );
    const st = await ctx.keyholder.call('status', {});
    if (!st.audit.verifierKey) throw new ApiError('KW_INTERNAL', 'the keyholder publishes no checkpoint key');
    const receipt = verifyReceipt({ ...input, index: 0 } as AuditEvent, [parseVerifierKey(st.audit.verifierKey).publicKey]);
    const ref = { ns: k.ns, key: k.name, version: v.version };
    return ctx.audit.record({ ...input, details: { ...event.details, ...input.details, from: v.state } }, async (tx) => {
      const now = await tx.getKeyVersion(k.ns, k.name, v.version);
      if (!now || now.wrapped === null || sha256Hex(now.wrapped) !== receipt.blob_sha256) throw new ApiError('KW_STORE_CONFLICT', 'the version changed while it was being destroyed; retry');
      return { result: await tx.destroyKeyVersion(ref, time) };
    });
  }

  app.route({
    method: 'POST', url: '/v1/keys/:ns/:name', summary: 'Create a key (version 1)', tag: 'keys', auth: 'admin', status: 201,
    params: KeyParams, body: z.strictObject({ type: z.enum(KEY_TYPES), rotation_period_seconds: z.int().min(3600).max(10 * 365 * 86400).optional() }), response: KeyView,
  }, ({ params, body, req }) => guarded(app, req, { op: 'keys.create', auditOp: 'keys.create', ns: params.ns, key: params.name, version: 1 }, async ({ event }) => {
    reserved(params.name, 'create');
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
    // The audit redaction key is the service's own (shown by name, never listed).
    return { keys: keys.filter((k) => k.name !== AUDIT_HMAC_KEY).map((k) => keyView(k)) };
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
      const view = await ctx.audit.record({ ...event, outcome: 'allowed' }, async (tx, ev) => {
        const g = await ctx.keyholder.call('generate-version', { event: ev.b64, ref: { ns: params.ns, key: params.name, version: next, type: k.type } });
        await tx.rotateKey({ ns: params.ns, key: params.name, version: next, wrapped: unb64u(g.wrapped), publicKey: g.publicKey ? unb64u(g.publicKey) : null, created: new Date() });
        const key = (await tx.getKey(params.ns, params.name))!;
        return { result: keyView(key, await tx.listKeyVersions(params.ns, params.name)), leaf: g.leaf };
      });
      // Later events of the namespace are redacted under the new audit key version.
      if (params.name === AUDIT_HMAC_KEY) ctx.audit.forgetAuditKey(params.ns);
      return view;
    });
  });

  app.route({
    method: 'POST', url: '/v1/keys/:ns/:name/versions/:v/:action', summary: 'disable | enable | schedule-deletion {days: 7..30} | cancel-deletion | destroy a version', tag: 'keys', auth: 'admin',
    params: VersionAction, body: z.strictObject({ days: z.int().min(7).max(30).optional() }), response: KeyVersionView,
  }, ({ params, body, req }) => {
    const a = ACTION[params.action];
    return guarded(app, req, { op: a.op, auditOp: a.audit, ns: params.ns, key: params.name, version: params.v }, async (g) => {
      const { event } = g;
      reserved(params.name, params.action);
      const current = await requireVersion(ctx.store, params.ns, params.name, params.v);
      if (params.action !== 'schedule-deletion' && body.days !== undefined) throw new ApiError('KW_INVALID_ARGUMENT', 'only schedule-deletion takes days');
      if (params.action === 'schedule-deletion' && body.days === undefined) throw new ApiError('KW_INVALID_ARGUMENT', 'schedule-deletion needs { days: 7..30 }');
      const ref = { ns: params.ns, key: params.name, version: params.v };
      if (params.action === 'destroy' && current.state === 'scheduled_for_deletion' && current.wrapped !== null) {
        const destroyed = await destroyWithReceipt(g, await requireKey(ctx.store, params.ns, params.name), current as KeyVersionRow & { wrapped: Uint8Array });
        await ctx.store.checkpoint().catch(() => undefined);
        return versionView(destroyed);
      }
      const result = await ctx.audit.record({ ...event, outcome: 'allowed', details: { ...event.details, from: current.state } }, async (tx) => {
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
