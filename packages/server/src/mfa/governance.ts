/**
 * Signed governance (issue #7; docs/mfa.md §Signed policy): the policies,
 * roles, approval keys and quorum rules in force, as a hash-chained sequence
 * of snapshots that the **keyholder** signs only after it checked the
 * transition itself — that the change is exactly what the approving quorum
 * signed (the request hash), by enough distinct members of the rule's role
 * other than the requester, with keys the previous snapshot holds. Pure: no
 * I/O; the keyholder, the API and the offline verifier share it.
 *
 *   snapshot   = { v: "keyward/v1 governance", seq, prev: hex(hash of seq-1) | null, time,
 *                  authority: "genesis" | "keyholder" | "quorum", state, change }
 *   hash       = SHA-256(RFC 8785 JSON of the snapshot)
 *   signature  = Ed25519 by the keyholder's checkpoint key over
 *                "keyward/v1 governance snapshot\n" ‖ hex(hash) ‖ "\n"
 *
 * (The first line has spaces, so it can never be a checkpoint note's origin
 * line: the same key signs both without confusion, and an offline verifier
 * that trusts the audit log's verifier key can check snapshots too.)
 *
 * `authority` says why the keyholder signed: `genesis` — the first snapshot,
 * the state the deployment had when governance was first anchored;
 * `keyholder` — no quorum rule covered the change in the previous snapshot
 * (single-administrator mode, what `doctor` warns about); `quorum` — the
 * rule's threshold of verified approvals is in `change.approvals`.
 *
 * @example
 * const change = parseChange(canonicalRequest);                 // what the request does
 * const next = applyChange(prev.state, change);                  // the state it leads to (KW_QUORUM_INVALID if a rule becomes impossible)
 * const t = await tallyApprovals({ request, rule, members: membersOf(prev.state, rule.role), approvals, now, rp });
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { canonicalJsonBytes } from '../audit/canonical-json.js';
import { PolicyDocumentSchema, type PolicyDocument } from '../api/policy.js';
import { MfaError } from './errors.js';
import { checkQuorumRule, type Approval, type Approver, type QuorumRule } from './quorum.js';
import { REQUEST_HASH_LABEL } from './request-hash.js';

/** Operations a quorum rule can cover. */
export const QUORUM_OPERATIONS = [
  'keys.destroy', 'keys.schedule_deletion', 'policies.put', 'principals.update', 'tokens.create_admin', 'quorum.put', 'approvers.put', 'mfa.remove',
] as const;
export type QuorumOperation = (typeof QUORUM_OPERATIONS)[number];

export const GOVERNANCE_LABEL = 'keyward/v1 governance';
export const SNAPSHOT_SIGNATURE_LABEL = 'keyward/v1 governance snapshot';

const Ident = z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');
const B64u = (max: number) => z.string().min(1).max(max).regex(/^[A-Za-z0-9_-]+$/, 'must be base64url');
const Ed25519Key = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'an Ed25519 public key is 32 bytes, base64url');

export const QuorumRuleSchema = z.strictObject({ role: Ident, threshold: z.int().min(0).max(1000) });

export const ApproverKeysSchema = z.strictObject({
  /** Ed25519 approval keys: key id → raw public key (base64url). */
  ed25519: z.record(Ident, Ed25519Key),
  /** WebAuthn credentials: credential id → COSE public key (base64url). */
  webauthn: z.record(B64u(1024), z.strictObject({ publicKey: B64u(2048) })),
});

export const GovernanceStateSchema = z.strictObject({
  /** "<ns>/<id>" → the policy version in force. */
  policies: z.record(z.string().min(3).max(600), z.strictObject({ ns: Ident, id: Ident, version: z.int().min(1), document: PolicyDocumentSchema })),
  /** principal → roles. A principal absent here has no role. */
  roles: z.record(Ident, z.array(Ident).max(64)),
  approvers: z.record(Ident, ApproverKeysSchema),
  quorum: z.partialRecord(z.enum(QUORUM_OPERATIONS), QuorumRuleSchema),
});
export type GovernanceState = z.infer<typeof GovernanceStateSchema>;

const ApprovalWireSchema = z.union([
  z.strictObject({ approver: Ident, decision: z.enum(['approve', 'deny']), kind: z.literal('ed25519'), keyId: Ident, signature: B64u(128) }),
  z.strictObject({ approver: Ident, decision: z.enum(['approve', 'deny']), kind: z.literal('webauthn'), response: z.record(z.string(), z.unknown()) }),
]);
export const ApprovalsSchema = z.array(ApprovalWireSchema).max(64);

