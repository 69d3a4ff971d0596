/**
 * The quorum operations of the PostgreSQL store (quorum-types.ts), over the
 * same runner as `postgres-ops.ts`, with the same checks as
 * `sqlite-quorum.ts`. Closing a request is compare-and-set in SQL, and an
 * approval or snapshot insert relies on the primary key, so two nodes cannot
 * both execute a request or both record one approver's answer.
 */
import { z } from 'zod';
import { StoreError } from './errors.js';
import type { PgQuery, PgRunner } from './postgres-ops.js';
import {
  APPROVAL_COLUMNS, APPROVAL_REQUEST_COLUMNS, APPROVAL_STATES, ApprovalIdSchema, ApprovalRequestRowSchema, ApprovalRowSchema, CloseApprovalSchema,
  GovernanceSnapshotRowSchema, NewApprovalRequestSchema, NewApprovalSchema, NewGovernanceSnapshotSchema, SNAPSHOT_COLUMNS,
  type ApprovalRequestRow, type ApprovalRow, type ApprovalState, type GovernanceSnapshotRow, type NewApproval, type NewApprovalRequest,
  type NewGovernanceSnapshot, type QuorumStore,
} from './quorum-types.js';
import { parseInput, parseRow } from './schema.js';

const SeqSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const FilterSchema = z.object({ state: z.enum(APPROVAL_STATES).optional() }).optional();

/** BIGINT columns come back as strings from `pg`. */
function numbers(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) out[k] = typeof v === 'string' && /^(created|expires_at|closed_at|seq)$/.test(k) ? Number(v) : v;
  return out;
}

const SQL = {
  insertRequest: `INSERT INTO approval_requests (${APPROVAL_REQUEST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, NULL) ON CONFLICT (id) DO NOTHING`,
  getRequest: `SELECT ${APPROVAL_REQUEST_COLUMNS} FROM approval_requests WHERE id = $1`,
  listRequests: `SELECT ${APPROVAL_REQUEST_COLUMNS} FROM approval_requests ORDER BY created DESC, id COLLATE "C" LIMIT 500`,
  listRequestsByState: `SELECT ${APPROVAL_REQUEST_COLUMNS} FROM approval_requests WHERE state = $1 ORDER BY created DESC, id COLLATE "C" LIMIT 500`,
  closeRequest: "UPDATE approval_requests SET state = $1, closed_at = $2 WHERE id = $3 AND state = 'pending'",
  insertApproval: `INSERT INTO approvals (${APPROVAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (request_id, approver) DO NOTHING`,
  getApproval: `SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE request_id = $1 AND approver = $2`,
  listApprovals: `SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE request_id = $1 ORDER BY created, approver COLLATE "C"`,
  insertSnapshot: `INSERT INTO governance_snapshots (${SNAPSHOT_COLUMNS}) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq) DO NOTHING`,
  getSnapshot: `SELECT ${SNAPSHOT_COLUMNS} FROM governance_snapshots WHERE seq = $1`,
  latestSnapshot: `SELECT ${SNAPSHOT_COLUMNS} FROM governance_snapshots ORDER BY seq DESC LIMIT 1`,
} as const;

export class PgQuorumOps implements QuorumStore {
  readonly #r: PgRunner;

  constructor(runner: PgRunner) {
    this.#r = runner;
  }

