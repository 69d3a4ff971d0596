/**
 * The keyholder's side of signed governance (mfa/governance.ts; docs/mfa.md
 * §Signed policy): it holds the one snapshot in force (in its own state file,
 * never in the database), signs a successor only after checking the
 * transition itself, and decides data-plane requests it authenticated itself
 * (`datakey`, `unwrap`, `decrypt`, `open`) on that snapshot — not on the
 * policy rows the API read from the database.
 *
 * - **Genesis.** The first snapshot (seq 0) is the state the API presents at
 *   the first governance change after `keyward init` (trust on first use,
 *   like the bootstrap token): usually empty. Once the keyholder holds a
 *   snapshot, genesis is refused for good.
 * - **Transitions.** `adopt` parses the change from the canonical request,
 *   applies it (KW_QUORUM_INVALID if a rule becomes impossible) and, if the
 *   snapshot in force has a quorum rule for the change's operation, counts
 *   the approvals against that snapshot's roles and approval keys
 *   (`tallyApprovals`: requester excluded, one per approver, each signature
 *   verified); short of the threshold it refuses (KW_QUORUM_PENDING), after
 *   a verified denial KW_APPROVAL_DENIED. Without a rule it signs on the
 *   API's word (single-administrator mode; `authority: "keyholder"`).
 * - **Enforcement.** Data ops of a caller whose request the keyholder
 *   verified are decided with `decide()` over the snapshot's policies and the
 *   caller's roles in the snapshot: KW_POLICY_DENIED when they grant nothing.
 *   Before genesis there is nothing to enforce (the API's decision stands).
 */
import { canonicalJson } from './canonical-json.js';
import { decide, type Operation } from '../api/policy.js';
import { MfaError } from '../mfa/errors.js';
import {
  GOVERNANCE_LABEL, applyChange, changeOperation, checkRules, membersOf, parseApprovals, parseChange, parseSnapshot, policiesIn,
  snapshotHash, snapshotSignatureMessage, type GovernanceState, type Snapshot,
} from '../mfa/governance.js';
import { tallyApprovals } from '../mfa/quorum.js';
import type { RelyingParty } from '../mfa/webauthn.js';
import { toHex } from './bytes.js';
import { KeyholderProtocolError } from './protocol.js';
import { createHash } from 'node:crypto';

/** A snapshot with its canonical text, hash and the keyholder's signature (hex). */
export interface SignedSnapshot {
  readonly snapshot: Snapshot;
  readonly text: string;
  readonly hash: string;
  readonly signature: string;
}

/** Signs with the checkpoint key (domain-separated message). */
export type SnapshotSigner = (message: Uint8Array) => Uint8Array;

function seal(snapshot: Snapshot, sign: SnapshotSigner): SignedSnapshot {
  const text = canonicalJson(snapshot);
  const hash = toHex(snapshotHash(snapshot));
  return { snapshot, text, hash, signature: toHex(sign(snapshotSignatureMessage(hash))) };
}

/** Re-reads a snapshot the keyholder stored in its own state file. */
export function loadSigned(stored: { snapshot: string; signature: string }): SignedSnapshot {
  const snapshot = parseSnapshot(stored.snapshot);
  return { snapshot, text: stored.snapshot, hash: toHex(snapshotHash(snapshot)), signature: stored.signature };
}

/** The genesis snapshot over `base` (checked: its quorum rules must be possible). */
export function genesis(base: GovernanceState, time: string, sign: SnapshotSigner): SignedSnapshot {
  checkRules(base);
  return seal({ v: GOVERNANCE_LABEL, seq: 0, prev: null, time, authority: 'genesis', state: base, change: null }, sign);
}

/** Checks a transition from `head` (see the module comment) and signs its result. */
export async function adopt(head: SignedSnapshot, p: {
  request: Record<string, unknown>; requester: string; approvals: unknown; rp?: RelyingParty; time: string;
}, sign: SnapshotSigner): Promise<SignedSnapshot> {
  const change = parseChange(p.request);
  if (!change) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'the request makes no governance change (policy, roles, quorum rule or approval key)');
  const op = changeOperation(change);
  const state = applyChange(head.snapshot.state, change);
  const rule = head.snapshot.state.quorum[op];
  const approvals = parseApprovals(p.approvals);
  let counted: typeof approvals = [];
  if (rule) {
    const expiresAt = p.request.expiresAt;
    if (typeof expiresAt !== 'number') throw new MfaError('KW_MFA_INVALID', 'the request has no expiry');
    const hash = new Uint8Array(createHash('sha256').update(canonicalJson(p.request)).digest());
    const tally = await tallyApprovals({
      request: { hash, requester: p.requester, expiresAt }, rule, members: membersOf(head.snapshot.state, rule.role), approvals,
      now: new Date(p.time), ...(p.rp ? { rp: p.rp } : {}),
    });
    if (tally.denied) throw new MfaError('KW_APPROVAL_DENIED', `denied by ${tally.deniedBy.join(', ')}`);
    if (!tally.satisfied) throw new MfaError('KW_QUORUM_PENDING', `${tally.approvedBy.length} of ${rule.threshold} approvals from role '${rule.role}' verify`);
    const seen = new Set<string>();
    counted = approvals.filter((a) => a.decision === 'approve' && tally.approvedBy.includes(a.approver) && !seen.has(a.approver) && (seen.add(a.approver), true));
  }
  return seal({
    v: GOVERNANCE_LABEL, seq: head.snapshot.seq + 1, prev: head.hash, time: p.time, authority: rule ? 'quorum' : 'keyholder', state,
    change: { request: p.request, requester: p.requester, approvals: JSON.parse(JSON.stringify(counted)) as never },
  }, sign);
}

