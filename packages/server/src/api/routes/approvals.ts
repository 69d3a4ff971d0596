/**
 * Quorum approval and signed governance over HTTP (issue #7; docs/mfa.md
 * §Quorum approval, §Signed policy). The console's approvals inbox is built
 * on these routes:
 *
 *   POST /v1/approvals                  create an approval request for a sensitive request (admin)
 *   GET  /v1/approvals[?state=]         list (admins, and members of a role a quorum rule names)
 *   GET  /v1/approvals/{id}             one, with its answers, the tally, and what to sign
 *   POST /v1/approvals/{id}/approve     answer with an Ed25519 signature or a WebAuthn assertion
 *   POST /v1/approvals/{id}/deny        refuse (recorded, signed; the request can no longer execute)
 *   POST /v1/approvals/{id}/cancel      the requester withdraws it (closed as denied, audited approvals.cancel)
 *   GET  /v1/governance                 the signed governance snapshot in force
 *   GET|PUT|DELETE /v1/quorum[/{op}]    quorum rules (changes: step-up, quorum, signed snapshot)
 *   GET|PUT|DELETE /v1/approvers[/{principal}/keys/{keyId}]   approval keys (same)
 *
 * The requester executes an approved request by sending it again with
 * `Keyward-Approval: <id>` (quorum-gate.ts).
 */
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { JsonValue } from '../../audit/canonical-json.js';
import { MfaError, isMfaError } from '../../mfa/errors.js';
import { QUORUM_OPERATIONS, applyChange, parseChange, type GovernanceState } from '../../mfa/governance.js';
import { approvalChallenge, approvalMessage, tallyApprovals, type Approval, type Decision } from '../../mfa/quorum.js';
import { canonicalRequest } from '../../mfa/request-hash.js';
import { isStoreError, type ApprovalRequestRow } from '../../store/index.js';
import type { App } from '../app.js';
import type { Principal } from '../auth.js';
import { ApiError, toHttpError } from '../errors.js';
import { governanceHead, governanceState } from '../governance.js';
import { mfaSettings } from '../mfa-settings.js';
import { expireIfDue, rulesFor, tallyRequest } from '../quorum-gate.js';
import { approvalOf, sensitiveGates } from '../sensitive.js';
import { describeRequest, stepUpId } from '../step-up.js';
import { guarded } from './common.js';

const Ident = z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');
const Id = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'an approval request id is a base64url SHA-256 hash (43 characters)');
const RuleView = z.strictObject({ op: z.string(), role: z.string(), threshold: z.int() });
const AnswerView = z.strictObject({ approver: z.string(), decision: z.enum(['approve', 'deny']), kind: z.enum(['ed25519', 'webauthn']), key_id: z.string(), created: z.string() });
const RequestView = z.strictObject({
  id: z.string(), operation: z.string(), requester: z.string(), state: z.enum(['pending', 'executed', 'denied', 'expired']),
  request: z.record(z.string(), z.unknown()), rules: z.array(RuleView), created: z.string(), expires_at: z.string(), closed_at: z.string().nullable(),
  answers: z.array(AnswerView).optional(),
  tally: z.array(z.strictObject({ op: z.string(), approved_by: z.array(z.string()), denied_by: z.array(z.string()), satisfied: z.boolean() })).optional(),
  /** What an approver signs: base64url of the approval message for each decision, and the WebAuthn challenges. */
  sign: z.strictObject({
    approve: z.string(), deny: z.string(),
    webauthn: z.strictObject({ approve: z.string(), deny: z.string(), rp_id: z.string(), allow_credentials: z.array(z.string()) }),
  }).optional(),
});
const AnswerBody = z.union([
  z.strictObject({ kind: z.literal('ed25519'), key_id: Ident, signature: z.string().regex(/^[A-Za-z0-9_-]{86}$/, 'an Ed25519 signature is 64 bytes, base64url') }),
  z.strictObject({ kind: z.literal('webauthn'), response: z.record(z.string(), z.unknown()) }),
]);

const iso = (d: Date | null): string | null => d?.toISOString() ?? null;

