/**
 * Quorum approval: an operation a policy marks "M of role R" waits until M
 * distinct members of R, other than the requester, have approved its exact
 * request hash with their own key — an Ed25519 approval key or a WebAuthn
 * credential. Approvals are checked cryptographically every time the tally is
 * computed (from the stored approvals, offline too), never trusted as flags.
 *
 * What an approver signs (Ed25519) or uses as the WebAuthn challenge
 * (SHA-256 of it), so an approval cannot be turned into a denial or moved to
 * another request:
 *
 *   "keyward/v1 approval\n" ‖ decision ("approve" | "deny") ‖ "\n" ‖ base64url(request_hash)
 *
 * One verified denial by a member ends the request (it cannot be approved
 * afterwards); the requester's own approval never counts; an approver who
 * approves twice counts once; nothing counts after the request expired.
 *
 * @example
 * checkQuorumRule({ role: 'key-admins', threshold: 2 }, members.size);
 * const t = await tallyApprovals({ request, rule, members, approvals, now: new Date(), rp });
 * if (t.satisfied) execute();
 */
import { createHash, createPublicKey, verify as edVerify } from 'node:crypto';
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import { MfaError, isMfaError, type MfaErrorCode } from './errors.js';
import { verifyStepUp, type RelyingParty, type StoredCredential } from './webauthn.js';

/** "M of the members of `role`". */
export interface QuorumRule {
  readonly role: string;
  readonly threshold: number;
}

/** Refuses a quorum of 0, or of more approvers than the role has members (checked when a policy is written). */
export function checkQuorumRule(rule: QuorumRule, roleSize: number): void {
  if (!Number.isInteger(rule.threshold) || rule.threshold < 1 || rule.threshold > roleSize) {
    throw new MfaError('KW_QUORUM_INVALID', `a quorum of ${rule.threshold} is impossible for role '${rule.role}' with ${roleSize} member(s)`);
  }
}

export type Decision = 'approve' | 'deny';

/** The bytes an approver signs for `decision` on the request whose hash is `hash`. */
export function approvalMessage(hash: Uint8Array, decision: Decision): Uint8Array {
  return new TextEncoder().encode(`keyward/v1 approval\n${decision}\n${Buffer.from(hash).toString('base64url')}`);
}

/** The WebAuthn challenge for an approval: SHA-256 of the approval message. */
export function approvalChallenge(hash: Uint8Array, decision: Decision): Uint8Array {
  return new Uint8Array(createHash('sha256').update(approvalMessage(hash, decision)).digest());
}

export type Approval =
  | { readonly approver: string; readonly decision: Decision; readonly kind: 'ed25519'; readonly keyId: string; readonly signature: string }
  | { readonly approver: string; readonly decision: Decision; readonly kind: 'webauthn'; readonly response: AuthenticationResponseJSON };

/** A member of the role, with the public keys they may approve with. */
export interface Approver {
  /** Ed25519 approval keys by key id (raw 32-byte public keys). */
  readonly ed25519: ReadonlyMap<string, Uint8Array>;
  readonly credentials: readonly StoredCredential[];
}

export interface PendingRequest {
  readonly hash: Uint8Array;
  readonly requester: string;
  /** Seconds since the Unix epoch. */
  readonly expiresAt: number;
}

export interface Tally {
  readonly approvedBy: readonly string[];
  readonly deniedBy: readonly string[];
  /** Approvals that did not count, and why. */
  readonly rejected: readonly { readonly approver: string; readonly code: MfaErrorCode }[];
  /** New WebAuthn signature counters to store, by credential id. */
  readonly counters: ReadonlyMap<string, number>;
  readonly denied: boolean;
  readonly satisfied: boolean;
}

function ed25519Valid(publicKey: Uint8Array, message: Uint8Array, signatureB64u: string): boolean {
  try {
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') }, format: 'jwk' });
    const sig = Buffer.from(signatureB64u, 'base64url');
    return sig.length === 64 && edVerify(null, message, key, sig);
  } catch {
    return false;
  }
}

async function verifyOne(a: Approval, member: Approver, req: PendingRequest, rp: RelyingParty | undefined, counters: Map<string, number>): Promise<void> {
  if (a.kind === 'ed25519') {
    const pk = member.ed25519.get(a.keyId);
    if (!pk || !ed25519Valid(pk, approvalMessage(req.hash, a.decision), a.signature)) throw new MfaError('KW_APPROVAL_INVALID');
    return;
  }
  const stored = member.credentials.find((c) => c.id === a.response.id);
  if (!stored || !rp) throw new MfaError('KW_APPROVAL_INVALID');
  const cred = { ...stored, counter: counters.get(stored.id) ?? stored.counter };
  try {
    const { newCounter } = await verifyStepUp(rp, a.response, cred, approvalChallenge(req.hash, a.decision));
    counters.set(stored.id, newCounter);
  } catch (e) {
    throw isMfaError(e) ? new MfaError('KW_APPROVAL_INVALID', e.message, { cause: e }) : e;
  }
}

/**
 * Counts the approvals of `request` under `rule`. `members` are the role's
 * members now (an approver removed from the role no longer counts).
 * @throws KW_STEP_UP_EXPIRED when `now` is past the request's expiry.
 */
export async function tallyApprovals(opts: {
  request: PendingRequest;
  rule: QuorumRule;
  members: ReadonlyMap<string, Approver>;
  approvals: readonly Approval[];
  now: Date;
  rp?: RelyingParty;
}): Promise<Tally> {
  const { request, rule, members } = opts;
  if (opts.now.getTime() / 1000 > request.expiresAt) throw new MfaError('KW_STEP_UP_EXPIRED');
  checkQuorumRule(rule, members.size);
  const approved = new Set<string>();
  const denied = new Set<string>();
  const rejected: { approver: string; code: MfaErrorCode }[] = [];
  const counters = new Map<string, number>();
  for (const a of opts.approvals) {
    if (a.approver === request.requester) { rejected.push({ approver: a.approver, code: 'KW_APPROVAL_SELF' }); continue; }
    const member = members.get(a.approver);
    if (!member) { rejected.push({ approver: a.approver, code: 'KW_APPROVAL_NOT_MEMBER' }); continue; }
    try {
      await verifyOne(a, member, request, opts.rp, counters);
    } catch (e) {
      if (!isMfaError(e)) throw e;
      rejected.push({ approver: a.approver, code: e.code });
      continue;
    }
    (a.decision === 'approve' ? approved : denied).add(a.approver);
  }
  const isDenied = denied.size > 0;
  return {
    approvedBy: [...approved].filter((p) => !denied.has(p)),
    deniedBy: [...denied],
    rejected,
    counters,
    denied: isDenied,
    satisfied: !isDenied && [...approved].filter((p) => !denied.has(p)).length >= rule.threshold,
  };
}