export const SnapshotSchema = z.strictObject({
  v: z.literal(GOVERNANCE_LABEL),
  seq: z.int().min(0),
  prev: z.string().regex(/^[0-9a-f]{64}$/).nullable(),
  time: z.string().max(40),
  authority: z.enum(['genesis', 'keyholder', 'quorum']),
  state: GovernanceStateSchema,
  change: z.strictObject({ request: z.record(z.string(), z.unknown()), requester: Ident, approvals: ApprovalsSchema }).nullable(),
});
export type Snapshot = z.infer<typeof SnapshotSchema>;

/** The empty state: no policy, no role, no approver, no quorum rule. */
export function emptyState(): GovernanceState {
  return { policies: {}, roles: {}, approvers: {}, quorum: {} };
}

/** SHA-256 of the snapshot's canonical JSON. */
export function snapshotHash(s: Snapshot): Uint8Array {
  return new Uint8Array(createHash('sha256').update(canonicalJsonBytes(s)).digest());
}

/** The bytes the keyholder signs for a snapshot whose hash is `hashHex`. */
export function snapshotSignatureMessage(hashHex: string): Uint8Array {
  return new TextEncoder().encode(`${SNAPSHOT_SIGNATURE_LABEL}\n${hashHex}\n`);
}

/** Parses a snapshot text (canonical JSON) the keyholder signed. KW_MFA_INVALID when it is not one. */
export function parseSnapshot(text: string): Snapshot {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new MfaError('KW_MFA_INVALID', 'the governance snapshot is not JSON', { cause: e });
  }
  const r = SnapshotSchema.safeParse(v);
  if (!r.success) throw new MfaError('KW_MFA_INVALID', `not a governance snapshot: ${r.error.issues[0]?.message ?? ''}`);
  return r.data;
}

/** A governance change, as a request describes it. */
export type Change =
  | { readonly kind: 'policy'; readonly ns: string; readonly id: string; readonly document: PolicyDocument }
  | { readonly kind: 'roles'; readonly principal: string; readonly roles: readonly string[] }
  | { readonly kind: 'quorum'; readonly op: QuorumOperation; readonly rule: QuorumRule | null }
  | { readonly kind: 'approver-key'; readonly principal: string; readonly keyKind: 'ed25519' | 'webauthn'; readonly keyId: string; readonly publicKey: string | null };

const SEG = '([^/?#]+)';
const dec = (s: string): string => decodeURIComponent(s);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function bad(msg: string): MfaError {
  return new MfaError('KW_MFA_INVALID', `not a governance change: ${msg}`);
}

/**
 * The governance change a canonical request (mfa/request-hash.ts) makes, or
 * null when it makes none (a key destruction, say). Changes: `PUT
 * /v1/policies/{ns}/{id}`, `PUT /v1/principals/{id}/roles`, `POST
 * /v1/tokens` with `roles`, `PUT|DELETE /v1/quorum/{op}`, `PUT|DELETE
 * /v1/approvers/{principal}/keys/{keyId}`.
 */
export function parseChange(request: unknown): Change | null {
  if (!isObj(request) || request.v !== REQUEST_HASH_LABEL || typeof request.method !== 'string' || typeof request.path !== 'string') throw bad('not a canonical request');
  const { method, path } = request;
  const body = request.body ?? null;
  let m: RegExpExecArray | null;
  try {
    if (method === 'PUT' && (m = new RegExp(`^/v1/policies/${SEG}/${SEG}$`).exec(path))) {
      const d = PolicyDocumentSchema.safeParse(body);
      if (!d.success) throw bad('the policy document is invalid');
      return { kind: 'policy', ns: dec(m[1]!), id: dec(m[2]!), document: d.data };
    }
    if (method === 'PUT' && (m = new RegExp(`^/v1/principals/${SEG}/roles$`).exec(path))) {
      const r = z.strictObject({ roles: z.array(Ident).max(64) }).safeParse(body);
      if (!r.success) throw bad('roles must be a list of identifiers');
      return { kind: 'roles', principal: dec(m[1]!), roles: [...new Set(r.data.roles)] };
    }
    if (method === 'POST' && path === '/v1/tokens') {
      if (!isObj(body) || body.roles === undefined) return null;
      const r = z.object({ principal: Ident, roles: z.array(Ident).max(64) }).safeParse(body);
      if (!r.success) throw bad('roles must be a list of identifiers');
      return { kind: 'roles', principal: r.data.principal, roles: [...new Set(r.data.roles)] };
    }
    if ((method === 'PUT' || method === 'DELETE') && (m = new RegExp(`^/v1/quorum/${SEG}$`).exec(path))) {
      const op = z.enum(QUORUM_OPERATIONS).safeParse(dec(m[1]!));
      if (!op.success) throw bad(`a quorum rule covers one of ${QUORUM_OPERATIONS.join(', ')}`);
      if (method === 'DELETE') return { kind: 'quorum', op: op.data, rule: null };
      const r = QuorumRuleSchema.safeParse(body);
      if (!r.success) throw bad('a quorum rule is { role, threshold }');
      return { kind: 'quorum', op: op.data, rule: r.data };
    }
    if ((method === 'PUT' || method === 'DELETE') && (m = new RegExp(`^/v1/approvers/${SEG}/keys/${SEG}$`).exec(path))) {
      const principal = dec(m[1]!);
      const keyId = dec(m[2]!);
      if (!Ident.safeParse(principal).success || !Ident.safeParse(keyId).success) throw bad('principal and key id are identifiers');
      if (method === 'DELETE') return { kind: 'approver-key', principal, keyKind: 'ed25519', keyId, publicKey: null };
      const r = z.union([
        z.strictObject({ kind: z.literal('ed25519'), public_key: Ed25519Key }),
        z.strictObject({ kind: z.literal('webauthn'), public_key: B64u(2048) }),
      ]).safeParse(body);
      if (!r.success) throw bad('an approval key is { kind: "ed25519" | "webauthn", public_key }');
      return { kind: 'approver-key', principal, keyKind: r.data.kind, keyId, publicKey: r.data.public_key };
    }
  } catch (e) {
    if (e instanceof URIError) throw bad('malformed percent-escape in the path');
    throw e;
  }
  return null;
}

