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
import { z } from 'zod';
import { AUDIT_HMAC_KEY } from '../../keyholder/service.js';
import { KEY_TYPES } from '../../store/index.js';
import type { KeyRow, KeyType, KeyVersionRow, StoreTx } from '../../store/index.js';
import { NsParam, b64uString, lifecycleNow, type App } from '../app.js';
import { b64u, unb64u } from '../audit-pipe.js';
import { ApiError } from '../errors.js';
import { destroyVersionWithReceipt } from '../lifecycle/destroy.js';
import { isHsmResident, residentMetaKey, rotateKeyVersion } from '../lifecycle/rotate.js';
import type { Operation } from '../policy.js';
import type { QuorumGate } from '../quorum-gate.js';
import { sensitiveGates } from '../sensitive.js';
import { guarded, keyView, requireKey, requireVersion, versionView, type Guarded } from './common.js';

/** Where a key's material comes from. Recorded in the store's meta table (`key.origin:<ns>/<name>`) when `external`. */
export const KEY_ORIGINS = ['generated', 'external'] as const;
export type KeyOrigin = (typeof KEY_ORIGINS)[number];

const KeyParams = z.strictObject({ ns: NsParam, name: NsParam });
/** Automatic rotation period, seconds: at least an hour, at most ten years (the scheduler rotates when the latest version is that old). */
const RotationPeriod = z.int().min(3600).max(10 * 365 * 86400);
const VersionParams = z.strictObject({ ns: NsParam, name: NsParam, v: z.coerce.number().int().min(1).max(2 ** 31 - 1) });
const VersionAction = VersionParams.extend({ action: z.enum(['disable', 'enable', 'schedule-deletion', 'cancel-deletion', 'destroy']) });
const KeyVersionView = z.strictObject({
  version: z.int(), state: z.enum(['enabled', 'disabled', 'scheduled_for_deletion', 'destroyed']), created: z.string(),
  deletion_at: z.string().nullable(), destroyed_at: z.string().nullable(), public_key: z.string().optional(),
});
const KeyView = z.strictObject({
  ns: z.string(), name: z.string(), type: z.enum(KEY_TYPES), created: z.string(), rotation_period_seconds: z.int().nullable(),
  min_decryption_version: z.int(), latest_version: z.int(), versions: z.array(KeyVersionView).optional(),
  /** `generated` (material born in the keyholder) or `external` (imported: bring your own key). */
  origin: z.enum(KEY_ORIGINS).optional(),
  /** True when every version is generated and used inside the HSM (`--hsm-resident`; docs/hsm.md). */
  hsm_resident: z.boolean().optional(),
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

const originMetaKey = (ns: string, name: string): string => `key.origin:${ns}/${name}`;

/** The origin of a key: `external` only when it was created by an import. */
export async function keyOrigin(store: Pick<StoreTx, 'getMeta'>, ns: string, name: string): Promise<KeyOrigin> {
  return (await store.getMeta(originMetaKey(ns, name))) === 'external' ? 'external' : 'generated';
}

function reserved(name: string, what: string): void {
  if (name === AUDIT_HMAC_KEY) throw new ApiError('KW_INVALID_ARGUMENT', `${AUDIT_HMAC_KEY} is the namespace's audit redaction key: the service creates it, and it can only be rotated (${what} refused)`);
}

export function keyRoutes(app: App): void {
  const { ctx } = app;

  /** Destroys a version scheduled for deletion, with a signed receipt (lifecycle/destroy.ts: the scheduler's path too). */
  function destroyWithReceipt({ who, event }: Guarded, k: KeyRow, v: KeyVersionRow & { wrapped: Uint8Array }, gates: { inTx(tx: StoreTx): Promise<void>; quorum: QuorumGate | null }): Promise<KeyVersionRow> {
    const q = gates.quorum;
    return destroyVersionWithReceipt(ctx, {
      key: k, version: v, time: new Date(), actor: { principal: who.id, auth: 'token', request: event.request ?? null, details: event.details ?? {} },
      inTx: (tx: StoreTx) => gates.inTx(tx),
      // The approvals the quorum gate counted: the keyholder counts them again against its signed governance.
      approval: q ? { request: q.request as Record<string, unknown>, requester: who.id, approvals: q.approvals } : null,
    });
  }

  app.route({
    method: 'POST', url: '/v1/keys/:ns/:name', summary: 'Create a key (version 1)', tag: 'keys', auth: 'admin', status: 201,
    params: KeyParams, body: z.strictObject({ type: z.enum(KEY_TYPES), rotation_period_seconds: RotationPeriod.optional(), hsm_resident: z.boolean().optional() }), response: KeyView,
  }, ({ params, body, req }) => guarded(app, req, { op: 'keys.create', auditOp: 'keys.create', ns: params.ns, key: params.name, version: 1 }, async ({ event }) => {
    reserved(params.name, 'create');
    if (await ctx.store.getKey(params.ns, params.name)) throw new ApiError('KW_KEY_EXISTS', `key ${params.ns}/${params.name} exists`);
    return ctx.audit.record({ ...event, outcome: 'allowed' }, async (tx, ev) => {
      if (await tx.getKey(params.ns, params.name)) throw new ApiError('KW_KEY_EXISTS', `key ${params.ns}/${params.name} exists`);
      await ensureNamespace(tx, params.ns);
      // --hsm-resident: generated in the HSM; the keyholder refuses it without HSM custody (KW_HSM_NOT_CONFIGURED).
      const resident = body.hsm_resident === true;
      const g = await ctx.keyholder.call('generate-version', { event: ev.b64, ref: { ns: params.ns, key: params.name, version: 1, type: body.type }, ...(resident ? { resident: true } : {}) });
      const { key, version } = await tx.createKey({
        ns: params.ns, name: params.name, type: body.type, created: lifecycleNow(ctx), rotationPeriodSeconds: body.rotation_period_seconds ?? null,
        firstVersion: { wrapped: unb64u(g.wrapped), publicKey: g.publicKey ? unb64u(g.publicKey) : null },
      });
      if (resident) await tx.setMeta(residentMetaKey(params.ns, params.name), 'hsm');
      return { result: { ...keyView(key, [version]), ...(resident ? { hsm_resident: true } : {}) }, leaf: g.leaf };
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
    const origin = await keyOrigin(ctx.store, params.ns, params.name);
    const resident = await isHsmResident(ctx.store, params.ns, params.name);
    await ctx.audit.record({ ...event, outcome: 'allowed' });
    return { ...keyView(k, versions), origin, ...(resident ? { hsm_resident: true } : {}) };
  }));

  app.route({
    method: 'POST', url: '/v1/keys/:ns/:name/rotate', summary: 'Add a new key version', tag: 'keys', auth: 'admin', params: KeyParams, response: KeyView,
  }, async ({ params, req }) => {
    const k0 = await ctx.store.getKey(params.ns, params.name);
    const next = (k0?.latestVersion ?? 0) + 1;
    return guarded(app, req, { op: 'keys.rotate', auditOp: 'keys.rotate', ns: params.ns, key: params.name, version: next }, async ({ event }) => {
      const k = await requireKey(ctx.store, params.ns, params.name);
      if (k.latestVersion + 1 !== next) throw new ApiError('KW_STORE_CONFLICT', 'the key was rotated concurrently; retry');
      if ((await keyOrigin(ctx.store, params.ns, params.name)) === 'external') {
        throw new ApiError('KW_KEY_ORIGIN_MISMATCH', `${params.ns}/${params.name} holds imported material (origin external): add versions with import, not rotate`);
      }
      // lifecycle/rotate.ts: the scheduler's automatic rotation takes the same path.
      const r = await rotateKeyVersion(ctx, { key: k, event: { ...event, outcome: 'allowed' }, created: lifecycleNow(ctx) });
      return keyView(r.key, r.versions);
    });
  });

  app.route({
    method: 'POST', url: '/v1/keys/:ns/:name/versions/:v/:action', summary: 'disable | enable | schedule-deletion {days: 7..30} | cancel-deletion | destroy a version', tag: 'keys', auth: 'admin',
    params: VersionAction, body: z.strictObject({ days: z.int().min(7).max(30).optional() }), response: KeyVersionView,
  }, ({ params, body, req }) => {
    const a = ACTION[params.action];
    return guarded(app, req, { op: a.op, auditOp: a.audit, ns: params.ns, key: params.name, version: params.v }, async (g) => {
      // destroy and schedule-deletion need a step-up bound to this exact request (api/step-up.ts) and, when a
      // quorum rule covers them, an approved approval request (quorum-gate.ts); both consumed with the change.
      const gates = await sensitiveGates(app, req, g.who, g.event, { governance: false });
      const event = gates.event;
      reserved(params.name, params.action);
      const current = await requireVersion(ctx.store, params.ns, params.name, params.v);
      if (params.action !== 'schedule-deletion' && body.days !== undefined) throw new ApiError('KW_INVALID_ARGUMENT', 'only schedule-deletion takes days');
      if (params.action === 'schedule-deletion' && body.days === undefined) throw new ApiError('KW_INVALID_ARGUMENT', 'schedule-deletion needs { days: 7..30 }');
      const ref = { ns: params.ns, key: params.name, version: params.v };
      if (params.action === 'destroy' && current.state === 'scheduled_for_deletion' && current.wrapped !== null) {
        const destroyed = await destroyWithReceipt({ ...g, event }, await requireKey(ctx.store, params.ns, params.name), current as KeyVersionRow & { wrapped: Uint8Array }, gates);
        return versionView(destroyed);
      }
      const result = await ctx.audit.record({ ...event, outcome: 'allowed', details: { ...event.details, from: current.state } }, async (tx) => {
        await gates.inTx(tx);
        switch (params.action) {
          case 'disable': return { result: await tx.setKeyVersionState(ref, { state: 'disabled' }) };
          case 'enable': return { result: await tx.setKeyVersionState(ref, { state: 'enabled' }) };
          case 'schedule-deletion': return { result: await tx.setKeyVersionState(ref, { state: 'scheduled_for_deletion', deletionAt: new Date(lifecycleNow(ctx).getTime() + body.days! * 86_400_000) }) };
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
    method: 'POST', url: '/v1/keys/:ns/:name/rotation-period', summary: 'Set (or clear, null) the automatic rotation period, in seconds (1 hour .. 10 years)', tag: 'keys', auth: 'admin',
    params: KeyParams, body: z.strictObject({ rotation_period_seconds: RotationPeriod.nullable() }), response: KeyView,
  }, ({ params, body, req }) => guarded(app, req, { op: 'keys.update', auditOp: 'keys.update', ns: params.ns, key: params.name }, async ({ event }) => {
    const k = await requireKey(ctx.store, params.ns, params.name);
    if (body.rotation_period_seconds !== null && (await keyOrigin(ctx.store, params.ns, params.name)) === 'external') {
      throw new ApiError('KW_KEY_ORIGIN_MISMATCH', `${params.ns}/${params.name} holds imported material (origin external): it cannot rotate by itself; import new versions`);
    }
    const details = { ...event.details, rotation_period_seconds: body.rotation_period_seconds, from: k.rotationPeriodSeconds };
    return ctx.audit.record({ ...event, outcome: 'allowed', details }, async (tx) => ({ result: keyView(await tx.updateKey(params.ns, params.name, { rotationPeriodSeconds: body.rotation_period_seconds })) }));
  }));

  // --- bring your own key (keyholder/import.ts) -------------------------------

  /** The key an import goes into: a new key of `type`, or the next version of an existing key of origin external. */
  async function importTarget(ns: string, name: string, type: KeyType | undefined): Promise<{ type: KeyType; existing: KeyRow | null }> {
    reserved(name, 'import');
    const k = await ctx.store.getKey(ns, name);
    if (!k) {
      if (type === undefined) throw new ApiError('KW_INVALID_ARGUMENT', `${ns}/${name} does not exist: give the type of the key to create`);
      return { type, existing: null };
    }
    if ((await keyOrigin(ctx.store, ns, name)) !== 'external') {
      throw new ApiError('KW_KEY_ORIGIN_MISMATCH', `${ns}/${name} was created with material generated by the service: imports go only into keys created by import (origin external)`);
    }
    if (type !== undefined && type !== k.type) throw new ApiError('KW_KEY_TYPE_MISMATCH', `${ns}/${name} is ${k.type}, not ${type}`);
    return { type: k.type, existing: k };
  }

  app.route({
    method: 'POST', url: '/v1/keys/:ns/:name/import-params', summary: 'Parameters for a bring-your-own-key import: a one-time RSA wrapping key (RSA_AES_KEY_WRAP_SHA_256)', tag: 'keys', auth: 'admin',
    params: KeyParams,
    body: z.strictObject({
      type: z.enum(KEY_TYPES).optional(),
      wrapping_key_spec: z.enum(['RSA_3072', 'RSA_4096']).default('RSA_3072'),
      ttl_seconds: z.int().min(1).max(86_400).optional(),
    }),
    response: z.strictObject({
      key: z.string(), type: z.enum(KEY_TYPES), token: z.string(), algorithm: z.literal('RSA_AES_KEY_WRAP_SHA_256'), wrapping_key_spec: z.enum(['RSA_3072', 'RSA_4096']),
      public_key: z.string(), public_key_pem: z.string(), public_key_sha256: z.string(), expires_at: z.string(), signer: z.string(), signature: z.string(),
    }),
  }, ({ params, body, req }) => guarded(app, req, { op: 'keys.import', auditOp: 'keys.import_params', ns: params.ns, key: params.name }, async ({ event }) => {
    const { type } = await importTarget(params.ns, params.name, body.type);
    const p = await ctx.keyholder.call('import-params', {
      ns: params.ns, key: params.name, type, bits: body.wrapping_key_spec === 'RSA_4096' ? 4096 : 3072,
      ...(body.ttl_seconds !== undefined ? { ttlSeconds: body.ttl_seconds } : {}),
    });
    const der = unb64u(p.publicKey);
    const pem = `-----BEGIN PUBLIC KEY-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PUBLIC KEY-----\n`;
    await ctx.audit.record({ ...event, outcome: 'allowed', details: { ...event.details, type, wrapping_key_spec: body.wrapping_key_spec, public_key_sha256: p.publicKeySha256, expires_at: p.expiresAt } });
    return {
      key: `${params.ns}/${params.name}`, type, token: p.token, algorithm: p.algorithm, wrapping_key_spec: body.wrapping_key_spec,
      public_key: p.publicKey, public_key_pem: pem, public_key_sha256: p.publicKeySha256, expires_at: p.expiresAt, signer: p.signer, signature: p.signature,
    };
  }));

  app.route({
    method: 'POST', url: '/v1/keys/:ns/:name/import', summary: 'Import wrapped key material: a new key (origin external), or the next version of one', tag: 'keys', auth: 'admin', status: 201,
    params: KeyParams,
    body: z.strictObject({ type: z.enum(KEY_TYPES).optional(), token: z.string().min(1).max(64), wrapped: b64uString(1024) }),
    response: KeyView,
  }, async ({ params, body, req }) => {
    const k0 = await ctx.store.getKey(params.ns, params.name);
    const version = (k0?.latestVersion ?? 0) + 1;
    return guarded(app, req, { op: 'keys.import', auditOp: 'keys.import', ns: params.ns, key: params.name, version }, async ({ event }) => {
      const { type, existing } = await importTarget(params.ns, params.name, body.type);
      if ((existing?.latestVersion ?? 0) + 1 !== version) throw new ApiError('KW_STORE_CONFLICT', 'the key changed concurrently; retry');
      return ctx.audit.record({ ...event, outcome: 'allowed', details: { ...event.details, type, origin: 'external' } }, async (tx, ev) => {
        const now = await tx.getKey(params.ns, params.name);
        if ((now?.latestVersion ?? 0) + 1 !== version) throw new ApiError('KW_STORE_CONFLICT', 'the key changed concurrently; retry');
        if (!now) await ensureNamespace(tx, params.ns);
        const g = await ctx.keyholder.call('import-version', { event: ev.b64, ref: { ns: params.ns, key: params.name, version, type }, token: body.token, wrapped: body.wrapped });
        const material = { wrapped: unb64u(g.wrapped), publicKey: g.publicKey ? unb64u(g.publicKey) : null };
        if (!now) {
          await tx.createKey({ ns: params.ns, name: params.name, type, created: new Date(), rotationPeriodSeconds: null, firstVersion: material });
          await tx.setMeta(originMetaKey(params.ns, params.name), 'external');
        } else {
          await tx.rotateKey({ ns: params.ns, key: params.name, version, ...material, created: new Date() });
        }
        const key = (await tx.getKey(params.ns, params.name))!;
        return { result: { ...keyView(key, await tx.listKeyVersions(params.ns, params.name)), origin: 'external' as const }, leaf: g.leaf };
      });
    });
  });

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
