/**
 * Rekey — unseal-share rotation over HTTP (keyholder/rekey.ts; docs/key-service-crypto.md §Rekey):
 *
 *   POST   /v1/sys/rekey        { shares, threshold, recipients[] }  start (admin; sensitive: step-up)
 *   GET    /v1/sys/rekey        status, and the new sealed shares once complete (admin)
 *   DELETE /v1/sys/rekey        cancel (or acknowledge a completed attempt) (admin)
 *   GET    /v1/sys/rekey/key    the attempt's id, recipient and progress, for custodians (no token)
 *   POST   /v1/sys/rekey/share  { id, share }  one CURRENT share sealed to the attempt's key (no token;
 *                               rate-limited per address like unseal: the shares are the authority)
 *
 * The API relays sealed shares and receives sealed shares: it never sees share material. The
 * completing submission returns the new shares (sealed to their custodians) and stores the keyholder's
 * authenticated share-set record for the other nodes (api/custody-sync.ts). Every step is audited
 * (`sys.rekey_start`, `sys.rekey_share`, `sys.rekey_complete`, `sys.rekey_cancel`; refusals with their code).
 */
import { dearmor, isArmored } from '@keyward/core';
import { z } from 'zod';
import type { AuditEventInput } from '../../audit/event.js';
import type { OpResult } from '../../keyholder/protocol.js';
import { isProtocolError } from '../../keyholder/protocol.js';
import type { App } from '../app.js';
import { b64u } from '../audit-pipe.js';
import { publishCustodyRecord } from '../custody-sync.js';
import { ApiError, toHttpError } from '../errors.js';
import { sensitiveGates } from '../sensitive.js';

const SealedShare = z.strictObject({ index: z.int(), recipient: z.string(), armored: z.string() });
const Attempt = z.strictObject({
  id: z.string(), recipient: z.string(), mode: z.enum(['software', 'hsm-wrapped']),
  shares: z.int(), threshold: z.int(),
  progress: z.strictObject({ received: z.int(), required: z.int() }),
  started_at: z.string(), expires_at: z.string(),
  completed: z.strictObject({ generation: z.int(), share_hashes: z.array(z.string()), sealed_shares: z.array(SealedShare) }).nullable(),
});
const Status = z.strictObject({ generation: z.int(), rekey: Attempt.nullable() });
const KeyView = z.strictObject({
  id: z.string(), recipient: z.string(), mode: z.enum(['software', 'hsm-wrapped']), shares: z.int(), threshold: z.int(),
  progress: z.strictObject({ received: z.int(), required: z.int() }), expires_at: z.string(),
});
const ShareResult = z.strictObject({
  id: z.string(), index: z.int(), progress: z.strictObject({ received: z.int(), required: z.int() }), complete: z.boolean(),
  completed: z.strictObject({ generation: z.int(), shares: z.int(), threshold: z.int(), share_hashes: z.array(z.string()), sealed_shares: z.array(SealedShare) }).nullable(),
});

type View = NonNullable<OpResult<'rekey-status'>['rekey']>;
const iso = (ms: number): string => new Date(ms).toISOString();

function attemptView(v: View): z.infer<typeof Attempt> {
  return {
    id: v.id, recipient: v.recipient, mode: v.mode, shares: v.shares, threshold: v.threshold,
    progress: { received: v.received, required: v.required }, started_at: iso(v.startedAt), expires_at: iso(v.expiresAt),
    completed: v.completed && { generation: v.completed.generation, share_hashes: v.completed.shareHashes, sealed_shares: v.completed.sealedShares },
  };
}

function envelopeBytes(share: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = isArmored(share) ? dearmor(share) : Uint8Array.from(Buffer.from(share, 'base64url'));
  } catch {
    throw new ApiError('KW_INVALID_ARGUMENT', 'share must be an armored Keyward envelope');
  }
  if (bytes.length === 0) throw new ApiError('KW_INVALID_ARGUMENT', 'share must be an armored Keyward envelope');
  return bytes;
}

