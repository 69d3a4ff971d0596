/**
 * The quorum part of the store's contract (issue #7; migration 6): approval
 * requests waiting for M of N approvers, the approvers' signed answers, and
 * a copy of the governance snapshots the keyholder signed (the keyholder's
 * own state file holds the one in force; these rows are for readers, the
 * console and the offline verifier, and are never trusted by the keyholder).
 * Part of `StoreOps`, so it runs inside `transaction(fn)`. Both backends pass
 * `test/store/conformance-quorum.ts`.
 *
 * Rules the store enforces: one answer per approver per request (a second is
 * `KW_STORE_CONFLICT`: a double approval counts once); a request leaves
 * `pending` once, compare-and-set (`KW_STORE_CONFLICT` otherwise: it cannot
 * execute twice, nor execute after a denial or expiry); snapshot sequence
 * numbers are unique.
 */
import { z } from 'zod';
import { IdentifierSchema, JsonValueSchema, MAX_TEXT_LENGTH, TimeSchema } from './schema.js';

export const APPROVAL_STATES = ['pending', 'executed', 'denied', 'expired'] as const;
export type ApprovalState = (typeof APPROVAL_STATES)[number];

/** An approval request id: the base64url SHA-256 request hash (43 characters). */
export const ApprovalIdSchema = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be a base64url SHA-256 hash (43 characters)');
const DbTime = z.number().int().min(0).max(8.64e15).transform((ms) => new Date(ms));
const JsonObject = z.record(z.string(), JsonValueSchema);
const RuleSchema = z.strictObject({ op: z.string().min(1).max(64), role: IdentifierSchema, threshold: z.number().int().min(1).max(1000) });

function dbJson<S extends z.ZodType>(schema: S) {
  return z.string().max(MAX_TEXT_LENGTH).transform((s, ctx) => {
    try {
      const r = schema.safeParse(JSON.parse(s));
      if (r.success) return r.data;
    } catch { /* reported below */ }
    ctx.addIssue({ code: 'custom', message: 'not the JSON the column holds' });
    return z.NEVER;
  });
}

export const ApprovalRequestRowSchema = z
  .object({
    id: ApprovalIdSchema,
    op: z.string().min(1).max(64),
    requester: IdentifierSchema,
    request: dbJson(JsonObject),
    rules: dbJson(z.array(RuleSchema).min(1).max(8)),
    state: z.enum(APPROVAL_STATES),
    created: DbTime,
    expires_at: DbTime,
    closed_at: DbTime.nullable(),
  })
  .refine((r) => (r.state === 'pending') === (r.closed_at === null), 'a request is closed exactly when it left pending')
  .transform((r) => ({
    id: r.id,
    /** The sensitive operation (api/step-up.ts names). */
    op: r.op,
    requester: r.requester,
    /** The canonical request (mfa/request-hash.ts) whose SHA-256 is the id. */
    request: r.request,
    /** The quorum rules it must meet (from the governance snapshot when it was made). */
    rules: r.rules,
    state: r.state,
    created: r.created,
    expiresAt: r.expires_at,
    closedAt: r.closed_at,
  }));

export const ApprovalRowSchema = z
  .object({ request_id: ApprovalIdSchema, approver: IdentifierSchema, decision: z.enum(['approve', 'deny']), approval: dbJson(JsonObject), created: DbTime })
  .transform((r) => ({ requestId: r.request_id, approver: r.approver, decision: r.decision, approval: r.approval, created: r.created }));

export const GovernanceSnapshotRowSchema = z
  .object({ seq: z.number().int().min(0), hash: z.string().regex(/^[0-9a-f]{64}$/), snapshot: z.string().min(2).max(MAX_TEXT_LENGTH * 4), signature: z.string().regex(/^[0-9a-f]{128}$/), created: DbTime })
  .transform((r) => ({ seq: r.seq, hash: r.hash, snapshot: r.snapshot, signature: r.signature, created: r.created }));

