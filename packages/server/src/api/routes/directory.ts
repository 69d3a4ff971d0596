/**
 * The public-key directory over HTTP (issue #6; docs/directory.md §HTTP API):
 *
 * - reads, open to any caller (keys are public; labels inside proofs are VRF
 *   outputs): the log configuration, the signed tree head (what witnesses
 *   co-sign), consistency proofs, and searches with proofs;
 * - device changes authenticated by device signatures (no bearer token): the
 *   first device enrolls with a one-time token, further devices are approved
 *   by an existing one, a device revokes another (or itself);
 * - administration (admin token, policy ops `directory.read` / `directory.manage`):
 *   enrollment tokens, identities, revocation by an administrator, groups.
 *
 * Every change and every refused change is in the audit log; accepted
 * changes are also the next version of the entity's label in the KEYTRANS log.
 */
import { DirectoryError, encodeConfiguration, encodeMonitorResponse, encodeOwnerInitResponse, encodeSearchResponse } from '@keyward/directory';
import { ENTITY_NAME, DEVICE_ID, entityLabel } from '@keyward/client';
import { cosignatureVerifierKey } from '@keyward/tlog';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { App } from '../app.js';
import { b64u } from '../audit-pipe.js';
import { ApiError, toHttpError } from '../errors.js';
import type { StoreOps } from '../../store/types.js';
import type { ChangeOutcome, DirectoryService } from '../../directory/service.js';
import { guarded } from './common.js';

const Name = z.string().regex(ENTITY_NAME, 'must be user:NAME, service:NAME or group:NAME');
const IdentityName = Name.refine((n) => !n.startsWith('group:'), 'must be user:NAME or service:NAME');
const GroupName = Name.refine((n) => n.startsWith('group:'), 'must be group:NAME');
const DeviceId = z.string().regex(DEVICE_ID, 'lower-case letters, digits, . _ -');
const B64 = z.string().min(1).max(4096).regex(/^[A-Za-z0-9_-]+$/, 'base64url without padding');
const Version = z.int().min(0).max(0xfffffffe);
const Time = z.int().min(0).max(Number.MAX_SAFE_INTEGER);
const Device = z.strictObject({
  id: DeviceId,
  hpke: z.strictObject({ alg: z.enum(['x25519', 'xwing']), key: B64 }),
  sign: B64,
  request: z.strictObject({ key_id: z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/), key: B64 }),
});
type DeviceIn = z.output<typeof Device>;
const toKeys = (d: DeviceIn) => ({ id: d.id, hpke: d.hpke, sign: d.sign, request: { keyId: d.request.key_id, key: d.request.key } });

const ChangeView = z.strictObject({ name: z.string(), version: z.int(), tree_size: z.int() });
const changeView = (c: ChangeOutcome) => ({ name: c.name, version: c.version, tree_size: c.treeSize });

const DeviceView = z.strictObject({
  id: z.string(), hpke: z.strictObject({ alg: z.string(), key: z.string() }), sign: z.string(),
  request: z.strictObject({ key_id: z.string(), key: z.string() }), added: z.int(), added_by: z.string(),
});
const EntityView = z.strictObject({
  name: z.string(), kind: z.enum(['user', 'service', 'group']), principal: z.string().nullable(), updated: z.string(),
  devices: z.array(DeviceView).optional(), members: z.array(z.string()).optional(),
});

interface StoredDevice { id: string; hpke: { alg: string; key: string }; sign: string; request: { keyId: string; key: string }; added: number; addedBy: string }
function entityView(row: { name: string; kind: 'user' | 'service' | 'group'; principal: string | null; updated: Date; state: Record<string, unknown> }) {
  const base = { name: row.name, kind: row.kind, principal: row.principal, updated: row.updated.toISOString() };
  if (row.kind === 'group') return { ...base, members: (row.state.members as string[] | undefined) ?? [] };
  const devices = ((row.state.devices as StoredDevice[] | undefined) ?? []).map((d) => ({
    id: d.id, hpke: d.hpke, sign: d.sign, request: { key_id: d.request.keyId, key: d.request.key }, added: d.added, added_by: d.addedBy,
  }));
  return { ...base, devices };
}

/**
 * Registers /v1/directory. Without a configured directory every route answers `KW_DIR_NOT_ENABLED`,
 * so the contract (and the OpenAPI document) is the same on every server.
 */
