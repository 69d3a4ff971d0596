/**
 * Offline verification of quorum approvals and signed governance in an
 * audit export (issue #7; docs/mfa.md §Offline verification), after
 * `verifyExport` found the export intact. Approvals are checked
 * cryptographically from the log alone, never taken as flags:
 *
 * - `governance.genesis`: the snapshot hashes to its `hash`, and the
 *   keyholder's signature over it verifies with the log's verifier key (the
 *   checkpoint key signs snapshots too, domain-separated).
 * - `governance.adopt`: the snapshot rebuilt from the previous one and the
 *   change (`applyChange`) hashes to `hash`, chains to the previous `hash`,
 *   carries the keyholder's signature; under `authority: "quorum"`, the
 *   approvals it carries meet the previous snapshot's rule (members of the
 *   role, not the requester, one per approver, each signature verified);
 *   under `"keyholder"`, no rule covered the change.
 * - `approvals.approve` / `approvals.deny`: the approver's signature over the
 *   request hash verifies with a key of theirs in the snapshot in force.
 * - Any event executed under quorum (`details.approval`): its approvals meet
 *   every rule it names, with the snapshot in force, for the event's request
 *   hash, the event's principal being the requester. The scheduler's
 *   `keys.destroy` (no principal) carries the schedule-deletion request whole
 *   and its requester: it must name this version, and its approvals meet the
 *   rules for that request's hash.
 *
 * WebAuthn approvals are verified against the origin in their own client data
 * (the relying-party id is its host): the signature is what matters offline.
 * Events before the first governance event of the export cannot be checked
 * (no approval keys known yet): export from index 0 to check everything.
 */
import { createHash, createPublicKey, verify as edVerify } from 'node:crypto';
import { parseVerifierKey } from '@keyward/tlog';
import { MfaError } from '../mfa/errors.js';
import {
  GOVERNANCE_LABEL, SnapshotSchema, applyChange, changeOperation, membersOf, parseApprovals, parseChange, snapshotHash, snapshotSignatureMessage,
  type GovernanceState, type Snapshot,
} from '../mfa/governance.js';
import { tallyApprovals, type Approval, type QuorumRule } from '../mfa/quorum.js';
import { canonicalJsonBytes } from './canonical-json.js';
import type { AuditEvent } from './event.js';
import type { AuditProblem } from './verify.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The relying party a WebAuthn approval claims (its client data's origin). */
function rpOf(approvals: readonly Approval[]) {
  for (const a of approvals) {
    if (a.kind !== 'webauthn') continue;
    try {
      const cd = JSON.parse(Buffer.from(a.response.response.clientDataJSON, 'base64url').toString('utf8')) as { origin?: string };
      if (typeof cd.origin === 'string') return { id: new URL(cd.origin).hostname, name: 'offline', origins: [cd.origin] };
    } catch { /* no rp: the approval does not verify */ }
  }
  return undefined;
}

async function meets(state: GovernanceState, rule: QuorumRule, hash: Uint8Array, requester: string, approvals: readonly Approval[]): Promise<string | null> {
  const rp = rpOf(approvals);
  const t = await tallyApprovals({
    request: { hash, requester, expiresAt: Number.MAX_SAFE_INTEGER }, rule, members: membersOf(state, rule.role), approvals, now: new Date(0), ...(rp ? { rp } : {}),
  });
  if (t.satisfied) return null;
  const why = t.rejected.map((r) => `${r.approver}: ${r.code}`).join(', ');
  return `${t.approvedBy.length} of ${rule.threshold} approvals from role '${rule.role}' verify${why ? ` (rejected: ${why})` : ''}`;
}

/**
 * Checks the approvals and governance snapshots of `events` (any order; an
 * export that `verifyExport` found intact); the problems, empty when all verify.
 *
 * @example
 * const r = verifyExport(text, { verifierKey });
 * const problems = r.ok ? await verifyApprovals(r.events, { verifierKey }) : r.problems;
 */