/** The quorum operation that governs a change. */
export function changeOperation(c: Change): QuorumOperation {
  switch (c.kind) {
    case 'policy': return 'policies.put';
    case 'roles': return 'principals.update';
    case 'quorum': return 'quorum.put';
    case 'approver-key': return 'approvers.put';
  }
}

/** How many principals hold `role` in `state`. */
export function roleSize(state: GovernanceState, role: string): number {
  return Object.values(state.roles).filter((rs) => rs.includes(role)).length;
}

/** Refuses (KW_QUORUM_INVALID) a state whose quorum rules cannot be met: 0, or more than the role's members. */
export function checkRules(state: GovernanceState): void {
  for (const [op, rule] of Object.entries(state.quorum)) {
    if (rule) checkQuorumRule(rule, roleSize(state, rule.role));
    void op;
  }
}

/** The state after `change` (a new object; `state` is not modified). KW_QUORUM_INVALID if a rule becomes impossible. */
export function applyChange(state: GovernanceState, change: Change): GovernanceState {
  const next: GovernanceState = structuredClone(state);
  switch (change.kind) {
    case 'policy': {
      const k = `${change.ns}/${change.id}`;
      next.policies[k] = { ns: change.ns, id: change.id, version: (state.policies[k]?.version ?? 0) + 1, document: change.document };
      break;
    }
    case 'roles':
      if (change.roles.length === 0) delete next.roles[change.principal];
      else next.roles[change.principal] = [...change.roles];
      break;
    case 'quorum':
      if (change.rule === null) delete next.quorum[change.op];
      else next.quorum[change.op] = { ...change.rule };
      break;
    case 'approver-key': {
      const cur = next.approvers[change.principal] ?? { ed25519: {}, webauthn: {} };
      if (change.publicKey === null) {
        delete cur.ed25519[change.keyId];
        delete cur.webauthn[change.keyId];
      } else if (change.keyKind === 'ed25519') {
        cur.ed25519[change.keyId] = change.publicKey;
      } else {
        cur.webauthn[change.keyId] = { publicKey: change.publicKey };
      }
      if (Object.keys(cur.ed25519).length + Object.keys(cur.webauthn).length === 0) delete next.approvers[change.principal];
      else next.approvers[change.principal] = cur;
      break;
    }
  }
  checkRules(next);
  return next;
}

/** The members of `role` in `state`, with the keys they approve with (for `tallyApprovals`). */
export function membersOf(state: GovernanceState, role: string): Map<string, Approver> {
  const out = new Map<string, Approver>();
  for (const [p, rs] of Object.entries(state.roles)) {
    if (!rs.includes(role)) continue;
    const keys = state.approvers[p];
    out.set(p, {
      ed25519: new Map(Object.entries(keys?.ed25519 ?? {}).map(([id, k]) => [id, new Uint8Array(Buffer.from(k, 'base64url'))])),
      credentials: Object.entries(keys?.webauthn ?? {}).map(([id, c]) => ({ id, publicKey: new Uint8Array(Buffer.from(c.publicKey, 'base64url')), counter: 0, transports: [], fmt: 'none', aaguid: '' })),
    });
  }
  return out;
}

/** The policy documents of namespace `ns` in `state`. */
export function policiesIn(state: GovernanceState, ns: string): PolicyDocument[] {
  return Object.values(state.policies).filter((p) => p.ns === ns).map((p) => p.document);
}

/** Approvals as stored and signed (JSON), checked. */
export function parseApprovals(v: unknown): Approval[] {
  const r = ApprovalsSchema.safeParse(v);
  if (!r.success) throw new MfaError('KW_APPROVAL_INVALID', `malformed approvals: ${r.error.issues[0]?.message ?? ''}`);
  return r.data as unknown as Approval[];
}
