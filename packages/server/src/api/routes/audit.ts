/**
 * Audit routes (admin token): the latest signed checkpoint, events, inclusion
 * and consistency proofs (RFC 9162) computed from the stored leaves.
 *
 * Reads of the log are audited (docs/audit.md §Reads of the log): every
 * events page and every proof is an `audit.read` read, written through
 * `AuditPipe.recordRead` — the first of a reader's window before the answer,
 * the rest of that window as one coalesced event — so a polling reader costs
 * at most two events per interval. The checkpoint (a signed size and root,
 * what witnesses are given anyway) is not audited. A non-admin is refused and
 * the refusal audited.
 *
 * This module also installs the API-wide hooks that count unauthenticated
 * failures (auth.ts `unauthenticatedReason`) in the pipe's FailureSummarizer:
 * no per-failure event, a periodic `audit.summary` instead.
 */
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { MerkleCache } from '../../audit/tree.js';
import type { Store } from '../../store/index.js';
import type { App } from '../app.js';
import { b64u } from '../audit-pipe.js';
import { newAuthTrace, traceAuth, unauthenticatedReason, type AuthTrace, type Principal } from '../auth.js';
import { ApiError } from '../errors.js';
import { readWitnessStatus } from '../../witness/publisher.js';

const Size = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

async function tree(store: Store, size: number): Promise<MerkleCache> {
  const t = new MerkleCache();
  for (let i = 0; i < size; i += 10_000) {
    for (const row of await store.readAuditEvents({ start: i, end: Math.min(size, i + 10_000) })) t.append(row.leafHash);
  }
  return t;
}

/**
 * Counts every request that fails unauthenticated (bad or missing token,
 * unknown device key, rate-limited before authentication) in
 * `ctx.audit.failures`, by reason and client network. Hooks apply to every
 * route of the instance, whenever they were added.
 */
function summariseUnauthenticated(app: App): void {
  const traces = new WeakMap<FastifyRequest, AuthTrace>();
  app.fastify.addHook('preHandler', (req, _reply, done) => {
    const trace = newAuthTrace();
    traces.set(req, trace);
    traceAuth(trace, done);
  });
  app.fastify.addHook('onError', (req, _reply, error, done) => {
    const reason = unauthenticatedReason(error, traces.get(req));
    if (reason !== null) app.ctx.audit.failures.record(reason, req.ip);
    done();
  });
}