export function rekeyRoutes(app: App): void {
  const { ctx } = app;

  /** Runs `fn`; a failure is audited with its code (as routes/common.ts `guarded` does), then rethrown. */
  async function audited<T>(event: Omit<AuditEventInput, 'outcome'>, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      const code = toHttpError(e).code;
      if (code !== 'KW_KEYHOLDER_UNAVAILABLE') {
        const denied = code === 'KW_FORBIDDEN' || code.startsWith('KW_MFA_') || code.startsWith('KW_STEP_UP_') || code.startsWith('KW_QUORUM_') || code.startsWith('KW_SHARE') || code === 'KW_SEALED_SHARE_REJECTED' || code === 'KW_UNSEAL_FAILED';
        await ctx.audit.recordFailure({ ...event, outcome: denied ? 'denied' : 'error', code });
      }
      throw e;
    }
  }

  async function admin(req: Parameters<App['principal']>[0], op: string, details: Record<string, string | number> = {}) {
    const who = await app.principal(req);
    const event: Omit<AuditEventInput, 'outcome'> = { ns: null, principal: who.id, auth: 'token', op, target: {}, request: null, details: { ...details, client: { address: req.ip } } };
    if (!who.admin) {
      await ctx.audit.recordFailure({ ...event, outcome: 'denied', code: 'KW_FORBIDDEN' });
      throw new ApiError('KW_FORBIDDEN', 'rekey needs an admin token');
    }
    return { who, event };
  }

  app.route({
    method: 'POST', url: '/v1/sys/rekey', tag: 'sys', auth: 'admin', status: 201, response: Attempt,
    summary: 'Start a rekey (unseal-share rotation): the new number of shares, threshold and one custodian recipient per new share (admin; needs a step-up)',
    body: z.strictObject({
      shares: z.int().min(2).max(255), threshold: z.int().min(2).max(255),
      recipients: z.array(z.string().min(1).max(8192)).min(2).max(255),
      ttl_seconds: z.int().min(60).max(86_400).optional(),
    }),
  }, async ({ body, req }) => {
    const { who, event } = await admin(req, 'sys.rekey_start', { shares: body.shares, threshold: body.threshold });
    return audited(event, async () => {
      // A step-up bound to this exact request (api/step-up.ts) and, when a quorum rule covers sys.rekey, an approval.
      const gates = await sensitiveGates(app, req, who, event, { governance: false });
      const v = await ctx.keyholder.call('rekey-start', {
        shares: body.shares, threshold: body.threshold, recipients: body.recipients,
        ...(body.ttl_seconds !== undefined ? { ttlSeconds: body.ttl_seconds } : {}),
      });
      try {
        await ctx.audit.record({ ...gates.event, outcome: 'allowed', details: { ...gates.event.details, id: v.id, mode: v.mode, expires_at: iso(v.expiresAt) } }, async (tx) => {
          await gates.inTx(tx);
          return { result: null };
        });
      } catch (e) {
        // The step-up was spent meanwhile (or the audit failed): the attempt does not stand.
        await ctx.keyholder.call('rekey-cancel', { id: v.id }).catch(() => undefined);
        throw e;
      }
      return attemptView(v);
    });
  });

  app.route({
    method: 'GET', url: '/v1/sys/rekey', tag: 'sys', auth: 'admin', response: Status,
    summary: 'Rekey status: the attempt (id, new n and k, progress, expiry) and, once complete, the new shares sealed to their custodians (admin)',
  }, async ({ req }) => {
    await admin(req, 'sys.rekey_status');
    const st = await ctx.keyholder.call('rekey-status', {});
    // Stored again (idempotent): if the completing request could not store it, the other nodes still get it.
    if (st.rekey?.completed) await publishCustodyRecord(ctx.store, st.rekey.completed.record);
    return { generation: st.generation, rekey: st.rekey ? attemptView(st.rekey) : null };
  });

  app.route({
    method: 'DELETE', url: '/v1/sys/rekey', tag: 'sys', auth: 'admin', response: z.strictObject({ cancelled: z.literal(true), id: z.string(), completed: z.boolean() }),
    summary: 'Cancel the rekey attempt (its shares received are forgotten), or acknowledge a completed one (its sealed shares are dropped) (admin)',
  }, async ({ req }) => {
    const { event } = await admin(req, 'sys.rekey_cancel');
    return audited(event, async () => {
      const st = await ctx.keyholder.call('rekey-status', {});
      if (!st.rekey) throw new ApiError('KW_REKEY_NOT_FOUND');
      const r = await ctx.keyholder.call('rekey-cancel', { id: st.rekey.id });
      await ctx.audit.record({ ...event, outcome: 'allowed', details: { ...event.details, id: st.rekey.id, completed: r.completed, received: st.rekey.received } });
      return { cancelled: true as const, id: st.rekey.id, completed: r.completed };
    });
  });

  app.route({
    method: 'GET', url: '/v1/sys/rekey/key', tag: 'sys', auth: 'none', response: KeyView,
    summary: "The rekey attempt's id and recipient, for custodians to seal their current share to, and its progress",
  }, async () => {
    const st = await ctx.keyholder.call('rekey-status', {});
    const v = st.rekey;
    if (!v || v.completed) throw new ApiError('KW_REKEY_NOT_FOUND', v ? `rekey ${v.id} is complete` : 'no rekey is in progress');
    return { id: v.id, recipient: v.recipient, mode: v.mode, shares: v.shares, threshold: v.threshold, progress: { received: v.received, required: v.required }, expires_at: iso(v.expiresAt) };
  });

  app.route({
    method: 'POST', url: '/v1/sys/rekey/share', tag: 'sys', auth: 'none', response: ShareResult,
    summary: "Submit one CURRENT unseal (or recovery) share sealed to the rekey attempt's key; the completing share returns the new shares sealed to their custodians",
    body: z.strictObject({ id: z.string().regex(/^[0-9a-f]{32}$/, 'a rekey id is 32 lower-case hex digits'), share: z.string().min(1).max(96 * 1024) }),
  }, async ({ body, req }) => {
    if (!ctx.limits.perAddress.take(`unseal:${req.ip}`)) throw new ApiError('KW_RATE_LIMITED', 'too many rekey share attempts from this address');
    const event: Omit<AuditEventInput, 'outcome'> = { ns: null, principal: null, auth: 'none', op: 'sys.rekey_share', target: {}, request: null, details: { id: body.id, client: { address: req.ip } } };
    const bytes = envelopeBytes(body.share);
    return audited(event, async () => {
      let r: OpResult<'rekey-share'>;
      try {
        r = await ctx.keyholder.call('rekey-share', { id: body.id, share: b64u(bytes) });
      } catch (e) {
        if (isProtocolError(e) && e.details.index !== undefined && e.code === 'KW_SHARE_CORRUPTED') {
          throw new ApiError('KW_SHARE_CORRUPTED', `share ${e.details.index} is corrupted and was not counted`);
        }
        throw e;
      }
      await ctx.audit.record({ ...event, outcome: 'allowed', details: { ...event.details, index: r.index, received: r.received, required: r.required } });
      const c = r.completed;
      if (c) {
        let published = true;
        try {
          await publishCustodyRecord(ctx.store, c.record);
        } catch {
          published = false; // the commit stands; GET /v1/sys/rekey stores it again while the attempt is shown
        }
        await ctx.audit.record({
          ns: null, principal: null, auth: 'none', op: 'sys.rekey_complete', outcome: 'allowed',
          details: { id: r.id, generation: c.generation, shares: c.shares, threshold: c.threshold, share_hashes: c.shareHashes, published },
        });
      }
      return {
        id: r.id, index: r.index, progress: { received: r.received, required: r.required }, complete: r.complete,
        completed: c && { generation: c.generation, shares: c.shares, threshold: c.threshold, share_hashes: c.shareHashes, sealed_shares: c.sealedShares },
      };
    });
  });
}
