/**
 * The quorum gate of a sensitive route (issue #7; docs/mfa.md §Quorum
 * approval), after the step-up gate. When the governance snapshot in force
 * (held by the keyholder) has a quorum rule for the request's operation — or
 * for the governance change it makes (a role set by `POST /v1/tokens` is a
 * `principals.update`) — the request must name an approval request in
 * `Keyward-Approval: <id>` whose approvals meet every such rule *now*:
 *
 *   no header, unknown id, another requester's request → KW_QUORUM_REQUIRED
 *   an approval request for another request            → KW_STEP_UP_MISMATCH
 *   executed already                                   → KW_MFA_REPLAY
 *   refused by an approver                             → KW_APPROVAL_DENIED
 *   past its expiry (closed as expired, audited)       → KW_STEP_UP_EXPIRED
 *   fewer verified approvals than a threshold          → KW_QUORUM_PENDING
 *
 * Every stored approval is verified again here (signature over the request
 * hash, member of the role in the snapshot, not the requester, one per
 * approver): the `approvals` table is a mailbox, not a source of truth. The
 * route calls `consume(tx)` inside the operation's transaction
 * (compare-and-set pending → executed: it runs once).
 */
import type { FastifyRequest } from 'fastify';
import type { JsonValue } from '../audit/canonical-json.js';
import { MfaError } from '../mfa/errors.js';
import { QUORUM_OPERATIONS, changeOperation, membersOf, parseApprovals, parseChange, type GovernanceState, type QuorumOperation } from '../mfa/governance.js';
import { canonicalRequest } from '../mfa/request-hash.js';
import { tallyApprovals, type Approval, type QuorumRule } from '../mfa/quorum.js';
import { isStoreError, type ApprovalRequestRow, type StoreTx } from '../store/index.js';
import type { App } from './app.js';
import type { Principal } from './auth.js';
import { governanceState } from './governance.js';
import { mfaSettings } from './mfa-settings.js';
import { describeRequest, stepUpId } from './step-up.js';

/** The request header naming the approval request. */
export const APPROVAL_HEADER = 'keyward-approval';

/** A quorum rule with the operation it covers. */
export interface AppliedRule extends QuorumRule {
  readonly op: QuorumOperation;
}

/** The quorum operations a request falls under: its own, and that of the governance change it makes. */
export function quorumOperations(op: string, canonical: JsonValue): QuorumOperation[] {
  const ops = new Set<QuorumOperation>();
  if ((QUORUM_OPERATIONS as readonly string[]).includes(op)) ops.add(op as QuorumOperation);
  const change = parseChange(canonical);
  if (change) ops.add(changeOperation(change));
  return [...ops];
}

/** The rules of `state` that cover a request of operation `op` described by `canonical`. */
export function rulesFor(state: GovernanceState, op: string, canonical: JsonValue): AppliedRule[] {
  return quorumOperations(op, canonical).flatMap((o) => {
    const r = state.quorum[o];
    return r ? [{ op: o, role: r.role, threshold: r.threshold }] : [];
  });
}

/** Counts the stored approvals of `row` against `rules` (each verified). */
export async function tallyRequest(app: App, row: ApprovalRequestRow, rules: readonly AppliedRule[], state: GovernanceState, at: Date) {
  const approvals = parseApprovals((await app.ctx.store.listApprovals(row.id)).map((a) => a.approval));
  const hash = new Uint8Array(Buffer.from(row.id, 'base64url'));
  const expiresAt = Math.floor(row.expiresAt.getTime() / 1000);
  const per = [];
  for (const rule of rules) {
    per.push({
      rule,
      tally: await tallyApprovals({ request: { hash, requester: row.requester, expiresAt }, rule, members: membersOf(state, rule.role), approvals, now: at, rp: mfaSettings(app.ctx).rp }),
    });
  }
  return { approvals, per };
}

/** Closes an expired pending request, audited (`approvals.expire`). */
export async function expireIfDue(app: App, row: ApprovalRequestRow): Promise<ApprovalRequestRow> {
  const now = mfaSettings(app.ctx).now();
  if (row.state !== 'pending' || now.getTime() <= row.expiresAt.getTime()) return row;
  try {
    return await app.ctx.audit.record({
      ns: typeof row.request.namespace === 'string' && row.request.namespace !== '' ? row.request.namespace : null,
      principal: null, auth: 'none', op: 'approvals.expire', target: {}, request: Buffer.from(row.id, 'base64url').toString('hex'), outcome: 'allowed',
      details: { approval_request: row.id, operation: row.op, requester: row.requester, expired_at: row.expiresAt.toISOString() },
    }, async (tx) => ({ result: await tx.closeApprovalRequest(row.id, 'expired', now) }));
  } catch (e) {
    if (isStoreError(e, 'KW_STORE_CONFLICT')) return (await app.ctx.store.getApprovalRequest(row.id)) ?? row;
    throw e;
  }
}