export function directoryRoutes(app: App): void {
  const { ctx } = app;
  const dir = (): DirectoryService => {
    if (!ctx.directory) throw new ApiError('KW_DIR_NOT_ENABLED', 'the directory is not enabled on this server');
    return ctx.directory.service;
  };

  /** A device-signed change: audited (allowed, or refused with its code), run in the audit transaction. */
  async function deviceChange(req: FastifyRequest, op: string, details: Record<string, string | number>, run: (tx: StoreOps) => Promise<ChangeOutcome>): Promise<ChangeOutcome> {
    dir();
    const event = { ns: null, principal: null, auth: 'none' as const, op, details: { ...details, client: { address: req.ip } } };
    try {
      return await ctx.audit.record({ ...event, outcome: 'allowed' }, async (tx) => ({ result: await run(tx) }));
    } catch (e) {
      const code = toHttpError(e).code;
      if (code !== 'KW_KEYHOLDER_UNAVAILABLE' && code !== 'KW_SEALED') await ctx.audit.recordFailure({ ...event, outcome: 'denied', code });
      throw e;
    }
  }

  // --- reads ---------------------------------------------------------------------------------------

  app.route({
    method: 'GET', url: '/v1/directory/config', summary: "The directory log's public configuration: cipher suite, mode, signature and VRF public keys, freshness bounds", tag: 'directory', auth: 'none',
    response: z.strictObject({
      configuration: z.string(), signature_public_key: z.string(), vrf_public_key: z.string(), max_ahead_ms: z.int(), max_behind_ms: z.int(),
      /** The witness head log's note verifier key (give it to `keyward witness --log`; docs/witness.md §The directory). */
      head_log_key: z.string().optional(),
      /**
       * With directory witnesses: what a client checks heads against (the CLI's
       * KEYWARD_DIRECTORY_WITNESSES file format) — to pin once, never to take afresh on every use.
       */
      witnesses: z.strictObject({ log_key: z.string(), k: z.int(), witnesses: z.array(z.strictObject({ name: z.string(), key: z.string() })) }).optional(),
    }),
  }, async () => {
    const c = await dir().configuration();
    const headLogKey = await dir().headLogVerifierKey();
    const policy = ctx.witnesses ?? null;
    return {
      configuration: b64u(encodeConfiguration(c)), signature_public_key: b64u(c.signaturePublicKey), vrf_public_key: b64u(c.vrfPublicKey),
      max_ahead_ms: c.maxAhead, max_behind_ms: c.maxBehind, ...(headLogKey !== null ? { head_log_key: headLogKey } : {}),
      ...(headLogKey !== null && policy !== null
        ? { witnesses: { log_key: headLogKey, k: policy.k, witnesses: policy.witnesses.map((w) => ({ name: w.name, key: cosignatureVerifierKey(w.name, w.verifier.publicKey) })) } }
        : {}),
    };
  });

  app.route({
    method: 'GET', url: '/v1/directory/head', summary: 'The signed tree head of the directory log (what witnesses check and co-sign)', tag: 'directory', auth: 'none',
    response: z.strictObject({ tree_size: z.int(), root: z.string(), signature: z.string() }),
  }, async () => {
    const h = await dir().head();
    if (h === null) throw new DirectoryError('KT_NOT_FOUND', 'the directory log is empty');
    return { tree_size: h.treeSize, root: b64u(h.root), signature: b64u(h.signature) };
  });

  app.route({
    method: 'GET', url: '/v1/directory/consistency', summary: 'A consistency proof between two sizes of the directory log', tag: 'directory', auth: 'none',
    query: z.strictObject({ from: z.coerce.number().int().min(1), to: z.coerce.number().int().min(1) }),
    response: z.strictObject({ from: z.int(), to: z.int(), proof: z.array(z.string()) }),
  }, async ({ query }) => {
    const proof = await (await dir().builder()).consistency(query.from, query.to);
    return { from: query.from, to: query.to, proof: proof.map(b64u) };
  });

  app.route({
    method: 'POST', url: '/v1/directory/search', summary: "Search a label (an identity's or group's name) with proofs: the greatest version, or a fixed one", tag: 'directory', auth: 'none',
    body: z.strictObject({ name: Name, version: Version.optional(), last: z.int().min(1).optional() }),
    response: z.strictObject({ name: z.string(), response: z.string() }),
  }, async ({ body }) => {
    const b = await dir().builder();
    if ((await b.treeSize()) === 0) throw new DirectoryError('KT_NOT_FOUND', 'the directory log is empty');
    const res = await b.search({ label: entityLabel(body.name), ...(body.version !== undefined ? { version: body.version } : {}), ...(body.last !== undefined ? { last: body.last } : {}) });
    return { name: body.name, response: b64u(encodeSearchResponse(res, b.config.mode)) };
  });

  const MonitorEntries = z.array(z.strictObject({ position: z.int().min(0), version: Version })).max(255);
  app.route({
    method: 'POST', url: '/v1/directory/monitor', summary: 'Monitor a label with proofs (draft §8): as a contact (its monitoring map), or as the owner (init from a distinguished entry, then monitor)', tag: 'directory', auth: 'none',
    body: z.strictObject({
      name: Name, kind: z.enum(['contact', 'owner_init', 'owner']), last: z.int().min(1).optional(),
      entries: MonitorEntries.default([]), start: z.int().min(0).optional(), greatest_version: Version.optional(),
    }),
    response: z.strictObject({ name: z.string(), kind: z.string(), response: z.string() }),
  }, async ({ body }) => {
    const b = await dir().builder();
    if ((await b.treeSize()) === 0) throw new DirectoryError('KT_NOT_FOUND', 'the directory log is empty');
    const label = entityLabel(body.name);
    const last = body.last !== undefined ? { last: body.last } : {};
    const needStart = (): number => {
      if (body.start === undefined) throw new ApiError('KW_INVALID_ARGUMENT', 'owner monitoring needs start');
      return body.start;
    };
    let bytes: Uint8Array;
    if (body.kind === 'contact') bytes = encodeMonitorResponse(await b.contactMonitor({ label, entries: body.entries, ...last }), b.config.mode);
    else if (body.kind === 'owner_init') bytes = encodeOwnerInitResponse(await b.ownerInit({ label, start: needStart(), ...last }), b.config.mode);
    else {
      bytes = encodeMonitorResponse(await b.ownerMonitor({
        label, entries: body.entries, start: needStart(), ...last, ...(body.greatest_version !== undefined ? { greatestVersion: body.greatest_version } : {}),
      }), b.config.mode);
    }
    return { name: body.name, kind: body.kind, response: b64u(bytes) };
  });

  // --- device changes (signed by devices) -----------------------------------------------------------------

  app.route({
    method: 'POST', url: '/v1/directory/enroll', summary: "Enroll an identity's first device with a one-time enrollment token; the device signs its own keys", tag: 'directory', auth: 'none', status: 201,
    body: z.strictObject({ token: z.string().min(1).max(256), name: IdentityName, device: Device, version: Version, at: Time, pop: B64 }),
    response: ChangeView,
  }, async ({ body, req }) => changeView(await deviceChange(req, 'directory.enroll', { name: body.name, device: body.device.id, version: body.version }, (tx) =>
    dir().enroll(tx, { token: body.token, name: body.name, device: toKeys(body.device), version: body.version, at: body.at, pop: body.pop }))));

  app.route({
    method: 'POST', url: '/v1/directory/identities/:name/devices', summary: 'Add a device, approved (signed) by an existing device of the identity and by the new device itself', tag: 'directory', auth: 'none', status: 201,
    params: z.strictObject({ name: IdentityName }),
    body: z.strictObject({ device: Device, version: Version, at: Time, pop: B64, approver: DeviceId, sig: B64 }),
    response: ChangeView,
  }, async ({ params, body, req }) => changeView(await deviceChange(req, 'directory.approve', { name: params.name, device: body.device.id, approver: body.approver, version: body.version }, (tx) =>
    dir().approve(tx, { name: params.name, device: toKeys(body.device), version: body.version, at: body.at, pop: body.pop, approver: body.approver, sig: body.sig }))));

  app.route({
    method: 'POST', url: '/v1/directory/identities/:name/devices/:device/revoke', summary: 'Revoke a device, signed by a current device of the identity (itself or another)', tag: 'directory', auth: 'none',
    params: z.strictObject({ name: IdentityName, device: DeviceId }),
    body: z.strictObject({ version: Version, at: Time, by: DeviceId, sig: B64 }),
    response: ChangeView,
  }, async ({ params, body, req }) => changeView(await deviceChange(req, 'directory.revoke', { name: params.name, device: params.device, by: body.by, version: body.version }, (tx) =>
    dir().revoke(tx, { name: params.name, deviceId: params.device, version: body.version, at: body.at, by: { device: body.by, sig: body.sig } }))));

  // --- administration ------------------------------------------------------------------------------------

  app.route({
    method: 'POST', url: '/v1/directory/enroll-tokens', summary: "Issue a one-time enrollment token for an identity's first device (creates the identity; optionally binds it to a principal)", tag: 'directory', auth: 'admin', status: 201,
    body: z.strictObject({ name: IdentityName, principal: z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/).optional(), ttl_seconds: z.int().min(60).max(30 * 24 * 3600).optional() }),
    response: z.strictObject({ id: z.string(), token: z.string(), name: z.string(), expires_at: z.string(), created: z.boolean() }),
  }, ({ body, req }) => guarded(app, req, { op: 'directory.manage', auditOp: 'directory.enroll_token', ns: null }, async ({ who, event }) => {
    const service = dir();
    // The token itself is never in the audit event; its id is.
    const r = await ctx.audit.record({ ...event, outcome: 'allowed', details: { ...event.details, name: body.name, ...(body.principal !== undefined ? { bound_principal: body.principal } : {}) } }, async (tx) => ({
      result: await service.issueEnrollToken(tx, { name: body.name, by: who.id, ...(body.principal !== undefined ? { principal: body.principal } : {}), ...(body.ttl_seconds !== undefined ? { ttlSeconds: body.ttl_seconds } : {}) }),
    }));
    return { id: r.id, token: r.token, name: body.name, expires_at: r.expiresAt.toISOString(), created: r.created };
  }));

  app.route({
    method: 'GET', url: '/v1/directory/identities', summary: 'List identities and groups with their current devices and members', tag: 'directory', auth: 'admin',
    query: z.strictObject({ kind: z.enum(['user', 'service', 'group']).optional() }),
    response: z.strictObject({ entities: z.array(EntityView) }),
  }, ({ query, req }) => guarded(app, req, { op: 'directory.read', auditOp: 'directory.read', ns: null }, async ({ event }) => {
    dir();
    const rows = await ctx.store.listDirEntities(query.kind);
    await ctx.audit.record({ ...event, outcome: 'allowed', details: { ...event.details, count: rows.length } });
    return { entities: rows.map(entityView) };
  }));

  app.route({
    method: 'GET', url: '/v1/directory/identities/:name', summary: 'Show an identity (devices) or a group (members)', tag: 'directory', auth: 'admin',
    params: z.strictObject({ name: Name }), response: EntityView,
  }, ({ params, req }) => guarded(app, req, { op: 'directory.read', auditOp: 'directory.read', ns: null }, async ({ event }) => {
    const row = await dir().entity(params.name);
    await ctx.audit.record({ ...event, outcome: 'allowed', details: { ...event.details, name: params.name } });
    return entityView(row);
  }));

  app.route({
    method: 'DELETE', url: '/v1/directory/identities/:name/devices/:device', summary: 'Revoke a device as an administrator (lost device, departed person)', tag: 'directory', auth: 'admin',
    params: z.strictObject({ name: IdentityName, device: DeviceId }), response: ChangeView,
  }, ({ params, req }) => guarded(app, req, { op: 'directory.manage', auditOp: 'directory.revoke', ns: null }, async ({ who, event }) => {
    const service = dir();
    const version = await ctx.store.ktVersionCount(entityLabel(params.name));
    const r = await ctx.audit.record({ ...event, outcome: 'allowed', details: { ...event.details, name: params.name, device: params.device, by: 'admin', version } }, async (tx) => ({
      result: await service.revoke(tx, { name: params.name, deviceId: params.device, version, at: Date.now(), by: { admin: who.id } }),
    }));
    return changeView(r);
  }));

  app.route({
    method: 'PUT', url: '/v1/directory/groups/:name', summary: "Set a group's members (identities); creates the group", tag: 'directory', auth: 'admin',
    params: z.strictObject({ name: GroupName }), body: z.strictObject({ members: z.array(IdentityName).max(1000) }), response: ChangeView,
  }, ({ params, body, req }) => guarded(app, req, { op: 'directory.manage', auditOp: 'directory.group', ns: null }, async ({ who, event }) => {
    const service = dir();
    const version = await ctx.store.ktVersionCount(entityLabel(params.name));
    const r = await ctx.audit.record({ ...event, outcome: 'allowed', details: { ...event.details, name: params.name, members: [...new Set(body.members)].sort(), version } }, async (tx) => ({
      result: await service.setGroup(tx, { name: params.name, members: body.members, by: who.id, version }),
    }));
    return changeView(r);
  }));
}
