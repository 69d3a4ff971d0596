/**
 * `GET /v1/directory/witnessed` (issue #6; docs/witness.md §The directory):
 * the newest directory head k witnesses cosigned, as a head-log checkpoint
 * with the inclusion proof of its latest entry, the head log's verifier key
 * and the witnesses' names. Open to any caller (like the head itself).
 *
 * `GET /v1/directory/witnesses` (admin, `directory.read`; the console's
 * Directory page): the directory log's current size and the time of its
 * newest entry, the newest cosigned head-log checkpoint, and per witness the
 * head-log size it holds, its last cosignature and its last error — the
 * directory's counterpart of `GET /v1/audit/witnesses`.
 */
import { z } from 'zod';
import type { App } from '../app.js';
import { ApiError } from '../errors.js';
import { META_DIR_WITNESSED, type DirectoryWitnessPublisher, type DirectoryWitnessed } from '../../directory/witness.js';
import { parseJson } from '../../witness/publisher.js';
import { guarded } from './common.js';

/**
 * Registers the route. `publisher` is null without a directory or without witnesses: the
 * route then answers `KW_DIR_NOT_WITNESSED` (the contract is the same on every server).
 */
export function directoryWitnessRoutes(app: App, publisher: DirectoryWitnessPublisher | null): void {
  app.route({
    method: 'GET', url: '/v1/directory/witnessed',
    summary: 'The newest directory head k witnesses cosigned: its head-log checkpoint (with cosignatures) and the inclusion proof of its latest entry; `size` asks for a head at least that large (published first if needed)',
    tag: 'directory', auth: 'none',
    query: z.strictObject({ size: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional() }),
    response: z.strictObject({
      tree_size: z.int(), root: z.string(), checkpoint: z.string(), proof: z.array(z.string()), cosigned: z.array(z.string()), time: z.string(),
      log_key: z.string(), k: z.int(), witnesses: z.array(z.string()),
    }),
  }, async ({ query }) => {
    if (publisher === null) throw new ApiError('KW_DIR_NOT_WITNESSED', 'this server has no directory witnesses configured');
    const w = await publisher.witnessed(query.size ?? 0);
    if (w === null) throw new ApiError('KW_DIR_NOT_WITNESSED', 'no directory head has k cosignatures yet');
    return { ...w, log_key: publisher.verifierKey, k: publisher.policy.k, witnesses: publisher.policy.witnesses.map((x) => x.name) };
  });

  app.route({
    method: 'GET', url: '/v1/directory/witnesses',
    summary: "The directory log's checkpoints and witnesses: its size and newest entry's time, the newest head-log checkpoint k witnesses cosigned, and per witness the size it holds, its last cosignature and its last error",
    tag: 'directory', auth: 'admin',
    response: z.strictObject({
      head: z.strictObject({ tree_size: z.int(), time: z.string() }).nullable(),
      log_key: z.string().nullable(), k: z.int(), n: z.int(),
      witnessed: z.strictObject({ tree_size: z.int(), checkpoint: z.string(), cosigned: z.array(z.string()), time: z.string() }).nullable(),
      witnesses: z.array(z.strictObject({
        name: z.string(), url: z.string(), size: z.int(), last_ok: z.string().nullable(),
        last_error: z.strictObject({ time: z.string(), code: z.string(), message: z.string() }).nullable(),
      })),
    }),
  }, ({ req }) => guarded(app, req, { op: 'directory.read', auditOp: 'directory.read', ns: null }, async ({ event }) => {
    const { ctx } = app;
    if (!ctx.directory) throw new ApiError('KW_DIR_NOT_ENABLED', 'the directory is not enabled on this server');
    const size = await ctx.store.ktTreeSize();
    const last = size > 0 ? await ctx.store.ktLogEntry(size - 1) : null;
    const w = publisher === null ? null : parseJson<DirectoryWitnessed>(await ctx.store.getMeta(META_DIR_WITNESSED));
    const stored = publisher === null ? [] : await publisher.status();
    const witnesses = (publisher?.policy.witnesses ?? []).map((x) => stored.find((s) => s.name === x.name) ?? { name: x.name, url: x.url, size: 0, lastOk: null, lastError: null });
    await ctx.audit.record({ ...event, outcome: 'allowed', details: { ...event.details, what: 'witnesses' } });
    return {
      head: last === null ? null : { tree_size: size, time: new Date(last.timestamp).toISOString() },
      log_key: publisher?.verifierKey ?? null, k: publisher?.policy.k ?? 0, n: witnesses.length,
      witnessed: w === null ? null : { tree_size: w.size, checkpoint: w.note, cosigned: [...w.cosigned], time: w.time },
      witnesses: witnesses.map((x) => ({ name: x.name, url: x.url, size: x.size, last_ok: x.lastOk, last_error: x.lastError })),
    };
  }));
}