/**
 * Closes every pending approval request past its expiry (`expireIfDue` each:
 * audited `approvals.expire`). The server runs it on a timer
 * (`mfa.approvalSweepMs`); several nodes may run it at once — the close is a
 * compare-and-set, so each request is closed and audited once. Looks at the
 * 500 newest pending requests per run. Returns the ids it saw expired.
 */
export async function expireDueApprovals(app: App): Promise<string[]> {
  const now = mfaSettings(app.ctx).now().getTime();
  const expired: string[] = [];
  for (const row of await app.ctx.store.listApprovalRequests({ state: 'pending' })) {
    if (now <= row.expiresAt.getTime()) continue;
    if ((await expireIfDue(app, row)).state === 'expired') expired.push(row.id);
  }
  return expired;
}

/** A satisfied approval request the route consumes in its own transaction. */
export interface QuorumGate {
  readonly id: string;
  readonly requestHex: string;
  /** The canonical request the approvers signed (with its expiry). */
  readonly request: JsonValue;
  /** The approvals that counted (what the keyholder re-checks for governance changes, and the audit event records). */
  readonly approvals: readonly Approval[];
  readonly rules: readonly AppliedRule[];
  consume(tx: StoreTx): Promise<void>;
}

/** The gate (see the module comment): null when no quorum rule covers this request. */
export async function quorumGate(app: App, req: FastifyRequest, who: Principal): Promise<QuorumGate | null> {
  const path = req.url.split('?')[0] ?? req.url;
  const d = describeRequest(req.method, path, req.body);
  if (!d) return null;
  const state = await governanceState(app);
  const probe = canonicalRequest({ ...d.request, expiresAt: 1 });
  const rules = rulesFor(state, d.match.op, probe);
  if (rules.length === 0) return null;
  const header = req.headers[APPROVAL_HEADER];
  const id = typeof header === 'string' ? header.trim() : '';
  const need = rules.map((r) => `${r.threshold} of role '${r.role}' (${r.op})`).join(' and ');
  if (!/^[A-Za-z0-9_-]{43}$/.test(id)) throw new MfaError('KW_QUORUM_REQUIRED', `${d.match.op} needs the approval of ${need}: POST /v1/approvals with this request, then send it again with the id in the Keyward-Approval header`);
  let row = await app.ctx.store.getApprovalRequest(id);
  if (!row || row.requester !== who.id) throw new MfaError('KW_QUORUM_REQUIRED', 'no approval request of yours has this id');
  const expiresAt = Math.floor(row.expiresAt.getTime() / 1000);
  if (stepUpId(d.request, expiresAt) !== row.id) throw new MfaError('KW_STEP_UP_MISMATCH', 'the approval request is for another request');
  row = await expireIfDue(app, row);
  if (row.state === 'executed') throw new MfaError('KW_MFA_REPLAY', 'this approval request was executed already; each authorises one request');
  if (row.state === 'denied') throw new MfaError('KW_APPROVAL_DENIED');
  if (row.state === 'expired') throw new MfaError('KW_STEP_UP_EXPIRED', `the approval request expired at ${row.expiresAt.toISOString()}`);
  const now = mfaSettings(app.ctx).now();
  const { approvals, per } = await tallyRequest(app, row, rules, state, now);
  const denied = per.find((p) => p.tally.denied);
  if (denied) throw new MfaError('KW_APPROVAL_DENIED', `denied by ${denied.tally.deniedBy.join(', ')}`);
  const short = per.find((p) => !p.tally.satisfied);
  if (short) throw new MfaError('KW_QUORUM_PENDING', `${short.tally.approvedBy.length} of ${short.rule.threshold} approvals from role '${short.rule.role}' (${short.rule.op}) verify`);
  const counted = new Set(per.flatMap((p) => p.tally.approvedBy));
  const id43 = row.id;
  return {
    id: id43,
    requestHex: Buffer.from(id43, 'base64url').toString('hex'),
    request: canonicalRequest({ ...d.request, expiresAt }),
    approvals: approvals.filter((a) => a.decision === 'approve' && counted.has(a.approver)),
    rules,
    async consume(tx) {
      try {
        await tx.closeApprovalRequest(id43, 'executed', mfaSettings(app.ctx).now());
      } catch (e) {
        if (isStoreError(e, 'KW_STORE_CONFLICT')) throw new MfaError('KW_MFA_REPLAY', 'the approval request was executed or closed by another request meanwhile');
        throw e;
      }
    },
  };
}

/** The audit details an execution under quorum carries: the approvals with their signatures (verifiable offline). */
export function approvalDetails(g: QuorumGate): Record<string, JsonValue> {
  return { approval: { id: g.id, rules: g.rules.map((r) => ({ op: r.op, role: r.role, threshold: r.threshold })), approvals: JSON.parse(JSON.stringify(g.approvals)) as JsonValue } };
}
