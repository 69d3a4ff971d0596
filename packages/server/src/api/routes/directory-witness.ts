/**
 * `GET /v1/directory/witnessed` (issue #6; docs/witness.md §The directory):
 * the newest directory head k witnesses cosigned, as a head-log checkpoint
 * with the inclusion proof of its latest entry, the head log's verifier key
 * and the witnesses' names. Open to any caller (like the head itself).
 */
import { z } from 'zod';
import type { App } from '../app.js';
import { ApiError } from '../errors.js';
import type { DirectoryWitnessPublisher } from '../../directory/witness.js';

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
}