  async #one<S extends z.ZodType>(q: PgQuery, schema: S, sql: string, values: unknown[], table: string): Promise<z.output<S> | null> {
    const r = await q(sql, values);
    return r.rowCount === 0 ? null : parseRow(schema, numbers(r.rows[0]!), table);
  }

  createApprovalRequest(input: NewApprovalRequest): Promise<ApprovalRequestRow> {
    const r = parseInput(NewApprovalRequestSchema, input, 'createApprovalRequest');
    return this.#r.write('createApprovalRequest', async (q) => {
      const ins = await q(SQL.insertRequest, [r.id, r.op, r.requester, JSON.stringify(r.request), JSON.stringify(r.rules), r.created.getTime(), r.expiresAt.getTime()]);
      if (ins.rowCount !== 1) throw new StoreError('KW_STORE_CONFLICT', `approval request ${r.id} exists`);
      return (await this.#one(q, ApprovalRequestRowSchema, SQL.getRequest, [r.id], 'approval_requests'))!;
    });
  }

  getApprovalRequest(id: string): Promise<ApprovalRequestRow | null> {
    const i = parseInput(ApprovalIdSchema, id, 'approval request id');
    return this.#r.read('getApprovalRequest', (q) => this.#one(q, ApprovalRequestRowSchema, SQL.getRequest, [i], 'approval_requests'));
  }

  listApprovalRequests(filter?: { state?: ApprovalState }): Promise<ApprovalRequestRow[]> {
    const f = parseInput(FilterSchema, filter, 'approval request filter');
    return this.#r.read('listApprovalRequests', async (q) => {
      const r = f?.state !== undefined ? await q(SQL.listRequestsByState, [f.state]) : await q(SQL.listRequests, []);
      return r.rows.map((row) => parseRow(ApprovalRequestRowSchema, numbers(row), 'approval_requests'));
    });
  }

  closeApprovalRequest(id: string, state: 'executed' | 'denied' | 'expired', at: Date): Promise<ApprovalRequestRow> {
    const i = parseInput(ApprovalIdSchema, id, 'approval request id');
    const c = parseInput(CloseApprovalSchema, { state, at }, 'approval request close');
    return this.#r.write('closeApprovalRequest', async (q) => {
      if ((await q(SQL.getRequest, [i])).rowCount === 0) throw new StoreError('KW_STORE_NOT_FOUND', `approval request ${i} does not exist`);
      if ((await q(SQL.closeRequest, [c.state, c.at.getTime(), i])).rowCount !== 1) throw new StoreError('KW_STORE_CONFLICT', `approval request ${i} is no longer pending`);
      return (await this.#one(q, ApprovalRequestRowSchema, SQL.getRequest, [i], 'approval_requests'))!;
    });
  }

  addApproval(input: NewApproval): Promise<ApprovalRow> {
    const a = parseInput(NewApprovalSchema, input, 'addApproval');
    return this.#r.write('addApproval', async (q) => {
      if ((await q(SQL.getRequest, [a.requestId])).rowCount === 0) throw new StoreError('KW_STORE_NOT_FOUND', `approval request ${a.requestId} does not exist`);
      const ins = await q(SQL.insertApproval, [a.requestId, a.approver, a.decision, JSON.stringify(a.approval), a.created.getTime()]);
      if (ins.rowCount !== 1) throw new StoreError('KW_STORE_CONFLICT', `${a.approver} already answered approval request ${a.requestId}`);
      return (await this.#one(q, ApprovalRowSchema, SQL.getApproval, [a.requestId, a.approver], 'approvals'))!;
    });
  }

  listApprovals(requestId: string): Promise<ApprovalRow[]> {
    const i = parseInput(ApprovalIdSchema, requestId, 'approval request id');
    return this.#r.read('listApprovals', async (q) => (await q(SQL.listApprovals, [i])).rows.map((row) => parseRow(ApprovalRowSchema, numbers(row), 'approvals')));
  }

  putGovernanceSnapshot(input: NewGovernanceSnapshot): Promise<GovernanceSnapshotRow> {
    const s = parseInput(NewGovernanceSnapshotSchema, input, 'putGovernanceSnapshot');
    return this.#r.write('putGovernanceSnapshot', async (q) => {
      const ins = await q(SQL.insertSnapshot, [s.seq, s.hash, s.snapshot, s.signature, s.created.getTime()]);
      if (ins.rowCount !== 1) throw new StoreError('KW_STORE_CONFLICT', `governance snapshot ${s.seq} exists`);
      return (await this.#one(q, GovernanceSnapshotRowSchema, SQL.getSnapshot, [s.seq], 'governance_snapshots'))!;
    });
  }

  latestGovernanceSnapshot(): Promise<GovernanceSnapshotRow | null> {
    return this.#r.read('latestGovernanceSnapshot', (q) => this.#one(q, GovernanceSnapshotRowSchema, SQL.latestSnapshot, [], 'governance_snapshots'));
  }

  getGovernanceSnapshot(seq: number): Promise<GovernanceSnapshotRow | null> {
    const n = parseInput(SeqSchema, seq, 'snapshot seq');
    return this.#r.read('getGovernanceSnapshot', (q) => this.#one(q, GovernanceSnapshotRowSchema, SQL.getSnapshot, [n], 'governance_snapshots'));
  }
}