/** KW_POLICY_DENIED unless the snapshot grants `op` on `ns/key` to `principal` with `context`. */
export function enforce(head: SignedSnapshot | null, principal: string, op: Operation, ns: string, key: string, context: Readonly<Record<string, string>>): void {
  if (!head) return;
  const st = head.snapshot.state;
  const d = decide({ id: principal, roles: st.roles[principal] ?? [], admin: false }, op, `${ns}/${key}`, context, policiesIn(st, ns));
  if (!d.allowed) {
    throw new KeyholderProtocolError('KW_POLICY_DENIED', `the signed policy in force (snapshot ${head.snapshot.seq}) does not grant ${op} on ${ns}/${key} to ${principal}`);
  }
}

/** The approvals the API presents with a destroy (`destroy-receipt`): the approval request the quorum signed. */
export interface DestroyApproval {
  /** The canonical request (with its expiry) whose hash the approvers signed. */
  readonly request: Record<string, unknown>;
  readonly requester: string;
  readonly approvals: unknown;
}

const DESTROY_PATH = /^\/v1\/keys\/[^/]+\/[^/]+\/versions\/[1-9][0-9]{0,9}\/(destroy|schedule-deletion)$/;

/**
 * The keyholder's own check before it receipts the destruction of `ref`
 * (docs/mfa.md §Quorum approval): when its snapshot has a `keys.destroy` or
 * `keys.schedule_deletion` rule, the destroy must come with the approvals of
 * a request for exactly this version — `POST …/destroy` under the
 * `keys.destroy` rule (not expired at `now`), or `POST …/schedule-deletion`
 * under the `keys.schedule_deletion` rule (what the scheduler presents when a
 * scheduled deletion falls due; it was checked before it expired) — counted
 * against the snapshot's role and approval keys, requester excluded, one per
 * approver, each signature over the request's hash verified.
 * KW_QUORUM_REQUIRED (none, or for another version or operation),
 * KW_APPROVAL_DENIED, KW_QUORUM_PENDING, KW_STEP_UP_EXPIRED.
 */
export async function checkDestroyApproval(
  head: SignedSnapshot | null, ref: { readonly ns: string; readonly key: string; readonly version: number },
  approval: DestroyApproval | undefined, now: Date, rp?: RelyingParty,
): Promise<void> {
  if (!head) return;
  const quorum = head.snapshot.state.quorum;
  if (!quorum['keys.destroy'] && !quorum['keys.schedule_deletion']) return;
  const what = `${ref.ns}/${ref.key} v${ref.version}`;
  if (!approval) throw new MfaError('KW_QUORUM_REQUIRED', `the signed governance in force (snapshot ${head.snapshot.seq}) needs a quorum's approvals to destroy ${what}`);
  const r = approval.request;
  const m = typeof r.path === 'string' ? DESTROY_PATH.exec(r.path) : null;
  if (r.method !== 'POST' || !m || r.namespace !== ref.ns || r.key !== ref.key || r.version !== ref.version) {
    throw new MfaError('KW_QUORUM_REQUIRED', `the approvals presented are not for destroying ${what}`);
  }
  const op = m[1] === 'destroy' ? 'keys.destroy' : 'keys.schedule_deletion';
  const rule = quorum[op];
  if (!rule) throw new MfaError('KW_QUORUM_REQUIRED', `the signed governance in force has no ${op} rule: approvals of ${m[0]} do not authorise this destroy`);
  const expiresAt = r.expiresAt;
  if (typeof expiresAt !== 'number') throw new MfaError('KW_MFA_INVALID', 'the request has no expiry');
  const hash = new Uint8Array(createHash('sha256').update(canonicalJson(r)).digest());
  const tally = await tallyApprovals({
    request: { hash, requester: approval.requester, expiresAt: op === 'keys.destroy' ? expiresAt : Number.MAX_SAFE_INTEGER },
    rule, members: membersOf(head.snapshot.state, rule.role), approvals: parseApprovals(approval.approvals), now, ...(rp ? { rp } : {}),
  });
  if (tally.denied) throw new MfaError('KW_APPROVAL_DENIED', `denied by ${tally.deniedBy.join(', ')}`);
  if (!tally.satisfied) throw new MfaError('KW_QUORUM_PENDING', `${tally.approvedBy.length} of ${rule.threshold} approvals from role '${rule.role}' (${op}) verify`);
}