export async function verifyApprovals(events: readonly AuditEvent[], opts: { verifierKey: string; previousVerifierKeys?: readonly string[] }): Promise<AuditProblem[]> {
  const problems: AuditProblem[] = [];
  const gov = (index: number, message: string) => problems.push({ code: 'AUDIT_GOVERNANCE_INVALID', index, message });
  const bad = (index: number, message: string) => problems.push({ code: 'AUDIT_APPROVAL_INVALID', index, message });
  // The log's key, and earlier checkpoint keys the auditor vouches for (replaced by `keyward hsm rewrap`; docs/hsm.md §HSM migration).
  const keys = [opts.verifierKey, ...(opts.previousVerifierKeys ?? [])].map((k) => {
    const vk = parseVerifierKey(k);
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(vk.publicKey).toString('base64url') }, format: 'jwk' });
  });
  const signedByKeyholder = (hashHex: string, sigHex: unknown): boolean => {
    if (typeof sigHex !== 'string' || !/^[0-9a-f]{128}$/.test(sigHex)) return false;
    return keys.some((key) => edVerify(null, snapshotSignatureMessage(hashHex), key, Buffer.from(sigHex, 'hex')));
  };
  let state: GovernanceState | null = null;
  let prev: string | null = null;

  for (const e of [...events].sort((a, b) => a.index - b.index)) {
    if (e.outcome !== 'allowed') continue;
    const d = e.details as Record<string, unknown>;
    try {
      if (e.op === 'governance.genesis') {
        const s = SnapshotSchema.safeParse(d.snapshot);
        if (!s.success) { gov(e.index, 'the genesis snapshot is malformed'); continue; }
        const h = hex(snapshotHash(s.data));
        if (h !== d.hash || !signedByKeyholder(h, d.signature)) { gov(e.index, 'the genesis snapshot does not carry a valid keyholder signature'); continue; }
        state = s.data.state;
        prev = h;
        continue;
      }
      if (e.op === 'governance.adopt') {
        if (state === null) continue; // nothing to check it against in this export
        const change = isObj(d.change) ? d.change : null;
        if (!change) { gov(e.index, 'the adopted change is missing'); continue; }
        if (d.prev !== prev) { gov(e.index, `snapshot ${String(d.seq)} does not chain to the previous one (prev ${String(d.prev)}, expected ${prev})`); continue; }
        const parsed = parseChange(change.request);
        if (!parsed) { gov(e.index, 'the adopted request makes no governance change'); continue; }
        const snap: Snapshot = {
          v: GOVERNANCE_LABEL, seq: d.seq as number, prev, time: d.time as string, authority: d.authority as Snapshot['authority'],
          state: applyChange(state, parsed), change: change as Snapshot['change'],
        };
        const h = hex(snapshotHash(snap));
        if (h !== d.hash || !signedByKeyholder(h, d.signature)) { gov(e.index, `snapshot ${String(d.seq)} does not hash to its signed value (rebuilt from the previous snapshot and the change)`); continue; }
        const rule = state.quorum[changeOperation(parsed)];
        if (snap.authority === 'quorum' && rule) {
          const reqHash = createHash('sha256').update(canonicalJsonBytes(change.request)).digest();
          const why = await meets(state, rule, reqHash, String(change.requester), parseApprovals(change.approvals));
          if (why) gov(e.index, `snapshot ${String(d.seq)}: the quorum's approvals do not verify: ${why}`);
        } else if (rule) {
          gov(e.index, `snapshot ${String(d.seq)} was signed without the quorum its rule requires`);
        }
        state = snap.state;
        prev = h;
        continue;
      }
      if (state === null) continue;
      if ((e.op === 'approvals.approve' || e.op === 'approvals.deny') && isObj(d.approval) && e.request !== null) {
        const [a] = parseApprovals([d.approval]);
        const approver = a!.approver;
        const keys = membersOf({ ...state, roles: { [approver]: ['_'] } }, '_');
        const rp = rpOf([a!]);
        const t = await tallyApprovals({ request: { hash: Buffer.from(e.request, 'hex'), requester: '', expiresAt: Number.MAX_SAFE_INTEGER }, rule: { role: '_', threshold: 1 }, members: keys, approvals: [a!], now: new Date(0), ...(rp ? { rp } : {}) });
        if (t.rejected.length > 0 || approver !== e.principal) bad(e.index, `the ${a!.decision} of ${approver} does not verify with their approval keys`);
        continue;
      }
      const ap = isObj(d.approval) ? d.approval : null;
      if (ap && Array.isArray(ap.rules) && e.principal === null && e.op === 'keys.destroy') {
        // The scheduler's destroy: the approvals of the schedule-deletion request (carried whole, with its requester)
        // must be for this very version, and meet the rules it names.
        const req = isObj(ap.request) ? ap.request : null;
        const target = e.target;
        const path = req && typeof req.path === 'string' ? /\/versions\/[1-9][0-9]*\/(destroy|schedule-deletion)$/.test(req.path) : false;
        if (!req || !path || req.method !== 'POST' || req.namespace !== e.ns || req.key !== target.key || req.version !== target.version || typeof ap.requester !== 'string') {
          bad(e.index, `${e.op} by the scheduler carries approvals that are not for destroying this version`);
        } else {
          const hash = createHash('sha256').update(canonicalJsonBytes(req)).digest();
          const approvals = parseApprovals(ap.approvals);
          for (const r of ap.rules as { op: string; role: string; threshold: number }[]) {
            const why = await meets(state, { role: r.role, threshold: r.threshold }, hash, ap.requester, approvals);
            if (why) bad(e.index, `${e.op} executed under quorum (${r.op}) but ${why}`);
          }
        }
      } else if (ap && Array.isArray(ap.rules) && e.request !== null && e.principal !== null) {
        const approvals = parseApprovals(ap.approvals);
        for (const r of ap.rules as { op: string; role: string; threshold: number }[]) {
          const why = await meets(state, { role: r.role, threshold: r.threshold }, Buffer.from(e.request, 'hex'), e.principal, approvals);
          if (why) bad(e.index, `${e.op} executed under quorum (${r.op}) but ${why}`);
        }
      }
    } catch (err) {
      const code = err instanceof MfaError ? err.code : 'error';
      (e.op.startsWith('governance.') ? gov : bad)(e.index, `cannot be checked: ${code}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return problems;
}
