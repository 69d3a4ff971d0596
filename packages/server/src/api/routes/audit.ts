/**
 * Audit routes (admin token, or a grant of `audit.read`): the latest signed
 * checkpoint, events, inclusion and consistency proofs (RFC 9162) computed
 * from the stored leaves. Reads of the log are not themselves logged.
 */
import { z } from 'zod';
import { MerkleCache } from '../../audit/tree.js';
import type { Store } from '../../store/index.js';
import type { App } from '../app.js';
import { b64u } from '../audit-pipe.js';
import { ApiError } from '../errors.js';

const Size = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

async function tree(store: Store, size: number): Promise<MerkleCache> {
  const t = new MerkleCache();
  for (let i = 0; i < size; i += 10_000) {
    for (const row of await store.readAuditEvents({ start: i, end: Math.min(size, i + 10_000) })) t.append(row.leafHash);
  }
  return t;
}

export function auditRoutes(app: App): void {
  const { ctx } = app;
  const admin = async (req: Parameters<App['principal']>[0]) => {
    const who = await app.principal(req);
    if (!who.admin) throw new ApiError('KW_FORBIDDEN', 'reading the audit log needs an admin token');
  };

  app.route({
    method: 'GET', url: '/v1/audit/checkpoint', summary: 'The latest signed checkpoint (C2SP signed note)', tag: 'audit', auth: 'admin',
    response: z.strictObject({ note: z.string(), size: z.int() }),
  }, async ({ req }) => {
    await admin(req);
    await ctx.audit.checkpointIfDue();
    const cp = await ctx.store.latestAuditCheckpoint();
    if (!cp) throw new ApiError('KW_NOT_FOUND', 'no checkpoint yet (the keyholder signs once unsealed)');
    return { note: cp.note, size: cp.size };
  });

  app.route({
    method: 'GET', url: '/v1/audit/events', summary: 'Events [from, to) (at most 1000), as their canonical JSON text', tag: 'audit', auth: 'admin',
    query: z.strictObject({ from: Size, to: Size }),
    response: z.strictObject({ events: z.array(z.strictObject({ index: z.int(), event: z.string() })) }),
  }, async ({ query, req }) => {
    await admin(req);
    if (query.to < query.from || query.to - query.from > 1000) throw new ApiError('KW_INVALID_ARGUMENT', 'need from ≤ to ≤ from + 1000');
    const rows = await ctx.store.readAuditEvents({ start: query.from, end: query.to });
    return { events: rows.map((r) => ({ index: r.idx, event: r.event })) };
  });

  app.route({
    method: 'GET', url: '/v1/audit/proof/inclusion', summary: 'RFC 9162 inclusion proof of event `index` in the tree of `size`', tag: 'audit', auth: 'admin',
    query: z.strictObject({ index: Size, size: Size }),
    response: z.strictObject({ index: z.int(), size: z.int(), leaf_hash: z.string(), hashes: z.array(z.string()) }),
  }, async ({ query, req }) => {
    await admin(req);
    const stored = await ctx.store.auditSize();
    if (query.size > stored || query.index >= query.size) throw new ApiError('KW_INVALID_ARGUMENT', `need index < size ≤ ${stored}`);
    const t = await tree(ctx.store, query.size);
    return { index: query.index, size: query.size, leaf_hash: b64u(t.leaf(query.index)), hashes: t.inclusionProof(query.index, query.size).map(b64u) };
  });

  app.route({
    method: 'GET', url: '/v1/audit/proof/consistency', summary: 'RFC 9162 consistency proof between tree sizes `from` and `to`', tag: 'audit', auth: 'admin',
    query: z.strictObject({ from: Size, to: Size }),
    response: z.strictObject({ from: z.int(), to: z.int(), hashes: z.array(z.string()) }),
  }, async ({ query, req }) => {
    await admin(req);
    const stored = await ctx.store.auditSize();
    if (query.from < 1 || query.from > query.to || query.to > stored) throw new ApiError('KW_INVALID_ARGUMENT', `need 1 ≤ from ≤ to ≤ ${stored}`);
    const t = await tree(ctx.store, query.to);
    return { from: query.from, to: query.to, hashes: t.consistencyProof(query.from, query.to).map(b64u) };
  });
}
