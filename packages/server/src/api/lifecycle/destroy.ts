/**
 * Destroying a key version: one code path for `POST …/versions/{v}/destroy`
 * and the scheduler's destruction at the scheduled date (scheduler.ts).
 *
 * The keyholder checks the blob is that version's and signs a receipt over
 * its hash and the time; the receipt is checked against the keyholder's
 * published key; then the `keys.destroy` event carrying it and the erasure
 * commit in one transaction — only if the stored blob is still the one
 * receipted and, for the scheduler (`ifDueAt`), the version is still
 * scheduled for deletion at a date that has come (a cancelled or
 * rescheduled deletion is left alone: KW_STORE_CONFLICT, nothing written).
 * After the commit the store's WAL is checkpointed (docs/destroy.md).
 */
import { createHash } from 'node:crypto';
import { parseVerifierKey } from '@keyward/tlog';
import type { JsonObject } from '../../audit/canonical-json.js';
import type { AuditEvent, AuditEventInput } from '../../audit/event.js';
import { destroyReceipt, verifyReceipt } from '../../audit/receipt.js';
import type { KeyRow, KeyVersionRow, StoreTx } from '../../store/index.js';
import type { ApiContext } from '../app.js';
import { b64u } from '../audit-pipe.js';
import { ApiError } from '../errors.js';
import { mfaSettings } from '../mfa-settings.js';

const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const fromHex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));

/** An approved request the keyholder checks before it receipts a destroy (keyholder/governance.ts `checkDestroyApproval`). */
export interface DestroyApproval {
  readonly request: Record<string, unknown>;
  readonly requester: string;
  readonly approvals: readonly unknown[];
}

/** The approvals of the newest executed `…/schedule-deletion` approval request for `ref` (with its id and rules), or null. */
async function scheduledApproval(ctx: ApiContext, ref: { ns: string; key: string; version: number }): Promise<(DestroyApproval & { id: string; rules: readonly { op: string; role: string; threshold: number }[] }) | null> {
  const rows = await ctx.store.listApprovalRequests({ state: 'executed' });
  const row = rows.find((r) => r.op === 'keys.schedule_deletion' && r.request.namespace === ref.ns && r.request.key === ref.key && r.request.version === ref.version);
  if (!row) return null;
  const approvals = (await ctx.store.listApprovals(row.id)).filter((a) => a.decision === 'approve').map((a) => a.approval);
  return { id: row.id, rules: row.rules, request: row.request, requester: row.requester, approvals };
}

/** Who destroys: an authenticated principal, or the service itself (principal null, auth none). */
export interface DestroyActor {
  readonly principal: string | null;
  readonly auth: AuditEventInput['auth'];
  readonly request?: string | null;
  /** Extra event details (the route's client address, the scheduler's reason). */
  readonly details?: JsonObject;
}

/**
 * Destroys version `v` of `k` (which must be scheduled_for_deletion and still
 * hold its blob) with a signed receipt in the audit log; returns the
 * destroyed row. KW_STORE_CONFLICT (nothing written) when the version changed
 * meanwhile or, with `ifDueAt`, is no longer due.
 */
export async function destroyVersionWithReceipt(
  ctx: ApiContext,
  input: {
    readonly key: KeyRow; readonly version: KeyVersionRow & { wrapped: Uint8Array }; readonly actor: DestroyActor; readonly time: Date; readonly ifDueAt?: Date;
    /** Runs inside the erasure's transaction first (the route consumes its step-up there: api/step-up.ts). */
    readonly inTx?: (tx: StoreTx) => Promise<void>;
    /** The approved `…/destroy` request (the route's quorum gate), which the keyholder checks itself. */
    readonly approval?: DestroyApproval | null;
  },
): Promise<KeyVersionRow> {
  const { key: k, version: v, actor, time } = input;
  const stored = { ns: k.ns, key: k.name, version: v.version, type: k.type, wrapped: b64u(v.wrapped), ...(v.publicKey ? { publicKey: b64u(v.publicKey) } : {}) };
  // Without a destroy approval, the approvals of this version's executed schedule-deletion (if any): the keyholder
  // refuses the destroy itself when its signed governance has a destroy quorum and these do not meet it.
  const scheduled = input.approval ? null : await scheduledApproval(ctx, { ns: k.ns, key: k.name, version: v.version });
  const approval = input.approval ?? scheduled;
  const rp = mfaSettings(ctx).rp;
  const signed = await ctx.keyholder.call('destroy-receipt', {
    version: stored, time: time.toISOString(),
    ...(approval ? { approval: { request: approval.request, requester: approval.requester, approvals: JSON.parse(JSON.stringify(approval.approvals)) as unknown[] } } : {}),
    rp: { id: rp.id, name: rp.name, origins: [...rp.origins] },
  });
  const event = await destroyReceipt(
    { ns: k.ns, key: k.name, version: v.version, wrapped: v.wrapped, publicKey: v.publicKey, time, principal: actor.principal, auth: actor.auth, request: actor.request ?? null },
    { publicKey: fromHex(signed.signer), sign: () => fromHex(signed.signature) },
  );
  const st = await ctx.keyholder.call('status', {});
  if (!st.audit.verifierKey) throw new ApiError('KW_INTERNAL', 'the keyholder publishes no checkpoint key');
  const receipt = verifyReceipt({ ...event, index: 0 } as AuditEvent, [parseVerifierKey(st.audit.verifierKey).publicKey]);
  const ref = { ns: k.ns, key: k.name, version: v.version };
  // The scheduler's destroy carries the approvals that authorised the schedule, with the canonical request they
  // signed and its requester, so the offline verifier checks them (audit/verify-approvals.ts) like a gated route's.
  const carried: JsonObject = scheduled && actor.principal === null ? {
    approval: {
      id: scheduled.id, requester: scheduled.requester, request: JSON.parse(JSON.stringify(scheduled.request)) as JsonObject,
      rules: scheduled.rules.map((r) => ({ op: r.op, role: r.role, threshold: r.threshold })), approvals: JSON.parse(JSON.stringify(scheduled.approvals)) as JsonObject[],
    },
  } : {};
  const destroyed = await ctx.audit.record({ ...event, details: { ...(actor.details ?? {}), ...event.details, ...carried, from: v.state } }, async (tx) => {
    const now = await tx.getKeyVersion(k.ns, k.name, v.version);
    if (!now || now.wrapped === null || sha256Hex(now.wrapped) !== receipt.blob_sha256) throw new ApiError('KW_STORE_CONFLICT', 'the version changed while it was being destroyed; retry');
    if (input.ifDueAt !== undefined && (now.state !== 'scheduled_for_deletion' || now.deletionAt === null || now.deletionAt.getTime() > input.ifDueAt.getTime())) {
      throw new ApiError('KW_STORE_CONFLICT', `${k.ns}/${k.name} v${v.version} is no longer due for destruction`);
    }
    if (input.inTx) await input.inTx(tx);
    return { result: await tx.destroyKeyVersion(ref, time) };
  });
  // No older copy of the blob may survive in the write-ahead log (best effort here; the store retries on the next commit).
  await ctx.store.checkpoint().catch(() => undefined);
  return destroyed;
}
