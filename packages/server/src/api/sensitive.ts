/**
 * The gates of a sensitive route in one place (issue #7): the step-up gate
 * (step-up.ts), the quorum gate (quorum-gate.ts) and, for governance changes
 * (policies, roles, quorum rules, approval keys), the keyholder's signature
 * of the next governance snapshot (governance.ts) — all consumed inside the
 * operation's own transaction, so a refusal at any step changes nothing.
 *
 * @example
 * const s = await sensitiveGates(app, req, g.who, g.event, { governance: true });
 * await ctx.audit.record({ ...s.event, outcome: 'allowed', details }, async (tx) => { await s.inTx(tx); …; return { result } });
 * await s.after();
 */
import type { FastifyRequest } from 'fastify';
import type { AuditEventInput } from '../audit/event.js';
import type { JsonValue } from '../audit/canonical-json.js';
import { canonicalRequest } from '../mfa/request-hash.js';
import type { StoreTx } from '../store/index.js';
import type { App } from './app.js';
import type { Principal } from './auth.js';
import { adoptChange, ensureAnchored } from './governance.js';
import { mfaSettings } from './mfa-settings.js';
import { approvalDetails, quorumGate, type QuorumGate } from './quorum-gate.js';
import { describeRequest, stepUpGate } from './step-up.js';

/** How long the canonical request of a governance change made without a quorum is valid (it is signed at once). */
const DIRECT_CHANGE_TTL_SECONDS = 300;

/** The `approval` entry of a gated event's details (empty without quorum), for routes that write their own details. */
export function approvalOf(event: Omit<AuditEventInput, 'outcome'>): Record<string, JsonValue> {
  const a = (event.details)?.approval;
  return a === undefined ? {} : { approval: a };
}

export interface SensitiveGates {
  /** The event with the request hash and, under quorum, the approvals (with their signatures). */
  readonly event: Omit<AuditEventInput, 'outcome'>;
  /** Inside the operation's transaction: consumes the step-up and the approval request; adopts the governance change. */
  inTx(tx: StoreTx): Promise<void>;
  /** After commit: records the signed snapshot (`governance.adopt`) for offline verification. */
  after(): Promise<void>;
  /** The satisfied approval request, when a quorum rule covers the request (the keyholder re-checks it for a destroy). */
  readonly quorum: QuorumGate | null;
}

export async function sensitiveGates(app: App, req: FastifyRequest, who: Principal, event: Omit<AuditEventInput, 'outcome'>, opts: { governance: boolean }): Promise<SensitiveGates> {
  const step = await stepUpGate(app, req, who);
  const quorum = await quorumGate(app, req, who);
  if (opts.governance) await ensureAnchored(app);
  const ev = {
    ...event,
    request: quorum?.requestHex ?? step?.requestHex ?? event.request ?? null,
    details: { ...(event.details ?? {}), ...(quorum ? approvalDetails(quorum) : {}) },
  };
  let adopted: { seq: number; hash: string; signature: string; snapshot: string } | null = null;
  let canonical: JsonValue | null = null;
  if (opts.governance) {
    if (quorum) {
      canonical = quorum.request;
    } else {
      const d = describeRequest(req.method, req.url.split('?')[0] ?? req.url, req.body);
      const now = Math.floor(mfaSettings(app.ctx).now().getTime() / 1000);
      const base = d?.request ?? { method: req.method.toUpperCase(), path: req.url.split('?')[0] ?? req.url, namespace: '', key: null, version: null, body: (req.body ?? null) as JsonValue };
      canonical = canonicalRequest({ ...base, expiresAt: now + DIRECT_CHANGE_TTL_SECONDS });
    }
  }
  return {
    event: ev,
    quorum,
    async inTx(tx) {
      await step?.consume(tx);
      await quorum?.consume(tx);
      if (canonical !== null) adopted = await adoptChange(app, tx, { request: canonical, requester: who.id, approvals: quorum?.approvals ?? [] });
    },
    async after() {
      const a = adopted;
      if (!a) return;
      const s = JSON.parse(a.snapshot) as { prev: string | null; time: string; authority: string; change: JsonValue };
      await app.ctx.audit.record({
        ns: null, principal: who.id, auth: 'token', op: 'governance.adopt', target: {}, request: ev.request, outcome: 'allowed',
        details: { seq: a.seq, prev: s.prev, hash: a.hash, signature: a.signature, time: s.time, authority: s.authority, change: s.change },
      });
    },
  };
}
