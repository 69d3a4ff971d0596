/**
 * The audit log's storage interface over the server's Store (or a
 * transaction handle of it): one Store method per storage method, so an
 * event appended inside `store.transaction` commits or rolls back with it.
 *
 * @example
 * const log = new AuditLog(auditStorageOf(store), { origin });
 */
import type { StoreOps } from '../store/types.js';
import type { AuditStorage } from './log.js';

const PAGE = 10_000;

export function auditStorageOf(ops: StoreOps): AuditStorage {
  return {
    append: (r) => ops.appendAuditEvent({ time: new Date(r.time), event: new TextDecoder().decode(r.event), leafHash: r.leafHash, expectedIdx: r.index }),
    read: async (from, to) => (await ops.readAuditEvents({ start: from, end: Math.min(to, from + PAGE) })).map((row) => ({ index: row.idx, event: new TextEncoder().encode(row.event) })),
    size: () => ops.auditSize(),
    latestCheckpoint: async () => (await ops.latestAuditCheckpoint())?.note ?? null,
    saveCheckpoint: async (c) => void (await ops.addAuditCheckpoint({ size: c.size, root: c.root, note: c.note, created: new Date() })),
  };
}
