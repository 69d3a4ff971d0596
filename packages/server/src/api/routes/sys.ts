/** System routes: health, unseal key, unseal (rate-limited per address), seal (admin). */
import { dearmor, isArmored } from '@keyward/core';
import { z } from 'zod';
import type { OpResult } from '../../keyholder/protocol.js';
import { isProtocolError } from '../../keyholder/protocol.js';
import type { App } from '../app.js';
import { b64u } from '../audit-pipe.js';
import { ApiError } from '../errors.js';
import { listNodes, NodeView } from '../nodes.js';
import { readCustodyRecord } from '../custody-sync.js';
import { rekeyRoutes } from './rekey.js';

/** HSM-wrapped mode: the auto-unseal state (keyholder/hsm-custody.ts HsmStatus) and the code of its last failure. */
const HsmHealth = z.strictObject({ state: z.enum(['connecting', 'available', 'unavailable', 'failed', 'sealed']), code: z.string().nullable() });
const Health = z.strictObject({ initialized: z.boolean(), sealed: z.boolean(), keyholder: z.enum(['up', 'down']), version: z.string(), hsm: HsmHealth.optional() });
const Progress = z.strictObject({ sealed: z.boolean(), progress: z.strictObject({ received: z.int(), threshold: z.int() }) });

export function sysRoutes(app: App): void {
  const { ctx } = app;

  const status = async (): Promise<OpResult<'status'> | null> => {
    try {
      const st = await ctx.keyholder.call('status', {}, { timeoutMs: 2000 });
      ctx.state.initialized = st.initialized;
      ctx.metrics.sealed.set(st.sealed ? 1 : 0);
      ctx.metrics.observeHsm(st.hsm ?? null);
      return st;
    } catch (e) {
      if (isProtocolError(e)) ctx.metrics.keyholderError(e.code);
      ctx.metrics.sealed.set(1);
      ctx.metrics.observeHsm(undefined);
      return null;
    }
  };

  app.route({ method: 'GET', url: '/v1/sys/health', summary: 'Health: initialized, sealed, keyholder up/down', tag: 'sys', auth: 'none', response: Health }, async () => {
    const st = await status();
    return {
      initialized: st?.initialized ?? ctx.state.initialized, sealed: st?.sealed ?? true, keyholder: st ? 'up' : 'down', version: ctx.version,
      ...(st?.hsm ? { hsm: { state: st.hsm.state, code: st.hsm.code } } : {}),
    };
  });

  app.route({
    method: 'GET', url: '/v1/sys/unseal-key', summary: "The keyholder's per-boot unseal recipient and progress", tag: 'sys', auth: 'none',
    response: z.strictObject({ recipient: z.string(), boot: z.string(), progress: z.strictObject({ received: z.int(), threshold: z.int() }) }),
  }, async () => {
    const st = await ctx.keyholder.call('status', {});
    if (!st.initialized) throw new ApiError('KW_NOT_INITIALIZED');
    if (st.hsm) throw new ApiError('KW_HSM_AUTO_UNSEAL');
    if (!st.unseal) throw new ApiError('KW_ALREADY_UNSEALED');
    return { recipient: st.unseal.recipient, boot: st.unseal.bootId, progress: { received: st.unseal.received, threshold: st.unseal.threshold } };
  });

  app.route({
    method: 'POST', url: '/v1/sys/unseal', summary: 'Submit one unseal share sealed to the boot key (armored envelope)', tag: 'sys', auth: 'none',
    body: z.strictObject({ share: z.string().min(1).max(96 * 1024) }), response: Progress,
  }, async ({ body, req }) => {
    if (!ctx.limits.perAddress.take(`unseal:${req.ip}`)) throw new ApiError('KW_RATE_LIMITED', 'too many unseal attempts from this address');
    let bytes: Uint8Array;
    try {
      bytes = isArmored(body.share) ? dearmor(body.share) : Uint8Array.from(Buffer.from(body.share, 'base64url'));
    } catch {
      throw new ApiError('KW_INVALID_ARGUMENT', 'share must be an armored Keyward envelope');
    }
    if (bytes.length === 0) throw new ApiError('KW_INVALID_ARGUMENT', 'share must be an armored Keyward envelope');
    let r: OpResult<'unseal'>;
    // The newest share set a rekey published (api/custody-sync.ts): the keyholder believes it only after
    // combining the master key and checking its MAC; then old shares are KW_SHARES_SUPERSEDED.
    const custody = await readCustodyRecord(ctx.store);
    try {
      r = await ctx.keyholder.call('unseal', { share: b64u(bytes), ...(custody ? { custody } : {}) });
    } catch (e) {
      if (isProtocolError(e, 'KW_SHARES_SUPERSEDED')) {
        await ctx.audit.recordFailure({ ns: null, principal: null, auth: 'none', op: 'sys.unseal', outcome: 'denied', code: e.code, details: { generation: custody?.shares.generation ?? null } });
      }
      if (isProtocolError(e) && e.details.index !== undefined && e.code === 'KW_SHARE_CORRUPTED') {
        throw new ApiError('KW_SHARE_CORRUPTED', `share ${e.details.index} is corrupted and was not counted`);
      }
      throw e;
    }
    await ctx.audit.recordFailure({ ns: null, principal: null, auth: 'none', op: 'sys.unseal', outcome: 'allowed', details: { received: r.received, threshold: r.threshold, sealed: r.sealed } });
    ctx.metrics.sealed.set(r.sealed ? 1 : 0);
    return { sealed: r.sealed, progress: { received: r.received, threshold: r.threshold } };
  });

  // HSM-wrapped mode: recovery shares (docs/hsm.md §Recovery shares), sealed end to end to the per-boot key like unseal shares.
  app.route({
    method: 'GET', url: '/v1/sys/recovery-key', summary: "HSM-wrapped mode: the keyholder's per-boot recipient for recovery shares", tag: 'sys', auth: 'none',
    response: z.strictObject({ recipient: z.string(), boot: z.string() }),
  }, async () => {
    const st = await ctx.keyholder.call('status', {});
    if (!st.initialized) throw new ApiError('KW_NOT_INITIALIZED');
    if (!st.hsm) throw new ApiError('KW_HSM_NOT_CONFIGURED');
    const k = await ctx.keyholder.call('unseal-key', {});
    return { recipient: k.recipient, boot: k.bootId };
  });

  app.route({
    method: 'POST', url: '/v1/sys/recovery-share', summary: 'HSM-wrapped mode: submit one recovery share sealed to the boot key; verifies the quorum at the threshold', tag: 'sys', auth: 'none',
    body: z.strictObject({ share: z.string().min(1).max(96 * 1024) }),
    response: z.strictObject({ received: z.int(), threshold: z.int(), verified: z.boolean() }),
  }, async ({ body, req }) => {
    if (!ctx.limits.perAddress.take(`unseal:${req.ip}`)) throw new ApiError('KW_RATE_LIMITED', 'too many recovery attempts from this address');
    let bytes: Uint8Array;
    try {
      bytes = isArmored(body.share) ? dearmor(body.share) : Uint8Array.from(Buffer.from(body.share, 'base64url'));
    } catch {
      throw new ApiError('KW_INVALID_ARGUMENT', 'share must be an armored Keyward envelope');
    }
    if (bytes.length === 0) throw new ApiError('KW_INVALID_ARGUMENT', 'share must be an armored Keyward envelope');
    const base = { ns: null, principal: null, auth: 'none' as const, op: 'sys.recovery_share' };
    let r: OpResult<'recovery-share'>;
    try {
      r = await ctx.keyholder.call('recovery-share', { share: b64u(bytes) });
    } catch (e) {
      if (isProtocolError(e) && (e.code.startsWith('KW_SHARE_') || e.code === 'KW_UNSEAL_FAILED' || e.code === 'KW_SEALED_SHARE_REJECTED')) {
        await ctx.audit.recordFailure({ ...base, outcome: 'denied', code: e.code });
      }
      throw e;
    }
    await ctx.audit.recordFailure({ ...base, outcome: 'allowed', details: { received: r.received, threshold: r.threshold, verified: r.verified } });
    return r;
  });

  app.route({ method: 'POST', url: '/v1/sys/seal', summary: 'Seal the keyholder (admin token)', tag: 'sys', auth: 'admin', response: z.strictObject({ sealed: z.literal(true) }) }, async ({ req }) => {
    const who = await app.principal(req);
    const base = { ns: null, principal: who.id, auth: 'token' as const, op: 'sys.seal' };
    if (!who.admin) {
      await ctx.audit.recordFailure({ ...base, outcome: 'denied', code: 'KW_FORBIDDEN' });
      throw new ApiError('KW_FORBIDDEN', 'sealing needs an admin token');
    }
    await ctx.audit.record({ ...base, outcome: 'allowed' });
    await ctx.keyholder.call('seal', {});
    ctx.metrics.sealed.set(1);
    return { sealed: true };
  });

  // Issue #9 (docs/deployment.md §Nodes): the nodes sharing this store, from their heartbeats (api/nodes.ts).
  app.route({
    method: 'GET', url: '/v1/sys/nodes', tag: 'sys', auth: 'admin', response: z.strictObject({ nodes: z.array(NodeView) }),
    summary: 'The server nodes sharing this store: version, start, last heartbeat, seal and keyholder/HSM state; stale after 3 missed heartbeats (admin token)',
  }, async ({ req }) => {
    const who = await app.principal(req);
    if (!who.admin) {
      await ctx.audit.recordFailure({ ns: null, principal: who.id, auth: 'token', op: 'sys.nodes', outcome: 'denied', code: 'KW_FORBIDDEN' });
      throw new ApiError('KW_FORBIDDEN', 'listing nodes needs an admin token');
    }
    return { nodes: await listNodes(ctx.store) };
  });

  // Issue #8 (docs/tee.md §Pinning the keyholder from a client): the keyholder's evidence and its
  // response key, relayed as is. The client makes the challenge and checks everything itself.
  const Attestation = z.strictObject({
    platform: z.string(), responseKey: z.string(),
    offer: z.record(z.string(), z.unknown()).optional(), evidence: z.record(z.string(), z.unknown()).optional(),
  });
  app.route({
    method: 'GET', url: '/v1/sys/keyholder/attestation', tag: 'sys', auth: 'token', response: Attestation,
    summary: "The keyholder's evidence offer (TPM: EK certificate, EK and AK public areas) and its response-signing key (keyholder run apart only)",
  }, async ({ req }) => {
    await app.principal(req);
    return ctx.keyholder.call('keyholder-attestation', {});
  });
  app.route({
    method: 'POST', url: '/v1/sys/keyholder/attestation', tag: 'sys', auth: 'token', response: Attestation,
    summary: "Fresh keyholder evidence: answers the caller's challenge (TPM: MakeCredential for the offered AK) and binds its 32-byte nonce and the response key",
    body: z.strictObject({ nonce: z.string().regex(/^[A-Za-z0-9_-]{43}$/), challenge: z.record(z.string(), z.unknown()) }),
  }, async ({ body, req }) => {
    await app.principal(req);
    // Each answer costs a TPM credential activation and a quote.
    if (!ctx.limits.perAddress.take(`keyholder-attestation:${req.ip}`)) throw new ApiError('KW_RATE_LIMITED', 'too many keyholder attestation requests from this address');
    return ctx.keyholder.call('keyholder-attestation', { nonce: body.nonce, challenge: body.challenge }, { timeoutMs: 30_000 });
  });

  // Unseal-share rotation (api/routes/rekey.ts; docs/key-service-crypto.md §Rekey).
  rekeyRoutes(app);
}