export function auditRoutes(app: App): void {
  const { ctx } = app;
  summariseUnauthenticated(app);

  const admin = async (req: FastifyRequest): Promise<Principal> => {
    const who = await app.principal(req);
    if (!who.admin) {
      await ctx.audit.recordFailure({ ns: null, principal: who.id, auth: 'token', op: 'audit.read', outcome: 'denied', code: 'KW_FORBIDDEN', details: { client: { address: req.ip } } });
      throw new ApiError('KW_FORBIDDEN', 'reading the audit log needs an admin token');
    }
    return who;
  };

  app.route({
    method: 'GET', url: '/v1/audit/checkpoint',
    summary: 'The latest signed checkpoint (C2SP signed note); with witnesses configured, the newest one k witnesses cosigned, cosignatures included (`latest`: false when newer checkpoints await cosignatures)',
    tag: 'audit', auth: 'admin',
    response: z.strictObject({ note: z.string(), size: z.int(), witnesses: z.strictObject({ k: z.int(), n: z.int(), cosigned: z.array(z.string()), latest: z.boolean() }).optional() }),
  }, async ({ req }) => {
    await admin(req);
    await ctx.audit.checkpointIfDue();
    const cp = await ctx.store.latestAuditCheckpoint();
    if (!cp) throw new ApiError('KW_NOT_FOUND', 'no checkpoint yet (the keyholder signs once unsealed)');
    const policy = ctx.witnesses ?? null;
    if (policy === null) return { note: cp.note, size: cp.size };
    // The newest checkpoint with k cosignatures; else the newest attempt (too few: a verifier refuses it, as it should).
    const st = await readWitnessStatus(ctx.store, policy);
    const best = st.witnessed ?? st.latest;
    if (best === null) return { note: cp.note, size: cp.size, witnesses: { k: policy.k, n: policy.witnesses.length, cosigned: [], latest: true } };
    return { note: best.note, size: best.size, witnesses: { k: policy.k, n: policy.witnesses.length, cosigned: [...best.cosigned], latest: best.size === cp.size } };
  });

  app.route({
    method: 'GET', url: '/v1/audit/witnesses', summary: "The audit log's witnesses: k of n, the newest witnessed checkpoint, and per witness the size it holds, the last success and the last error", tag: 'audit', auth: 'admin',
    response: z.strictObject({
      k: z.int(), n: z.int(),
      latest_size: z.int().nullable(),
      witnessed: z.strictObject({ size: z.int(), cosigned: z.array(z.string()), time: z.string() }).nullable(),
      witnesses: z.array(z.strictObject({ name: z.string(), url: z.string(), size: z.int(), last_ok: z.string().nullable(), last_error: z.strictObject({ time: z.string(), code: z.string(), message: z.string() }).nullable() })),
    }),
  }, async ({ req }) => {
    await admin(req);
    const st = await readWitnessStatus(ctx.store, ctx.witnesses ?? null);
    return {
      k: st.k, n: st.n,
      latest_size: (await ctx.store.latestAuditCheckpoint())?.size ?? null,
      witnessed: st.witnessed === null ? null : { size: st.witnessed.size, cosigned: [...st.witnessed.cosigned], time: st.witnessed.time },
      witnesses: st.witnesses.map((w) => ({ name: w.name, url: w.url, size: w.size, last_ok: w.lastOk, last_error: w.lastError })),
    };
  });

  app.route({
    method: 'GET', url: '/v1/audit/events', summary: 'Events [from, to) (at most 1000), as their canonical JSON text (an audited read)', tag: 'audit', auth: 'admin',
    query: z.strictObject({ from: Size, to: Size }),
    response: z.strictObject({ events: z.array(z.strictObject({ index: z.int(), event: z.string() })) }),
  }, async ({ query, req }) => {
    const who = await admin(req);
    if (query.to < query.from || query.to - query.from > 1000) throw new ApiError('KW_INVALID_ARGUMENT', 'need from ≤ to ≤ from + 1000');
    await ctx.audit.recordRead(who.id, { kind: 'events', from: query.from, to: query.to });
    const rows = await ctx.store.readAuditEvents({ start: query.from, end: query.to });
    return { events: rows.map((r) => ({ index: r.idx, event: r.event })) };
  });

  app.route({
    method: 'GET', url: '/v1/audit/proof/inclusion', summary: 'RFC 9162 inclusion proof of event `index` in the tree of `size` (an audited read)', tag: 'audit', auth: 'admin',
    query: z.strictObject({ index: Size, size: Size }),
    response: z.strictObject({ index: z.int(), size: z.int(), leaf_hash: z.string(), hashes: z.array(z.string()) }),
  }, async ({ query, req }) => {
    const who = await admin(req);
    const stored = await ctx.store.auditSize();
    if (query.size > stored || query.index >= query.size) throw new ApiError('KW_INVALID_ARGUMENT', `need index < size ≤ ${stored}`);
    await ctx.audit.recordRead(who.id, { kind: 'inclusion', from: query.index, to: query.size });
    const t = await tree(ctx.store, query.size);
    return { index: query.index, size: query.size, leaf_hash: b64u(t.leaf(query.index)), hashes: t.inclusionProof(query.index, query.size).map(b64u) };
  });

  app.route({
    method: 'GET', url: '/v1/audit/proof/consistency', summary: 'RFC 9162 consistency proof between tree sizes `from` and `to` (an audited read)', tag: 'audit', auth: 'admin',
    query: z.strictObject({ from: Size, to: Size }),
    response: z.strictObject({ from: z.int(), to: z.int(), hashes: z.array(z.string()) }),
  }, async ({ query, req }) => {
    const who = await admin(req);
    const stored = await ctx.store.auditSize();
    if (query.from < 1 || query.from > query.to || query.to > stored) throw new ApiError('KW_INVALID_ARGUMENT', `need 1 ≤ from ≤ to ≤ ${stored}`);
    await ctx.audit.recordRead(who.id, { kind: 'consistency', from: query.from, to: query.to });
    const t = await tree(ctx.store, query.to);
    return { from: query.from, to: query.to, hashes: t.consistencyProof(query.from, query.to).map(b64u) };
  });
}