export const NewApprovalRequestSchema = z
  .object({
    id: ApprovalIdSchema, op: z.string().min(1).max(64), requester: IdentifierSchema, request: JsonObject,
    rules: z.array(RuleSchema).min(1).max(8), created: TimeSchema, expiresAt: TimeSchema,
  })
  .refine((r) => r.expiresAt.getTime() > r.created.getTime(), 'an approval request expires after it is created');

export const NewApprovalSchema = z.object({
  requestId: ApprovalIdSchema, approver: IdentifierSchema, decision: z.enum(['approve', 'deny']), approval: JsonObject, created: TimeSchema,
});

export const NewGovernanceSnapshotSchema = z.object({
  seq: z.number().int().min(0), hash: z.string().regex(/^[0-9a-f]{64}$/), snapshot: z.string().min(2).max(MAX_TEXT_LENGTH * 4),
  signature: z.string().regex(/^[0-9a-f]{128}$/), created: TimeSchema,
});

export const CloseApprovalSchema = z.object({ state: z.enum(['executed', 'denied', 'expired']), at: TimeSchema });

export type ApprovalRequestRow = z.output<typeof ApprovalRequestRowSchema>;
export type ApprovalRow = z.output<typeof ApprovalRowSchema>;
export type GovernanceSnapshotRow = z.output<typeof GovernanceSnapshotRowSchema>;
export type NewApprovalRequest = z.input<typeof NewApprovalRequestSchema>;
export type NewApproval = z.input<typeof NewApprovalSchema>;
export type NewGovernanceSnapshot = z.input<typeof NewGovernanceSnapshotSchema>;

/** Approval requests, approvals and governance snapshots. */
export interface QuorumStore {
  /** `KW_STORE_CONFLICT` if a request with this id exists. */
  createApprovalRequest(input: NewApprovalRequest): Promise<ApprovalRequestRow>;
  getApprovalRequest(id: string): Promise<ApprovalRequestRow | null>;
  /** Newest first (at most 500), optionally of one state. */
  listApprovalRequests(filter?: { state?: ApprovalState }): Promise<ApprovalRequestRow[]>;
  /** Leaves `pending` for `state`, once: `KW_STORE_CONFLICT` if it is not pending; `KW_STORE_NOT_FOUND` if missing. */
  closeApprovalRequest(id: string, state: 'executed' | 'denied' | 'expired', at: Date): Promise<ApprovalRequestRow>;
  /** `KW_STORE_NOT_FOUND` if the request is missing; `KW_STORE_CONFLICT` if this approver answered already. */
  addApproval(input: NewApproval): Promise<ApprovalRow>;
  /** Oldest first. */
  listApprovals(requestId: string): Promise<ApprovalRow[]>;
  /** `KW_STORE_CONFLICT` if this sequence number exists. */
  putGovernanceSnapshot(input: NewGovernanceSnapshot): Promise<GovernanceSnapshotRow>;
  latestGovernanceSnapshot(): Promise<GovernanceSnapshotRow | null>;
  getGovernanceSnapshot(seq: number): Promise<GovernanceSnapshotRow | null>;
}

export const QUORUM_OP_KINDS = {
  createApprovalRequest: 'write',
  getApprovalRequest: 'read',
  listApprovalRequests: 'read',
  closeApprovalRequest: 'write',
  addApproval: 'write',
  listApprovals: 'read',
  putGovernanceSnapshot: 'write',
  latestGovernanceSnapshot: 'read',
  getGovernanceSnapshot: 'read',
} as const satisfies Record<keyof QuorumStore, 'read' | 'write'>;

/** SQL shared by both backends (placeholders differ; see each backend). */
export const APPROVAL_REQUEST_COLUMNS = 'id, op, requester, request, rules, state, created, expires_at, closed_at';
export const APPROVAL_COLUMNS = 'request_id, approver, decision, approval, created';
export const SNAPSHOT_COLUMNS = 'seq, hash, snapshot, signature, created';
