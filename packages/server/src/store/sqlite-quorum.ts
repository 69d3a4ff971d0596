/**
 * The quorum operations of the SQLite store (quorum-types.ts), synchronous
 * like `sqlite-ops.ts`, which delegates to this class. The migration's
 * primary keys and CHECKs are the backstop of the checks made here first.
 */
import type { Database, Statement } from 'better-sqlite3';
import type { z } from 'zod';
import { StoreError } from './errors.js';
import {
  APPROVAL_COLUMNS, APPROVAL_REQUEST_COLUMNS, ApprovalIdSchema, ApprovalRequestRowSchema, ApprovalRowSchema, CloseApprovalSchema,
  GovernanceSnapshotRowSchema, NewApprovalRequestSchema, NewApprovalSchema, NewGovernanceSnapshotSchema, SNAPSHOT_COLUMNS,
  APPROVAL_STATES, type ApprovalRequestRow, type ApprovalRow, type ApprovalState, type GovernanceSnapshotRow, type NewApproval,
  type NewApprovalRequest, type NewGovernanceSnapshot, type QuorumStore,
} from './quorum-types.js';
import { parseInput, parseRow } from './schema.js';
import { z as zod } from 'zod';

export type SyncQuorumOps = { [K in keyof QuorumStore]: QuorumStore[K] extends (...args: infer A) => Promise<infer R> ? (...args: A) => R : never };

const SeqSchema = zod.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const FilterSchema = zod.object({ state: zod.enum(APPROVAL_STATES).optional() }).optional();

function one<S extends z.ZodType>(schema: S, row: unknown, table: string): z.output<S> | null {
  return row === undefined ? null : parseRow(schema, row, table);
}

export class SqliteQuorumOps implements SyncQuorumOps {
  readonly #st: ReturnType<typeof prepare>;

  constructor(db: Database) {
    this.#st = prepare(db);
  }

  createApprovalRequest(input: NewApprovalRequest): ApprovalRequestRow {
    const r = parseInput(NewApprovalRequestSchema, input, 'createApprovalRequest');
    if (this.#st.getRequest.get(r.id) !== undefined) throw new StoreError('KW_STORE_CONFLICT', `approval request ${r.id} exists`);
    this.#st.insertRequest.run(r.id, r.op, r.requester, JSON.stringify(r.request), JSON.stringify(r.rules), r.created.getTime(), r.expiresAt.getTime());
    return this.getApprovalRequest(r.id)!;
  }

  getApprovalRequest(id: string): ApprovalRequestRow | null {
    return one(ApprovalRequestRowSchema, this.#st.getRequest.get(parseInput(ApprovalIdSchema, id, 'approval request id')), 'approval_requests');
  }

  listApprovalRequests(filter?: { state?: ApprovalState }): ApprovalRequestRow[] {
    const f = parseInput(FilterSchema, filter, 'approval request filter');
    const rows = f?.state !== undefined ? this.#st.listRequestsByState.all(f.state) : this.#st.listRequests.all();
    return rows.map((r) => parseRow(ApprovalRequestRowSchema, r, 'approval_requests'));
  }

  closeApprovalRequest(id: string, state: 'executed' | 'denied' | 'expired', at: Date): ApprovalRequestRow {
    const i = parseInput(ApprovalIdSchema, id, 'approval request id');
    const c = parseInput(CloseApprovalSchema, { state, at }, 'approval request close');
    if (this.getApprovalRequest(i) === null) throw new StoreError('KW_STORE_NOT_FOUND', `approval request ${i} does not exist`);
    if (this.#st.closeRequest.run(c.state, c.at.getTime(), i).changes !== 1) throw new StoreError('KW_STORE_CONFLICT', `approval request ${i} is no longer pending`);
    return this.getApprovalRequest(i)!;
  }

  addApproval(input: NewApproval): ApprovalRow {
    const a = parseInput(NewApprovalSchema, input, 'addApproval');
    if (this.getApprovalRequest(a.requestId) === null) throw new StoreError('KW_STORE_NOT_FOUND', `approval request ${a.requestId} does not exist`);
    if (this.#st.getApproval.get(a.requestId, a.approver) !== undefined) throw new StoreError('KW_STORE_CONFLICT', `${a.approver} already answered approval request ${a.requestId}`);
    this.#st.insertApproval.run(a.requestId, a.approver, a.decision, JSON.stringify(a.approval), a.created.getTime());
    return parseRow(ApprovalRowSchema, this.#st.getApproval.get(a.requestId, a.approver), 'approvals');
  }

  listApprovals(requestId: string): ApprovalRow[] {
    const i = parseInput(ApprovalIdSchema, requestId, 'approval request id');
    return this.#st.listApprovals.all(i).map((r) => parseRow(ApprovalRowSchema, r, 'approvals'));
  }

  putGovernanceSnapshot(input: NewGovernanceSnapshot): GovernanceSnapshotRow {
    const s = parseInput(NewGovernanceSnapshotSchema, input, 'putGovernanceSnapshot');
    if (this.#st.getSnapshot.get(s.seq) !== undefined) throw new StoreError('KW_STORE_CONFLICT', `governance snapshot ${s.seq} exists`);
    this.#st.insertSnapshot.run(s.seq, s.hash, s.snapshot, s.signature, s.created.getTime());
    return this.getGovernanceSnapshot(s.seq)!;
  }

  latestGovernanceSnapshot(): GovernanceSnapshotRow | null {
    return one(GovernanceSnapshotRowSchema, this.#st.latestSnapshot.get(), 'governance_snapshots');
  }

  getGovernanceSnapshot(seq: number): GovernanceSnapshotRow | null {
    return one(GovernanceSnapshotRowSchema, this.#st.getSnapshot.get(parseInput(SeqSchema, seq, 'snapshot seq')), 'governance_snapshots');
  }
}

function prepare(db: Database) {
  const s = (sql: string): Statement<unknown[]> => db.prepare(sql);
  return {
    insertRequest: s(`INSERT INTO approval_requests (${APPROVAL_REQUEST_COLUMNS}) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, NULL)`),
    getRequest: s(`SELECT ${APPROVAL_REQUEST_COLUMNS} FROM approval_requests WHERE id = ?`),
    listRequests: s(`SELECT ${APPROVAL_REQUEST_COLUMNS} FROM approval_requests ORDER BY created DESC, id LIMIT 500`),
    listRequestsByState: s(`SELECT ${APPROVAL_REQUEST_COLUMNS} FROM approval_requests WHERE state = ? ORDER BY created DESC, id LIMIT 500`),
    closeRequest: s("UPDATE approval_requests SET state = ?, closed_at = ? WHERE id = ? AND state = 'pending'"),
    insertApproval: s(`INSERT INTO approvals (${APPROVAL_COLUMNS}) VALUES (?, ?, ?, ?, ?)`),
    getApproval: s(`SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE request_id = ? AND approver = ?`),
    listApprovals: s(`SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE request_id = ? ORDER BY created, approver`),
    insertSnapshot: s(`INSERT INTO governance_snapshots (${SNAPSHOT_COLUMNS}) VALUES (?, ?, ?, ?, ?)`),
    getSnapshot: s(`SELECT ${SNAPSHOT_COLUMNS} FROM governance_snapshots WHERE seq = ?`),
    latestSnapshot: s(`SELECT ${SNAPSHOT_COLUMNS} FROM governance_snapshots ORDER BY seq DESC LIMIT 1`),
  };
}