function requestView(r: ApprovalRequestRow) {
  return {
    id: r.id, operation: r.op, requester: r.requester, state: r.state, request: r.request as Record<string, unknown>, rules: r.rules,
    created: r.created.toISOString(), expires_at: r.expiresAt.toISOString(), closed_at: iso(r.closedAt),
  };
}

/** The key an answer was signed with: the Ed25519 key id or the WebAuthn credential id. */
function keyIdOf(a: Record<string, JsonValue>): string {
  const r = a.response;
  const id = a.kind === 'webauthn' ? (typeof r === 'object' && r !== null && !Array.isArray(r) ? (r as Record<string, JsonValue>).id : null) : a.keyId;
  return typeof id === 'string' ? id : '';
}

function hashOf(id: string): Uint8Array {
  return new Uint8Array(Buffer.from(id, 'base64url'));
}

/** Admins, and members of any role a quorum rule names, see approval requests. */
function maySeeApprovals(who: Principal, state: GovernanceState): boolean {
  if (who.admin) return true;
  const roles = new Set(Object.values(state.quorum).map((r) => r.role));
  return (state.roles[who.id] ?? []).some((r) => roles.has(r));
}

export function approvalRoutes(app: App): void {
  const { ctx } = app;

  /** Authenticated, audited on failure, for routes open to approvers who are not admins. */
  async function answered<T>(req: FastifyRequest, auditOp: string, id: string | null, run: (who: Principal) => Promise<T>): Promise<T> {
    const who = await app.principal(req);
    try {
      return await run(who);
    } catch (e) {
      const code = toHttpError(e).code;
      if (code !== 'KW_KEYHOLDER_UNAVAILABLE' && code !== 'KW_SEALED') {
        await ctx.audit.recordFailure({
          ns: null, principal: who.id, auth: 'token', op: auditOp, target: {}, outcome: 'denied', code,
          request: id && /^[A-Za-z0-9_-]{43}$/.test(id) ? Buffer.from(id, 'base64url').toString('hex') : null,
          details: { ...(id ? { approval_request: id } : {}), client: { address: req.ip } },
        });
      }
      throw e;
    }
  }

  async function detailed(r: ApprovalRequestRow, who: Principal, state: GovernanceState) {
    const answers = await ctx.store.listApprovals(r.id);
    const rules = rulesFor(state, r.op, r.request);
    let tally: { op: string; approved_by: string[]; denied_by: string[]; satisfied: boolean }[] = [];
    if (r.state === 'pending' && rules.length > 0) {
      try {
        const t = await tallyRequest(app, r, rules, state, mfaSettings(ctx).now());
        tally = t.per.map((p) => ({ op: p.rule.op, approved_by: [...p.tally.approvedBy], denied_by: [...p.tally.deniedBy], satisfied: p.tally.satisfied }));
      } catch (e) {
        if (!isMfaError(e, 'KW_STEP_UP_EXPIRED')) throw e;
      }
    }
    const mine = state.approvers[who.id];
    const rp = mfaSettings(ctx).rp;
    const h = hashOf(r.id);
    return {
      ...requestView(r),
      answers: answers.map((a) => ({
        approver: a.approver, decision: a.decision, kind: a.approval.kind === 'webauthn' ? 'webauthn' as const : 'ed25519' as const,
        key_id: keyIdOf(a.approval),
        created: a.created.toISOString(),
      })),
      tally,
      sign: {
        approve: Buffer.from(approvalMessage(h, 'approve')).toString('base64url'),
        deny: Buffer.from(approvalMessage(h, 'deny')).toString('base64url'),
        webauthn: {
          approve: Buffer.from(approvalChallenge(h, 'approve')).toString('base64url'),
          deny: Buffer.from(approvalChallenge(h, 'deny')).toString('base64url'),
          rp_id: rp.id, allow_credentials: Object.keys(mine?.webauthn ?? {}),
        },
      },
    };
  }

  app.route({
    method: 'POST', url: '/v1/approvals', summary: 'Ask a quorum to approve a sensitive request (the request waits until it is approved, refused or expired)', tag: 'approvals', auth: 'admin', status: 201,
    body: z.strictObject({ method: z.enum(['POST', 'PUT', 'DELETE']), path: z.string().min(2).max(2048).regex(/^\/v1\//, 'path starts with /v1/'), body: z.unknown().optional() }),
    response: RequestView,
  }, ({ body, req }) => guarded(app, req, { op: 'approvals.create', auditOp: 'approvals.request', ns: null }, async ({ who, event }) => {
    const d = describeRequest(body.method, body.path, body.body);
    if (!d) throw new ApiError('KW_INVALID_ARGUMENT', `${body.method} ${body.path} is not a sensitive request: send it directly`);
    const state = await governanceState(app);
    const probe = canonicalRequest({ ...d.request, expiresAt: 1 });
    const rules = rulesFor(state, d.match.op, probe);
    if (rules.length === 0) throw new ApiError('KW_INVALID_ARGUMENT', `no quorum rule covers ${d.match.op}: send the request directly (with a step-up)`);
    // A governance change that cannot apply (an impossible quorum, say) is refused now, not after the approvers signed it.
    const change = parseChange(probe);
    if (change) applyChange(state, change);
    const now = mfaSettings(ctx).now();
    const expiresAt = Math.floor(now.getTime() / 1000) + mfaSettings(ctx).approvalTtlSeconds;
    const id = stepUpId(d.request, expiresAt);
    const request = canonicalRequest({ ...d.request, expiresAt }) as Record<string, JsonValue>;
    const row = await ctx.audit.record({
      ...event, ns: d.request.namespace === '' ? null : d.request.namespace, request: Buffer.from(id, 'base64url').toString('hex'), outcome: 'allowed',
      details: { approval_request: id, operation: d.match.op, rules: rules.map((r) => ({ op: r.op, role: r.role, threshold: r.threshold })), expires_at: new Date(expiresAt * 1000).toISOString(), request },
    }, async (tx) => {
      try {
        return { result: await tx.createApprovalRequest({ id, op: d.match.op, requester: who.id, request: request as never, rules: rules.map((r) => ({ op: r.op, role: r.role, threshold: r.threshold })), created: now, expiresAt: new Date(expiresAt * 1000) }) };
      } catch (e) {
        if (isStoreError(e, 'KW_STORE_CONFLICT')) throw new ApiError('KW_STORE_CONFLICT', 'this approval request exists already (same request, same second)');
        throw e;
      }
    });
    return detailed(row, who, state);
  }));

  app.route({
    method: 'GET', url: '/v1/approvals', summary: 'Approval requests, newest first (at most 500)', tag: 'approvals', auth: 'token',
    query: z.strictObject({ state: z.enum(['pending', 'executed', 'denied', 'expired']).optional() }),
    response: z.strictObject({ approvals: z.array(RequestView) }),
  }, ({ query, req }) => answered(req, 'approvals.read', null, async (who) => {
    const state = await governanceState(app);
    if (!maySeeApprovals(who, state)) throw new ApiError('KW_FORBIDDEN', 'approval requests are shown to administrators and approvers');
    const rows = [];
    for (const r of await ctx.store.listApprovalRequests()) rows.push(await expireIfDue(app, r));
    return { approvals: rows.filter((r) => query.state === undefined || r.state === query.state).map(requestView) };
  }));

  app.route({
    method: 'GET', url: '/v1/approvals/:id', summary: 'One approval request with its answers, the current tally, and what to sign', tag: 'approvals', auth: 'token',
    params: z.strictObject({ id: Id }), response: RequestView,
  }, ({ params, req }) => answered(req, 'approvals.read', params.id, async (who) => {
    const state = await governanceState(app);
    const row = await ctx.store.getApprovalRequest(params.id);
    if (!row || !(maySeeApprovals(who, state) || row.requester === who.id)) throw new ApiError('KW_NOT_FOUND', 'no such approval request');
    return detailed(await expireIfDue(app, row), who, state);
  }));

  for (const decision of ['approve', 'deny'] as const) {
    app.route({
      method: 'POST', url: `/v1/approvals/:id/${decision}`,
      summary: decision === 'approve' ? 'Approve: sign the request hash with your approval key or WebAuthn credential' : 'Refuse: a signed refusal closes the request',
      tag: 'approvals', auth: 'token', params: z.strictObject({ id: Id }), body: AnswerBody, response: RequestView,
    }, ({ params, body, req }) => answered(req, `approvals.${decision}`, params.id, async (who) => answer(who, params.id, decision, body)));
  }

  // The requester withdraws a request nobody needs any more. There is no separate state: it is closed
  // as denied (it can never execute: KW_APPROVAL_DENIED), with no refusal among its answers, and the
  // event approvals.cancel says who withdrew it.
  app.route({
    method: 'POST', url: '/v1/approvals/:id/cancel',
    summary: 'Withdraw your own pending approval request: it is closed (state denied, no refusal among its answers) and can no longer execute',
    tag: 'approvals', auth: 'token', params: z.strictObject({ id: Id }), body: z.strictObject({}).optional(), response: RequestView,
  }, ({ params, req }) => answered(req, 'approvals.cancel', params.id, async (who) => {
    const state = await governanceState(app);
    let row = await ctx.store.getApprovalRequest(params.id);
    if (!row || !(maySeeApprovals(who, state) || row.requester === who.id)) throw new ApiError('KW_NOT_FOUND', 'no such approval request');
    if (row.requester !== who.id) throw new ApiError('KW_FORBIDDEN', 'only the requester may withdraw an approval request (approvers deny it)');
    row = await expireIfDue(app, row);
    if (row.state === 'expired') throw new MfaError('KW_STEP_UP_EXPIRED', `the approval request expired at ${row.expiresAt.toISOString()}`);
    if (row.state !== 'pending') throw new MfaError('KW_APPROVAL_CLOSED', `the approval request is ${row.state}`);
    const now = mfaSettings(ctx).now();
    const pending = row;
    const closed = await ctx.audit.record({
      ns: typeof pending.request.namespace === 'string' && pending.request.namespace !== '' ? pending.request.namespace : null,
      principal: who.id, auth: 'token', op: 'approvals.cancel', target: {}, request: Buffer.from(pending.id, 'base64url').toString('hex'), outcome: 'allowed',
      details: { approval_request: pending.id, operation: pending.op, client: { address: req.ip } },
    }, async (tx) => ({ result: await tx.closeApprovalRequest(pending.id, 'denied', now) }));
    return detailed(closed, who, state);
  }));

  async function answer(who: Principal, id: string, decision: Decision, body: z.output<typeof AnswerBody>) {
    const state = await governanceState(app);
    let row = await ctx.store.getApprovalRequest(id);
    if (!row || !(maySeeApprovals(who, state) || row.requester === who.id)) throw new ApiError('KW_NOT_FOUND', 'no such approval request');
    row = await expireIfDue(app, row);
    if (row.state === 'expired') throw new MfaError('KW_STEP_UP_EXPIRED', `the approval request expired at ${row.expiresAt.toISOString()}`);
    if (row.state !== 'pending') throw new MfaError('KW_APPROVAL_CLOSED', `the approval request is ${row.state}`);
    if (row.requester === who.id) throw new MfaError('KW_APPROVAL_SELF');
    const approval: Approval = body.kind === 'ed25519'
      ? { approver: who.id, decision, kind: 'ed25519', keyId: body.key_id, signature: body.signature }
      : { approver: who.id, decision, kind: 'webauthn', response: JSON.parse(JSON.stringify(body.response)) as never };
    const rules = rulesFor(state, row.op, row.request);
    const mine = rules.filter((r) => (state.roles[who.id] ?? []).includes(r.role));
    if (mine.length === 0) throw new MfaError('KW_APPROVAL_NOT_MEMBER');
    // Verified now (cryptographically), so a bad signature is refused at once; verified again at execution.
    const t = await tallyApprovals({
      request: { hash: hashOf(row.id), requester: row.requester, expiresAt: Math.floor(row.expiresAt.getTime() / 1000) },
      rule: { role: mine[0]!.role, threshold: 1 }, members: new Map([[who.id, membersOfOne(state, who.id)]]), approvals: [approval],
      now: mfaSettings(ctx).now(), rp: mfaSettings(ctx).rp,
    });
    const rej = t.rejected[0];
    if (rej) throw new MfaError(rej.code);
    const wire = JSON.parse(JSON.stringify(approval)) as Record<string, JsonValue>;
    const now = mfaSettings(ctx).now();
    const closed = await ctx.audit.record({
      ns: typeof row.request.namespace === 'string' && row.request.namespace !== '' ? row.request.namespace : null,
      principal: who.id, auth: 'token', op: `approvals.${decision}`, target: {}, request: Buffer.from(row.id, 'base64url').toString('hex'), outcome: 'allowed',
      details: { approval_request: row.id, operation: row.op, requester: row.requester, approval: wire },
    }, async (tx) => {
      try {
        await tx.addApproval({ requestId: row.id, approver: who.id, decision, approval: wire as never, created: now });
      } catch (e) {
        if (isStoreError(e, 'KW_STORE_CONFLICT')) throw new MfaError('KW_APPROVAL_DUPLICATE');
        throw e;
      }
      return { result: decision === 'deny' ? await tx.closeApprovalRequest(row.id, 'denied', now) : row };
    });
    return detailed((await ctx.store.getApprovalRequest(closed.id)) ?? closed, who, state);
  }

  function membersOfOne(state: GovernanceState, principal: string) {
    const keys = state.approvers[principal];
    return {
      ed25519: new Map(Object.entries(keys?.ed25519 ?? {}).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64url'))])),
      credentials: Object.entries(keys?.webauthn ?? {}).map(([cid, c]) => ({ id: cid, publicKey: new Uint8Array(Buffer.from(c.publicKey, 'base64url')), counter: 0, transports: [], fmt: 'none', aaguid: '' })),
    };
  }

  // --- governance, quorum rules, approval keys ----------------------------------------------

  app.route({
    method: 'GET', url: '/v1/governance', summary: 'The governance snapshot in force, signed by the keyholder (null before the first change)', tag: 'approvals', auth: 'admin',
    response: z.strictObject({
      seq: z.int().nullable(), hash: z.string().nullable(), signature: z.string().nullable(), verifier_key: z.string().nullable(),
      authority: z.string().nullable(), snapshot: z.record(z.string(), z.unknown()).nullable(),
    }),
  }, ({ req }) => guarded(app, req, { op: 'policies.read', auditOp: 'policies.read', ns: null }, async ({ event }) => {
    const h = await governanceHead(app);
    const status = await ctx.keyholder.call('status', {});
    await ctx.audit.record({ ...event, outcome: 'allowed', details: { ...event.details, governance: h?.seq ?? null } });
    return {
      seq: h?.seq ?? null, hash: h?.hash ?? null, signature: h?.signature ?? null, verifier_key: status.audit.verifierKey,
      authority: h?.snapshot.authority ?? null, snapshot: h ? (JSON.parse(h.text) as Record<string, unknown>) : null,
    };
  }));

  app.route({
    method: 'GET', url: '/v1/quorum', summary: 'The quorum rules in force (from the signed governance snapshot)', tag: 'approvals', auth: 'token',
    response: z.strictObject({ rules: z.array(RuleView), operations: z.array(z.string()) }),
  }, ({ req }) => answered(req, 'quorum.read', null, async () => {
    const state = await governanceState(app);
    return { rules: Object.entries(state.quorum).map(([op, r]) => ({ op, role: r.role, threshold: r.threshold })), operations: [...QUORUM_OPERATIONS] };
  }));

  const OpParam = z.strictObject({ op: z.enum(QUORUM_OPERATIONS) });
  const quorumChange = (method: 'PUT' | 'DELETE') => ({ params, body, req }: { params: z.output<typeof OpParam>; body: unknown; req: FastifyRequest }) =>
    guarded(app, req, { op: 'quorum.put', auditOp: 'quorum.put', ns: null }, async (g) => {
      const gates = await sensitiveGates(app, req, g.who, g.event, { governance: true });
      const rule = method === 'PUT' ? (body as { role: string; threshold: number }) : null;
      await ctx.audit.record({ ...gates.event, outcome: 'allowed', details: { ...approvalOf(gates.event), op: params.op, rule } }, async (tx) => {
        await gates.inTx(tx);
        return { result: undefined };
      });
      await gates.after();
      const state = await governanceState(app);
      return { rules: Object.entries(state.quorum).map(([op, r]) => ({ op, role: r.role, threshold: r.threshold })), operations: [...QUORUM_OPERATIONS] };
    });
  app.route({
    method: 'PUT', url: '/v1/quorum/:op', summary: 'Require M of the members of a role to approve an operation (KW_QUORUM_INVALID: 0, or more than the role has)', tag: 'approvals', auth: 'admin',
    params: OpParam, body: z.strictObject({ role: Ident, threshold: z.int().min(0).max(1000) }),
    response: z.strictObject({ rules: z.array(RuleView), operations: z.array(z.string()) }),
  }, quorumChange('PUT'));
  app.route({
    method: 'DELETE', url: '/v1/quorum/:op', summary: 'Remove the quorum rule of an operation', tag: 'approvals', auth: 'admin',
    params: OpParam, response: z.strictObject({ rules: z.array(RuleView), operations: z.array(z.string()) }),
  }, quorumChange('DELETE'));

  const ApproversView = z.strictObject({ approvers: z.array(z.strictObject({ principal: z.string(), kind: z.enum(['ed25519', 'webauthn']), key_id: z.string(), public_key: z.string() })) });
  async function approversView() {
    const state = await governanceState(app);
    return {
      approvers: Object.entries(state.approvers).flatMap(([principal, k]) => [
        ...Object.entries(k.ed25519).map(([key_id, public_key]) => ({ principal, kind: 'ed25519' as const, key_id, public_key })),
        ...Object.entries(k.webauthn).map(([key_id, c]) => ({ principal, kind: 'webauthn' as const, key_id, public_key: c.publicKey })),
      ]),
    };
  }
  app.route({
    method: 'GET', url: '/v1/approvers', summary: 'Approval keys in force (public keys, from the signed governance snapshot)', tag: 'approvals', auth: 'token',
    response: ApproversView,
  }, ({ req }) => answered(req, 'approvers.read', null, () => approversView()));

  const KeyParams = z.strictObject({ principal: Ident, keyId: Ident });
  const approverChange = (method: 'PUT' | 'DELETE') => ({ params, req }: { params: z.output<typeof KeyParams>; req: FastifyRequest }) =>
    answered(req, 'approvers.put', null, async (who) => {
      // A person enrolls their own approval keys; an administrator may remove (or, without a quorum rule, add) anyone's.
      if (!who.admin && who.id !== params.principal) throw new ApiError('KW_FORBIDDEN', 'approval keys are enrolled by their owner (or an administrator)');
      const target = await ctx.store.getPrincipal(params.principal);
      if (!target || target.kind !== 'person') throw new ApiError('KW_INVALID_ARGUMENT', 'approval keys belong to people');
      const event = { ns: null, principal: who.id, auth: 'token' as const, op: 'approvers.put', target: {}, request: null, details: { client: { address: req.ip } } };
      const gates = await sensitiveGates(app, req, who, event, { governance: true });
      await ctx.audit.record({ ...gates.event, outcome: 'allowed', details: { ...approvalOf(gates.event), principal: params.principal, key_id: params.keyId, removed: method === 'DELETE' } }, async (tx) => {
        await gates.inTx(tx);
        return { result: undefined };
      });
      await gates.after();
      return approversView();
    });
  app.route({
    method: 'PUT', url: '/v1/approvers/:principal/keys/:keyId', summary: "Enroll an approval key (Ed25519 raw public key, or a WebAuthn credential's COSE public key)", tag: 'approvals', auth: 'token',
    params: KeyParams,
    body: z.union([
      z.strictObject({ kind: z.literal('ed25519'), public_key: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'an Ed25519 public key is 32 bytes, base64url') }),
      z.strictObject({ kind: z.literal('webauthn'), public_key: z.string().min(1).max(2048).regex(/^[A-Za-z0-9_-]+$/) }),
    ]),
    response: ApproversView,
  }, approverChange('PUT'));
  app.route({
    method: 'DELETE', url: '/v1/approvers/:principal/keys/:keyId', summary: 'Remove an approval key', tag: 'approvals', auth: 'token',
    params: KeyParams, response: ApproversView,
  }, approverChange('DELETE'));
}
